"""The sparse-plus-low-rank operator of soft-impute, and low-rank values at observed entries.

Soft-impute's filled-in matrix ``P_Omega(X - Z) + Z`` (Z = U diag(d) V^T) is dense, users x
items; its products are a sparse product plus two thin GEMMs (Mazumder, Hastie & Tibshirani
2010, section 5.1), so randomized SVD of it never forms the dense matrix.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from .._numba import parallel_section
from ..operators import Operator

#: observed_values runs its parallel kernel from this many entries on. Below it a serial
#: kernel: a parallel region's thread wake-up (OpenMP spins) cost more than the work, by ~50x
#: on a loaded 2-core machine at 100k ratings.
PARALLEL_NNZ = 1 << 22


class SparsePlusLowRank(Operator):
    """S + U diag(d) V^T (S sparse m x n, U m x r, d length r, V n x r) through products.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> rng = np.random.default_rng(0)
    >>> S = sp.random(30, 20, density=0.2, random_state=0, format="csr")
    >>> U, V = rng.standard_normal((30, 2)), rng.standard_normal((20, 2))
    >>> op = SparsePlusLowRank(S, U, np.array([2.0, 1.0]), V)
    >>> dense = S.toarray() + U @ np.diag([2.0, 1.0]) @ V.T
    >>> X = rng.standard_normal((20, 3))
    >>> bool(np.allclose(op.matmat(X), dense @ X))
    True
    """

    kind = "sparse_plus_low_rank"

    def __init__(self, S, U=None, d=None, V=None):
        if not sp.issparse(S):
            raise TypeError(f"S must be a scipy.sparse matrix, got {type(S).__name__}")
        S = S.tocsr()
        super().__init__(S, S.dtype)
        m, n = S.shape
        r = 0 if d is None else len(d)
        self.U = np.zeros((m, r), S.dtype) if U is None else np.asarray(U, dtype=S.dtype)
        self.d = np.zeros(r, S.dtype) if d is None else np.asarray(d, dtype=S.dtype)
        self.V = np.zeros((n, r), S.dtype) if V is None else np.asarray(V, dtype=S.dtype)
        if self.U.shape != (m, r) or self.V.shape != (n, r):
            raise ValueError(f"U and V must have shapes {(m, r)} and {(n, r)}, got "
                             f"{self.U.shape} and {self.V.shape}")

    def matmat(self, X):
        out = np.asarray(self.A @ X)
        if len(self.d):
            out += self.U @ (self.d[:, None] * (self.V.T @ X))
        return out

    def rmatmat(self, Y):
        out = np.asarray(self.A.T @ Y)
        if len(self.d):
            out += self.V @ (self.d[:, None] * (self.U.T @ Y))
        return out


# fastmath lets the k-term dot product vectorize (reassociated sums: rounding-level changes)
@njit(parallel=True, fastmath=True, cache=True)
def _observed_dot_parallel(indptr, indices, P, Q, out):
    for r in prange(len(indptr) - 1):
        for p in range(indptr[r], indptr[r + 1]):
            c = indices[p]
            acc = 0.0
            for j in range(P.shape[1]):
                acc += P[r, j] * Q[c, j]
            out[p] = acc


@njit(fastmath=True, cache=True)
def _observed_dot_serial(indptr, indices, P, Q, out):
    for r in range(len(indptr) - 1):
        for p in range(indptr[r], indptr[r + 1]):
            c = indices[p]
            acc = 0.0
            for j in range(P.shape[1]):
                acc += P[r, j] * Q[c, j]
            out[p] = acc


def observed_values(M, P, Q):
    """(P Q^T)[i, j] at the stored entries of the CSR matrix M, in M's order."""
    out = np.empty(M.nnz, dtype=np.result_type(P.dtype, Q.dtype))
    if P.shape[1] == 0:
        out[:] = 0
        return out
    _run(_observed_dot_serial, _observed_dot_parallel, M.nnz,
         M.indptr, M.indices, np.ascontiguousarray(P), np.ascontiguousarray(Q), out)
    return out


def _run(serial, parallel, nnz, *args):
    """The serial kernel below PARALLEL_NNZ entries, else the parallel one, inside
    parallel_section: two Python threads running parallel kernels at once abort the process
    under Numba's workqueue threading layer."""
    if nnz < PARALLEL_NNZ:
        return serial(*args)
    with parallel_section():
        return parallel(*args)


class SoftImputeOperator(Operator):
    """``P_Omega(X - Z) + Z`` with Z = U diag(d) V^T and Omega the pattern of the CSR matrix
    X, through products (soft-impute's filled-in matrix).

    The sparse term's values ``x - z`` at the observed entries are computed inside the first
    product with the operator (one pass over X instead of three: values, product, and a
    transpose's copy), then kept (:attr:`sparse_values`); products with the transpose run
    over X's rows too, scattering into the n x l result.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> rng = np.random.default_rng(0)
    >>> X = sp.random(30, 20, density=0.3, random_state=0, format="csr")
    >>> U, V = np.linalg.qr(rng.standard_normal((30, 2)))[0], rng.standard_normal((20, 2))
    >>> op = SoftImputeOperator(X, U, np.array([2.0, 1.0]), V)
    >>> Z = U @ np.diag([2.0, 1.0]) @ V.T
    >>> dense = np.where(X.toarray() != 0, X.toarray() - Z, 0) + Z
    >>> W = rng.standard_normal((20, 3))
    >>> bool(np.allclose(op.matmat(W), dense @ W)), bool(np.allclose(op.rmatmat(U), dense.T @ U))
    (True, True)
    """

    kind = "soft_impute"

    def __init__(self, X, U, d, V):
        if not sp.issparse(X) or X.format != "csr":
            raise TypeError(f"X must be a scipy.sparse CSR matrix, got {type(X).__name__}")
        super().__init__(X, X.dtype)
        self.U, self.d, self.V = U, np.asarray(d, dtype=X.dtype), V
        r = len(self.d)
        if U.shape != (X.shape[0], r) or V.shape != (X.shape[1], r):
            raise ValueError(f"U and V must have shapes {(X.shape[0], r)} and "
                             f"{(X.shape[1], r)}, got {U.shape} and {V.shape}")
        self._P = np.ascontiguousarray(U * self.d)
        self.sparse_values = None

    def matmat(self, X):
        X = np.ascontiguousarray(X, dtype=self.dtype)
        out = np.zeros((self.shape[0], X.shape[1]), dtype=self.dtype)
        A = self.A
        if self.sparse_values is None:
            self.sparse_values = np.empty(A.nnz, dtype=self.dtype)
            _run(_residual_matmat, _residual_matmat_parallel, A.nnz, A.indptr, A.indices,
                 A.data, self._P, np.ascontiguousarray(self.V), X, self.sparse_values, out)
        else:
            _run(_csr_matmat, _csr_matmat_parallel, A.nnz, A.indptr, A.indices,
                 self.sparse_values, X, out)
        if len(self.d):
            out += self._P @ (self.V.T @ X)
        return out

    def rmatmat(self, Y):
        if self.sparse_values is None:
            self.sparse_values = self.A.data - observed_values(self.A, self._P, self.V)
        Y = np.ascontiguousarray(Y, dtype=self.dtype)
        out = np.zeros((self.shape[1], Y.shape[1]), dtype=self.dtype)
        _csr_rmatmat(self.A.indptr, self.A.indices, self.sparse_values, Y, out)
        if len(self.d):
            out += self.V @ (self._P.T @ Y)
        return out


@njit(fastmath=True, cache=True)
def _residual_matmat(indptr, indices, x, P, Q, X, s, out):
    """s = x - (P Q^T) at the stored entries, out = S X: one pass over the rows."""
    for r in range(len(indptr) - 1):
        for p in range(indptr[r], indptr[r + 1]):
            c = indices[p]
            acc = 0.0
            for j in range(P.shape[1]):
                acc += P[r, j] * Q[c, j]
            v = x[p] - acc
            s[p] = v
            for j in range(X.shape[1]):
                out[r, j] += v * X[c, j]


@njit(parallel=True, fastmath=True, cache=True)
def _residual_matmat_parallel(indptr, indices, x, P, Q, X, s, out):
    for r in prange(len(indptr) - 1):
        for p in range(indptr[r], indptr[r + 1]):
            c = indices[p]
            acc = 0.0
            for j in range(P.shape[1]):
                acc += P[r, j] * Q[c, j]
            v = x[p] - acc
            s[p] = v
            for j in range(X.shape[1]):
                out[r, j] += v * X[c, j]


@njit(fastmath=True, cache=True)
def _csr_matmat(indptr, indices, s, X, out):
    for r in range(len(indptr) - 1):
        for p in range(indptr[r], indptr[r + 1]):
            c = indices[p]
            v = s[p]
            for j in range(X.shape[1]):
                out[r, j] += v * X[c, j]


@njit(parallel=True, fastmath=True, cache=True)
def _csr_matmat_parallel(indptr, indices, s, X, out):
    for r in prange(len(indptr) - 1):
        for p in range(indptr[r], indptr[r + 1]):
            c = indices[p]
            v = s[p]
            for j in range(X.shape[1]):
                out[r, j] += v * X[c, j]


@njit(fastmath=True, cache=True)
def _csr_rmatmat(indptr, indices, s, Y, out):
    """out = S^T Y for S = CSR(s, indices, indptr): row by row, scattering into out's rows
    (serial: two rows may share a column)."""
    for r in range(len(indptr) - 1):
        for p in range(indptr[r], indptr[r + 1]):
            c = indices[p]
            v = s[p]
            for j in range(Y.shape[1]):
                out[c, j] += v * Y[r, j]
