"""The scattering medium: a complex i.i.d. Gaussian transmission matrix H, never stored whole.

Entry ``H[i, j]`` (camera pixel ``i``, DMD pixel ``j``) has independent real and imaginary parts
N(0, 1/2), so ``E|H_ij|^2 = 1``. Both parts come from the counter-based Philox generator of
:mod:`randla.sketch.rng`: the real part is entry (i, j) of stream 16 and the imaginary part of
stream 17 (the software sketches use streams 0-15), so any sub-block of H is generated on its
own, in time proportional to its size, and is the same whatever the tiling or thread count.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from randla._budget import SKETCH_TILE_BYTES as TILE_BYTES
from randla._validation import check_positive_int, seed_from_rng
from randla.sketch import rng as _rng

#: Philox streams of the real and imaginary parts of H.
STREAM_REAL = _rng.STREAMS["opu.medium.real"]
STREAM_IMAG = _rng.STREAMS["opu.medium.imag"]
# TILE_BYTES (imported above) is the one memory budget of a generated tile in randla and opu:
# the temporaries of Medium.field (H tile, converted input tile, product) stay within it.
#: Widest output tile: keeps the GEMM temporaries small when n_out is in the millions.
_MAX_OUT_TILE = 4096
_SCALE = np.sqrt(0.5)


class Medium:
    """The transmission matrix H of shape ``(n_out, n_in)`` of a multiple-scattering medium.

    Parameters
    ----------
    n_in : int
        Input dimension (DMD pixels), up to 2**32 - 1.
    n_out : int
        Output dimension (camera pixels).
    seed : None, int or numpy.random.Generator
        Names the medium: the same seed gives the same H on every machine.
    tile_bytes : int
        Memory budget of the temporaries of :meth:`field` (generated tile of H and converted
        input tile), ``randla._budget.SKETCH_TILE_BYTES`` (32 MiB) by default.
    row0 : int
        First camera pixel read out: this medium is rows ``row0 ... row0 + n_out - 1`` of the
        transmission matrix named by ``seed`` (a region of interest of a larger camera).

    Examples
    --------
    >>> import numpy as np
    >>> from opu import Medium
    >>> H = Medium(1000, 50, seed=3)
    >>> X = np.random.default_rng(0).integers(0, 2, size=(4, 1000)).astype(np.uint8)
    >>> Y = H.field(X)
    >>> Y.shape, Y.dtype
    ((4, 50), dtype('complex64'))
    >>> bool(np.allclose(Y, X @ H.block(slice(None), slice(None)).T, rtol=1e-4, atol=1e-3))
    True
    """

    def __init__(self, n_in, n_out, *, seed=None, tile_bytes=TILE_BYTES, row0=0):
        self.n_in = check_positive_int(n_in, "n_in")
        self.n_out = check_positive_int(n_out, "n_out")
        self.row0 = check_positive_int(row0, "row0", minimum=0)
        if self.n_in >= 2**32 or self.row0 + self.n_out >= 2**34:
            raise ValueError(f"n_in must be < 2**32 and row0 + n_out < 2**34, got {n_in}, "
                             f"{row0} + {n_out}")
        self.seed = seed_from_rng(seed)
        self.tile_bytes = check_positive_int(tile_bytes, "tile_bytes", minimum=2**16)

    def __repr__(self):
        roi = f", row0={self.row0}" if self.row0 else ""
        return f"Medium(n_in={self.n_in}, n_out={self.n_out}, seed={self.seed}{roi})"

    @property
    def shape(self):
        return (self.n_out, self.n_in)

    # -- generation ---------------------------------------------------------------------------
    def _tile_t(self, rows, cols, dtype, group=1):
        """``H[r0:r1, c0:c1].T`` as a C-ordered complex array of shape (c1 - c0, r1 - r0);
        with ``group > 1``, each run of ``group`` consecutive columns summed into one (a
        macro-pixel), shape ((c1 - c0) // group, r1 - r0)."""
        (r0, r1), (c0, c1) = rows, cols
        out = np.empty((c1 - c0, r1 - r0), dtype=dtype)
        if out.size:
            parts = out.view(np.finfo(dtype).dtype)  # (ncols, 2 nrows): re, im interleaved
            r = self.row0 + r0
            _rng.fill_normal(parts[:, 0::2], self.seed, STREAM_REAL, r, c0, _SCALE)
            _rng.fill_normal(parts[:, 1::2], self.seed, STREAM_IMAG, r, c0, _SCALE)
        if group > 1:
            out = out.reshape(-1, group, r1 - r0).sum(axis=1)
        return out

    def block(self, rows=slice(None), cols=slice(None), dtype=np.complex64):
        """The sub-block ``H[rows, cols]`` (two slices of unit step), generated on its own.

        Returns an F-ordered complex64 (or ``dtype``) array.
        """
        dtype = _complex_dtype(dtype)
        r = _as_range(rows, self.n_out, "rows")
        c = _as_range(cols, self.n_in, "cols")
        return self._tile_t(r, c, dtype).T

    def macro_t(self, col0, n_cols, group=1, dtype=np.complex64):
        """The transposed effective matrix of ``n_cols`` macro-pixels of ``group`` DMD pixels
        from pixel ``col0``: row ``f`` is the sum of columns ``col0 + f * group ...`` of H.
        Shape (n_cols, n_out), generated tile by tile within ``tile_bytes``."""
        dtype = _complex_dtype(dtype)
        if col0 < 0 or n_cols < 0 or col0 + n_cols * group > self.n_in:
            raise ValueError(f"{n_cols} macro-pixels of {group} from pixel {col0} exceed the "
                             f"{self.n_in} pixels of the medium")
        out = np.empty((n_cols, self.n_out), dtype=dtype)
        w = max(1, self.tile_bytes // (group * self.n_out * dtype.itemsize))
        for c in range(0, n_cols, w):
            c1 = min(n_cols, c + w)
            out[c:c1] = self._tile_t((0, self.n_out), (col0 + c * group, col0 + c1 * group),
                                     dtype, group)
        return out

    # -- products -----------------------------------------------------------------------------
    def field(self, X, *, dtype=None, out_rows=None, col0=None, group=1):
        """The complex field ``X @ H.T`` for a batch ``X`` of shape (batch, n_in).

        Parameters
        ----------
        X : array_like or scipy.sparse matrix, shape (batch, n_cols) or (n_cols,)
            Bool, integer, real or complex inputs; ``n_cols == n_in`` unless ``col0``/``group``
            say otherwise.
        dtype : complex dtype, optional
            Precision of H and of the result: complex128 for float64/complex128 inputs,
            complex64 otherwise (bool and 8-bit inputs are exact in single precision).
        out_rows : slice, optional
            Compute only the outputs ``H[out_rows]`` (camera pixels), e.g. a region of interest.
        col0, group : int, optional
            Column ``f`` of X lights the ``group`` DMD pixels ``col0 + f * group`` to
            ``col0 + (f + 1) * group - 1`` (a macro-pixel): X multiplies the sums of those
            columns of H. By default (``col0=None``) X covers the whole DMD, one pixel per
            column.

        Notes
        -----
        H is generated tile by tile (``tile_bytes``); a real X multiplies the interleaved
        (real, imaginary) tile as one real GEMM, half the flops of a complex GEMM. Tiles of
        columns where X is all zero are never generated.
        """
        vector = getattr(X, "ndim", 2) == 1
        group = check_positive_int(group, "group")
        n_cols = self.n_in if col0 is None else (X.shape if sp.issparse(X) else np.shape(X))[-1]
        col0 = 0 if col0 is None else check_positive_int(col0, "col0", minimum=0)
        if col0 + n_cols * group > self.n_in:
            raise ValueError(f"X has {n_cols} columns of {group} pixels from pixel {col0}: "
                             f"more than the {self.n_in} pixels of the medium")
        X = _check_input(X, n_cols)
        if vector:
            X = X.reshape(1, -1)
        dtype = _complex_dtype(dtype) if dtype is not None else _field_dtype(X.dtype)
        r0, r1 = _as_range(slice(None) if out_rows is None else out_rows, self.n_out, "out_rows")
        Y = np.zeros((X.shape[0], r1 - r0), dtype=dtype)
        if sp.issparse(X):
            X = X.tocsc()
        # a batch so large that its products alone fill the budget is taken in slices
        rows = max(1, self.tile_bytes // 4 // (min(r1 - r0, _MAX_OUT_TILE) * dtype.itemsize))
        for b0 in range(0, X.shape[0], rows):
            for o0 in range(r0, r1, _MAX_OUT_TILE):
                o1 = min(r1, o0 + _MAX_OUT_TILE)
                self._accumulate(X[b0:b0 + rows], Y[b0:b0 + rows, o0 - r0:o1 - r0], (o0, o1),
                                 dtype, col0, group)
        return Y[0] if vector else Y

    def _in_tile_width(self, batch, n_cols, n_rows, dtype, group=1):
        """Columns of X per tile so the H tile, the converted input tile and the GEMM
        product together stay within ``tile_bytes``."""
        item = np.dtype(dtype).itemsize
        product = batch * n_rows * item
        per_col = (group + 1) * n_rows * item + batch * item
        # Large tiles even for one row: each tile costs two parallel launches of the generator,
        # which on a busy machine cost far more than re-reading the tile from memory.
        return int(max(1, min(n_cols, (self.tile_bytes - product) // per_col)))

    def _accumulate(self, X, Y, rows, dtype, col0=0, group=1):
        """Y += X @ H[rows].T, one input tile at a time."""
        real = np.finfo(dtype).dtype
        n_cols = X.shape[1]
        w = self._in_tile_width(X.shape[0], n_cols, rows[1] - rows[0], dtype, group)
        sparse = sp.issparse(X)
        complex_x = X.dtype.kind == "c"
        Yr = Y.view(real)  # (batch, 2 n_rows): re, im interleaved
        for c0 in range(0, n_cols, w):
            c1 = min(n_cols, c0 + w)
            Xt = X[:, c0:c1]
            if (Xt.nnz == 0) if sparse else not Xt.any():
                continue  # dark mirrors: their columns of H are never generated
            T = self._tile_t(rows, (col0 + c0 * group, col0 + c1 * group), dtype, group)
            if complex_x:
                Xt = Xt.astype(dtype, copy=False)
                Y += Xt @ T
            else:
                Xt = Xt.astype(real, copy=False)
                Yr += Xt @ T.view(real)  # real X times [Re H | Im H] interleaved: one real GEMM
        return Y


def _as_range(s, n, name):
    if isinstance(s, tuple) and len(s) == 2:
        s = slice(*s)
    if not isinstance(s, slice) or s.step not in (None, 1):
        raise TypeError(f"{name} must be a slice of unit step or a (start, stop) pair, got {s!r}")
    start, stop, _ = s.indices(n)
    if (s.start is not None and not 0 <= s.start <= n) or (s.stop is not None and not 0 <= s.stop <= n):
        raise ValueError(f"{name} {s.start}:{s.stop} is outside 0:{n}")
    return start, max(start, stop)


def _complex_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.complex64, np.complex128):
        raise TypeError(f"dtype must be complex64 or complex128, got {dtype}")
    return dtype


def _field_dtype(x_dtype):
    return np.dtype(np.complex128 if x_dtype in (np.float64, np.complex128) else np.complex64)


def as_batch(X, n_cols, name="X"):
    """X as a 2-D dense or sparse batch with ``n_cols`` columns (1-D X becomes one row)."""
    if not sp.issparse(X):
        X = np.asarray(X)
    if X.ndim == 1:
        X = X.reshape(1, -1)
    if X.ndim != 2 or X.shape[1] != n_cols:
        raise ValueError(f"{name} must have shape (batch, {n_cols}), got {X.shape}")
    return X


def _check_input(X, n_in, name="X"):
    """A 2-D dense or sparse numeric, finite X with n_in columns."""
    X = as_batch(X, n_in, name)
    if X.dtype.kind not in "biufc" or X.dtype == np.float16:
        raise TypeError(f"{name} must be bool, integer, float32/64 or complex, got {X.dtype}")
    data = X.data if sp.issparse(X) else X   # 2-D (as_batch); an empty batch has nothing to check
    if X.dtype.kind in "fc":
        step = max(1, 2**24 // max(1, data.shape[-1]))  # bounded temporaries on huge batches
        for i in range(0, data.shape[0], step):
            if not np.all(np.isfinite(data[i:i + step])):
                raise ValueError(f"{name} contains NaN or Inf")
    return X
