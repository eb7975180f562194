"""Operators against the dense matrix they stand for: products, adjoint (dot) test, sketches,
column means, Frobenius norm; and the wrappers rsvd builds on them."""
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from randla.operators import (
    AdjointOperator,
    CenteredOperator,
    DenseOperator,
    Operator,
    ResidualOperator,
    as_operator,
)
from randla.sketch import Gaussian


def _inputs(rng, dtype):
    cplx = np.dtype(dtype).kind == "c"
    A = rng.standard_normal((40, 25)) + (1j * rng.standard_normal((40, 25)) if cplx else 0)
    A = A.astype(dtype)
    A[rng.random(A.shape) < 0.5] = 0
    return A, {"dense": A, "sparse": sp.csr_matrix(A), "csc": sp.csc_matrix(A),
               "linop": spla.aslinearoperator(A), "fortran": np.asfortranarray(A)}


def _tol(dtype):
    return 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-11


def _check_operator(op, A, rng, tol):
    m, n = A.shape
    X = rng.standard_normal((n, 3)).astype(A.dtype)
    Y = rng.standard_normal((m, 3)).astype(A.dtype)
    np.testing.assert_allclose(op.matmat(X), A @ X, atol=tol * 10)
    np.testing.assert_allclose(op.rmatmat(Y), A.conj().T @ Y, atol=tol * 10)
    np.testing.assert_allclose(op.gram_matmat(X), A.conj().T @ (A @ X), atol=tol * 100)
    # dot test: <A x, y> = <x, A^H y>
    assert np.vdot(Y, op.matmat(X)) == pytest.approx(np.vdot(op.rmatmat(Y), X), rel=tol * 10)
    Sr, Sl = Gaussian(4, n, rng=1), Gaussian(4, m, rng=2)
    np.testing.assert_allclose(op.sketch_right(Sr), A @ Sr.to_dense().T, atol=tol * 10)
    np.testing.assert_allclose(op.sketch_left(Sl), Sl.to_dense() @ A, atol=tol * 10)
    np.testing.assert_allclose(op.column_means(), A.mean(axis=0), atol=tol * 10)
    fro = op.fro_norm()
    assert fro is None or fro == pytest.approx(np.linalg.norm(A), rel=tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128, np.complex64])
def test_operators_match_dense(rng, dtype):
    A, inputs = _inputs(rng, dtype)
    for name, X in inputs.items():
        op = as_operator(X)
        assert op.shape == A.shape and op.dtype == dtype, name
        _check_operator(op, A, rng, _tol(dtype))
        assert not op.fused_gram


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_wrappers_match_dense(rng, dtype):
    A, inputs = _inputs(rng, dtype)
    for X in (inputs["dense"], inputs["sparse"], inputs["linop"]):
        op = as_operator(X)
        _check_operator(AdjointOperator(op), A.conj().T, rng, 1e-11)
        assert op.H.H is op
        _check_operator(CenteredOperator(op), A - A.mean(axis=0), rng, 1e-11)
        U = np.linalg.qr(rng.standard_normal((40, 3)))[0].astype(dtype)
        Vh = np.linalg.qr(rng.standard_normal((25, 3)))[0].T.astype(dtype)
        s = np.array([3.0, 2.0, 1.0])
        _check_operator(ResidualOperator(op, U, s, Vh), A - (U * s) @ Vh, rng, 1e-11)


def test_fused_gram_is_detected_from_an_override(rng):
    class OnePass(DenseOperator):
        calls = 0

        def gram_matmat(self, X):
            OnePass.calls += 1
            return self.A.T @ (self.A @ X)

    A = rng.standard_normal((60, 30)) @ np.diag(0.7 ** np.arange(30))
    op = OnePass(A, A.dtype)
    assert op.fused_gram and CenteredOperator(op).fused_gram
    assert not AdjointOperator(op).fused_gram
    import randla
    res = randla.rsvd(op, 4, power_iters=3, rng=0)
    assert OnePass.calls == 3  # the power iterations went through the fused product
    np.testing.assert_allclose(res.S, np.linalg.svd(A, compute_uv=False)[:4], rtol=1e-8)
    res = randla.rsvd(op, 4, center=True, rng=0)
    Ac = A - A.mean(axis=0)
    np.testing.assert_allclose(res.S, np.linalg.svd(Ac, compute_uv=False)[:4], rtol=1e-8)


def test_float32_fro_norm_accumulates_in_double():
    A = np.full((3000, 3000), 0.1, dtype=np.float32)
    assert as_operator(A).fro_norm() == pytest.approx(np.float64(np.float32(0.1)) * 3000,
                                                      rel=1e-10)


def test_as_operator_passes_operators_through_and_validates(rng):
    op = as_operator(np.eye(3))
    assert as_operator(op) is op
    assert isinstance(as_operator(spla.aslinearoperator(np.eye(3))), Operator)
    with pytest.raises(ValueError, match="B must be 2-D"):
        as_operator(np.ones(3), "B")
    with pytest.raises(TypeError, match="must be an array"):
        as_operator(object())
