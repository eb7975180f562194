"""Top-N items of users from factors, in row batches: the scores of all users never exist at once.

Scores of a batch are one GEMM (``P[batch] @ Q.T``); a Numba kernel then keeps the n best of
each row in a heap of size n (one comparison for almost every item), skipping the user's seen
items, in parallel over rows. ``np.argpartition`` would allocate an int64 index array as large
as the scores and run several times slower.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

#: Memory for one batch of scores, in bytes.
BATCH_BYTES = 64 * 2**20


@njit(inline="always")
def _less(v1, i1, v2, i2):
    """(v1, i1) ranks below (v2, i2): a lower score, or the same score and a larger index."""
    return v1 < v2 or (v1 == v2 and i1 > i2)


@njit(inline="always")
def _sift_down(hv, hi, pos, size):
    while True:
        child = 2 * pos + 1
        if child >= size:
            return
        if child + 1 < size and _less(hv[child + 1], hi[child + 1], hv[child], hi[child]):
            child += 1
        if not _less(hv[child], hi[child], hv[pos], hi[pos]):
            return
        hv[pos], hv[child] = hv[child], hv[pos]
        hi[pos], hi[child] = hi[child], hi[pos]
        pos = child


@njit(parallel=True, cache=True)
def _top_rows(scores, offset, rows, seen_indptr, seen_indices, out):
    """out[r] = indices of the out.shape[1] largest scores[r] + offset (ties: smaller index
    first), skipping the items seen_indices[seen_indptr[rows[r]]:...]; -1 pads a row whose
    user has fewer unseen items."""
    b, n_items = scores.shape
    n = out.shape[1]
    has_seen = seen_indptr.shape[0] > 0
    has_offset = offset.shape[0] > 0
    for r in prange(b):
        s = scores[r]
        if has_seen:
            u = rows[r]
            for p in range(seen_indptr[u], seen_indptr[u + 1]):
                s[seen_indices[p]] = -np.inf
        hv = np.full(n, -np.inf, dtype=np.float64)
        hi = np.full(n, -1, dtype=np.int64)
        for j in range(n_items):
            v = s[j] + offset[j] if has_offset else s[j]
            if v == -np.inf or not _less(hv[0], hi[0], v, j):
                continue
            hv[0], hi[0] = v, j
            _sift_down(hv, hi, 0, n)
        # pop the minimum n times: the order comes out ascending, written back to front
        for pos in range(n - 1, -1, -1):
            out[r, pos] = hi[0]
            hv[0], hi[0] = hv[pos], hi[pos]
            _sift_down(hv, hi, 0, pos)


def top_n(P, Q, users, n, *, offset=None, seen=None, batch_bytes=BATCH_BYTES):
    """Item indices (len(users), n) of the largest ``P[u] @ Q.T + offset`` for each user u.

    ``seen`` (CSR, users x items) lists items to leave out; users with fewer than n other
    items get -1 in the remaining places. ``seen`` may also be a function of a batch's user
    indices returning their rows (CSR, one row per user of the batch): a matrix on disk is
    then read a batch at a time. Memory: one batch of scores (``batch_bytes``).
    """
    users = np.asarray(users, dtype=np.int64)
    n_items = Q.shape[0]
    dtype = np.result_type(P.dtype, Q.dtype)
    out = np.empty((len(users), n), dtype=np.int64)
    off = np.zeros(0, dtype) if offset is None else np.ascontiguousarray(offset, dtype=dtype)
    batch_seen = seen if callable(seen) else None
    if seen is None or batch_seen is not None:
        indptr, indices = np.zeros(0, np.int64), np.zeros(0, np.int32)
    else:
        indptr, indices = seen.indptr, seen.indices
    step = max(1, min(len(users), int(batch_bytes // (max(n_items, 1) * dtype.itemsize))))
    Qt = np.ascontiguousarray(Q.T, dtype=dtype)
    # one buffer for every batch: a fresh 64 MiB array per batch costs page faults (measured:
    # as much system time as the GEMM and the selection together)
    buf = np.empty((step, n_items), dtype=dtype)
    for start in range(0, len(users), step):
        rows = users[start:start + step]
        scores = np.matmul(np.ascontiguousarray(P[rows], dtype=dtype), Qt, out=buf[:len(rows)])
        if batch_seen is None:
            _top_rows(scores, off, rows, indptr, indices, out[start:start + step])
        else:   # the batch's own rows: row r of the batch is row r of its seen matrix
            S = batch_seen(rows)
            _top_rows(scores, off, np.arange(len(rows)), S.indptr, S.indices,
                      out[start:start + step])
    return out
