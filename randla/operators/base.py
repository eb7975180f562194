"""The operator interface: an m x n matrix seen through products with A and A^H.

An operator also states what its products cost (:attr:`Operator.fused_gram`,
:attr:`Operator.reads_per_product`), so algorithms plan their passes from the interface.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from .._budget import rows_within
from .._linalg import dense_matmat, dense_rmatmat, fro_norm
from ._spmm import (
    INDEX_DTYPES,
    KERNEL_DTYPES,
    gather,
    scatter,
    scatter_cumulative,
    scatter_parts,
)


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
        if getattr(self.A, "_CustomLinearOperator__rmatvec_impl", True) is None and \
                getattr(self.A, "_CustomLinearOperator__rmatmat_impl", True) is None:
            raise ValueError("A is a LinearOperator without rmatvec: this computation needs "
                             "products with A^H; give LinearOperator(..., rmatvec=...)")
        return np.asarray(self.A.rmatmat(Y))

    def gram_matmat(self, X):
        """A^H (A X). Out-of-core operators override this to make it one pass over A."""
        return self.rmatmat(self.matmat(X))

    def gram_and_product(self, X):
        """``(A^H (A X), A X)``; one pass over A where :attr:`fused_gram` is True."""
        Y = self.matmat(X)
        return self.rmatmat(Y), Y

    def gram_matmat_scaled(self, X, single=False):
        """``(C, e)`` with ``C * 2^-e = A^H (A X)``: A^H A X squares A's scale, so an A of
        entries 1e-160 or 1e160 under- or overflows it; operators that can scale as they
        go (row panels) return C near A's own scale. Here e = 0. ``single``: in single
        precision where :attr:`single_gram` says the operator can."""
        return (self.gram_matmat(X, single=True) if single else self.gram_matmat(X)), 0

    def gram_and_product_scaled(self, X):
        """``((C, e), A X)`` with ``C * 2^-e = A^H (A X)`` (see :meth:`gram_matmat_scaled`)."""
        C, Y = self.gram_and_product(X)
        return (C, 0), Y

    @property
    def fused_gram(self) -> bool:
        """True when :meth:`gram_matmat` costs less than a matmat plus an rmatmat (one read of
        A instead of two): a subclass that overrides it says so. Power iterations then
        multiply by A^H A in one call instead of normalizing between the two products."""
        return type(self).gram_matmat is not Operator.gram_matmat

    #: Reads of the data one product costs: 0 for data in memory, 1 for chunked or file data.
    reads_per_product = 0
    #: True when :meth:`lazy_matmat` returns an unevaluated product.
    lazy_products = False

    def lazy_matmat(self, W):
        """A @ W left unevaluated (a dask array), or None where the product is computed at once.
        Chunked operators use it to return a tall factor U = A W without holding it."""
        return None

    @property
    def H(self) -> Operator:
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

    def deviation_norm(self, mu):
        """||A - 1 mu^T||_F computed directly (no cancellation), or None when not available."""
        return None


class DenseOperator(Operator):
    kind = "dense"

    def matmat(self, X):
        return dense_matmat(self.A, X)

    def rmatmat(self, Y):
        return dense_rmatmat(self.A, Y)

    def sketch_right(self, S):
        return S.apply_right(self.A)

    def sketch_left(self, S):
        return S.apply(self.A)

    def column_means(self):
        return self.A.mean(axis=0)

    def fro_norm(self):
        return self._row_block_norm(lambda block: block)

    def deviation_norm(self, mu):
        return self._row_block_norm(lambda block: block - mu)

    def _row_block_norm(self, f):
        """||f(A)||_F by row blocks (f applied to each), accumulated in float64 without
        overflow: single precision sums lose digits on big arrays."""
        step = rows_within(1 << 22, self.shape[1])  # 4 Mi entries: 32 MiB of float64
        return math.hypot(*(fro_norm(f(self.A[i:i + step])) for i in range(0, self.shape[0], step)))


class SparseOperator(DenseOperator):
    """A scipy.sparse matrix. For a CSR or CSC A, products with a dense block run as Numba
    kernels (:mod:`~randla.operators._spmm`) in parallel, with results that do not depend on
    the thread count; other formats and dtypes go through scipy."""

    kind = "sparse"

    def __init__(self, A, dtype):
        super().__init__(A, dtype)
        # Built on the first product that needs them, each tagged with the matrix it was made
        # from: A's entries in the other orientation (CSC arrays for a CSR A, that is the CSR
        # of A^T, and the reverse; one more copy of A's indices and data), and the column
        # weights that split a scatter (one integer per column of the stored form). Values
        # changed in place in A's arrays afterwards would not reach the copy.
        self._flipped = None
        self._weights = None

    def matmat(self, X):
        return self._product(X, adjoint=False)

    def rmatmat(self, Y):
        return self._product(Y, adjoint=True)

    def _product(self, X, adjoint):
        """A @ X, or A^H @ X with ``adjoint``, by a kernel where one applies."""
        if not self._kernel_applies(X):
            return self._scipy_product(X, adjoint)
        X = np.asarray(X)
        rows = self.shape[0] if adjoint else self.shape[1]
        if X.shape[0] != rows:
            raise ValueError(f"{'Y' if adjoint else 'X'} must have {rows} rows to multiply "
                             f"{'A^H' if adjoint else 'A'} (A has shape {self.shape}), "
                             f"got shape {X.shape}")
        out = self._kernel_product(X[:, None] if X.ndim == 1 else X, adjoint)
        return out[:, 0] if X.ndim == 1 else out

    def _kernel_applies(self, X):
        A = self.A
        if A.format not in ("csr", "csc") or A.dtype not in KERNEL_DTYPES or \
                A.indices.dtype not in INDEX_DTYPES or A.indptr.dtype not in INDEX_DTYPES:
            return False
        if sp.issparse(X) or not hasattr(X, "dtype") or getattr(X, "ndim", 0) not in (1, 2):
            return False
        return X.dtype.kind in "biufc" and np.result_type(A.dtype, X.dtype) in KERNEL_DTYPES

    def _kernel_product(self, X, adjoint):
        """The stored arrays R of A are the CSR form of A (CSR) or of A^T (CSC). The product
        wants R @ X (a gather), or R^T @ X: a scatter over R when it pays, else a gather over
        R's other orientation, built once."""
        A = self.A   # the kernels conjugate complex data only (conj=adjoint)
        if (A.format == "csr") != adjoint:
            return gather(A.indptr, A.indices, A.data, X, adjoint)
        if self._scatter_pays(X):
            return scatter(A.indptr, A.indices, A.data, X, self.shape[adjoint],
                           self._scatter_weights(), adjoint)
        return gather(*self._flipped_arrays(), X, adjoint)

    def _scatter_pays(self, X):
        """Scatter over R (r rows, c columns) where the output (c x k) is the short side and
        the parts' searches through R's rows (r per part) are fewer than R's entries: measured
        on a 200000 x 50000 CSR (density 1e-3), A^T Y ran 0.17 s against 0.33 s for the gather
        over A^T, and the gather won on a 2000 x 10^6 one."""
        A = self.A
        r, c = A.shape if A.format == "csr" else A.shape[::-1]
        parts = scatter_parts(c, X.shape[1], np.result_type(A.dtype, X.dtype).itemsize)
        return r >= c and r * parts <= A.nnz and A.has_sorted_indices

    def _scatter_weights(self):
        if self._weights is None or self._weights[0] is not self.A:
            A = self.A
            n_out = A.shape[1] if A.format == "csr" else A.shape[0]
            self._weights = (A, scatter_cumulative(A.indices, A.indptr[-1], n_out))
        return self._weights[1]

    def _flipped_arrays(self):
        """(indptr, indices, data) of A's stored arrays in the other orientation."""
        A = self.A
        if self._flipped is None or self._flipped[0] is not A:
            B = A.tocsc() if A.format == "csr" else A.tocsr()
            self._flipped = (A, B.indptr, B.indices, B.data)
        return self._flipped[1:]

    def _scipy_product(self, X, adjoint):
        if not adjoint:
            return np.asarray(self.A @ X)
        if self.is_complex:  # conj(A^T conj(Y)): no conjugated copy of A's data
            return np.asarray(self.A.T @ X.conj()).conj()
        return np.asarray(self.A.T @ X)

    def column_means(self):
        return np.asarray(self.A.mean(axis=0)).ravel()

    def fro_norm(self):
        return fro_norm(self.A.data)  # as_operator sums duplicate entries first

    def deviation_norm(self, mu):
        # each stored a_ij contributes |a_ij - mu_j|^2, each implicit zero |mu_j|^2
        A = self.A.tocsc()
        stored = fro_norm(A.data - np.repeat(mu, np.diff(A.indptr)))
        zeros = fro_norm(np.sqrt(self.shape[0] - np.diff(A.indptr)) * np.abs(mu))
        return math.hypot(stored, zeros)


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
