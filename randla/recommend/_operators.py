"""The sparse-plus-low-rank operator of soft-impute, and low-rank values at observed entries.

Soft-impute's filled-in matrix ``P_Omega(X - Z) + Z`` (Z = U diag(d) V^T) is dense, users x
items; its products are a sparse product plus two thin GEMMs (Mazumder, Hastie & Tibshirani
2010, section 5.1), so randomized SVD of it never forms the dense matrix.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from ..operators import Operator

#: observed_values runs its parallel kernel from this many entries on. Below it a serial
#: kernel: a parallel region's thread wake-up (OpenMP spins) cost more than the work, by ~50x
#: on a loaded 2-core machine at 100k ratings.
PARALLEL_NNZ = 1 << 22


class SparsePlusLowRank(Operator):
    """S + U diag(d) V^T (S sparse m x n, U m x r, d length r, V n x r) through products.

    ``ST``, S^T as a CSR matrix, may be given to make the products with the transpose row
    products too (scipy's CSC products scatter their writes and run slower).

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

    def __init__(self, S, U=None, d=None, V=None, *, ST=None):
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
        if ST is not None and ST.shape != (n, m):
            raise ValueError(f"ST must have shape {(n, m)}, got {ST.shape}")
        self.ST = S.T if ST is None else ST

    def matmat(self, X):
        out = np.asarray(self.A @ X)
        if len(self.d):
            out += self.U @ (self.d[:, None] * (self.V.T @ X))
        return out

    def rmatmat(self, Y):
        out = np.asarray(self.ST @ Y)
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
    kernel = _observed_dot_parallel if M.nnz >= PARALLEL_NNZ else _observed_dot_serial
    kernel(M.indptr, M.indices, np.ascontiguousarray(P), np.ascontiguousarray(Q), out)
    return out


def transpose_pattern(M):
    """S^T's CSR pattern for the CSR matrix M: ``(perm, indices, indptr)`` with
    ``csr_matrix((data[perm], indices, indptr), shape=M.shape[::-1]) == csr_matrix((data,
    M.indices, M.indptr)).T`` for any values ``data`` in M's order."""
    m, n = M.shape
    rows = np.repeat(np.arange(m, dtype=M.indices.dtype), np.diff(M.indptr))
    perm = np.argsort(M.indices, kind="stable")       # by column, rows ascending within
    indptr = np.zeros(n + 1, dtype=M.indptr.dtype)
    np.cumsum(np.bincount(M.indices, minlength=n), out=indptr[1:])
    return perm, rows[perm], indptr
