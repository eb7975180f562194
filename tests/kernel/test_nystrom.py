"""Stable randomized Nystrom approximation and Nystrom-preconditioned CG."""
import numpy as np
import pytest

import randla
from randla.kernel import NystromApprox
from randla.solvers import conjugate_gradients


def _psd(rng, n, eigvals, dtype=np.float64):
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    if np.dtype(dtype).kind == "c":
        Q = np.linalg.qr(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))[0]
    A = (Q * eigvals) @ Q.conj().T
    return (0.5 * (A + A.conj().T)).astype(dtype)


def test_fixed_rank_bound_over_seeds(rng):
    # E||A - [A_hat]_r||_* <= (1 + r / (k - r - 1)) ||A - [A]_r||_*  (Tropp et al. 2017).
    n, k, r = 200, 24, 6
    lam = np.arange(1, n + 1, dtype=float) ** -1.0  # slow decay: the bound is nearly tight
    A = _psd(rng, n, lam)
    best = lam[r:].sum()
    errors = []
    for _ in range(10):
        approx = randla.nystrom(A, r, sketch_size=k, rng=int(rng.integers(2**31)))
        assert approx.U.shape == (n, r)
        errors.append(np.linalg.eigvalsh(A - approx.to_dense()).clip(0).sum()
                      + np.abs(np.linalg.eigvalsh(A - approx.to_dense()).clip(None, 0)).sum())
    assert np.mean(errors) <= (1 + r / (k - r - 1)) * best
    assert min(errors) >= best * (1 - 1e-8)  # no rank-r matrix beats the truncated SVD


@pytest.mark.parametrize("dtype, sketch", [(np.float64, "gaussian"), (np.float32, "gaussian"),
                                           (np.complex128, "gaussian"), (np.float64, "rademacher")])
def test_exact_on_low_rank_psd(rng, dtype, sketch):
    n, rank = 150, 7
    lam = np.zeros(n)
    lam[:rank] = rng.uniform(1, 10, rank)
    A = _psd(rng, n, lam, dtype)
    single = dtype == np.float32
    # k = rank is exact in exact arithmetic, but Omega^H A Omega is then a square Gaussian-like
    # core whose condition number (~1e4) float32 cannot carry: single precision needs oversampling.
    for k in ((rank + 5, rank + 10) if single else (rank, rank + 5)):
        approx = randla.nystrom(A, k, sketch=sketch, rng=int(rng.integers(2**31)))
        assert approx.U.dtype == dtype and approx.eigvals.dtype == np.finfo(dtype).dtype
        # k = rank: the stabilizing shift meets a k x k core of condition up to ~1e7, which
        # left errors up to 5e-8 in 400 seeds; one column of oversampling slack removes it.
        tol = 2e-3 if single else (1e-6 if k == rank else 1e-8)
        np.testing.assert_allclose(approx.U.conj().T @ approx.U, np.eye(k), atol=tol)
        assert np.all(np.diff(approx.eigvals) <= 0) and np.all(approx.eigvals >= 0)
        # float32 eigenvalues: up to 4e-3 relative error in 600 seeds (the shift is eps32-sized)
        np.testing.assert_allclose(approx.eigvals[:rank], np.sort(lam[:rank])[::-1],
                                   rtol=1e-2 if single else tol)
        assert np.linalg.norm(approx.to_dense() - A) <= tol * np.linalg.norm(A)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_no_nan_on_numerically_singular_input(rng, dtype):
    n = 120
    G = rng.standard_normal((n, 3))
    # Rank 3 plus rounding noise, a spectrum spanning 20 orders of magnitude, and zero.
    lam = 10.0 ** -np.linspace(0, 20, n)
    cases = [(G @ G.T, 0.0), (_psd(rng, n, lam), np.sqrt(np.sum(lam[30:] ** 2))),
             (np.zeros((n, n)), 0.0)]
    for A, best in cases:
        A = A.astype(dtype)
        approx = randla.nystrom(A, 30, rng=int(rng.integers(2**31)))
        assert np.all(np.isfinite(approx.U)) and np.all(np.isfinite(approx.eigvals))
        assert np.all(approx.eigvals >= 0)
        tol = 1e-3 if dtype == np.float32 else 1e-7
        # Within a modest factor of the best rank-30 error, up to rounding.
        assert np.linalg.norm(approx.to_dense() - A) <= 100 * best + tol * np.linalg.norm(A)


def test_multiply_solve_and_preconditioner(rng):
    n, k = 80, 10
    U = np.linalg.qr(rng.standard_normal((n, k)))[0]
    lam = np.sort(rng.uniform(0.1, 5, k))[::-1]
    approx = NystromApprox(U, lam)
    dense = (U * lam) @ U.T
    mu = 0.3
    b = rng.standard_normal((n, 2))
    np.testing.assert_allclose(approx @ b, dense @ b, atol=1e-12)
    np.testing.assert_allclose(approx.solve(b, mu), np.linalg.solve(dense + mu * np.eye(n), b),
                               atol=1e-12)
    P = (lam[-1] + mu) * (U / (lam + mu)) @ U.T + np.eye(n) - U @ U.T
    np.testing.assert_allclose(approx.preconditioner(mu) @ b[:, 0], P @ b[:, 0], atol=1e-12)
    assert approx.effective_dimension(mu) == pytest.approx(np.sum(lam / (lam + mu)))
    with pytest.raises(ValueError, match="mu"):
        approx.solve(b, 0.0)


def test_preconditioned_condition_number(rng):
    # At rank l = 2 ceil(1.5 d_eff) + 1 the expected condition number is < 28 (Frangella et al.).
    n, mu = 300, 1e-5
    lam = np.arange(1, n + 1, dtype=float) ** -3.0
    A = _psd(rng, n, lam)
    d_eff = np.sum(lam / (lam + mu))
    ell = int(2 * np.ceil(1.5 * d_eff) + 1)
    conds = []
    for _ in range(5):
        approx = randla.nystrom(A, ell, rng=int(rng.integers(2**31)))
        U, s = approx.U, approx.eigvals
        Pinv_half = np.sqrt(s[-1] + mu) * (U / np.sqrt(s + mu)) @ U.T + np.eye(n) - U @ U.T
        w = np.linalg.eigvalsh(Pinv_half @ (A + mu * np.eye(n)) @ Pinv_half)
        conds.append(w[-1] / w[0])
    assert np.mean(conds) < 28
    assert np.linalg.cond(A + mu * np.eye(n)) > 1000  # while the system itself is ill-conditioned


def test_pcg_iterations_far_below_cg(rng):
    n, mu = 500, 1e-5
    A = _psd(rng, n, np.exp(-np.arange(n) / 5.0) + 1e-3 * np.arange(1, n + 1) ** -1.0)
    b = rng.standard_normal(n)
    x_ref = np.linalg.solve(A + mu * np.eye(n), b)
    pre = randla.nystrom_pcg(A, b, mu, tol=1e-10, rng=int(rng.integers(2**31)))
    plain = randla.nystrom_pcg(A, b, mu, rank=0, tol=1e-10)
    assert pre.converged and plain.converged
    for res in (pre, plain):
        assert np.linalg.norm(res.x - x_ref) <= 1e-5 * np.linalg.norm(x_ref)
    assert pre.iterations * 5 <= plain.iterations
    assert pre.preconditioner.rank < n / 2
    # The adaptive rank reached the effective dimension of A (or captured every eigenvalue > mu).
    lam = pre.preconditioner.eigvals
    assert pre.preconditioner.rank >= 2 * np.ceil(1.5 * np.sum(lam / (lam + mu))) + 1 \
        or lam[-1] <= mu


def test_cg_matches_scipy_on_spd(rng):
    n = 60
    A = _psd(rng, n, rng.uniform(1, 10, n))
    b = rng.standard_normal(n)
    x, it, ok, res = conjugate_gradients(lambda v: A @ v, b, tol=1e-12)
    assert ok and it <= n + 5 and res[-1] <= 1e-12
    x_ref = np.linalg.solve(A, b)
    assert np.linalg.norm(x - x_ref) <= 1e-10 * np.linalg.norm(x_ref)  # cond(A) <= 10


def test_bad_input(rng):
    A = _psd(rng, 20, np.ones(20))
    with pytest.raises(ValueError, match="square"):
        randla.nystrom(np.ones((5, 4)), 2)
    with pytest.raises(ValueError, match="k must be <="):
        randla.nystrom(A, 21)
    with pytest.raises(ValueError, match="sketch_size must be >= k"):
        randla.nystrom(A, 6, sketch_size=5)
    with pytest.raises(ValueError, match="NaN"):
        randla.nystrom(np.full((3, 3), np.nan), 2)
    with pytest.raises(ValueError, match="mu"):
        randla.nystrom_pcg(A, np.ones(20), -1.0)
    with pytest.raises(ValueError, match="b must have shape"):
        randla.nystrom_pcg(A, np.ones(19), 1.0)
    with pytest.raises(ValueError, match="tol"):
        randla.nystrom_pcg(A, np.ones(20), 1.0, tol=2.0)


def test_deprecated_rank_keyword_means_the_old_call(rng):
    # nystrom(A, l, rank=k) was "sketch l, truncate to k": the same numbers, with a warning
    A = _psd(rng, 60, 0.7 ** np.arange(60))
    with pytest.warns(DeprecationWarning, match="sketch_size"):
        old = randla.nystrom(A, 20, rank=5, rng=3)
    new = randla.nystrom(A, 5, sketch_size=20, rng=3)
    assert old.U.shape == (60, 5)
    np.testing.assert_array_equal(old.U, new.U)
    np.testing.assert_array_equal(old.eigvals, new.eigvals)
