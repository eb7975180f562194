"""Stochastic Lanczos quadrature (Golub-Meurant; Ubaru-Chen-Saad 2017): tr f(A) for symmetric
A, and log det(A) for positive definite A.

For a test vector w, k Lanczos steps from w / ||w|| give a tridiagonal T_k = V diag(theta) V^T,
and w^T f(A) w ~ ||w||^2 sum_j V_{1j}^2 f(theta_j), a k-point Gauss quadrature, exact for
polynomials f of degree < 2k. Averaging over test vectors gives tr f(A).
"""
from __future__ import annotations

import math

import numba
import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from numba import prange

from .._budget import rows_within
from .._numba import parallel_njit
from .._validation import check_choice, check_positive_int
from ..operators import SparseOperator
from ._core import TraceResult, run, sample_error, setup

_FUNCTIONS = {
    "log": (np.log, True),
    "exp": (np.exp, False),
    "inv": (np.reciprocal, True),
    "sqrt": (np.sqrt, True),
}
_REORTH = ("full", "partial", "none")
#: Memory for the stored Lanczos bases of one block of test vectors.
_BASIS_BYTES = 2**28


def _resolve_function(f):
    if isinstance(f, str):
        if f not in _FUNCTIONS:
            raise ValueError(f"f must be a callable or one of {sorted(_FUNCTIONS)}, got {f!r}")
        return _FUNCTIONS[f]
    if not callable(f):
        raise TypeError(f"f must be a callable or a name, got {type(f).__name__}")
    return f, False


def lanczos(op, V, steps, reorth="full"):
    """Lanczos on the columns of V (n x b, unit norm) side by side, ``steps`` steps each.

    Returns (alpha, beta, lengths): column c's tridiagonal matrix has diagonal
    ``alpha[:lengths[c], c]`` and off-diagonal ``beta[:lengths[c] - 1, c]``. A column stops early
    when its Krylov space becomes invariant. ``reorth`` is "full" (Gram-Schmidt against the
    whole basis at every step, repeated when it cancels much), "partial" (Simon's omega
    recurrence monitors the loss of orthogonality and reorthogonalizes only when it exceeds
    sqrt(eps)) or "none".

    For a CSR matrix, Numba kernels run whole Lanczos processes, in parallel: without
    reorthogonalization one per group of up to four columns (:func:`_lanczos_csr_blocks`: A is
    read once per step for the group, and one pass over the vectors per step), with full
    reorthogonalization one per column (:func:`_lanczos_csr`). Otherwise all b columns advance
    together: one product A Q per step, and the vector updates and Gram-Schmidt passes run as
    Numba kernels over row chunks with the columns contiguous (n x b, and steps x n x b for
    the basis), each streaming its arrays once. Every column's sums are formed in an order
    that depends neither on the number of threads nor on the other columns: results are
    reproducible.
    """
    n, b = V.shape
    dtype = np.result_type(V.dtype, np.float32)
    eps = np.finfo(dtype).eps
    csr = _csr_matrix(op, dtype)
    if csr is not None and reorth == "none":
        return _lanczos_csr_blocks(op, csr, V, steps, eps)
    if csr is not None and reorth == "full":
        return _lanczos_csr(op, csr, V, steps, True, eps)
    alpha, beta = np.zeros((steps, b)), np.zeros((steps, b))
    lengths = np.full(b, steps)
    active = np.ones(b, dtype=bool)
    K = _SERIAL if n * b < _PARALLEL_MIN else _PARALLEL
    chunks = -(-n // _CHUNK_ROWS)
    dots = np.empty((chunks, b))                      # per-chunk partial column sums
    # row i of the basis, basis[i, :k, :], is one contiguous stretch: Gram-Schmidt streams it
    basis = np.empty((n, steps, b), dtype) if reorth != "none" else None
    q = np.array(V, dtype=dtype, order="C")
    if basis is not None:
        basis[:, 0, :] = q
    q_prev, w = np.zeros((n, b), dtype), np.empty((n, b), dtype)
    beta_prev = np.zeros(b)
    omega, omega_prev = np.zeros((steps + 1, b)), np.zeros((steps + 1, b))
    omega[0] = 1.0
    force = np.zeros(b, dtype=bool)  # partial: reorthogonalize twice in a row
    norm_est = np.zeros(b)
    for j in range(steps):
        a = _product(K, op, csr, q, w, active, dots)
        alpha[j] = a
        K.recurrence(w, q, q_prev, a.astype(dtype), beta_prev.astype(dtype), dots)
        bnorm = np.sqrt(dots.sum(axis=0))
        if reorth == "full":
            bnorm = _reorthogonalize(K, basis, j + 1, w, active, bnorm, dots)
        elif reorth == "partial":
            omega_next = _omega_step(omega, omega_prev, alpha, beta, bnorm, beta_prev, j, eps)
            lost = ((np.abs(omega_next[:j + 1]).max(axis=0) > math.sqrt(eps)) | force) & active
            if lost.any():
                bnorm = _reorthogonalize(K, basis, j + 1, w, lost, bnorm, dots, passes=2)
            omega_next[:j + 1, lost] = eps
            force = lost & ~force
            omega_prev, omega = omega, omega_next
        if not np.all(np.isfinite(bnorm)):
            raise ValueError("A produced NaN or Inf in products (check the data or the "
                             "LinearOperator)")
        beta[j] = bnorm
        norm_est = np.maximum(norm_est, np.abs(a) + bnorm + beta_prev)
        done = active & (bnorm <= 10 * eps * np.maximum(norm_est, np.finfo(float).tiny))
        lengths[done] = j + 1
        active &= ~done
        if not active.any() or j == steps - 1:
            break
        scale = np.where(active, 1.0 / np.where(active, bnorm, 1.0), 0.0)
        nxt = q_prev                                   # q_{j+1}; zero for stopped columns
        if basis is not None:
            K.scale_store(w, scale.astype(dtype), nxt, basis, j + 1)
        else:
            K.scale(w, scale.astype(dtype), nxt)
        q_prev, q = q, nxt
        beta_prev = np.where(active, bnorm, 0.0)
    return alpha, beta, lengths


def _lanczos_csr(op, csr, V, steps, full, eps):
    """:func:`lanczos` for a CSR matrix: one Numba kernel runs every column's whole Lanczos
    process, the columns in parallel. A column's vectors stay in cache and threads meet once,
    not at every step (on a busy machine, a barrier per step cost more than the step)."""
    n, b = V.shape
    Vt = np.ascontiguousarray(V.T, dtype=csr.dtype)
    alpha, beta = np.zeros((b, steps)), np.zeros((b, steps))
    lengths = np.full(b, steps)
    with numba.parallel_chunksize(1):   # vectors handed out one at a time, as threads free up
        _lanczos_columns(csr.indptr, csr.indices, csr.data, Vt, steps, full, float(eps),
                         alpha, beta, lengths)
    op.matvecs += int(lengths.sum())
    if not (np.all(np.isfinite(alpha)) and np.all(np.isfinite(beta))):
        raise ValueError("A produced NaN or Inf in products (check the data or the "
                         "LinearOperator)")
    return alpha.T.copy(), beta.T.copy(), lengths


@parallel_njit()
def _lanczos_columns(indptr, indices, data, Vt, steps, full, eps, alpha, beta, lengths):
    """Lanczos of each row of Vt (a unit vector) with the CSR matrix, rows in parallel;
    alpha, beta (b x steps) and lengths as :func:`lanczos` returns them, transposed. Each
    row's result depends on that row alone, not on which thread ran it."""
    b, n = Vt.shape
    for c in prange(b):
        work = np.empty((4 + (steps if full else 0), n), Vt.dtype)
        _lanczos_one(indptr, indices, data, Vt[c], steps, full, eps, alpha[c], beta[c],
                     lengths, c, work)


#: Reassociation lets LLVM vectorize the dot products (the order is still fixed at compile
#: time, so results are reproducible); NaN and Inf keep their IEEE meaning for the checks.
_FASTMATH = {"reassoc", "contract"}


def _lanczos_csr_blocks(op, csr, V, steps, eps):
    """:func:`lanczos` without reorthogonalization for a CSR matrix: the columns in groups of
    up to ``_GROUP``, each group's whole Lanczos process in one Numba kernel call
    (:func:`_lanczos_block`), the groups in parallel."""
    n, b = V.shape
    widths = _group_widths(b, numba.get_num_threads())
    starts = np.concatenate([[0], np.cumsum(widths)])
    alpha, beta = np.zeros((b, steps)), np.zeros((b, steps))
    lengths = np.full(b, steps)
    reach = _forward_reach(csr.indptr, csr.indices)
    with numba.parallel_chunksize(1):   # groups handed out one at a time, widest first
        _lanczos_blocks(csr.indptr, csr.indices, csr.data, reach,
                        np.ascontiguousarray(V, dtype=csr.dtype), starts, steps, float(eps),
                        alpha, beta, lengths)
    op.matvecs += int(lengths.sum())
    if not (np.all(np.isfinite(alpha)) and np.all(np.isfinite(beta))):
        raise ValueError("A produced NaN or Inf in products (check the data or the "
                         "LinearOperator)")
    return alpha.T.copy(), beta.T.copy(), lengths


#: Columns per group of :func:`_lanczos_block`: A's entries are read once per step for the
#: group, and a row of the group's vectors is one AVX2 register (float64).
_GROUP = 4


def _group_widths(b, threads):
    """Split b columns into groups of ``_GROUP`` (then 2 and 1), widest first, the groups of
    four a multiple of ``threads`` by splitting the rest in two (20 columns on 2 threads: 4,
    4, 4, 4, 2, 2, not 4, 4, 4, 4, 4, which leaves one thread idle for a fifth of the time).
    Each column's arithmetic is the same in any group: the split changes the speed, not the
    results."""
    fours, rest = divmod(b, _GROUP)
    split = fours % threads
    fours -= split
    twos, ones = divmod(rest + _GROUP * split, 2)
    return np.array([_GROUP] * fours + [2] * twos + [1] * ones, dtype=np.int64)


@numba.njit(cache=True)
def _forward_reach(indptr, indices):
    """max over the entries (i, k) of k - i (at least 0): how far ahead of row i the product
    with row i reads."""
    reach = 0
    for i in range(len(indptr) - 1):
        for p in range(indptr[i], indptr[i + 1]):
            reach = max(reach, indices[p] - i)
    return reach


@parallel_njit()
def _lanczos_blocks(indptr, indices, data, reach, V, starts, steps, eps, alpha, beta, lengths):
    """Group g, columns starts[g]:starts[g + 1] of V (n x b), in :func:`_lanczos_block`."""
    for g in prange(len(starts) - 1):
        a, b = starts[g], starts[g + 1]
        al, be, L = alpha[a:b], beta[a:b], lengths[a:b]
        # the tuple's length is the group width, a compile-time constant in each branch
        if b - a == 4:
            _lanczos_block(indptr, indices, data, reach, V, a, steps, eps, al, be, L, (0, 0, 0, 0))
        elif b - a == 2:
            _lanczos_block(indptr, indices, data, reach, V, a, steps, eps, al, be, L, (0, 0))
        else:
            _lanczos_block(indptr, indices, data, reach, V, a, steps, eps, al, be, L, (0,))


#: Fused multiply-adds but no reassociation in the blocked kernel: its sums run along the rows
#: with the columns in SIMD lanes, so LLVM needs no reordering to vectorize, and without it
#: each column's sums are formed in the same order in a group of any width (reassociation let
#: LLVM split the 4-scalar sums differently from the array sums: 1e-14 apart).
_CONTRACT = {"contract"}


@numba.njit(cache=True, fastmath=_CONTRACT)
def _lanczos_block(indptr, indices, data, reach, V, first, steps, eps, alpha, beta, lengths,
                   width):
    """Lanczos of the G = len(width) columns ``first:first + G`` of V side by side, one pass
    over the vectors per step.

    With q_j = c_j x_j (x_j stored, c_j = 1 / beta_{j-1}) and s_j = A x_j, step j is
    x_{j+1} = c_j s_j - alpha_j c_j x_j - beta_{j-1} c_{j-1} x_{j-1}, alpha_j = c_j^2 x_j^T s_j.
    Pass j forms s_j row by row while it finishes x_j (from s_{j-1}, x_{j-1}, x_{j-2}) ``reach``
    rows ahead, just before the product reads them: one sweep reads s, x_{j-1} and x_{j-2} and
    writes s_j and x_j, for any sparsity (a wide ``reach`` only costs cache). x_j's norm, thus
    beta_{j-1} and c_j, is known at the end of pass j, and alpha_j with it."""
    n = V.shape[0]
    G = len(width)
    work = np.zeros((2, n, G), V.dtype)
    cur, prev = work[0], work[1]        # x_j (over x_{j-2}) and x_{j-1}
    for i in range(n):
        for t in range(G):
            cur[i, t] = V[i, first + t]
    s = np.empty((n, G), V.dtype)       # s_{j-1}, overwritten by s_j row by row
    acc = np.empty(G)                   # row sums in float64, as the scalars below
    xs, sq = np.zeros(G), np.zeros(G)
    c, c_prev = np.ones(G), np.zeros(G)
    a_prev, b_prev, norm_est = np.zeros(G), np.zeros(G), np.zeros(G)
    active = np.ones(G, np.bool_)
    for j in range(steps + 1):
        xs[:] = 0.0
        sq[:] = 0.0
        done = 0 if j > 0 else n        # rows of x_j finished (x_0 = V needs nothing)
        for i in range(n if j < steps else 0):
            ahead = min(n, i + reach + 1)
            _finish_rows(s, cur, prev, done, ahead, c_prev, a_prev, b_prev, c, sq)
            done = max(done, ahead)
            if G == 4:                  # scalars stay in registers (measured 5% faster)
                a0 = a1 = a2 = a3 = 0.0
                for p in range(indptr[i], indptr[i + 1]):
                    k = np.uint64(indices[p])
                    d = data[p]
                    a0 += d * cur[k, 0]
                    a1 += d * cur[k, 1]
                    a2 += d * cur[k, 2]
                    a3 += d * cur[k, 3]
                acc[0], acc[1], acc[2], acc[3] = a0, a1, a2, a3
            else:
                acc[:] = 0.0
                for p in range(indptr[i], indptr[i + 1]):
                    k = np.uint64(indices[p])
                    d = data[p]
                    for t in range(G):
                        acc[t] += d * cur[k, t]
            for t in range(G):
                s[i, t] = acc[t]
                xs[t] += cur[i, t] * acc[t]
        _finish_rows(s, cur, prev, done, n, c_prev, a_prev, b_prev, c, sq)
        for t in range(G):
            if j > 0 and active[t]:     # x_j is finished: beta_{j-1} = ||x_j||
                bn = math.sqrt(sq[t])
                beta[t, j - 1] = bn
                norm_est[t] = max(norm_est[t], abs(a_prev[t]) + bn + b_prev[t])
                b_prev[t] = bn
                if bn <= 10 * eps * max(norm_est[t], 1e-300):   # invariant Krylov space
                    lengths[t] = j
                    active[t] = False
                    b_prev[t] = 0.0
            # a stopped column's coefficients are 0 from here: its vectors stay 0
            c_next = (1.0 / math.sqrt(sq[t]) if j > 0 else 1.0) if active[t] else 0.0
            c_prev[t], c[t] = c[t], c_next
            a_prev[t] = c_next * c_next * xs[t]
            if j < steps and active[t]:
                alpha[t, j] = a_prev[t]
        cur, prev = prev, cur


@numba.njit(cache=True, fastmath=_CONTRACT, inline="always")
def _finish_rows(s, cur, prev, lo, hi, c_prev, a_prev, b_prev, c, sq):
    """Rows lo:hi of x_j = c_{j-1} s_{j-1} - alpha_{j-1} c_{j-1} x_{j-1} - beta_{j-2} c_{j-2}
    x_{j-2} into cur (which holds x_{j-2}); sq += their squares. Before the step's
    coefficients are updated, c holds c_{j-1}, c_prev c_{j-2}, a_prev alpha_{j-1} and b_prev
    beta_{j-2}."""
    G = s.shape[1]
    for i in range(lo, hi):
        for t in range(G):
            x = s[i, t] * c[t] - a_prev[t] * (prev[i, t] * c[t]) \
                - b_prev[t] * (cur[i, t] * c_prev[t])
            cur[i, t] = x
            sq[t] += x * x


@numba.njit(cache=True, fastmath=_FASTMATH)
def _lanczos_one(indptr, indices, data, v, steps, full, eps, alpha, beta, lengths, c, work):
    """One vector's Lanczos process in two passes over its vectors per step: the first
    scales the previous w into q_j while it forms A q_j = (A w) / beta_{j-1} and alpha_j;
    the second forms the next w and its norm. work holds 4 rotating vectors (+ the basis)."""
    n = v.shape[0]
    basis = work[4:]
    u, q, q_prev, w = work[0], work[1], work[2], work[3]
    u[:] = v                                    # u: q_j before scaling by inv
    q_prev[:] = 0.0
    inv, beta_prev, norm_est = 1.0, 0.0, 0.0
    for j in range(steps):
        a = 0.0
        for i in range(n):                      # q_j = u inv, w = A q_j, alpha = q_j^T w
            s = 0.0
            for p in range(indptr[i], indptr[i + 1]):
                s += data[p] * u[np.uint64(indices[p])]
            s *= inv
            qi = u[i] * inv
            q[i] = qi
            w[i] = s
            a += qi * s
        if full:
            basis[j] = q
        alpha[j] = a
        sq = 0.0
        for i in range(n):
            x = w[i] - a * q[i] - beta_prev * q_prev[i]
            w[i] = x
            sq += x * x
        if full:                                # Gram-Schmidt, twice if needed
            before = math.sqrt(sq)
            for _ in range(2):
                # modified Gram-Schmidt, one basis vector at a time: it is read from memory
                # once, and is still in cache for the update (classical Gram-Schmidt's two
                # sweeps read the whole basis twice; measured 1.5x slower at n = 90000)
                for k in range(j + 1):
                    bk = basis[k]
                    t = 0.0
                    for i in range(n):
                        t += bk[i] * w[i]
                    for i in range(n):
                        w[i] -= t * bk[i]
                sq = 0.0
                for i in range(n):
                    sq += w[i] * w[i]
                if math.sqrt(sq) >= 0.7 * before:
                    break
                before = math.sqrt(sq)
        bn = math.sqrt(sq)
        beta[j] = bn
        norm_est = max(norm_est, abs(a) + bn + beta_prev)
        if bn <= 10 * eps * max(norm_est, 1e-300):  # invariant Krylov space: stop
            lengths[c] = j + 1
            return
        inv = 1.0 / bn
        # rotate: w becomes u (scaled on the next pass), q becomes q_prev, the old q_prev and
        # u are free for the next q and w
        u, q, q_prev, w = w, q_prev, q, u
        beta_prev = bn


#: Rows per chunk of the Numba kernels: the unit of parallel work and of partial sums.
_CHUNK_ROWS = 2048


def _csr_matrix(op, dtype):
    """The scipy CSR matrix behind a counted operator, when the fused kernel can use it,
    divided by the operator's scale as its products are (a copy only for extreme scales)."""
    A = getattr(getattr(op, "op", None), "A", None)
    if type(getattr(op, "op", None)) is SparseOperator and A.format == "csr" \
            and A.dtype == dtype:
        c = op.fix_scale(float(np.max(np.abs(A.data), initial=0.0)))
        if c == 1.0:
            return A
        if op.scaled_csr is None:  # indices shared: only the values are copied
            op.scaled_csr = sp.csr_matrix((A.data / np.asarray(c, A.dtype), A.indices, A.indptr),
                                          shape=A.shape)
        return op.scaled_csr
    return None


def _product(K, op, csr, q, w, active, dots):
    """w = A q (zero in stopped columns) and returns alpha = column-wise q^T w."""
    if csr is not None:
        op.matvecs += int(active.sum())
        K.csr_product(csr.indptr, csr.indices, csr.data, q, w, dots)
        return dots.sum(axis=0)
    if active.all():
        w[:] = op.matmat(q)
    else:
        w[:] = 0
        w[:, active] = op.matmat(q[:, active])
    K.coldot(q, w, dots)
    return dots.sum(axis=0)


def _reorthogonalize(K, basis, k, w, cols, bnorm, dots, passes=None):
    """Classical Gram-Schmidt of the columns ``cols`` of w against their first k basis
    vectors (basis[:, :k, c]); returns the updated column norms. ``passes=None``: a second
    pass only for the columns the first cancelled much ("twice is enough", Kahan-Parlett)."""
    b = w.shape[1]
    h = np.empty((dots.shape[0], k, b))
    before = bnorm
    for it in range(passes or 2):
        K.project(basis, k, w, cols, h)
        K.subtract(basis, k, w, cols, h.sum(axis=0).astype(w.dtype), dots)
        after = np.where(cols, np.sqrt(dots.sum(axis=0)), bnorm)
        if passes is None and it == 0:
            cols = cols & (after < 0.7 * before)
            if not cols.any():
                return after
        bnorm = after
    return bnorm


# -- Numba kernels over fixed row chunks (w, q: n x b row-major; basis: n x steps x b) --------
@parallel_njit()
def _csr_product(indptr, indices, data, q, w, dots):
    n, b = q.shape
    for t in prange(dots.shape[0]):
        for c in range(b):
            dots[t, c] = 0.0
        for i in range(t * _CHUNK_ROWS, min(n, (t + 1) * _CHUNK_ROWS)):
            for c in range(b):
                w[i, c] = 0.0
            for p in range(indptr[i], indptr[i + 1]):
                k, v = indices[p], data[p]
                for c in range(b):
                    w[i, c] += v * q[k, c]
            for c in range(b):
                dots[t, c] += q[i, c] * w[i, c]


@parallel_njit()
def _coldot(q, w, dots):
    n, b = q.shape
    for t in prange(dots.shape[0]):
        for c in range(b):
            dots[t, c] = 0.0
        for i in range(t * _CHUNK_ROWS, min(n, (t + 1) * _CHUNK_ROWS)):
            for c in range(b):
                dots[t, c] += q[i, c] * w[i, c]


@parallel_njit()
def _recurrence(w, q, q_prev, a, beta_prev, dots):
    """w -= a q + beta_prev q_prev; dots = partial column sums of w^2."""
    n, b = q.shape
    for t in prange(dots.shape[0]):
        for c in range(b):
            dots[t, c] = 0.0
        for i in range(t * _CHUNK_ROWS, min(n, (t + 1) * _CHUNK_ROWS)):
            for c in range(b):
                x = w[i, c] - a[c] * q[i, c] - beta_prev[c] * q_prev[i, c]
                w[i, c] = x
                dots[t, c] += x * x


@parallel_njit()
def _scale(w, s, out):
    n, b = w.shape
    for t in prange(-(-n // _CHUNK_ROWS)):
        for i in range(t * _CHUNK_ROWS, min(n, (t + 1) * _CHUNK_ROWS)):
            for c in range(b):
                out[i, c] = w[i, c] * s[c]


@parallel_njit()
def _scale_store(w, s, out, basis, j):
    """out = w s (column scaling), also stored as basis[:, j, :]."""
    n, b = w.shape
    for t in prange(-(-n // _CHUNK_ROWS)):
        for i in range(t * _CHUNK_ROWS, min(n, (t + 1) * _CHUNK_ROWS)):
            for c in range(b):
                x = w[i, c] * s[c]
                out[i, c] = x
                basis[i, j, c] = x


@parallel_njit()
def _project(basis, k, w, cols, h):
    """h[t, l, c] = sum over the rows of chunk t of basis[i, l, c] w[i, c], for l < k."""
    n, b = w.shape
    for t in prange(h.shape[0]):
        for l in range(k):
            for c in range(b):
                h[t, l, c] = 0.0
        for i in range(t * _CHUNK_ROWS, min(n, (t + 1) * _CHUNK_ROWS)):
            for l in range(k):
                for c in range(b):
                    h[t, l, c] += basis[i, l, c] * w[i, c]
        for c in range(b):
            if not cols[c]:
                for l in range(k):
                    h[t, l, c] = 0.0


@parallel_njit()
def _subtract(basis, k, w, cols, h, dots):
    """w[:, c] -= basis[:, :k, c] h[:, c] for the columns ``cols``; dots = partial sums of w^2."""
    n, b = w.shape
    for t in prange(dots.shape[0]):
        for c in range(b):
            dots[t, c] = 0.0
        for i in range(t * _CHUNK_ROWS, min(n, (t + 1) * _CHUNK_ROWS)):
            for l in range(k):
                for c in range(b):
                    w[i, c] -= basis[i, l, c] * h[l, c]
            for c in range(b):
                dots[t, c] += w[i, c] * w[i, c]



class _Kernels:
    """The row-chunked kernels, parallel or serial (same code, same chunks, same sums)."""

    def __init__(self, parallel):
        for name in ("csr_product", "coldot", "recurrence", "scale", "scale_store", "project",
                     "subtract"):
            kernel = globals()["_" + name]
            setattr(self, name, kernel if parallel else
                    numba.njit(cache=True)(kernel.__wrapped__))


_PARALLEL, _SERIAL = _Kernels(True), _Kernels(False)
#: Below this many entries in an n x b block, a parallel region costs more than it saves
#: (threads meet at every step; on a busy machine each meeting can wait a time slice).
_PARALLEL_MIN = 1 << 17


def _omega_step(omega, omega_prev, alpha, beta, beta_j, beta_jm1, j, eps):
    """Simon's recurrence: estimates of q_{j+1}^T q_k, k <= j, from the tridiagonal entries."""
    out = np.zeros_like(omega)
    safe = np.where(beta_j > 0, beta_j, 1.0)
    if j > 0:
        k = np.arange(j)
        beta_km1 = np.vstack([np.zeros((1, beta.shape[1])), beta[:j - 1]])
        omega_km1 = np.vstack([np.zeros((1, omega.shape[1])), omega[:j - 1]])
        val = (beta[k] * omega[k + 1] + (alpha[k] - alpha[j]) * omega[k]
               + beta_km1 * omega_km1 - beta_jm1 * omega_prev[k])
        out[:j] = (val + np.sign(val) * 2 * eps * np.abs(beta_j)) / safe
    out[j] = eps * math.sqrt(omega.shape[0])
    out[j + 1] = 1.0
    return out


class _SLQ:
    #: Lanczos runs on A / scale (its products); the Ritz values are scaled back before f
    homogeneous = False

    def __init__(self, op, vectors, f, positive, degree, reorth):
        self.op, self.vectors, self.f, self.positive = op, vectors, f, positive
        self.degree, self.reorth = degree, reorth
        self.samples = np.empty(0)

    def grow(self, budget):
        n = self.op.shape[0]
        extra = budget // self.degree - len(self.samples)
        itemsize = np.dtype(self.op.dtype).itemsize
        stored = self.degree if self.reorth != "none" else 4   # basis, or q, q_prev, w, W
        width = rows_within(_BASIS_BYTES, stored * n * itemsize, total=32)
        while extra > 0:
            b = min(width, extra)
            W = self.vectors.draw(b)
            norms = np.linalg.norm(W, axis=0)
            alpha, beta, lengths = lanczos(self.op, W / norms, self.degree, self.reorth)
            values = [self._quadrature(alpha[:L, c], beta[:L - 1, c]) for c, L in
                      enumerate(lengths)]
            self.samples = np.concatenate([self.samples, norms ** 2 * np.array(values)])
            extra -= b

    def _quadrature(self, a, b):
        theta, V = sla.eigh_tridiagonal(a, b, check_finite=False)
        theta = theta * self.op.unit
        if self.positive and theta.min() <= 0:
            raise ValueError(f"A is not positive definite: Lanczos found the eigenvalue "
                             f"{theta.min():.3g} <= 0, outside the domain of f")
        values = np.asarray(self.f(theta), dtype=float)
        if values.shape != theta.shape:
            raise ValueError("f must map an array of eigenvalues to an array of the same shape")
        return float(np.sum(V[0] ** 2 * values))

    def estimate(self):
        return float(np.mean(self.samples)), sample_error(self.samples)


def slq(A, f, m=None, *, degree=30, tol=None, atol=None, reorth="full", sketch="rademacher",
        normalize=False, n=None, rng=None):
    """Stochastic Lanczos quadrature: an estimate of tr f(A) for symmetric A.

    Parameters
    ----------
    A : ndarray, scipy.sparse matrix, LinearOperator or callable, shape (n, n)
        Real symmetric A, or a function ``x -> A @ x`` for vectors of length ``n``.
    f : callable or {"log", "exp", "inv", "sqrt"}
        Applied to arrays of Ritz values. "log", "inv" and "sqrt" need A positive definite.
    m : int, optional
        Products with A to spend: ``m // degree`` test vectors of ``degree`` Lanczos steps each
        (fewer when a Krylov space becomes invariant). With ``tol``/``atol``, the cap
        (default ``degree * n``).
    degree : int
        Lanczos steps (quadrature nodes) per test vector.
    tol, atol : float, optional
        Adaptive mode: add test vectors until the standard error is at most
        ``max(atol, tol * |estimate|)``.
    reorth : {"full", "partial", "none"}
        Reorthogonalization of the Lanczos vectors (see :func:`lanczos`). "none" stores no basis.
    sketch, normalize, n, rng
        As for :func:`hutchinson`.

    Returns
    -------
    TraceResult
        ``.error`` is the Monte Carlo standard error over test vectors; it does not include
        the quadrature error, which decays fast in ``degree`` for smooth f.

    Examples
    --------
    >>> import numpy as np, randla.trace as rt
    >>> G = np.random.default_rng(0).standard_normal((200, 200))
    >>> A = G @ G.T / 200 + np.eye(200)
    >>> t = rt.slq(A, "log", 600, degree=20, rng=0)
    >>> exact = np.linalg.slogdet(A)[1]
    >>> t.matvecs, bool(abs(t - exact) < 4 * t.error + 1e-6 * exact)
    (600, True)
    """
    func, positive = _resolve_function(f)
    check_choice(reorth, "reorth", _REORTH)
    degree = check_positive_int(degree, "degree")
    op, vectors, m, adaptive = setup(A, m, tol, atol, n, sketch, normalize, rng, 1,
                                     symmetric=True, default_cap=lambda size: degree * size,
                                     default_budget=lambda size: degree * min(size, 20))
    if m < degree:
        raise ValueError(f"m must be >= degree = {degree} (one test vector), got {m}")
    state = _SLQ(op, vectors, func, positive, min(degree, op.shape[0]), reorth)
    est, err = run(state, m, adaptive, tol, atol, first=8 * degree)
    return TraceResult(est, err, op.matvecs, "slq" if not isinstance(f, str) else f"slq-{f}")


def logdet(A, m=None, *, degree=30, tol=None, atol=None, reorth="full", sketch="rademacher",
           normalize=False, n=None, rng=None):
    """log det(A) of a symmetric positive definite A, by stochastic Lanczos quadrature:
    ``slq(A, "log", ...)``; see :func:`slq` for the parameters.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, randla.trace as rt
    >>> L = sp.diags([-1.0, 2.5, -1.0], [-1, 0, 1], shape=(500, 500))
    >>> t = rt.logdet(L, 300, rng=0)
    >>> exact = np.linalg.slogdet(L.toarray())[1]
    >>> bool(abs(t - exact) < 0.01 * exact)
    True
    """
    result = slq(A, "log", m, degree=degree, tol=tol, atol=atol, reorth=reorth, sketch=sketch,
                 normalize=normalize, n=n, rng=rng)
    return TraceResult(float(result), result.error, result.matvecs, "logdet")
