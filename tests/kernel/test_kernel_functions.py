"""KernelMatrix and the Numba block kernels against a pure-NumPy/SciPy reference."""
import numpy as np
import pytest
import scipy.sparse.linalg as spla
from scipy.spatial.distance import cdist

import randla
from randla.kernel import kernel_block


def _reference(X, Y, kernel, bandwidth, nu=1.5, degree=2, coef0=1.0):
    X = X.astype(np.float64) / bandwidth
    Y = Y.astype(np.float64) / bandwidth
    if kernel == "polynomial":
        return (X @ Y.T + coef0) ** degree
    if kernel == "optical":
        return np.outer((X**2).sum(1), (Y**2).sum(1)) + (X @ Y.T) ** 2
    if kernel == "laplace":
        return np.exp(-cdist(X, Y, "cityblock"))
    r = cdist(X, Y)
    if kernel == "rbf":
        return np.exp(-r**2 / 2)
    return {0.5: np.exp(-r),
            1.5: (1 + np.sqrt(3) * r) * np.exp(-np.sqrt(3) * r),
            2.5: (1 + np.sqrt(5) * r + 5 * r**2 / 3) * np.exp(-np.sqrt(5) * r)}[nu]


CASES = [("rbf", {}), ("laplace", {}), ("matern", {"nu": 0.5}), ("matern", {"nu": 1.5}),
         ("matern", {"nu": 2.5}), ("polynomial", {"degree": 3, "coef0": 0.5}), ("optical", {})]


@pytest.mark.parametrize("kernel, params", CASES)
def test_block_matches_reference(rng, kernel, params):
    X = rng.standard_normal((70, 4))
    Y = rng.standard_normal((50, 4))
    bw = float(rng.uniform(0.5, 3))
    ref = _reference(X, Y, kernel, bw, **params)
    np.testing.assert_allclose(kernel_block(X, Y, kernel, bandwidth=bw, **params), ref,
                               rtol=1e-10, atol=1e-12 * np.abs(ref).max())
    K32 = kernel_block(X.astype(np.float32), Y.astype(np.float32), kernel, bandwidth=bw, **params)
    assert K32.dtype == np.float32
    np.testing.assert_allclose(K32, ref, rtol=1e-3, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("kernel, params", CASES)
def test_kernel_matrix_products_columns_diagonal(rng, kernel, params, monkeypatch):
    # A tiny block budget forces several row blocks in the products.
    monkeypatch.setattr(randla.kernel.functions, "BLOCK_BYTES", 8 * 200 * 37)
    X = rng.standard_normal((200, 3))
    K = randla.KernelMatrix(X, kernel, bandwidth=1.7, **params)
    ref = _reference(X, X, kernel, 1.7, **params)
    tol = dict(rtol=1e-10, atol=1e-12 * np.abs(ref).max())
    V = rng.standard_normal((200, 3))
    np.testing.assert_allclose(K @ V, ref @ V, rtol=1e-9, atol=1e-9 * np.abs(ref @ V).max())
    np.testing.assert_allclose(K.rmatvec(V[:, 0]), ref @ V[:, 0], rtol=1e-9,
                               atol=1e-9 * np.abs(ref).max())
    np.testing.assert_allclose(K.diagonal(), np.diag(ref), **tol)
    idx = rng.choice(200, 7, replace=False)
    np.testing.assert_allclose(K.columns(idx), ref[:, idx], **tol)
    np.testing.assert_allclose(K.submatrix(idx, idx[:3]), ref[np.ix_(idx, idx[:3])], **tol)
    Xn = rng.standard_normal((5, 3))
    np.testing.assert_allclose(K.cross(Xn), _reference(Xn, X, kernel, 1.7, **params), **tol)


def test_kernel_matrix_is_a_linear_operator_for_randla(rng):
    X = rng.standard_normal((300, 2))
    K = randla.KernelMatrix(X, "rbf", bandwidth=2.0)
    assert isinstance(K, spla.LinearOperator) and K.H is K
    op = randla.as_operator(K)
    assert op.shape == (300, 300)
    # Any randla algorithm takes it: the top singular values of the PSD K are its eigenvalues.
    U, S, Vh = randla.rsvd(K, 5, rng=0)
    np.testing.assert_allclose(S, np.linalg.eigvalsh(K.to_dense())[::-1][:5], rtol=1e-6)
    x, info = spla.cg(K + 0.1 * spla.aslinearoperator(np.eye(300)), np.ones(300), rtol=1e-10)
    assert info == 0


def test_bad_input():
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match="kernel"):
        randla.KernelMatrix(X, "sigmoid")
    with pytest.raises(ValueError, match="bandwidth"):
        randla.KernelMatrix(X, bandwidth=0.0)
    with pytest.raises(ValueError, match="nu"):
        randla.KernelMatrix(X, "matern", nu=2.0)
    with pytest.raises(ValueError, match="degree"):
        randla.KernelMatrix(X, "polynomial", degree=0)
    with pytest.raises(ValueError, match="X contains NaN"):
        randla.KernelMatrix(np.array([[np.nan, 0.0]]))
    with pytest.raises(TypeError, match="X must be real"):
        randla.KernelMatrix(X + 1j)
    with pytest.raises(ValueError, match="features"):
        kernel_block(X, np.zeros((3, 4)))
    with pytest.raises(IndexError, match="idx"):
        randla.KernelMatrix(X).columns([10])
