"""randla.trace: statistics of Hutchinson, the test matrices of the Hutch++/Nystrom++/XTrace
papers, exactness, inputs, results and bad input."""
import math
import pickle

import numpy as np
import pytest
import scipy.fft
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from threadpoolctl import threadpool_limits

import randla.trace as rt
from randla.sketch import Gaussian, Rademacher


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """The matrices here are small: threaded BLAS only spins on a loaded 2-core machine."""
    with threadpool_limits(1):
        yield


TRACE_ESTIMATORS = [rt.hutchinson, rt.hutchpp, rt.na_hutchpp, rt.nystrompp, rt.xtrace,
                    rt.xnystrace]


def synthetic(rng, lam):
    """A = Q diag(lam) Q^T with Q = diag(random signs) times the orthonormal DCT: a fast,
    well-spread eigenbasis (the papers use a Haar Q)."""
    n = len(lam)
    signs = rng.choice([-1.0, 1.0], n)

    def matmat(X):
        X = X.reshape(n, -1)
        Y = scipy.fft.dct(signs[:, None] * X, axis=0, norm="ortho")
        return signs[:, None] * scipy.fft.idct(lam[:, None] * Y, axis=0, norm="ortho")

    return spla.LinearOperator((n, n), matvec=matmat, matmat=matmat, rmatmat=matmat,
                               dtype=np.float64)


def dense(op):
    return op.matmat(np.eye(op.shape[0]))


SPECTRA = {
    "poly2": lambda n: np.arange(1, n + 1) ** -2.0,
    "poly3": lambda n: np.arange(1, n + 1) ** -3.0,
    "exp0.9": lambda n: 0.9 ** np.arange(n),
    "exp-i/30": lambda n: np.exp(-np.arange(n) / 30),
    "exp0.7": lambda n: 0.7 ** np.arange(n),
    "step50": lambda n: np.r_[np.ones(50), 1e-3 * np.ones(n - 50)],
}


def _mean_rel_error(est, A, tr, m, rng, trials):
    return np.mean([abs(est(A, m, rng=rng) - tr) / tr for _ in range(trials)])


# -- Hutchinson: unbiasedness and the variance formulas ---------------------------------------
@pytest.mark.parametrize("sketch", ["gaussian", "rademacher"])
def test_hutchinson_unbiased_with_the_textbook_variance(rng, sketch):
    n, m, trials = 40, 20, 600
    G = rng.standard_normal((n, n))
    A = G + G.T + np.diag(rng.uniform(2, 6, n))    # a strong diagonal separates the formulas
    fro2 = np.linalg.norm(A) ** 2
    var = 2 * fro2 / m if sketch == "gaussian" else 2 * (fro2 - np.sum(np.diag(A) ** 2)) / m
    res = [rt.hutchinson(A, m, sketch=sketch, rng=rng) for _ in range(trials)]
    est = np.array(res, dtype=float)
    # Mean: 5 standard errors of the mean of `trials` estimates.
    assert abs(est.mean() - np.trace(A)) < 5 * math.sqrt(var / trials)
    # Variance: the estimates are means of 20 quadratic forms, nearly Gaussian, so the sample
    # variance has relative sd ~ sqrt(2 / trials) = 6%; allow 25%.
    assert abs(est.var(ddof=1) / var - 1) < 0.25
    # The reported standard error squared is unbiased for var.
    assert abs(np.mean([r.error ** 2 for r in res]) / var - 1) < 0.25


def test_sphere_vectors_are_unbiased_and_exact_on_identity_multiples(rng):
    n = 60
    A = rng.standard_normal((n, n))
    est = np.array([rt.hutchinson(A, 10, sketch="sphere", rng=rng) for _ in range(600)])
    sd = np.std(est, ddof=1)
    assert abs(est.mean() - np.trace(A)) < 5 * sd / math.sqrt(len(est))
    assert rt.hutchinson(3.0 * np.eye(n), 4, sketch="sphere", rng=rng) == pytest.approx(3 * n)


# -- the papers' test matrices ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["poly2", "poly3", "exp0.9", "step50"])
def test_decaying_spectra_ordering_as_in_the_papers(rng, name):
    """Hutch++ / NA-Hutch++ / Nystrom++ (Meyer et al. 2021, Persson et al. 2022) and XTrace /
    XNysTrace (Epperly et al. 2023) on A = Q diag(lambda) Q^T, n = 500, m = 120, mean relative
    error over 16 trials. Factors between the asserted orderings are >= 2.5 in our runs, so the
    assertions hold with margin against the ~20% noise of the means."""
    lam = SPECTRA[name](500)
    A, tr, m, trials = synthetic(rng, lam), lam.sum(), 120, 16
    err = {f.__name__: _mean_rel_error(f, A, tr, m, rng, trials) for f in TRACE_ESTIMATORS}
    # the exchangeable estimators are at least as good as their parents, and beat Hutchinson
    assert err["xtrace"] < 1.5 * err["hutchpp"]
    assert err["xnystrace"] < 1.5 * err["nystrompp"]
    assert max(err["xtrace"], err["xnystrace"]) < 0.1 * err["hutchinson"]
    if name == "step50":
        # rank-50 step, 60 test vectors: XTrace captures it, Hutch++'s 40 do not
        assert err["xtrace"] < 0.05 * err["hutchpp"]
    else:
        # deflation pays off on decaying spectra; the non-adaptive variant trails Hutch++
        assert max(err["hutchpp"], err["nystrompp"]) < 0.3 * err["hutchinson"]
        assert err["hutchpp"] < err["na_hutchpp"]
    # accuracy: XTrace below 1e-3 (measured 2e-4 .. 5e-6), as in the papers' figures at m ~ 100
    assert err["xtrace"] < 1e-3


def test_flat_spectrum_gains_nothing_but_loses_nothing(rng):
    """On a flat spectrum low-rank deflation cannot help: every estimator stays within a
    constant of Hutchinson with Gaussian vectors (Hutch++ spends 2/3 of its budget for nothing,
    so its variance is up to 3x larger)."""
    lam = rng.uniform(0.5, 1.5, 800)
    A, tr, trials = synthetic(rng, lam), lam.sum(), 30
    ref = _mean_rel_error(lambda *a, **k: rt.hutchinson(*a, sketch="gaussian", **k), A, tr, 60,
                          rng, trials)
    for f in TRACE_ESTIMATORS[1:]:
        assert _mean_rel_error(f, A, tr, 60, rng, trials) < 3 * ref


@pytest.mark.parametrize("sketch", ["sphere", "gaussian", "rademacher"])
def test_xtrace_is_exact_below_half_the_budget(rng, sketch):
    n, m, r = 500, 40, 19                     # rank(A) = 19 < m / 2 = 20
    G = rng.standard_normal((n, r))
    A = G @ rng.standard_normal((r, n))      # not symmetric: XTrace needs no symmetry
    t = rt.xtrace(A, m, sketch=sketch, rng=rng)
    assert abs(t - np.trace(A)) < 1e-9 * np.linalg.norm(A)
    assert t.matvecs == m and t.error < 1e-9 * np.linalg.norm(A)


def test_xnystrace_is_exact_below_the_budget(rng):
    # exact in exact arithmetic for rank < m; at rank = m - 1 the leave-one-out cores are
    # singular and rounding leaves ~1e-8, so keep a margin
    n, r = 500, 25
    G = rng.standard_normal((n, r))
    A = G @ G.T
    t = rt.xnystrace(A, 30, rng=rng)
    assert abs(t - np.trace(A)) < 1e-9 * np.trace(A) and t.matvecs == 30


@pytest.mark.parametrize("est", TRACE_ESTIMATORS)
def test_reported_error_is_calibrated(rng, est):
    """|estimate - tr| / error is O(1): its median over trials within [0.1, 3]."""
    lam = SPECTRA["poly2"](600)
    A, tr = synthetic(rng, lam), lam.sum()
    ratios = [abs(t - tr) / t.error for t in (est(A, 60, rng=rng) for _ in range(25))]
    assert 0.1 < np.median(ratios) < 3


@pytest.mark.parametrize("est", TRACE_ESTIMATORS)
def test_adaptive_tolerance_is_met_within_the_cap(rng, est):
    lam = SPECTRA["exp0.9"](600)
    A, tr = synthetic(rng, lam), lam.sum()
    tol = 0.03 if est is rt.hutchinson else 2e-3     # Hutchinson's error decays as 1/sqrt(m)
    t = est(A, tol=tol, m=600, rng=rng)
    assert t.matvecs <= 600
    if t.matvecs < 600:                                # stopped early: the target was met
        assert t.error <= tol * abs(t)
    assert abs(t - tr) < 5 * tol * tr
    tiny = est(A, tol=1e-14, m=100, rng=rng)          # unreachable: stops at the cap, says so
    assert tiny.matvecs <= 100 and tiny.error > 1e-14 * abs(tiny)


def test_adaptive_budget_doubling_reuses_products(rng):
    lam = SPECTRA["poly2"](500)
    A = synthetic(rng, lam)
    t = rt.xtrace(A, tol=1e-12, m=64, rng=rng)     # unreachable: runs to the cap
    assert t.matvecs == 64                            # 16 -> 32 -> 64, nothing recomputed
    t = rt.hutchpp(A, tol=1e-12, m=96, rng=rng)
    assert t.matvecs == 24 + 48                       # restarts; a third round would pass 96


# -- sketches, inputs, results ------------------------------------------------------------------
def test_any_sketch_supplies_test_vectors(rng):
    lam = SPECTRA["exp0.9"](300)
    A = dense(synthetic(rng, lam))
    tr = lam.sum()
    pool = Gaussian(40, 300, rng=3)
    t1 = rt.xtrace(A, 80, sketch=pool)
    t2 = rt.xtrace(A, 80, sketch=pool)
    assert t1 == t2 and abs(t1 - tr) < 1e-2 * tr            # the pool is the test vectors
    with pytest.raises(ValueError, match="supplies 40 test vectors"):
        rt.xtrace(A, 100, sketch=pool)
    factory = lambda d, n, rng=None, dtype=None: Rademacher(d, n, rng=rng, dtype=dtype)
    assert abs(rt.hutchpp(A, 90, sketch=factory, rng=rng) - tr) < 0.05 * tr
    # complex test vectors (E[w w^H] = I) give real, accurate estimates of real traces
    cplx = lambda d, n, rng=None, dtype=None: Gaussian(d, n, rng=rng, dtype=dtype, complex=True)
    # Hutchinson's standard deviation here is ||A||_F / sqrt(90) ~ 2.4% of tr: allow 6 of them
    for est in TRACE_ESTIMATORS:
        assert abs(est(A, 90, sketch=cplx, rng=rng) - tr) < 0.15 * tr


def test_inputs_dense_sparse_operator_callable_agree(rng):
    n = 200
    B = sp.random(n, n, density=0.05, random_state=rng.integers(1 << 31))
    A = (B @ B.T + sp.eye(n)).tocsr()
    D = A.toarray()
    forms = [D, A, spla.aslinearoperator(A), lambda x: A @ x]
    for est in [rt.hutchinson, rt.xtrace, rt.xnystrace, rt.nystrompp, rt.hutchpp]:
        vals = [est(X, 30, n=n if callable(X) and not hasattr(X, "shape") else None, rng=7)
                for X in forms]
        np.testing.assert_allclose(vals, vals[0], rtol=1e-10)
    np.testing.assert_allclose(rt.na_hutchpp(lambda x: A @ x, 30, n=n, symmetric=True, rng=7),
                               rt.na_hutchpp(D, 30, rng=7), rtol=1e-10)


def test_float32_stays_float32_and_matches_float64(rng):
    """float32 A: products and diagonals stay float32, and a seeded estimate agrees with the
    float64 one (same test vectors, rounded) to single precision."""
    n = 100
    A = np.diag(rng.uniform(1, 2, n)) + 0.01 * rng.standard_normal((n, n))
    A = (A + A.T) / 2
    A32 = A.astype(np.float32)
    assert rt.diag_hutchinson(A32, 10, rng=rng).estimate.dtype == np.float32
    assert rt.xdiag(A32, 20, symmetric=True, rng=rng).estimate.dtype == np.float32
    for est in TRACE_ESTIMATORS:
        assert est(A32, 20, rng=5) == pytest.approx(est(A, 20, rng=5), rel=1e-4)


def test_result_behaves_like_a_float(rng):
    t = rt.hutchinson(np.eye(10), 4, rng=rng)
    assert isinstance(t, float) and t == 10.0 and t + 1 == 11.0 and f"{t:.1f}" == "10.0"
    assert np.float64(t) * 2 == 20.0 and math.isclose(math.log(t), math.log(10))
    assert t.estimate == 10.0 and t.matvecs == 4 and t.method == "hutchinson"
    u = pickle.loads(pickle.dumps(t))
    assert u == t and u.matvecs == 4 and u.error == t.error
    assert "matvecs=4" in repr(t)


def test_seeded_results_are_reproducible():
    A = np.diag(np.arange(1.0, 51.0)) + 0.5
    for est in TRACE_ESTIMATORS:
        assert est(A, 20, rng=11) == est(A, 20, rng=11)


# -- bad input -------------------------------------------------------------------------------------
def test_bad_input_is_rejected_clearly():
    A = np.eye(20)
    with pytest.raises(ValueError, match="square"):
        rt.hutchinson(np.ones((5, 4)), 4)
    with pytest.raises(ValueError, match="m must be >= 4"):
        rt.xtrace(A, 3)
    with pytest.raises(ValueError, match="m must be >= 3"):
        rt.hutchpp(A, 2)
    with pytest.raises(ValueError, match="tol must be a positive"):
        rt.hutchinson(A, tol=-1.0)
    with pytest.raises(ValueError, match="m must be <= 2n"):
        rt.xtrace(A, 50)
    with pytest.raises(ValueError, match="pass its size n"):
        rt.hutchinson(lambda x: x, 4)
    with pytest.raises(ValueError, match="does not match"):
        rt.hutchinson(A, 4, n=21)
    with pytest.raises(ValueError, match="NaN"):
        rt.hutchinson(np.full((4, 4), np.nan), 4)
    with pytest.raises(TypeError, match="complex"):
        rt.hutchinson(np.eye(4, dtype=complex), 4)
    with pytest.raises(TypeError, match="sketch must be"):
        rt.hutchinson(A, 4, sketch=3)
    with pytest.raises(ValueError, match="unknown sketch"):
        rt.hutchinson(A, 4, sketch="nope")
    with pytest.raises(ValueError, match="no transpose"):
        rt.na_hutchpp(lambda x: x, 12, n=20)
    with pytest.raises(TypeError, match="m must be an int"):
        rt.hutchinson(A, 4.5)


@pytest.mark.parametrize("est", [rt.nystrompp, rt.xnystrace])
def test_psd_only_methods_detect_indefinite_input(rng, est):
    lam = np.r_[np.ones(20), -np.ones(20)]
    U = np.linalg.qr(rng.standard_normal((40, 40)))[0]
    with pytest.raises(ValueError, match="positive semidefinite"):
        est((U * lam) @ U.T, 20, rng=rng)


@pytest.mark.parametrize("est", [rt.hutchinson, rt.hutchpp, rt.xtrace, rt.xnystrace])
def test_default_budget_without_m_or_tol(rng, est):
    # like imate and PyLops, a call with neither m nor tol spends a fixed default budget
    U = np.linalg.qr(rng.standard_normal((300, 300)))[0]
    A = (U * 0.95 ** np.arange(300)) @ U.T
    t = est(A, rng=int(rng.integers(1 << 30)))
    assert t.matvecs == 100
    assert abs(t - np.trace(A)) <= 0.1 * np.trace(A)


def test_logdet_default_budget(rng):
    U = np.linalg.qr(rng.standard_normal((200, 200)))[0]
    A = (U * np.linspace(1, 10, 200)) @ U.T
    t = rt.logdet(A, rng=int(rng.integers(1 << 30)))
    assert t.matvecs == 30 * 20
    exact = np.linalg.slogdet(A)[1]
    assert abs(t - exact) <= 0.05 * abs(exact)


@pytest.mark.parametrize("est", [rt.xtrace, rt.logdet, rt.hutchinson])
def test_operator_producing_nan_is_an_error(est):
    L = spla.LinearOperator((40, 40), matvec=lambda x: np.full(40, np.nan),
                            rmatvec=lambda x: np.full(40, np.nan), dtype=float)
    with pytest.raises(ValueError, match="NaN or Inf"):
        est(L, 30 if est is not rt.logdet else 60, rng=0)


def test_na_hutchpp_keeps_float32_accuracy(rng):
    # rank-5 PSD: the low-rank part is exact, so the error is the pseudo-inverse's rounding;
    # a float64 cutoff on float32 products left ~5e-2 (median), the float32 cutoff ~1e-7
    errs = []
    for _ in range(5):
        G = rng.standard_normal((1000, 5))
        A = (G @ G.T).astype(np.float32)
        t = rt.na_hutchpp(A, 120, rng=int(rng.integers(1 << 30)))
        errs.append(abs(t - np.trace(A.astype(np.float64))) / np.trace(A.astype(np.float64)))
    assert np.median(errs) <= 1e-5


@pytest.mark.parametrize("est", [rt.xtrace, rt.xnystrace])
def test_exchangeable_estimators_are_unbiased(rng, est):
    # the leave-one-out construction is what makes XTrace/XNysTrace unbiased: without it the
    # mean drifts by 12-20 standard errors on this spectrum
    n, m, trials = 100, 20, 300
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    lam = 1.0 / np.arange(1, n + 1)
    A = (Q * lam) @ Q.T
    est_values = np.array([est(A, m, rng=rng) for _ in range(trials)], dtype=float)
    se = est_values.std(ddof=1) / math.sqrt(trials)
    assert abs(est_values.mean() - lam.sum()) < 5 * se


def test_xdiag_is_unbiased_entrywise(rng):
    # XDiag's leave-one-out correction: the mean over draws matches diag(A) within 5 standard
    # errors in aggregate (a flipped sign in the correction term drifts far beyond)
    n, m, trials = 60, 20, 200
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    A = (Q * (1.0 / np.arange(1, n + 1))) @ Q.T
    est = np.array([np.asarray(rt.xdiag(A, m, rng=rng)) for _ in range(trials)])
    se = est.std(axis=0, ddof=1) / math.sqrt(trials)
    z = (est.mean(axis=0) - np.diag(A)) / se
    assert np.sqrt(np.mean(z ** 2)) < 2.0      # ~1 when unbiased


def test_diag_hutchinson_error_estimate_matches_the_actual_error_with_gaussian_probes(rng):
    # with Gaussian probes the weights |w|^2 vary, so the ratio estimator's delta-method
    # variance uses its cross term (with Rademacher probes every weight is 1)
    n = 200
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    A = (Q * rng.uniform(0, 1, n)) @ Q.T
    actual, reported = [], []
    for _ in range(40):
        r = rt.diag_hutchinson(A, 50, sketch="gaussian", rng=rng)
        actual.append(np.linalg.norm(r.estimate - np.diag(A)))
        reported.append(r.error)
    ratio = np.mean(reported) / np.sqrt(np.mean(np.square(actual)))
    assert 0.8 < ratio < 1.25, ratio   # 60 fresh matrices: 0.957 to 0.999
