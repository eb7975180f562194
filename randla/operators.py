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

    def gram_and_product(self, X):
        """``(A^H (A X), A X)``; one pass over A where :attr:`fused_gram` is True."""
        Y = self.matmat(X)
        return self.rmatmat(Y), Y

    @property
    def fused_gram(self) -> bool:
        """True when :meth:`gram_matmat` costs less than a matmat plus an rmatmat (one read of
        A instead of two): a subclass that overrides it says so. Power iterations then
        multiply by A^H A in one call instead of normalizing between the two products."""
        return type(self).gram_matmat is not Operator.gram_matmat

    @property
    def H(self) -> "Operator":
        """The conjugate transpose A^H, as an operator (no copy of A)."""
        return AdjointOperator(self)

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
        # conj(A^T conj(Y)): conjugates the thin Y, never a copy of A.
        return (self.A.T @ Y.conj()).conj() if self.is_complex else self.A.T @ Y

    def sketch_right(self, S):
        return S.apply_right(self.A)

    def sketch_left(self, S):
        return S.apply(self.A)

    def column_means(self):
        return self.A.mean(axis=0)

    def fro_norm(self):
        # Accumulate in float64 by row blocks: single precision sums lose digits on big arrays.
        step = max(1, (1 << 22) // max(1, self.shape[1]))
        return float(np.sqrt(sum(_sum_squares(self.A[i:i + step])
                                 for i in range(0, self.shape[0], step))))


class SparseOperator(DenseOperator):
    kind = "sparse"

    def matmat(self, X):
        return np.asarray(self.A @ X)

    def rmatmat(self, Y):
        if self.is_complex:  # conj(A^T conj(Y)): no conjugated copy of A's data
            return np.asarray(self.A.T @ Y.conj()).conj()
        return np.asarray(self.A.T @ Y)

    def column_means(self):
        return np.asarray(self.A.mean(axis=0)).ravel()

    def fro_norm(self):
        return float(np.sqrt(_sum_squares(self.A.data)))


def _sum_squares(block) -> float:
    """sum |a_ij|^2 accumulated in float64."""
    parts = (block.real, block.imag) if block.dtype.kind == "c" else (block,)
    return sum(float(np.vdot(p64, p64)) for p64 in
               (np.ascontiguousarray(p, dtype=np.float64).ravel() for p in parts))


class _Wrapped(Operator):
    """An operator defined through another one (kept in ``self.A``)."""

    def __init__(self, inner: Operator, shape=None):
        super().__init__(inner, inner.dtype)
        if shape is not None:
            self.shape = tuple(shape)

    @property
    def fused_gram(self) -> bool:
        return False


class AdjointOperator(_Wrapped):
    """A^H seen through the products of A. Sketches are applied through A's other side; a
    sketch S gives A^H S^H instead of A^H S^T, the same distribution for every sketch here."""

    kind = "adjoint"

    def __init__(self, inner: Operator):
        super().__init__(inner, shape=inner.shape[::-1])

    def matmat(self, X):
        return self.A.rmatmat(X)

    def rmatmat(self, Y):
        return self.A.matmat(Y)

    def sketch_right(self, S):
        return self.A.sketch_left(S).conj().T

    def sketch_left(self, S):
        return self.A.sketch_right(S).conj().T

    def fro_norm(self):
        return self.A.fro_norm()

    @property
    def H(self) -> Operator:
        return self.A


class CenteredOperator(_Wrapped):
    """A - 1 mu^T, mu the column means of A, without forming it (PCA of sparse or matrix-free
    data). Every product is A's product corrected by a rank-one term; the fused A^H A X of an
    out-of-core A stays one pass: (A - 1 mu^T)^H (A - 1 mu^T) X = A^H A X - m conj(mu) mu^T X.
    """

    kind = "centered"

    def __init__(self, inner: Operator):
        super().__init__(inner)
        self.mean = np.asarray(inner.column_means(), dtype=self.dtype)

    def matmat(self, X):
        return self.A.matmat(X) - (self.mean @ X)[None, :]

    def rmatmat(self, Y):
        return self.A.rmatmat(Y) - np.outer(self.mean.conj(), Y.sum(axis=0))

    def gram_matmat(self, X):
        return self._center_gram(self.A.gram_matmat(X), X)

    def gram_and_product(self, X):
        C, Y = self.A.gram_and_product(X)
        return self._center_gram(C, X), Y - (self.mean @ X)[None, :]

    def _center_gram(self, C, X):
        return C - self.shape[0] * np.outer(self.mean.conj(), self.mean @ X)

    @property
    def fused_gram(self) -> bool:
        return self.A.fused_gram

    def sketch_right(self, S):
        Y = self.A.sketch_right(S)
        return Y - (S @ self.mean)[None, :]

    def sketch_left(self, S):
        Y = self.A.sketch_left(S)
        return Y - np.outer(S @ np.ones(self.shape[0], dtype=self.dtype), self.mean)

    def column_means(self):
        return np.zeros(self.shape[1], dtype=self.dtype)

    def fro_norm(self):
        total = self.A.fro_norm()
        if total is None:
            return None
        # ||A - 1 mu^T||_F^2 = ||A||_F^2 - m ||mu||^2 (rounding can make it slightly negative).
        return float(np.sqrt(max(total ** 2 - self.shape[0] * np.vdot(self.mean, self.mean).real,
                                 0.0)))


class ResidualOperator(_Wrapped):
    """E = A - U diag(s) Vh, through products with A and the factors (never formed)."""

    kind = "residual"

    def __init__(self, inner: Operator, U, s, Vh):
        super().__init__(inner)
        self.U, self.s, self.Vh = U, s, Vh

    def matmat(self, X):
        return self.A.matmat(X) - self.U @ (self.s[:, None] * (self.Vh @ X))

    def rmatmat(self, Y):
        return self.A.rmatmat(Y) - self.Vh.conj().T @ (self.s[:, None] * (self.U.conj().T @ Y))


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
    if isinstance(A, np.memmap) or type(A).__module__.split(".")[0] in ("h5py", "zarr"):
        from .streaming import file_operator  # a file: row panels, one read per product
        return file_operator(A, name=name)
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
    # A finite sum proves every entry finite in one read without a boolean temporary of A's
    # size; a non-finite sum (NaN/Inf, or overflow) gets the exact check.
    if check_finite_values and not np.isfinite(np.sum(A)):
        check_finite(A, name)
    return DenseOperator(A, dtype)
