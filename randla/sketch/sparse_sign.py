"""Sparse sign sketches: zeta random +-1/sqrt(zeta) entries per column (zeta = 1: CountSketch).

S = B / sqrt(k), k = min(zeta, d), where column j of B has +-1 at k distinct uniform rows. The
rows and signs of column j are a pure function of (seed, j) (counter-based,
:mod:`randla.sketch.rng`), so any column block is generated on its own. S is applied as B @ X
by the Numba kernels below, which add or subtract rows of X into rows of the result without
ever forming S, then scale once.
"""
from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from .._numba import parallel_njit
from .._validation import check_positive_int
from . import rng as _rng
from .base import Sketcher

_STREAM_ROWS = _rng.STREAMS["sparse_sign.rows"]
_STREAM_SIGNS = _rng.STREAMS["sparse_sign.signs"]
#: Columns of S generated at once while applying (bounds the rows/signs buffers to ~40 MB).
_COLS_PER_PASS = 1 << 20
#: Bytes of the result tile each thread accumulates into (kept in L2), row- and column-major X.
_TILE_BYTES = 1 << 20
_PANEL_BYTES = 1 << 19
#: Rows of a column-major X transposed at once into a thread's buffer.
_PANEL_ROWS = 128


def sparse_sign_pattern(seed, d, zeta, start, stop):
    """Rows (int32, sorted per column) and signs (int8, +-1) of columns start:stop of B.

    Returns two arrays of shape (stop - start, min(zeta, d)).
    """
    k = min(zeta, d)
    rows = np.empty((stop - start, k), np.int32)
    signs = np.empty((stop - start, k), np.int8)
    if stop > start:
        if k < d:
            _rng.fill_choice(rows, seed, _STREAM_ROWS, start, d)
        else:  # every row is a nonzero
            rows[:] = np.arange(d, dtype=np.int32)
        _rng.fill_sign(signs, seed, _STREAM_SIGNS, 0, start, 1)
    return rows, signs


class SparseSign(Sketcher):
    """Sparse sign sketch: each column has min(zeta, d) nonzeros +-1/sqrt(min(zeta, d)) at
    distinct uniformly random rows, so that E[S^T S] = I.

    ``zeta=1`` is CountSketch (the Clarkson-Woodruff sketch). A subspace embedding for r
    dimensions needs d of order r log r with zeta of order log r (Cohen 2016; zeta = 8 is the
    usual safe default, Tropp et al. 2019). Applying S costs zeta additions per entry of X,
    whatever d is.

    Parameters
    ----------
    d, n, rng, dtype
        As for :class:`Sketcher`.
    zeta : int, default 8
        Nonzeros per column (capped at d).

    Examples
    --------
    >>> import numpy as np
    >>> from randla.sketch import SparseSign
    >>> S = SparseSign(30, 1000, zeta=4, rng=0)
    >>> S[:, :5].getnnz(axis=0).tolist()
    [4, 4, 4, 4, 4]
    >>> X = np.random.default_rng(0).standard_normal((1000, 3))
    >>> bool(np.allclose(S @ X, S.to_dense() @ X))
    True
    """

    kind = "sparse_sign"

    def __init__(self, d, n, *, zeta=8, rng=None, dtype=np.float64):
        super().__init__(d, n, rng=rng, dtype=dtype)
        self.zeta = check_positive_int(zeta, "zeta")
        self.nnz_per_column = min(self.zeta, self.d)

    def params(self):
        return {"zeta": self.zeta}

    def __repr__(self):
        return super().__repr__()[:-1] + f", zeta={self.zeta})"

    @property
    def scale(self) -> float:
        """The absolute value of every nonzero."""
        return 1.0 / np.sqrt(self.nnz_per_column)

    def _pattern(self, start, stop):
        return sparse_sign_pattern(self.seed, self.d, self.zeta, start, stop)

    def _block(self, start, stop, dtype):
        rows, signs = self._pattern(start, stop)
        k = self.nnz_per_column
        data = (signs.ravel() * dtype.type(self.scale)).astype(dtype, copy=False)
        indptr = np.arange(0, k * (stop - start) + 1, k, dtype=np.int64)
        return sp.csc_matrix((data, rows.ravel(), indptr), shape=(self.d, stop - start))

    # -- application without forming S ---------------------------------------------------
    def _passes(self, first=0, last=None):
        """(start, stop, rows, signs) for the columns first:last of S, in passes."""
        last = self.n if last is None else last
        for start in range(first, last, _COLS_PER_PASS):
            stop = min(last, start + _COLS_PER_PASS)
            yield start, stop, *self._pattern(start, stop)

    def _apply_dense(self, X, dt, first=0):
        """S[:, first:first + len(X)] @ X (all of S @ X by default)."""
        out_dtype = np.result_type(X.dtype if X.dtype.kind in "fc" else np.float64, dt)
        if out_dtype.kind == "c":  # B is real: sketch the real and imaginary parts
            return _complex_from_parts(lambda part, d: self._apply_dense(part, d, first), X,
                                       out_dtype)
        X = X.astype(out_dtype, copy=False)
        p = X.shape[1]
        Y = np.zeros((self.d, p), dtype=out_dtype)
        passes = self._passes(first, first + X.shape[0])
        if X.flags.f_contiguous and not X.flags.c_contiguous:
            panel = _tile_width(self.d, out_dtype.itemsize, p, _PANEL_BYTES)
            for start, stop, rows, signs in passes:
                _add_colmajor(rows, signs, X[start - first:stop - first], Y, panel, _PANEL_ROWS)
        else:
            X = np.ascontiguousarray(X)
            tile = _tile_width(self.d, out_dtype.itemsize, p, _TILE_BYTES)
            for start, stop, rows, signs in passes:
                _add_rowmajor(rows, signs, X[start - first:stop - first], Y, tile)
        Y *= out_dtype.type(self.scale)
        return Y

    def _apply_block_dense(self, X, dt, start):
        return self._apply_dense(X, dt, start)

    def _apply_sparse(self, X, dt):
        out_dtype = np.result_type(X.dtype if X.dtype.kind in "fc" else np.float64, dt)
        if out_dtype.kind == "c":
            return _complex_from_parts(self._apply_sparse, X, out_dtype)
        X = X.tocsr() if X.format not in ("csr", "csc") else X
        X = X.astype(out_dtype, copy=False)
        p = X.shape[1]
        if X.format == "csc":
            Yt = np.zeros((p, self.d), dtype=out_dtype)
            for start, stop, rows, signs in self._passes():
                Xs = X[start:stop] if (start, stop) != (0, self.n) else X
                _add_csc(rows, signs, Xs.indptr, Xs.indices, Xs.data, Yt)
            Y = Yt.T
        else:
            Y = np.zeros((self.d, p), dtype=out_dtype)
            parts = min(self.d, 4 * numba.get_num_threads())
            for start, stop, rows, signs in self._passes():
                _add_csr(rows, signs, X.indptr[start:stop + 1], X.indices, X.data, Y, parts)
        Y *= out_dtype.type(self.scale)
        return Y


def _complex_from_parts(apply, X, out_dtype):
    """apply(X.real) + 1j apply(X.imag): the real kernels serve complex data too."""
    real = np.finfo(out_dtype).dtype
    re = apply(X.real.astype(real), real)
    Y = np.empty(re.shape, out_dtype)
    Y.real = re
    Y.imag = apply(X.imag.astype(real), real)
    return Y


def _tile_width(d, itemsize, p, nbytes):
    """Columns of the result a thread accumulates at once: a d x w tile within nbytes, and
    at least 4 tiles per thread when X is narrow. The result does not depend on it."""
    w = max(8, (nbytes // (d * itemsize)) // 8 * 8)
    w = min(w, max(16, -(-p // (4 * numba.get_num_threads())) // 8 * 8 + 8))
    return min(w, max(1, p))


# -- kernels: Y += B @ X, B given by rows[j, q] and signs[j, q] for its column j -------------
# Rows are indexed in place rather than sliced (X[j]): a slice is a new array view whose
# reference count every thread would update atomically on the same cache line. Column offsets
# are unsigned so that Numba emits no negative-index wraparound, which keeps the loops SIMD.
@njit(inline="always", cache=True)
def _add_row(Y, r, X, j, sign, c0, w):
    """Y[r, c0:c0+w] +-= X[j, c0:c0+w]."""
    if sign > 0:
        for c in range(w):
            cc = np.uint64(c0) + np.uint64(c)
            Y[r, cc] += X[j, cc]
    else:
        for c in range(w):
            cc = np.uint64(c0) + np.uint64(c)
            Y[r, cc] -= X[j, cc]


@parallel_njit()
def _add_rowmajor(rows, signs, X, Y, tile):
    """Row-major X: each thread owns column tiles of Y (kept in L2) and of X, so no races."""
    n, p = X.shape
    k = rows.shape[1]
    for t in prange((p + tile - 1) // tile):
        c0 = t * tile
        w = min(p, c0 + tile) - c0
        for j in range(n):
            for q in range(k):
                _add_row(Y, rows[j, q], X, j, signs[j, q], c0, w)


@parallel_njit()
def _add_colmajor(rows, signs, X, Y, panel, jb):
    """Column-major X: each thread takes panels of columns, copies blocks of jb rows of the
    panel into a small row-major buffer (a transpose in cache) and accumulates a private
    d x panel tile, added to Y once."""
    n, p = X.shape
    d = Y.shape[0]
    k = rows.shape[1]
    for t in prange((p + panel - 1) // panel):
        c0 = t * panel
        w = min(p, c0 + panel) - c0
        acc = np.zeros((d, w), Y.dtype)
        buf = np.empty((jb, w), Y.dtype)
        for j0 in range(0, n, jb):
            m = min(n, j0 + jb) - j0
            for c in range(w):
                for i in range(m):
                    buf[i, c] = X[np.uint64(j0 + i), np.uint64(c0 + c)]
            for i in range(m):
                for q in range(k):
                    _add_row(acc, rows[j0 + i, q], buf, i, signs[j0 + i, q], 0, w)
        for r in range(d):
            for c in range(w):
                Y[r, np.uint64(c0 + c)] += acc[r, c]


@parallel_njit()
def _add_csc(rows, signs, indptr, indices, data, Yt):
    """CSC X: Yt[c] += B @ X[:, c], one column of X per iteration, no races."""
    k = rows.shape[1]
    for c in prange(Yt.shape[0]):
        for e in range(indptr[c], indptr[c + 1]):
            j = indices[e]
            v = data[e]
            for q in range(k):
                if signs[j, q] > 0:
                    Yt[c, rows[j, q]] += v
                else:
                    Yt[c, rows[j, q]] -= v


@parallel_njit()
def _add_csr(rows, signs, indptr, indices, data, Y, nparts):
    """CSR X (indptr already offset to the rows of this pass): each part owns a range of rows
    of Y and walks all of X, so no races; every entry sums over j in order whatever the parts."""
    n = indptr.shape[0] - 1
    d = Y.shape[0]
    k = rows.shape[1]
    for part in prange(nparts):
        r_lo = part * d // nparts
        r_hi = (part + 1) * d // nparts
        for j in range(n):
            e0 = indptr[j]
            e1 = indptr[j + 1]
            if e0 == e1:
                continue
            for q in range(k):
                r = rows[j, q]
                if r_lo <= r < r_hi:
                    if signs[j, q] > 0:
                        for e in range(e0, e1):
                            Y[r, indices[e]] += data[e]
                    else:
                        for e in range(e0, e1):
                            Y[r, indices[e]] -= data[e]
