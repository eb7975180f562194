"""Randomly pivoted Cholesky (RPCholesky): a column Nystrom approximation A ~ F F^H of a PSD
matrix that reads only its diagonal and the k columns it pivots on.

Chen, Epperly, Tropp and Webber, "Randomly pivoted Cholesky: practical approximation of a
kernel matrix with few entry evaluations" (CPAM 2024), and Epperly, Tropp and Webber, "Embrace
rejection: kernel matrix approximation by accelerated randomly pivoted Cholesky" (2024).

Each pivot is drawn with probability proportional to the diagonal of the current residual
A - F F^H, so the pivots follow where the approximation is still poor: a small cluster that
uniform sampling would miss keeps a large residual until it is covered.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .._validation import (
    check_choice,
    check_finite,
    check_positive_int,
    check_random_state,
    check_square,
    working_dtype,
)
from .nystrom import NystromApprox

_METHODS = ("accelerated", "block", "simple", "greedy")


@dataclass
class RPCholeskyResult:
    """A ~ F F^H from the columns of A at ``pivots``.

    Attributes
    ----------
    F : ndarray, shape (N, r)
        r <= k columns (fewer when A is exactly of rank < k).
    pivots : ndarray of int, shape (r,)
        The selected columns, in order.
    entries_read : int
        Number of entries of A evaluated (the diagonal counts N).
    """

    F: np.ndarray
    pivots: np.ndarray
    entries_read: int

    def to_nystrom(self):
        """The same approximation as a :class:`~randla.NystromApprox` (eigen form)."""
        U, s, _ = sla.svd(self.F, full_matrices=False, check_finite=False)
        return NystromApprox(U, s**2)

    def trace_error(self, diagonal):
        """tr(A - F F^H) = ||A - F F^H||_* given the diagonal of A."""
        return float(np.sum(diagonal) - np.sum(np.abs(self.F) ** 2))


class _EntryReader:
    """Diagonal, columns and submatrices of a PSD matrix, counting the entries evaluated."""

    def __init__(self, A):
        self.read = 0
        if hasattr(A, "columns") and hasattr(A, "diagonal") and hasattr(A, "submatrix"):
            self.A, self.kind = A, "kernel"
        elif sp.issparse(A):
            self.A, self.kind = A.tocsc(), "sparse"
        elif isinstance(A, spla.LinearOperator):
            raise TypeError("A must give its entries (an ndarray, a sparse matrix or a "
                            "KernelMatrix); a general LinearOperator only gives products")
        else:
            A = np.asarray(A)
            if A.ndim != 2:
                raise ValueError(f"A must be 2-D, got shape {A.shape}")
            self.A, self.kind = A, "dense"
        check_square(self.A.shape, what="PSD")
        self.dtype = working_dtype(self.A.dtype, "A")
        if self.kind in ("dense", "sparse"):
            check_finite(self.A, "A")

    def diagonal(self):
        self.read += self.A.shape[0]
        d = self.A.diagonal()
        return np.real(np.asarray(d)).astype(np.float64)

    def columns(self, idx):
        self.read += self.A.shape[0] * len(idx)
        if self.kind == "kernel":
            return self.A.columns(idx)
        cols = self.A[:, idx]
        return (cols.toarray() if sp.issparse(cols) else np.asarray(cols)).astype(self.dtype)

    def submatrix(self, idx):
        self.read += len(idx) ** 2
        if self.kind == "kernel":
            return self.A.submatrix(idx, idx)
        sub = self.A[np.ix_(idx, idx)] if self.kind == "dense" else self.A[idx][:, idx]
        return (sub.toarray() if sp.issparse(sub) else np.asarray(sub)).astype(self.dtype)


def rpcholesky(A, k, *, method="accelerated", block_size=None, rng=None) -> RPCholeskyResult:
    """Randomly pivoted (partial) Cholesky decomposition of a PSD matrix.

    Parameters
    ----------
    A : ndarray, sparse matrix or :class:`~randla.KernelMatrix`, shape (N, N)
        Positive semidefinite. Only its diagonal and the pivot columns are read.
    k : int
        Number of pivots (rank of the approximation), 1 <= k <= N.
    method : {"accelerated", "block", "simple", "greedy"}
        - "accelerated": candidates drawn in blocks from the residual diagonal, accepted by
          rejection sampling on their small submatrix (Epperly-Tropp-Webber); the same
          distribution of pivots as "simple", at the speed of block linear algebra.
        - "block": ``block_size`` pivots drawn at once from the residual diagonal (Chen et al.,
          Algorithm 3); fast, pivots may be slightly redundant.
        - "simple": one pivot at a time (Chen et al., Algorithm 1).
        - "greedy": the pivot of largest residual diagonal (deterministic), for comparison.
    block_size : int, optional
        Candidates per block: default min(k, 120) for "accelerated", min(k, max(10, k // 10))
        for "block".
    rng : None, int or numpy.random.Generator

    Returns
    -------
    RPCholeskyResult
        ``F`` (N x r), ``pivots`` and ``entries_read``: (k + 1) N for "simple", "block" and
        "greedy"; "accelerated" also reads the small candidate submatrices (block_size^2 per
        round of rejection sampling).

    Examples
    --------
    >>> import numpy as np, randla
    >>> X = np.random.default_rng(0).standard_normal((1000, 2))
    >>> K = randla.KernelMatrix(X, "rbf", bandwidth=1.0)
    >>> res = randla.rpcholesky(K, 50, rng=0)
    >>> res.F.shape, res.entries_read < 60 * 1000   # (k + 1) N plus small candidate blocks
    ((1000, 50), True)
    >>> bool(res.trace_error(K.diagonal()) < 1e-2 * 1000)
    True
    """
    reader = _EntryReader(A)
    N = reader.A.shape[0]
    k = check_positive_int(k, "k")
    if k > N:
        raise ValueError(f"k must be <= N = {N}, got {k}")
    check_choice(method, "method", _METHODS)
    if block_size is None:
        block_size = min(k, max(10, k // 10)) if method == "block" else min(k, 120)
    block_size = check_positive_int(block_size, "block_size")
    gen = check_random_state(rng)
    state = _State(reader, k)
    if method == "accelerated":
        _accelerated(state, gen, block_size)
    elif method == "block":
        _block(state, gen, block_size)
    else:
        _one_by_one(state, gen, greedy=(method == "greedy"))
    return state.result()


def _pivot_floor(diagonal, dtype):
    """Smallest residual a pivot may have: sqrt(eps) times the largest diagonal entry. Below it
    the new column is mostly rounding error (entries of A are known to eps * max diag), and a
    tiny pivot would make the landmark Cholesky factor F[S] ill-conditioned; the trace the
    dropped pivot leaves is negligible."""
    return float(np.sqrt(np.finfo(dtype).eps) * max(float(np.max(diagonal, initial=0.0)), 0.0))


class _State:
    """F, pivots and the residual diagonal of a partial Cholesky factorization."""

    def __init__(self, reader, k):
        self.reader = reader
        N = reader.A.shape[0]
        self.k = k
        self.F = np.zeros((N, k), dtype=reader.dtype, order="F")  # appended column-wise
        self.pivots = []
        self.cols = 0
        self.d = reader.diagonal()
        if np.any(self.d < 0):
            raise ValueError("A must be positive semidefinite: it has negative diagonal entries")
        self.trace0 = float(self.d.sum())
        self.floor = _pivot_floor(self.d, reader.dtype)

    def residual_columns(self, idx):
        """Columns idx of A - F F^H."""
        G = self.reader.columns(idx)
        if self.cols:
            F = self.F[:, :self.cols]
            G -= F @ F[idx].conj().T
        return G

    def exhausted(self):
        """True when k pivots are taken or no residual diagonal entry is above the pivot floor
        (A is reproduced to rounding level)."""
        return (self.cols >= self.k or self.d.sum() <= 1e-14 * max(self.trace0, np.finfo(float).tiny)
                or self.d.max() <= self.floor)

    def sample(self, gen, size):
        p = np.maximum(self.d, 0.0)
        return gen.choice(p.shape[0], size=size, p=p / p.sum())

    def append(self, Fnew, idx):
        """Append columns Fnew (N x r) with their pivots idx, updating the residual diagonal."""
        r = Fnew.shape[1]
        self.F[:, self.cols:self.cols + r] = Fnew
        self.cols += r
        self.pivots.extend(int(i) for i in idx)
        d = self.d - np.einsum("ij,ij->i", Fnew.conj(), Fnew).real
        if d.min(initial=0.0) < -self.floor:  # a PSD residual keeps a non-negative diagonal
            raise ValueError("A must be positive semidefinite: after "
                             f"{self.cols} pivots the residual has the diagonal entry "
                             f"{d.min():.3g} < 0 (use randla.reigh for indefinite matrices)")
        self.d = np.maximum(d, 0.0)
        self.d[np.asarray(idx, dtype=np.intp)] = 0.0

    def result(self):
        return RPCholeskyResult(self.F[:, :self.cols],
                                np.asarray(self.pivots, dtype=np.intp), self.reader.read)


def _one_by_one(state, gen, greedy):
    while not state.exhausted():
        s = int(np.argmax(state.d)) if greedy else int(state.sample(gen, 1)[0])
        g = state.residual_columns([s])[:, 0]
        if g[s].real <= state.floor:  # the residual is at rounding level
            state.d[s] = 0.0
            continue
        state.append((g / np.sqrt(g[s].real))[:, None], [s])


def _block(state, gen, block_size):
    while not state.exhausted():
        b = min(block_size, state.k - state.cols)
        _add_pivots(state, np.unique(state.sample(gen, b)))


def _add_pivots(state, idx):
    """Factor the residual columns idx and append them (pivots at rounding level are dropped)."""
    Fnew, keep = _factor_block(state.residual_columns(idx), idx, state.floor)
    if Fnew.shape[1] == 0:
        state.d[idx] = 0.0
    else:
        state.append(Fnew, idx[keep])


def _factor_block(G, idx, floor):
    """F_new with F_new F_new^H = G H^+ G^H, H = G[idx] the residual on the pivots, through a
    pivoted Cholesky of H that drops pivots whose residual is below ``floor``."""
    H = G[idx]
    H = 0.5 * (H + H.conj().T)
    keep = _pivoted_cholesky_keep(H, floor)
    if not keep:
        return G[:, :0], []
    L = sla.cholesky(H[np.ix_(keep, keep)], lower=True, check_finite=False)
    # F_new = G L^{-H}, as (L^{-1} G^H)^H: one GEMM with the small triangular inverse (much
    # faster than a triangular solve with N right-hand sides), landing in Fortran order so
    # that appending it to F is a contiguous copy.
    Linv = sla.solve_triangular(L, np.eye(len(keep), dtype=L.dtype), lower=True,
                                check_finite=False)
    Fnew = (Linv @ G[:, keep].conj().T).conj().T
    return Fnew, keep


def _pivoted_cholesky_keep(H, tol):
    """Indices (in order) a greedy Cholesky of H can pivot on while the residual stays > tol."""
    R = H.copy()
    keep = []
    for _ in range(H.shape[0]):
        diag = np.real(np.diag(R)).copy()
        diag[keep] = -np.inf
        j = int(np.argmax(diag))
        if diag[j] <= tol:
            break
        keep.append(j)
        col = R[:, j] / np.sqrt(R[j, j].real)
        R = R - np.outer(col, col.conj())
    return sorted(keep)


def _accelerated(state, gen, block_size):
    while not state.exhausted():
        b = min(block_size, state.k - state.cols)
        cand = state.sample(gen, b)
        H = state.reader.submatrix(cand)
        if state.cols:
            Fc = state.F[cand, :state.cols]
            H -= Fc @ Fc.conj().T
        accepted = _rejection_sample(H, state.d[cand], gen.random(b))
        if accepted:
            _add_pivots(state, cand[accepted])


def _rejection_sample(H, d, u):
    """Rejection sampling of Epperly-Tropp-Webber: candidate j (drawn from the residual
    diagonal d) is accepted with probability H_jj / d_j, where H is updated to the residual
    after the candidates accepted before it. The accepted pivots follow the law of sequential
    RPCholesky."""
    H = np.array(H, copy=True)
    accepted = []
    for j in range(H.shape[0]):
        hjj = H[j, j].real
        if d[j] > 0 and u[j] * d[j] < hjj and hjj > 0:
            accepted.append(j)
            col = H[j:, j] / np.sqrt(hjj)
            H[j:, j:] -= np.outer(col, col.conj())
    return accepted


def column_nystrom(A, pivots) -> RPCholeskyResult:
    """The column Nystrom approximation on given pivots (e.g. uniformly sampled landmarks):
    A ~ C W^+ C^H with C = A[:, pivots], W = A[pivots, pivots], as a factor F.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.kernel import column_nystrom
    >>> G = np.random.default_rng(1).standard_normal((100, 3)); A = G @ G.T
    >>> res = column_nystrom(A, [0, 1, 2, 3])
    >>> bool(np.allclose(res.F @ res.F.T, A))
    True
    """
    reader = _EntryReader(A)
    idx = np.unique(np.asarray(pivots, dtype=np.intp))
    N = reader.A.shape[0]
    if idx.size == 0 or idx.min() < 0 or idx.max() >= N:
        raise ValueError(f"pivots must be a non-empty set of indices in 0:{N}")
    G = reader.columns(idx)
    Fnew, keep = _factor_block(G, idx, _pivot_floor(np.real(np.diag(G[idx])), reader.dtype))
    return RPCholeskyResult(np.ascontiguousarray(Fnew), idx[keep], reader.read)
