"""One place that turns any input into what the algorithms need: products with A and A^H.

Accepted: numpy arrays (memmaps included), scipy.sparse matrices, scipy LinearOperators and
dask arrays. Validation happens here, once, at the door.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ._validation import check_finite, working_dtype


class Operator:
    """An m x n matrix seen through products. Subclasses override what they do faster."""

    kind = "linear_operator"

    def __init__(self, A, dtype):
        self.A = A
        self.shape = tuple(A.shape)
        self.dtype = np.dtype(dtype)

    @property
    def is_complex(self) -> bool:
        return self.dtype.kind == "c"

    def matmat(self, X):
        """A @ X for a dense X of n rows."""
        return np.asarray(self.A.matmat(X))

    def rmatmat(self, Y):
        """A^H @ Y for a dense Y of m rows."""
        return np.asarray(self.A.rmatmat(Y))

    def gram_matmat(self, X):
        """A^H (A X). Out-of-core operators override this to make it one pass over A."""
        return self.rmatmat(self.matmat(X))

    def sketch_right(self, S):
        """A @ S.T: the range sketch, S of shape (d, n)."""
        return self.matmat(S.to_dense(S.dtype_for(self.dtype)).T)

    def sketch_left(self, S):
        """S @ A: the co-range sketch, S of shape (d, m)."""
        St = S.to_dense(S.dtype_for(self.dtype)).T
        return self.rmatmat(St.conj()).conj().T

    def column_means(self):
        """Mean of each column, as a length-n vector (one product with a ones vector)."""
        m = self.shape[0]
        return self.rmatmat(np.ones((m, 1), dtype=self.dtype))[:, 0].conj() / m

    def fro_norm(self):
        """||A||_F, or None when it is not available without extra passes."""
        return None


class DenseOperator(Operator):
    kind = "dense"

    def matmat(self, X):
        return self.A @ X

    def rmatmat(self, Y):
        return self.A.conj().T @ Y if self.is_complex else self.A.T @ Y

    def sketch_right(self, S):
        return S.apply_right(self.A)

    def sketch_left(self, S):
        return S.apply(self.A)

    def column_means(self):
        return self.A.mean(axis=0)

    def fro_norm(self):
        return float(np.linalg.norm(self.A))


class SparseOperator(DenseOperator):
    kind = "sparse"

    def matmat(self, X):
        return np.asarray(self.A @ X)

    def rmatmat(self, Y):
        At = self.A.conj().T if self.is_complex else self.A.T
        return np.asarray(At @ Y)

    def column_means(self):
        return np.asarray(self.A.mean(axis=0)).ravel()

    def fro_norm(self):
        return float(sp.linalg.norm(self.A))


def as_operator(A, name: str = "A", *, check_finite_values: bool = True) -> Operator:
    """Wrap ``A`` as an :class:`Operator`, validating it.

    Integer and bool arrays are promoted to float64 (documented); float32 and complex64 are kept.
    Raises TypeError for non-numeric input and ValueError for NaN/Inf or a non-2-D shape.
    """
    if isinstance(A, Operator):
        return A
    if type(A).__module__.startswith("dask."):
        from .streaming import DaskOperator
        return DaskOperator(A, name=name)
    if isinstance(A, spla.LinearOperator):
        if len(A.shape) != 2:
            raise ValueError(f"{name} must be 2-D, got shape {A.shape}")
        return Operator(A, working_dtype(A.dtype, name))
    if sp.issparse(A):
        dtype = working_dtype(A.dtype, name)
        A = A.astype(dtype, copy=False) if A.dtype != dtype else A
        A = A.tocsr() if A.format not in ("csr", "csc") else A
        if check_finite_values:
            check_finite(A, name)
        return SparseOperator(A, dtype)
    if not isinstance(A, np.ndarray):
        if not hasattr(A, "__array__") and not isinstance(A, (list, tuple)):
            raise TypeError(f"{name} must be an array, a sparse matrix, a LinearOperator or a "
                            f"dask array, got {type(A).__name__}")
        A = np.asarray(A)
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {A.shape}")
    dtype = working_dtype(A.dtype, name)
    if A.dtype != dtype:
        A = A.astype(dtype)
    if check_finite_values:
        check_finite(A, name)
    return DenseOperator(A, dtype)
