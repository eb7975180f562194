"""One pass over a dense A for r = b - A x and g = A^T r (float64, one right-hand side).

The iterations of :func:`randla.lstsq` are memory-bound: each needs r and g, and reading A
once for both is what they cost. Row blocks handed to BLAS (``A_i @ x``, ``A_i.T @ r_i``) pay a
call and a temporary per block; this kernel reads each row once, takes the dot products of
four rows with x together (x is loaded once for the four) and adds the four rows, weighted by
their residuals, into the gradient in the same sweep. Measured on 40000 x 1000 (one thread,
medians of 7, interleaved, loaded machine): 23 ms against 28-30 ms for the BLAS row blocks and
14-22 ms for a bare read of A.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._numba import parallel_njit

#: Row ranges summed into separate gradients (then added in a fixed order): the result does not
#: depend on the number of threads.
PARTS = 16
#: Reassociation is what lets the dot products use SIMD lanes; no assumption about NaN or Inf.
_FLAGS = {"reassoc", "contract", "nsz"}


@njit(fastmath=_FLAGS, cache=True, inline="always")
def _rows(A, b, x, r, g, lo, hi):
    n = A.shape[1]
    i = lo
    while i + 3 < hi:
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for c in range(n):
            xc = x[c]
            s0 += A[i, c] * xc
            s1 += A[i + 1, c] * xc
            s2 += A[i + 2, c] * xc
            s3 += A[i + 3, c] * xc
        t0 = b[i] - s0
        t1 = b[i + 1] - s1
        t2 = b[i + 2] - s2
        t3 = b[i + 3] - s3
        r[i] = t0
        r[i + 1] = t1
        r[i + 2] = t2
        r[i + 3] = t3
        for c in range(n):
            g[c] += (t0 * A[i, c] + t1 * A[i + 1, c]) + (t2 * A[i + 2, c] + t3 * A[i + 3, c])
        i += 4
    while i < hi:
        s = 0.0
        for c in range(n):
            s += A[i, c] * x[c]
        t = b[i] - s
        r[i] = t
        for c in range(n):
            g[c] += t * A[i, c]
        i += 1


@parallel_njit(fastmath=_FLAGS)
def _kernel(A, b, x, r, G):
    m = A.shape[0]
    parts = G.shape[0]
    for p in prange(parts):
        _rows(A, b, x, r, G[p], p * m // parts, (p + 1) * m // parts)


def residual_and_gradient_1(A, b, x):
    """(b - A x, A^T (b - A x)) for a C-contiguous float64 A (m, n) and float64 b (m,), x (n,)."""
    r = np.empty(A.shape[0])
    G = np.zeros((PARTS, A.shape[1]))
    _kernel(A, np.ascontiguousarray(b, dtype=np.float64), np.ascontiguousarray(x, np.float64),
            r, G)
    return r, G.sum(axis=0)


# -- S @ A for the default sparse sign sketch and a row-major dense A -------------------------
#: Bytes of the private accumulator of a column tile (d x w, contiguous: kept in L2/L3).
_ACC_BYTES = 4 << 20
#: Columns of S whose pattern is generated at once (bounds its buffers to ~40 MB).
PATTERN_COLUMNS = 1 << 20


@parallel_njit()
def _sketch_tiles(rows, signs, X, Y, tile):
    """Y[:, tile t] += B @ X[:, tile t] for B given by rows/signs (its nonzeros per column).

    Each column tile accumulates into a private contiguous d x w buffer, added to Y at the end.
    (Accumulating straight into Y, whose tile rows lie 8 n bytes apart, maps them onto a few
    cache sets: measured 2x slower at 40000 x 1000, d = 8010.) Offsets are unsigned so that
    Numba emits no negative-index wraparound and the inner loops stay SIMD."""
    m, p = X.shape
    d = Y.shape[0]
    k = rows.shape[1]
    for t in prange((p + tile - 1) // tile):
        c0 = np.uint64(t * tile)
        w = np.uint64(min(p, t * tile + tile) - t * tile)
        acc = np.zeros((d, tile), Y.dtype)
        for j in range(m):
            for q in range(k):
                r = rows[j, q]
                if signs[j, q] > 0:
                    for c in range(w):
                        acc[r, np.uint64(c)] += X[j, c0 + np.uint64(c)]
                else:
                    for c in range(w):
                        acc[r, np.uint64(c)] -= X[j, c0 + np.uint64(c)]
        for r in range(d):
            for c in range(w):
                Y[r, c0 + np.uint64(c)] += acc[r, np.uint64(c)]


def sparse_sign_apply(S, A, pattern):
    """S @ A for a sparse sign sketch S and a C-contiguous real A (m, n): the same sums in the
    same order as ``S @ A``. ``pattern(start, stop)`` gives the rows and signs of columns
    start:stop of S (:func:`randla.sketch.sparse_sign.sparse_sign_pattern`)."""
    m, n = A.shape
    d = S.shape[0]
    Y = np.zeros((d, n), A.dtype)
    tile = max(8, min(128, _ACC_BYTES // (d * A.itemsize)) // 8 * 8)
    tile = min(tile, max(8, -(-n // 4) // 8 * 8))   # at least a few tiles for the threads
    for start in range(0, m, PATTERN_COLUMNS):
        stop = min(m, start + PATTERN_COLUMNS)
        rows, signs = pattern(start, stop)
        _sketch_tiles(rows, signs, A[start:stop], Y, tile)
    Y *= A.dtype.type(S.scale)
    return Y
