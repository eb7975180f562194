"""randla.trace: diagonal estimators against diag(A); SLQ and logdet against dense
eigendecompositions; Lanczos reorthogonalization."""
import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

import randla.trace as rt
from randla.sketch import Gaussian
from randla.trace._core import square_operator
from randla.trace.lanczos import lanczos


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def _sym(rng, lam):
    U = np.linalg.qr(rng.standard_normal((len(lam), len(lam))))[0]
    return (U * lam) @ U.T


# -- diagonal ------------------------------------------------------------------------------------
def test_diag_hutchinson_is_unbiased_with_calibrated_error(rng):
    n = 60
    A = rng.standard_normal((n, n))                 # not symmetric
    runs = [rt.diag_hutchinson(A, 50, rng=rng) for _ in range(300)]
    est = np.array([r.estimate for r in runs])
    sd = est.std(axis=0, ddof=1)
    z = (est.mean(axis=0) - np.diag(A)) / (sd / np.sqrt(len(runs)))
    assert np.abs(z).max() < 5                      # 60 entries, 5 sigma each
    true_err = np.linalg.norm(est - np.diag(A), axis=1)
    reported = np.array([r.error for r in runs])
    assert 0.7 < np.median(true_err / reported) < 1.4
    assert all(r.matvecs == 50 for r in runs)


def test_xdiag_beats_diag_hutchinson_on_decaying_spectra_and_is_exact_on_low_rank(rng):
    n = 400
    A = _sym(rng, 0.85 ** np.arange(n))
    d = np.diag(A)
    e_x = np.mean([np.linalg.norm(rt.xdiag(A, 80, symmetric=True, rng=rng).estimate - d)
                   for _ in range(8)])
    e_h = np.mean([np.linalg.norm(rt.diag_hutchinson(A, 80, rng=rng).estimate - d)
                   for _ in range(8)])
    assert e_x < 0.03 * e_h                         # measured ratio ~0.01
    G = rng.standard_normal((n, 15))
    B = G @ rng.standard_normal((15, n))            # rank 15 < 40 / 2, not symmetric
    res = rt.xdiag(B, 40, rng=rng)
    np.testing.assert_allclose(res.estimate, np.diag(B), atol=1e-9 * np.linalg.norm(B))
    assert res.matvecs == 40                        # 20 with A, 20 with A^T


def test_xdiag_error_estimate_and_tolerance(rng):
    n = 300
    A = _sym(rng, np.arange(1, n + 1) ** -1.5)
    d = np.diag(A)
    res = rt.xdiag(A, 100, symmetric=True, rng=rng)
    assert 0.2 < np.linalg.norm(res.estimate - d) / res.error < 5
    res = rt.xdiag(A, tol=0.05, m=400, symmetric=True, rng=rng)
    assert res.matvecs < 400 and res.error <= 0.05 * np.linalg.norm(res.estimate)
    assert np.linalg.norm(res.estimate - d) < 0.25 * np.linalg.norm(d)
    assert np.asarray(res).shape == (n,)


# -- Lanczos quadrature --------------------------------------------------------------------------
FUNCS = {"log": np.log, "exp": np.exp, "inv": lambda x: 1 / x, "sqrt": np.sqrt}


@pytest.mark.parametrize("reorth", ["full", "partial", "none"])
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_quadrature_matches_the_quadratic_form(rng, name, reorth):
    """One test vector (a Sketcher pool of one): the Lanczos quadrature equals w^T f(A) w."""
    n = 120
    lam = rng.uniform(0.1, 3.0, n)
    A = _sym(rng, lam)
    U = np.linalg.eigh(A)[1]
    S = Gaussian(1, n, rng=int(rng.integers(1 << 30)))
    w = S.to_dense()[0]
    exact = w @ (U * FUNCS[name](np.linalg.eigvalsh(A))) @ U.T @ w
    t = rt.slq(A, name, 40, degree=40, sketch=S, reorth=reorth)
    assert t == pytest.approx(exact, rel=1e-8) and t.matvecs == 40


def test_slq_and_logdet_against_dense_eigendecomposition(rng):
    n = 300
    lam = np.exp(rng.uniform(-2, 2, n))
    A = _sym(rng, lam)
    for f, ref in [("log", np.log(lam).sum()), ("exp", np.exp(lam).sum()),
                   (lambda x: x ** 2 / (1 + x), (lam ** 2 / (1 + lam)).sum())]:
        t = rt.slq(A, f, 30 * 60, degree=30, rng=rng)
        assert abs(t - ref) < 5 * t.error + 1e-8 * abs(ref)
        assert t.matvecs == 1800
    ld = rt.logdet(sp.csr_matrix(A), atol=2.0, degree=25, rng=rng)
    assert ld.error <= 2.0 and abs(ld - np.log(lam).sum()) < 10.0
    assert ld.method == "logdet"


def test_logdet_of_a_sparse_laplacian(rng):
    n = 2000
    L = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n, n)) + 0.5 * sp.eye(n)
    exact = np.sum(np.log(2 - 2 * np.cos(np.arange(1, n + 1) * np.pi / (n + 1)) + 0.5))
    t = rt.logdet(L, 20 * 40, degree=40, reorth="none", rng=rng)
    assert abs(t - exact) < 5 * t.error + 1e-6 * abs(exact)


def test_partial_reorthogonalization_prevents_ghost_eigenvalues(rng):
    """Without reorthogonalization converged Ritz values repeat (ghosts); full and partial
    reorthogonalization keep exactly one copy of each isolated eigenvalue."""
    n = 300
    lam = np.r_[[100.0, 50.0], rng.uniform(0, 1, n - 2)]
    A = _sym(rng, lam)
    V = rng.standard_normal((n, 2))
    V /= np.linalg.norm(V, axis=0)
    copies = {}
    for reorth in ["full", "partial", "none"]:
        a, b, L = lanczos(square_operator(A), V, 100, reorth)
        theta = sla.eigh_tridiagonal(a[:L[0], 0], b[:L[0] - 1, 0], eigvals_only=True)
        copies[reorth] = np.sum(np.abs(theta - 100) < 1e-6)
    assert copies["full"] == copies["partial"] == 1
    assert copies["none"] > 1


def test_lanczos_stops_on_invariant_subspaces(rng):
    """Rank 5: the Krylov space of any vector is invariant after <= 6 steps, so Lanczos stops
    there and the quadrature is exact for that vector."""
    lam = np.r_[np.arange(1.0, 6.0), np.zeros(95)]
    A = _sym(rng, lam)
    U = np.linalg.eigh(A)[1]
    S = Gaussian(1, 100, rng=int(rng.integers(1 << 30)))
    w = S.to_dense()[0]
    t = rt.slq(A, "exp", 30, degree=30, sketch=S)
    assert t.matvecs <= 7
    assert t == pytest.approx(w @ (U * np.exp(np.linalg.eigvalsh(A))) @ U.T @ w, rel=1e-10)


def test_float32_operator(rng):
    lam = rng.uniform(1, 2, 100)
    A = _sym(rng, lam).astype(np.float32)
    t = rt.logdet(A, 20 * 20, degree=20, rng=rng)
    assert abs(t - np.log(lam).sum()) < 5 * t.error + 1e-3 * np.log(lam).sum()


def test_slq_bad_input(rng):
    A = _sym(rng, rng.uniform(1, 2, 30))
    with pytest.raises(ValueError, match="not positive definite"):
        rt.logdet(_sym(rng, np.r_[np.ones(15), -np.ones(15)]), 60, degree=20, rng=rng)
    with pytest.raises(ValueError, match="f must be a callable or one of"):
        rt.slq(A, "cosh", 60)
    with pytest.raises(TypeError, match="f must be a callable"):
        rt.slq(A, 3, 60)
    with pytest.raises(ValueError, match="reorth"):
        rt.slq(A, "log", 60, reorth="some")
    with pytest.raises(ValueError, match="m must be >= degree"):
        rt.slq(A, "log", 10, degree=20)
    with pytest.raises(ValueError, match="same shape"):
        rt.slq(A, lambda x: 1.0, 60, degree=20)
    with pytest.raises(ValueError, match="square"):
        rt.logdet(np.ones((3, 4)), 10)
    with pytest.raises(ValueError, match="positive semidefinite|not PSD"):
        rt.xnystrace(-np.eye(30), 10, rng=rng)
