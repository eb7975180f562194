"""NEWMA and Scan-B: streaming equals batch, the statistics against direct recomputation, the
paper's forgetting factors, detection on a stream with a change."""
import numpy as np
import pytest

from randla.changepoint import NEWMA, ChangepointResult, ScanB, forgetting_factors


def _stream(rng, d=4, n=1200, at=600, shift=2.0):
    X = rng.standard_normal((n, d))
    X[at:] += shift
    return X


def test_forgetting_factors_follow_the_paper():
    for B in (50, 250):
        fast, slow = forgetting_factors(B)
        assert slow < 1 / (B + 1) < fast
        # both averages weigh a sample B steps old equally
        assert fast * (1 - fast) ** B == pytest.approx(slow * (1 - slow) ** B, rel=1e-9)


@pytest.mark.parametrize("sketch", ["gaussian", "optical"])
def test_newma_update_equals_detect_and_the_definition(sketch, rng):
    X = _stream(rng, n=400 if sketch == "gaussian" else 160, at=100)
    a = NEWMA(4, n_features=64, sketch=sketch, rng=3, window=20)
    res = a.detect(X)
    b = NEWMA(4, n_features=64, sketch=sketch, rng=3, window=20)
    steps = [b.update(x) for x in X]
    np.testing.assert_allclose([s for s, _ in steps], res.statistic, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(np.flatnonzero([f for _, f in steps]), res.alarms)
    # the definition, written out: two EWMAs of psi, each the running mean until 1/(t+1)
    # falls below its factor
    psi = a.features(X)
    zf = zs = 0
    ref = []
    warm = np.ceil(1 / a.forget_slow)
    for t, p in enumerate(psi):
        f = max(1 / (t + 1), a.forget_fast) if t < warm else a.forget_fast
        s = max(1 / (t + 1), a.forget_slow) if t < warm else a.forget_slow
        zf = (1 - f) * zf + f * p
        zs = (1 - s) * zs + s * p
        ref.append(np.linalg.norm(zf - zs))
    np.testing.assert_allclose(res.statistic, ref, rtol=1e-9, atol=1e-12)
    # chunked detect continues the stream
    c = NEWMA(4, n_features=64, sketch=sketch, rng=3, window=20)
    assert res.alarms.size  # the check below compares something
    parts = [c.detect(X[:100]), c.detect(X[100:])]
    np.testing.assert_allclose(np.concatenate([p.statistic for p in parts]), res.statistic,
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(np.concatenate([parts[0].alarms, parts[1].alarms + 100]),
                                  res.alarms)


def test_random_fourier_features_approximate_the_gaussian_kernel(rng):
    d = 6
    det = NEWMA(d, n_features=20000, rng=1, bandwidth=2.0)
    X = rng.standard_normal((5, d))
    F = det.features(X)
    K = np.exp(-((X[:, None] - X[None]) ** 2).sum(-1) / (2 * 2.0**2))
    assert np.abs(F @ F.T - K).max() < 0.05


def test_newma_detects_a_change_and_is_quiet_before():
    """Over 4 streams (seeded: a statistical check) every change is found within 100 samples;
    false alarms before it (about 2000 samples after the burn-in each) measured 9 in all."""
    false = 0
    for seed in range(4):
        X = _stream(np.random.default_rng(100 + seed), d=5, n=3000, at=2500, shift=1.0)
        res = NEWMA(5, n_features=300, rng=0).detect(X)
        assert isinstance(res, ChangepointResult)
        assert np.any((res.alarms >= 2500) & (res.alarms < 2600))
        false += np.sum(res.alarms < 2500)
    assert false <= 12


def test_fixed_threshold(rng):
    X = _stream(rng, n=800, at=400)
    det = NEWMA(4, n_features=100, rng=0, threshold=0.0, window=40)
    res = det.detect(X)  # always above: one alarm, when the burn-in ends
    np.testing.assert_array_equal(res.alarms, [2 * int(np.ceil(1 / det.forget_slow))])
    high = NEWMA(4, n_features=100, rng=0, threshold=1e9).detect(X)
    assert high.alarms.size == 0


def _scanb_direct(X, t, B, N, bw):
    """sqrt(mean_i MMD_b^2(X_i, Y)) at sample t, from scratch."""
    W = X[t - (N + 1) * B + 1:t + 1]
    K = np.exp(-((W[:, None] - W[None]) ** 2).sum(-1) / (2 * bw**2))
    blocks = [np.arange(j * B, (j + 1) * B) for j in range(N + 1)]
    y = blocks[-1]
    m = [K[np.ix_(b, b)].mean() + K[np.ix_(y, y)].mean() - 2 * K[np.ix_(b, y)].mean()
         for b in blocks[:-1]]
    return np.sqrt(max(np.mean(m), 0))


def test_scanb_running_sums_match_the_direct_statistic(rng):
    B, N = 7, 3
    X = _stream(rng, d=3, n=120, at=60)
    det = ScanB(3, window=B, n_blocks=N, forget=0.05)
    res = det.detect(X)
    assert np.all(res.statistic[:(N + 1) * B - 1] == 0)
    for t in ((N + 1) * B - 1, 40, 61, 77, 119):
        assert res.statistic[t] == pytest.approx(_scanb_direct(X, t, B, N, np.sqrt(3)), rel=1e-8)
    det2 = ScanB(3, window=B, n_blocks=N, forget=0.05)
    steps = [det2.update(x) for x in X]
    np.testing.assert_allclose([s for s, _ in steps], res.statistic, rtol=1e-12)
    np.testing.assert_array_equal(np.flatnonzero([f for _, f in steps]), res.alarms)


def test_bad_arguments():
    with pytest.raises(ValueError, match="forget"):
        NEWMA(3, forget_fast=0.01, forget_slow=0.1)
    with pytest.raises(ValueError, match="threshold"):
        NEWMA(3, threshold="sometimes")
    with pytest.raises(ValueError, match="shape"):
        NEWMA(3, n_features=10).update(np.ones(4))
    with pytest.raises(ValueError, match="sketch"):
        NEWMA(3, sketch="hologram")
    with pytest.raises(ValueError, match="shape"):
        ScanB(3, window=5).detect(np.ones((4, 2)))
