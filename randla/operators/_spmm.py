"""Products of a sparse matrix in CSR form with a dense block of columns, as Numba kernels.

scipy's ``csr_matvecs`` (behind ``A @ X``) runs on one thread and, for a block of k columns,
costs about as much as k separate products with a vector. Here, for R in CSR form (indptr,
indices, data) and a C-ordered block X:

- :func:`gather` computes R @ X row by row: row i is the sum of R's stored entries in row i
  times the matching rows of X (contiguous in a C-ordered X). Rows run in parallel. The rows
  of X an entry will need are prefetched a few entries ahead: they are read in random order,
  and waiting for each from memory left the cores idle (a 200000 x 50000 CSR at density 1e-3
  times 60 float64 columns: 0.51 s without, 0.27 s with, on 2 threads).
- :func:`scatter` computes R^T @ X without transposing R: the output rows (R's columns) are cut
  into parts, and the thread of a part walks all of R's rows, adding entry (i, j) times row i
  of X into output row j for the j of its part. For a tall R the output is the small side, so
  its random writes stay in cache where a gather would read the large X in random order
  (R^T @ Y for that R, 20 float64 columns: 0.17 s against 0.33 s for the gather over R^T).

Every output row is computed by one thread, its terms added in a fixed order (R's storage
order; the scatter adds in the order of R's rows, which is the storage order of R^T as scipy's
``tocsc`` builds it): results do not depend on the thread count or on how rows are split, and
gather over R^T and scatter over R give the same bits. They equal scipy's to rounding (scipy
adds in the same order; compilers may fuse multiply-adds in one and not the other).
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .._numba import parallel_njit

#: dtypes the kernels are compiled for (data, block and result); others go to scipy.
KERNEL_DTYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.complex64,
                                                 np.complex128))
#: index dtypes the kernels are compiled for.
INDEX_DTYPES = frozenset(np.dtype(t) for t in (np.int32, np.int64))
#: Output bytes per part of a scatter (at least one part per thread). Measured on the tall
#: 200000 x 50000 case: parts of 4 MiB beat 1 MiB (more parts: each re-walks R's rows).
PART_BYTES = 1 << 22
#: Chunks of rows per thread in a gather, balanced by entries and by rows.
_CHUNKS_PER_THREAD = 8
#: Cache lines of X requested ahead of use (spread over the rows of X the next entries need).
_LINES_AHEAD = 128

_PREFETCH = "llvm.prefetch.p0" if llvm.llvm_version_info >= (15,) else "llvm.prefetch.p0i8"


def gather(indptr, indices, data, X, conj=False):
    """``R @ X`` for R = (data, indices, indptr) in CSR form with X.shape[0] columns, and a 2-D
    X; with ``conj``, ``conj(R) @ X``.

    The result has numpy's result type of data and X; both are converted to it first, as
    scipy does (a copy only for mixed types; X is made C-contiguous once). The caller checks
    the dtypes (:data:`KERNEL_DTYPES`, :data:`INDEX_DTYPES`) and that every column index is
    below X.shape[0]: the kernel does not.
    """
    conj, data, X = _prepare(data, X, conj)
    out = np.empty((len(indptr) - 1, X.shape[1]), dtype=X.dtype)
    if out.size:
        bounds = _row_chunks(indptr, _CHUNKS_PER_THREAD * numba.get_num_threads())
        _gather_rows(indptr, indices, data, X, conj, bounds, _ahead(X), out)
    return out


def scatter(indptr, indices, data, X, n_out, cumulative, conj=False):
    """``R^T @ X`` (``R^H @ X`` with ``conj``) for R = (data, indices, indptr) in CSR form
    with X.shape[0] rows, n_out columns and sorted column indices in each row.

    ``cumulative[j]`` is the number of R's entries in columns below j plus j (n_out + 1
    values): the output rows are cut into parts of equal work by it. Same dtype rules and
    caller's checks as :func:`gather`.
    """
    conj, data, X = _prepare(data, X, conj)
    out = np.empty((n_out, X.shape[1]), dtype=X.dtype)
    if out.size:
        edges = _balanced_bounds(cumulative, scatter_parts(n_out, X.shape[1], X.itemsize))
        _scatter_parts(indptr, indices, data, X, conj, edges, out)
    return out


def scatter_cumulative(indices, nnz, n_out):
    """The ``cumulative`` argument of :func:`scatter`: entries per column plus one, summed."""
    counts = np.bincount(indices[:nnz], minlength=n_out) + 1
    return np.concatenate([[0], np.cumsum(counts)])


def scatter_parts(n_out, k, itemsize):
    """How many parts :func:`scatter` cuts an n_out x k output of this itemsize into."""
    return max(numba.get_num_threads(), -(-n_out * k * itemsize // PART_BYTES))


def _prepare(data, X, conj):
    conj = bool(conj) and data.dtype.kind == "c"   # a real R: nothing to conjugate
    dtype = np.result_type(data.dtype, X.dtype)
    return conj, np.ascontiguousarray(data, dtype=dtype), np.ascontiguousarray(X, dtype=dtype)


def _row_chunks(indptr, chunks):
    """Row bounds cutting R into about ``chunks`` pieces of at most 1/chunks of its entries
    and 1/chunks of its rows each (rows with no entries still cost their zeroing)."""
    m = len(indptr) - 1
    by_entries = np.searchsorted(indptr, np.linspace(0, indptr[-1], chunks + 1))
    by_rows = np.linspace(0, m, chunks + 1).astype(np.int64)
    return np.unique(np.concatenate([by_entries.clip(0, m), by_rows, [0, m]]))


def _balanced_bounds(cumulative, parts):
    """Bounds of ``parts`` pieces of about equal ``cumulative`` weight (monotone, 0 to end)."""
    n = len(cumulative) - 1
    cuts = np.searchsorted(cumulative, np.linspace(0, cumulative[-1], parts + 1))
    return np.unique(np.concatenate([cuts.clip(0, n), [0, n]]))


def _ahead(X):
    """How many entries ahead the gather prefetches: _LINES_AHEAD lines, 4 to 32 rows."""
    lines = -(-X.shape[1] * X.itemsize // 64)
    return int(min(32, max(4, _LINES_AHEAD // max(lines, 1))))


@intrinsic
def _prefetch(typingctx, arr, i, j):
    """Ask for the cache line holding arr[i, j] (read, keep in all levels); no other effect."""
    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1], args[2]],
                                       wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _PREFETCH)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()
    return types.void(arr, types.intp, types.intp), codegen


@parallel_njit()
def _gather_rows(indptr, indices, data, X, conj, bounds, ahead, out):
    """out[i] = sum of data[p] X[indices[p]] over p in indptr[i]:indptr[i + 1] (data[p]
    conjugated when ``conj``), added in that order; chunks of rows (``bounds``) in parallel.
    Entries go in pairs, ``(out + a) + b``: the same sums in the same order as one at a time,
    with one load and store of the output row per pair (measured: 200000 x 50000 CSR,
    density 1e-3, 20 float64 columns on one thread, 95 ms one at a time, 63 ms in pairs)."""
    k = X.shape[1]
    last = indptr[-1]
    for t in prange(len(bounds) - 1):
        for i in range(bounds[t], bounds[t + 1]):
            for c in range(k):
                out[i, c] = 0
            p, stop = indptr[i], indptr[i + 1]
            while p + 1 < stop:
                _prefetch_row(X, indices, p + ahead, last)
                _prefetch_row(X, indices, p + ahead + 1, last)
                a, j = _value(data, p, conj), indices[p]
                b, l = _value(data, p + 1, conj), indices[p + 1]
                for c in range(k):
                    out[i, c] = (out[i, c] + a * X[j, c]) + b * X[l, c]
                p += 2
            if p < stop:
                a, j = _value(data, p, conj), indices[p]
                for c in range(k):
                    out[i, c] += a * X[j, c]


@numba.njit(cache=True, inline="always")
def _value(data, p, conj):
    return np.conj(data[p]) if conj else data[p]


@numba.njit(cache=True, inline="always")
def _prefetch_row(X, indices, p, last):
    """Prefetch the row of X that entry p needs (nothing past the last entry)."""
    if p < last:
        q = indices[p]
        for c in range(0, X.shape[1], max(1, 64 // X.itemsize)):
            _prefetch(X, q, c)


@parallel_njit()
def _scatter_parts(indptr, indices, data, X, conj, edges, out):
    """out = R^T X (R^H X with ``conj``) for R in CSR form with sorted indices in each row:
    part t owns output rows edges[t]:edges[t + 1] and adds R's entries in them, rows of R in
    order. Two entries of a row go together, sharing the read of X's row (one core, 200000 x
    50000 at density 1e-3, 20 float32 columns: 95 ms one at a time, 63 ms in pairs)."""
    k = X.shape[1]
    for t in prange(len(edges) - 1):   # all zeros first: a part writing outside its rows
        for j in range(edges[t], edges[t + 1]):   # would show, not be overwritten
            for c in range(k):
                out[j, c] = 0
    for t in prange(len(edges) - 1):
        lo, hi = edges[t], edges[t + 1]
        for i in range(len(indptr) - 1):
            p, stop = _first_at_least(indices, indptr[i], indptr[i + 1], lo), indptr[i + 1]
            while p + 1 < stop and indices[p + 1] < hi:
                a, j = _value(data, p, conj), indices[p]
                b, l = _value(data, p + 1, conj), indices[p + 1]
                for c in range(k):   # j == l (a duplicate entry) adds a, then b: in order
                    x = X[i, c]
                    out[j, c] += a * x
                    out[l, c] += b * x
                p += 2
            if p < stop and indices[p] < hi:
                a, j = _value(data, p, conj), indices[p]
                for c in range(k):
                    out[j, c] += a * X[i, c]


@numba.njit(cache=True, inline="always")
def _first_at_least(indices, start, stop, lo):
    """First p in start:stop with indices[p] >= lo (stop if none), indices sorted there."""
    while start < stop:
        mid = (start + stop) >> 1
        if indices[mid] < lo:
            start = mid + 1
        else:
            stop = mid
    return start
