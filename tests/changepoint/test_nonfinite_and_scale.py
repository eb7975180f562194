"""A NaN or Inf sample never leaves a detector dead: detect() names it and changes nothing,
update() skips it; statistics and alarms do not depend on the scale of the data."""
import numpy as np
import pytest

from randla.changepoint import NEWMA, ScanB


def _stream(rng, d=3, n=300, at=200, shift=2.5):
    X = rng.standard_normal((n, d))
    X[at:] += shift
    return X


def _detectors():
    return [lambda: NEWMA(3, n_features=32, rng=3, window=20),
            lambda: ScanB(3, window=10, n_blocks=2)]


@pytest.mark.parametrize("make", _detectors(), ids=["newma", "scanb"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_detect_names_the_nonfinite_sample_and_changes_nothing(make, bad, rng):
    X = _stream(rng)
    i, j = int(rng.integers(0, len(X))), int(rng.integers(0, 3))
    Xbad = X.copy()
    Xbad[i, j] = bad
    det = make()
    det.detect(X[:50])
    with pytest.raises(ValueError, match=rf"X has a non-finite value .* in sample {i} "):
        det.detect(Xbad)
    ref = make()
    ref.detect(X[:50])
    got, want = det.detect(X[50:]), ref.detect(X[50:])
    np.testing.assert_array_equal(got.statistic, want.statistic)
    np.testing.assert_array_equal(got.alarms, want.alarms)


@pytest.mark.parametrize("make", _detectors(), ids=["newma", "scanb"])
def test_update_skips_a_nonfinite_sample_and_keeps_detecting(make, rng):
    """The stream with NaN/Inf samples gives, elsewhere, the statistics and alarms of the stream
    without them; the change after them is still found."""
    X = _stream(rng)
    where = np.sort(rng.choice(np.arange(60, 190), size=3, replace=False))
    Xbad = X.copy()
    Xbad[where[0], 0], Xbad[where[1], 2], Xbad[where[2]] = np.nan, np.inf, -np.inf
    det, ref = make(), make()
    steps = [det.update(x) for x in Xbad]
    keep = np.setdiff1d(np.arange(len(X)), where)
    want = [ref.update(x) for x in X[keep]]
    stats = np.array([s for s, _ in steps])
    assert np.all(np.isnan(stats[where])) and not any(steps[w][1] for w in where)
    np.testing.assert_array_equal(stats[keep], [s for s, _ in want])
    alarms = np.flatnonzero([a for _, a in steps])
    np.testing.assert_array_equal(alarms, keep[np.flatnonzero([a for _, a in want])])
    assert np.any(alarms > where.max())  # alive after them (the change at 200: 0 misses in 300)
    assert det.n_skipped_ == 3


def test_newma_features_that_overflow_are_named_or_skipped(rng):
    """Optical features are |Hx|^2: a finite sample of 1e200 overflows them."""
    X = _stream(rng, n=120, at=80)
    i = int(rng.integers(0, len(X)))
    Xbad = X.copy()
    Xbad[i] *= 1e200
    make = lambda: NEWMA(3, n_features=16, sketch="optical", rng=3, window=10)  # noqa: E731
    det = make()
    with pytest.raises(ValueError, match=rf"X: the features of sample {i} overflow"):
        det.detect(Xbad)
    np.testing.assert_array_equal(det.detect(X).statistic, make().detect(X).statistic)
    det, ref = make(), make()
    steps = [det.update(x) for x in Xbad]
    assert np.isnan(steps[i][0]) and det.n_skipped_ == 1
    keep = np.delete(np.arange(len(X)), i)
    np.testing.assert_array_equal([steps[k][0] for k in keep], [ref.update(x)[0] for x in X[keep]])


@pytest.mark.parametrize("power", [130, -250, -300])
def test_newma_adaptive_threshold_is_scale_invariant(power, rng):
    """Optical statistics grow like |x|^2: at 2^130 their fourth power overflowed (infinite
    threshold, no alarm), at 2^-250 it underflowed (false alarms everywhere); at 2^-300 the
    squares in the statistic's norm underflowed too (statistics of 0)."""
    X = _stream(rng)
    s = 2.0**power  # a power of two: every product is exact, so the results must be too
    make = lambda: NEWMA(3, n_features=32, sketch="optical", rng=3, window=20)  # noqa: E731
    ref, det = make(), make()
    want, got = ref.detect(X), det.detect(X * s)
    np.testing.assert_array_equal(got.statistic, want.statistic * s * s)
    np.testing.assert_array_equal(det.thresholds_, ref.thresholds_ * s * s)
    np.testing.assert_array_equal(got.alarms, want.alarms)


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e-170])
def test_scanb_is_scale_invariant(scale, rng):
    X = _stream(rng)
    bw = float(rng.uniform(1, 3))
    want = ScanB(3, window=10, n_blocks=2, bandwidth=bw).detect(X)
    got = ScanB(3, window=10, n_blocks=2, bandwidth=bw * scale).detect(X * scale)
    np.testing.assert_allclose(got.statistic, want.statistic, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(got.alarms, want.alarms)


def test_newma_gaussian_features_are_scale_invariant(rng):
    X = _stream(rng)
    bw = float(rng.uniform(1, 3))
    want = NEWMA(3, n_features=32, rng=3, window=20, bandwidth=bw).detect(X)
    for scale in (1e200, 1e-200):
        got = NEWMA(3, n_features=32, rng=3, window=20, bandwidth=bw * scale).detect(X * scale)
        np.testing.assert_allclose(got.statistic, want.statistic, rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(got.alarms, want.alarms)


@pytest.mark.parametrize("make", _detectors(), ids=["newma", "scanb"])
def test_empty_batch(make):
    det = make()
    res = det.detect(np.zeros((0, 3)))
    assert res.statistic.shape == (0,) and res.alarms.shape == (0,)
    assert res.alarms.dtype == np.int64
