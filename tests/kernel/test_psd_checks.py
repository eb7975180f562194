"""Nystrom and RPCholesky refuse what is not Hermitian positive semidefinite, instead of
returning a confident wrong approximation; PSD input of every kind is still accepted."""
import numpy as np
import pytest
import scipy.sparse as sp

import randla


def _sym(rng, eigvals):
    Q = np.linalg.qr(rng.standard_normal((len(eigvals), len(eigvals))))[0]
    return (Q * eigvals) @ Q.T


@pytest.mark.parametrize("eigvals, match", [
    (np.linspace(-1, 1, 80), "negative eigenvalue"),         # indefinite
    (-np.linspace(0.1, 1, 80), "negative eigenvalue"),       # negative definite
])
def test_nystrom_refuses_indefinite(rng, eigvals, match):
    with pytest.raises(ValueError, match=match):
        randla.nystrom(_sym(rng, eigvals), 10, rng=int(rng.integers(1 << 30)))


def test_nystrom_refuses_non_symmetric(rng):
    A = _sym(rng, 0.8 ** np.arange(80)) + 0.05 * np.triu(rng.standard_normal((80, 80)), 1)
    with pytest.raises(ValueError, match="Hermitian"):
        randla.nystrom(A, 10, rng=int(rng.integers(1 << 30)))
    with pytest.raises(ValueError, match="Hermitian"):
        randla.nystrom_pcg(A, np.ones(80), 1e-2, rng=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
def test_nystrom_accepts_psd_at_rounding_level(rng, dtype):
    # rank-deficient PSD (eigenvalues exactly zero up to rounding) must pass the check
    G = rng.standard_normal((120, 8))
    if np.dtype(dtype).kind == "c":
        G = G + 1j * rng.standard_normal(G.shape)
    A = (G @ G.conj().T).astype(dtype)
    approx = randla.nystrom(A, 8, sketch_size=20, rng=int(rng.integers(1 << 30)))
    tol = 1e-3 if dtype == np.float32 else 1e-8
    assert np.linalg.norm(A - approx.to_dense()) <= tol * np.linalg.norm(A)


@pytest.mark.parametrize("method", ["accelerated", "block", "simple", "greedy"])
def test_rpcholesky_refuses_indefinite_with_positive_diagonal(rng, method):
    A = _sym(rng, np.linspace(-1, 1, 100)) + 0.5 * np.eye(100)   # diag > 0, lambda_min < 0
    assert np.diag(A).min() > 0 > np.linalg.eigvalsh(A)[0]
    with pytest.raises(ValueError, match="positive semidefinite"):
        randla.rpcholesky(A, 100, method=method, rng=int(rng.integers(1 << 30)))


def test_rpcholesky_refuses_nan_in_sparse_input():
    A = sp.lil_matrix(2 * np.eye(6))
    A[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        randla.rpcholesky(A.tocsr(), 2, rng=0)


def test_rpcholesky_accepts_psd(rng):
    A = _sym(rng, 0.7 ** np.arange(60))
    r = randla.rpcholesky(A, 60, rng=0)
    assert np.linalg.norm(A - r.F @ r.F.T) <= 1e-6 * np.linalg.norm(A)


def test_rpcholesky_trace_error_is_the_trace_of_the_residual(rng):
    A = _sym(rng, 0.7 ** np.arange(50))
    r = randla.rpcholesky(A, 8, rng=int(rng.integers(1 << 30)))
    exact = np.trace(A - r.F @ r.F.conj().T)
    assert r.trace_error(np.diag(A)) == pytest.approx(exact, rel=1e-10, abs=0)
