"""randla.testing.check_operator over every operator kind (and a broken one)."""
import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from randla.operators import (
    AdjointOperator,
    CenteredOperator,
    DenseOperator,
    HermitianOperator,
    ResidualOperator,
    as_operator,
)
from randla.testing import check_operator


def _kinds(A, tmp_path):
    mm = np.lib.format.open_memmap(tmp_path / "a.npy", mode="w+", dtype=A.dtype, shape=A.shape)
    mm[:] = A
    mm.flush()
    return {"dense": A, "fortran": np.asfortranarray(A), "csr": sp.csr_matrix(A),
            "csc": sp.csc_matrix(A), "linear_operator": spla.aslinearoperator(A),
            "dask": da.from_array(A, chunks=(13, 7)), "memmap": np.load(tmp_path / "a.npy", mmap_mode="r")}


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_every_input_kind_passes(dtype, rng, tmp_path):
    A = rng.standard_normal((37, 23)).astype(dtype)
    if np.dtype(dtype).kind == "c":
        A = A + 1j * rng.standard_normal(A.shape)
    for name, X in _kinds(A, tmp_path).items():
        check_operator(X, A, rng=rng)
        assert as_operator(X).dtype == dtype, name


def test_every_wrapper_passes(rng):
    A = rng.standard_normal((30, 20))
    op = as_operator(A)
    U, s, Vh = np.linalg.svd(A, full_matrices=False)
    check_operator(AdjointOperator(op), A.T, rng=rng)
    check_operator(CenteredOperator(op), A - A.mean(axis=0), rng=rng)
    check_operator(ResidualOperator(op, U[:, :3], s[:3], Vh[:3]),
                   A - (U[:, :3] * s[:3]) @ Vh[:3], rng=rng)
    H = A.T @ A
    check_operator(HermitianOperator(as_operator(H)), H, rng=rng)


class _WrongAdjoint(DenseOperator):
    def rmatmat(self, Y):
        return self.A.T @ Y * 1.0001  # a 1e-4 error that a loose check would pass


def test_a_broken_adjoint_is_caught(rng):
    A = rng.standard_normal((30, 20))
    with pytest.raises(AssertionError, match="rmatmat|dot test"):
        check_operator(_WrongAdjoint(A, A.dtype), A, rng=rng)
