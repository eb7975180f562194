"""randla.inverse: the test problems' known properties, and TSVD/Tikhonov through rsvd."""
import numpy as np
import pytest

from randla.inverse import problems as P
from randla.inverse import tikhonov, tsvd

ALL = ["shaw", "deriv2", "phillips", "heat", "gravity", "baart", "foxgood"]


def noisy(rng, b, level):
    e = rng.standard_normal(b.shape)
    e *= level * np.linalg.norm(b) / np.linalg.norm(e)
    return b + e, float(np.linalg.norm(e))


@pytest.mark.parametrize("name", ALL)
def test_problem_is_consistent(name):
    A, b, x = getattr(P, name)(64)
    assert A.shape == (64, 64) and b.shape == x.shape == (64,)
    assert np.array_equal(b, A @ x)
    assert np.all(np.isfinite(A))


def _continuous_rhs_error(name, n):
    A, b, x = getattr(P, name)(n)
    if name == "deriv2":
        s = (np.arange(n) + 0.5) / n
        return np.abs(b / np.sqrt(1 / n) - (s**3 - s) / 6).max()
    if name == "phillips":
        s = -6 + (np.arange(n) + 0.5) * 12 / n
        g = (6 - abs(s)) * (1 + 0.5 * np.cos(np.pi * s / 3)) + 9 / (2 * np.pi) * np.sin(
            np.pi * abs(s) / 3)
        return np.abs(b - g).max()
    if name == "baart":
        s = (np.arange(n) + 0.5) * np.pi / 2 / n
        return np.abs(b - 2 * np.sinh(s) / s).max()
    s = (np.arange(n) + 0.5) / n  # foxgood
    return np.abs(b - ((1 + s**2) ** 1.5 - s**3) / 3).max()


@pytest.mark.parametrize("name", ["deriv2", "phillips", "baart", "foxgood"])
def test_discretization_converges_to_the_integral_equation(name):
    """b = A x_true approximates the known right-hand side g(s), with the error of a second
    order quadrature: it falls about 4x when n doubles."""
    e1, e2 = _continuous_rhs_error(name, 64), _continuous_rhs_error(name, 128)
    assert e1 < 2e-2
    assert e2 < e1 / 3


def test_deriv2_singular_values_and_galerkin_entries():
    A = P.deriv2(128)[0]
    s = np.linalg.svd(A, compute_uv=False)
    k = np.arange(1, 11)
    np.testing.assert_allclose(s[:10] * (np.pi * k) ** 2, 1.0, rtol=1e-2)
    # entries against brute-force quadrature of (1/h) int int K over the cells
    n, f = 6, 300
    t = (np.arange(n * f) + 0.5) / (n * f)
    S, T = np.meshgrid(t, t, indexing="ij")
    K = np.where(S < T, S * (T - 1), T * (S - 1))
    brute = K.reshape(n, f, n, f).mean(axis=(1, 3)) / n
    np.testing.assert_allclose(P.deriv2(n)[0], brute, rtol=0, atol=2e-5 * np.abs(brute).max())


def test_spectra_decay_as_documented():
    def sv(name, **kw):
        A = getattr(P, name)(128, **kw)[0]
        s = np.linalg.svd(A, compute_uv=False)
        return s / s[0]
    assert sv("shaw")[20] < 1e-13  # severely ill-posed: numerically rank ~20
    assert sv("baart")[10] < 1e-12
    assert sv("foxgood")[20] < 1e-11
    assert sv("gravity")[20] < 1e-4
    assert 1e-5 < sv("phillips")[-1] < 1e-2 or sv("phillips")[60] > 1e-5  # only mildly ill-posed
    assert sv("heat", kappa=5.0)[-1] > 1e-2 and sv("heat")[-1] < 1e-15
    for name in ["shaw", "phillips", "gravity"]:
        A = getattr(P, name)(64)[0]
        np.testing.assert_allclose(A, A.T, rtol=1e-13, atol=1e-15)
    A = P.heat(64)[0]
    assert np.all(np.triu(A, 1) == 0)
    with pytest.raises(ValueError, match="even"):
        P.heat(63)


def test_deblur_operator(rng):
    prob = P.deblur(24, sigma=1.5, noise=0.05, rng=rng)
    A = prob.A
    T = P.gaussian_blur_matrix(24, 1.5)
    dense = np.kron(T, T)
    X = rng.standard_normal((576, 3))
    np.testing.assert_allclose(A @ X, dense @ X, rtol=1e-12, atol=1e-14)
    Y = rng.standard_normal((576, 2))
    np.testing.assert_allclose((A @ X).T @ Y, X.T @ (A.H @ Y), rtol=1e-12)  # dottest
    assert np.isclose(np.linalg.norm(prob.b - A @ prob.x_true), prob.noise_level)
    assert np.isclose(prob.noise_level, 0.05 * np.linalg.norm(A @ prob.x_true))
    assert prob.x_true.min() >= 0 and prob.x_true.max() <= 1 and prob.image_shape == (24, 24)


def _exact_tikhonov(A, b, lam):
    U, s, Vh = np.linalg.svd(A)
    return Vh.T @ (s / (s**2 + lam**2) * (U.T @ b))


def test_tikhonov_given_lambda_matches_full_svd(rng):
    A, b, x = P.shaw(128)
    bn, _ = noisy(rng, b, 1e-3)
    res = tikhonov(A, bn, lam=1e-2, rank=40, rng=rng)
    ref = _exact_tikhonov(A, bn, 1e-2)
    assert res.rule == "given" and res.lam == 1e-2
    assert np.linalg.norm(res.x - ref) <= 1e-8 * np.linalg.norm(ref)
    assert res.residual_norm == pytest.approx(np.linalg.norm(A @ res.x - bn), rel=1e-6)
    assert res.solution_norm == pytest.approx(np.linalg.norm(res.x), rel=1e-10)


def test_tsvd_given_rank_matches_full_svd(rng):
    A, b, x = P.deriv2(100)
    U, s, Vh = np.linalg.svd(A)
    res = tsvd(A, b, rank=8, max_rank=30, rng=rng)
    ref = Vh[:8].T @ ((U[:, :8].T @ b) / s[:8])
    assert np.linalg.norm(res.x - ref) <= 1e-8 * np.linalg.norm(ref)


# (problem, rule, relative noise): GCV is left out where it is known to fail (severely
# ill-posed square problems, where its function is nearly flat down to lam -> 0).
RULE_CASES = [("shaw", "lcurve", 1e-2), ("shaw", "discrepancy", 1e-2),
              ("deriv2", "gcv", 1e-3), ("deriv2", "lcurve", 1e-2), ("deriv2", "discrepancy", 1e-2),
              ("heat", "discrepancy", 1e-2), ("gravity", "discrepancy", 1e-2),
              ("baart", "lcurve", 1e-2)]


@pytest.mark.parametrize("name, rule, level", RULE_CASES)
def test_rules_land_near_the_optimum_and_beat_the_naive_solve(rng, name, rule, level):
    A, b, x = getattr(P, name)(200)
    bn, nl = noisy(rng, b, level)
    U, s, Vh = np.linalg.svd(A)
    beta = U.T @ bn
    errs = [np.linalg.norm(Vh.T @ (s / (s**2 + lam**2) * beta) - x)
            for lam in np.logspace(-10, 1, 300)]
    best, best_k = min(errs), min(np.linalg.norm(Vh[:k].T @ (beta[:k] / s[:k]) - x)
                                  for k in range(1, 100))
    naive = np.linalg.norm(np.linalg.lstsq(A, bn, rcond=None)[0] - x)
    res = tikhonov(A, bn, rule=rule, noise_level=nl, rank=60, rng=rng)  # 60 < 200/2: rsvd
    err = np.linalg.norm(res.x - x)
    # the rules are heuristics: the worst ratio measured over 300 draws was 3.06 (baart, lcurve)
    assert err <= 4 * best, (err / best, res.lam)
    assert err <= naive / 10  # the naive solve is ruined by the noise (by far more, mostly)
    t = tsvd(A, bn, rule=rule, noise_level=nl, max_rank=60, rng=rng)
    # TSVD moves in whole singular vectors: on shaw one step of k is a factor ~3 in error
    assert np.linalg.norm(t.x - x) <= 4 * best_k, t.rank


def test_kronecker_path_matches_dense(rng):
    prob = P.deblur(16, sigma=1.0, noise=0.02, rng=rng)
    dense = prob.A @ np.eye(256)
    for lam in [None, 3e-2]:
        a = tikhonov(prob.A, prob.b, lam=lam, rule="gcv", rng=rng)
        b = tikhonov(dense, prob.b, lam=a.lam, rank=256, rng=rng)
        assert np.linalg.norm(a.x - b.x) <= 1e-8 * np.linalg.norm(b.x)
    t = tsvd(prob.A, prob.b, rule="discrepancy", noise_level=prob.noise_level, rng=rng)
    assert np.linalg.norm(t.x - prob.x_true) < np.linalg.norm(prob.b - prob.x_true)


def test_spectrum_plots_data(rng):
    A, b, x = P.shaw(64)
    res = tikhonov(A, b, lam=1e-3, rank=30, rng=rng)
    lams, rn, xn = res.spectrum.lcurve()
    assert np.all(np.diff(rn) >= -1e-12 * rn.max())  # residual grows with lam
    assert np.all(np.diff(xn) <= 1e-12 * xn.max())  # solution norm shrinks
    s, coef, ratio = res.spectrum.picard()
    np.testing.assert_allclose(s[:12], np.linalg.svd(A, compute_uv=False)[:12], rtol=1e-8)


def test_bad_input(rng):
    A, b, _ = P.shaw(32)
    with pytest.raises(ValueError, match="noise_level"):
        tikhonov(A, b, rule="discrepancy")
    with pytest.raises(ValueError, match="noise_level"):
        tsvd(A, b, rule="discrepancy", noise_level=-1.0)
    with pytest.raises(ValueError, match="rule"):
        tikhonov(A, b, rule="best")
    with pytest.raises(ValueError, match="lam"):
        tikhonov(A, b, lam=-1.0)
    with pytest.raises(ValueError, match="b must be"):
        tikhonov(A, b[:-1])
    bad = b.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tsvd(A, bad)
    with pytest.raises(ValueError, match="max_rank"):
        tsvd(A, b, rank=10, max_rank=5)
    with pytest.raises(ValueError, match="n must be"):
        P.shaw(1)
