"""Chunked matrices (dask arrays, and files read in row panels) seen through products.

Every product with a chunked A is a sum of per-chunk products, so each one is a graph of small
tasks (one per chunk of A) summed in row order. A sketch S is never formed: the task for a chunk
generates only the block of S that chunk touches (``S.block(i, j)``), which is the same block
whatever the chunking, so the result equals the in-memory one to rounding.

Passes over A (each chunk read once per pass):

=================================  =====================================================
``matmat``, ``rmatmat``             1
``gram_matmat`` (A^H A X)           1 (row panels: A_i^H (A_i X), summed)
``gram_and_product``, ``gram_qr``   1 (A^H A X, and A X or the R factor of A X)
``sketch_right``/``_left``          1
=================================  =====================================================
"""
from __future__ import annotations

import math
import threading

import numpy as np
import scipy.linalg as sla

from .._dask import compute, dense, offsets, one_blas_thread, sum_in_order
from .._linalg import dense_matmat, dense_rmatmat, fro_norm
from .._validation import working_dtype
from ..io import ArrayRows, as_panels
from ..sketch.dask import sketch_left_chunk, sketch_right_chunk
from .base import Operator


# -- chunk kernels (run inside tasks; plain numpy) ---------------------------------------------
def _matmul(a, x):
    return dense_matmat(dense(a), x)


def _rmatmul(a, y):
    return dense_rmatmat(dense(a), y)


def _exponent(y):
    """e with y * 2^e of largest magnitude in [1/2, 1) (at most 1023: a subnormal y goes as
    far as that); 0 for a non-finite y, None for a zero one (its panel adds nothing)."""
    amax = float(np.max(np.abs(y))) if y.size else 0.0
    if amax == 0:
        return None
    return min(-math.frexp(amax)[1], 1023) if math.isfinite(amax) else 0


def _ldexp(x, e):
    """x * 2^e, exact but for under- or overflow, for real or complex x."""
    if e == 0:
        return x
    if x.dtype.kind == "c":
        return (np.ldexp(x.real, e) + 1j * np.ldexp(x.imag, e)).astype(x.dtype)
    return np.ldexp(x, e).astype(x.dtype, copy=False)


def _add_scaled(a, b):
    """The sum of (c, e) pairs standing for c * 2^-e, at the smaller e (the larger value's
    scale: the other is scaled down, never up); e None stands for an exact zero."""
    (ca, ea), (cb, eb) = a, b
    if ea is None or eb is None:
        return b if ea is None else a
    e = min(ea, eb)
    return _ldexp(ca, e - ea) + _ldexp(cb, e - eb), e


def _gram_panel(x_blocks, keep, rounder, *chunks):
    """A_i^H (A_i X) for the row panel A_i = [chunks], without concatenating the panel, as a
    pair (C_i, e) with C_i 2^-e = A_i^H (A_i X): A_i X is scaled by 2^e before the second
    product, so that C_i stays near A's own scale (A^H A X squares it: at 1e-160 it would
    underflow). With keep="product" also A_i X, with keep="r" also the triangular factor of
    A_i X. A ``rounder`` gives the chunks in single precision."""
    chunks = [dense(c) if rounder is None else rounder(c, j) for j, c in enumerate(chunks)]
    with np.errstate(**({} if rounder is None else {"over": "ignore", "invalid": "ignore"})):
        # a rounding overflow gives Inf, which the caller's check of the result finds
        y = sum(dense_matmat(c, xb) for c, xb in zip(chunks, x_blocks))
        e = _exponent(y)
        ys = y if e is None else _ldexp(y, e)
        c = np.concatenate([dense_rmatmat(c, ys) for c in chunks], axis=0)
    if rounder is not None:   # the panels' sum in the input precision: the rounding of
        c = c.astype(rounder.dtype)   # the result then does not grow with their number
        if not np.all(np.isfinite(c)):   # an overflow: NaN, which sums with no Inf - Inf
            c[...] = np.nan
    if keep == "product":
        return (c, e), y
    return ((c, e), _r_factor(y)) if keep == "r" else (c, e)


def _r_factor(y):
    # one BLAS thread: 2-thread OpenBLAS runs this small QR ~10x slower here, and slows the
    # GEMMs around it as well (measured on 1677 x 60 panels)
    with one_blas_thread():
        return sla.qr(y, mode="r", check_finite=False)[0][:min(y.shape)]




def _merge_gram_qr(*parts):
    """Sum the A_i^H A_i X (scaled pairs) and merge the R_i: QR of the stacked factors
    (TSQR)."""
    total = parts[0][0]
    for c, _ in parts[1:]:
        total = _add_scaled(total, c)
    return total, _r_factor(np.vstack([r for _, r in parts]))


class _Rounder:
    """Chunks rounded to single precision in buffers reused chunk after chunk (one per thread
    and column of chunks), for the reads of one product. A fresh float32 array per 256 MiB
    panel costs more in page faults than the float32 products save (150000 x 5000 float64,
    A^H A X with 60 columns: 1.4 s in float64, 1.5-1.9 s with fresh float32 panels, 1.0-1.1 s
    with a reused buffer)."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)   # A's (double) precision, in which results are summed
        self._single = np.complex64 if self.dtype.kind == "c" else np.float32
        self._buffers = {}

    def __call__(self, a, slot):
        a = dense(a)
        key = (threading.get_ident(), slot)
        buf = self._buffers.get(key)
        if buf is None or buf.size < a.size:
            buf = self._buffers[key] = np.empty(a.size, self._single)
        out = buf[:a.size].reshape(a.shape)
        with np.errstate(over="ignore"):    # an overflow shows in the result, checked there
            np.copyto(out, a, casting="same_kind")
        return out

    def __getstate__(self):   # a worker process starts with no buffers
        return self.__dict__ | {"_buffers": {}}

    def __dask_tokenize__(self):
        return ("randla-rounder", id(self))


def _column_sums(a):
    return dense(a).sum(axis=0)


def _norm(a, mu=None):
    a = dense(a)
    return fro_norm(a if mu is None else a - mu)


def _negate(pair):
    c, e = pair
    return c, -e


def _settled(pair):
    """A summed (C, e) with the exponent of an all-zero sum (None) made 0."""
    c, e = pair
    return c, (0 if e is None else e)


def _check_tree(x, name):
    """_check_finite_result on every array of a result (nested tuples; exponents skipped)."""
    if isinstance(x, tuple):
        for part in x:
            _check_tree(part, name)
    elif x is not None and not isinstance(x, int):
        _check_finite_result(np.asarray(x), name)


def _check_finite_result(x, name):
    # NaN/Inf anywhere in A reaches every product with a dense random matrix: checking the
    # (small) result costs nothing and spares a separate validation pass over A.
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or Inf, or its entries are so large that a "
                         "product with them overflowed")
    return x


# -- the operator -------------------------------------------------------------------------------
class DaskOperator(Operator):
    """A dask array (or anything chunked into one) seen through products, one pass each.

    Results of products are small (m x p or n x p for p much smaller than m, n) and returned as
    numpy arrays; A itself is only ever touched chunk by chunk. ``passes`` counts the passes
    made over A so far.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> from randla.operators import DaskOperator
    >>> A = np.random.default_rng(0).standard_normal((300, 40))
    >>> op = DaskOperator(da.from_array(A, chunks=(70, 25)))
    >>> X = np.ones((40, 3))
    >>> bool(np.allclose(op.gram_matmat(X), A.T @ (A @ X))), op.passes
    (True, 1)
    """

    kind = "dask"
    reads_per_product = 1
    lazy_products = True

    @property
    def fused_gram(self) -> bool:
        """``gram_matmat`` reads A once, and rsvd's power iterations use it (one pass per
        iteration) in double precision. A^H A X squares the spread of the singular values,
        which single precision cannot hold: on a 20000 x 500 float32 matrix of rank 30 with
        singular values spread over 1e3, the fused iteration got them 64% wrong where one
        product at a time, normalized in between, got 7e-7."""
        return np.finfo(self.dtype).eps < 1e-10

    def __init__(self, A, name: str = "A"):
        if A.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {A.shape}")
        if any(np.isnan(c) for c in A.shape):
            raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes()")
        dtype = working_dtype(A.dtype, name)
        if A.dtype != dtype:
            A = A.astype(dtype)
        super().__init__(A, dtype)
        self.name = name
        self.passes = 0
        self._rows = offsets(A.chunks[0])
        self._cols = offsets(A.chunks[1])
        self.blocks = A.to_delayed()

    # each public product is one pass: build the per-chunk graph, compute, check, count
    def run(self, *objs):
        self.passes += 1
        out = compute(*objs)
        for x in out:
            _check_tree(x, self.name)
        return out

    def row_slices(self):
        return [slice(a, b) for a, b in zip(self._rows[:-1], self._rows[1:])]

    def col_slices(self):
        return [slice(a, b) for a, b in zip(self._cols[:-1], self._cols[1:])]

    def lazy_matmat(self, W):
        return self.A @ W

    def matmat(self, X):
        from dask import delayed
        X = np.asarray(X)
        xs = [delayed(X[c], pure=True) for c in self.col_slices()]
        rows = [sum_in_order(delayed(_matmul, pure=True)(b, x) for b, x in zip(brow, xs))
                for brow in self.blocks]
        return np.concatenate(self.run(*rows), axis=0)

    def rmatmat(self, Y):
        from dask import delayed
        Y = np.asarray(Y)
        ys = [delayed(Y[r], pure=True) for r in self.row_slices()]
        cols = [sum_in_order(delayed(_rmatmul, pure=True)(b, y) for b, y in zip(bcol, ys))
                for bcol in self.blocks.T]
        return np.concatenate(self.run(*cols), axis=0)

    def _gram_parts(self, X, keep=None, rounder=None):
        from dask import delayed
        X = np.asarray(X)
        xs = delayed([X[c] for c in self.col_slices()], pure=True)
        return [delayed(_gram_panel, pure=True)(xs, keep, rounder, *brow)
                for brow in self.blocks]

    @property
    def single_gram(self) -> bool:
        """``gram_matmat(X, single=True)`` runs in single precision (A in double)."""
        return self.dtype in (np.float64, np.complex128)

    def gram_matmat(self, X, single=False):
        """A^H (A X) in ONE pass: sum over row panels A_i of A_i^H (A_i X) (see
        :meth:`gram_matmat_scaled`)."""
        return _ldexp(*_negate(self.gram_matmat_scaled(X, single)))

    def gram_matmat_scaled(self, X, single=False):
        """``(C, e)``, ``C 2^-e = A^H (A X)``, in ONE pass: C is near A's own scale (A X is
        scaled by a power of two in each panel), so that A of entries 1e-160 or 1e160 does
        not under- or overflow. With ``single`` (A in double precision), each panel is
        rounded to single precision as it is read and its products run there (a read of a
        150000 x 5000 file in the page cache with 60 columns: 1.0 s against 1.4 s); the
        panels' results are summed in double precision, unchecked (NaN or Inf may come from
        an overflow of the rounding)."""
        if not single:
            return _settled(self.run(sum_in_order(self._gram_parts(X), _add_scaled))[0])
        X = np.asarray(X).astype(np.complex64 if self.is_complex else np.float32)
        self.passes += 1
        return _settled(compute(sum_in_order(self._gram_parts(X, rounder=_Rounder(self.dtype)),
                                             _add_scaled))[0])

    def gram_and_product(self, X):
        """``(A^H (A X), A X)`` in ONE pass: each row panel A_i gives A_i X and then
        A_i^H (A_i X) while it is in memory."""
        (C, e), Y = self.gram_and_product_scaled(X)
        return _ldexp(C, -e), Y

    def gram_and_product_scaled(self, X):
        """``((C, e), A X)`` in ONE pass, ``C 2^-e = A^H (A X)`` (see
        :meth:`gram_matmat_scaled`)."""
        parts = self._gram_parts(X, "product")
        C, *Y = self.run(sum_in_order((p[0] for p in parts), _add_scaled),
                         *(p[1] for p in parts))
        return _settled(C), np.concatenate(Y, axis=0)

    def gram_qr(self, X):
        """``((C, e), R)`` in ONE pass, ``C 2^-e = A^H (A X)`` and R the upper triangular
        factor of A X (TSQR over the row panels): A X itself is never held."""
        C, R = self.run(sum_in_order(self._gram_parts(X, "r"), _merge_gram_qr))[0]
        return _settled(C), R

    def sketch_right(self, S):
        """A @ S.T, S of shape (d, n): chunk (i, j) uses columns of S matching its columns."""
        from dask import delayed
        dt = S.dtype_for(self.dtype)
        s_blocks = [delayed(S.block, pure=True)(c.start, c.stop, dt) for c in self.col_slices()]
        rows = [sum_in_order(delayed(sketch_right_chunk, pure=True)(b, s) for b, s in zip(brow, s_blocks))
                for brow in self.blocks]
        return self._metered(S, self.shape[0], lambda: np.concatenate(self.run(*rows), axis=0))

    def sketch_left(self, S):
        """S @ A, S of shape (d, m): chunk (i, j) uses columns of S matching its rows."""
        from dask import delayed
        dt = S.dtype_for(self.dtype)
        s_blocks = [delayed(S.block, pure=True)(r.start, r.stop, dt) for r in self.row_slices()]
        cols = [sum_in_order(delayed(sketch_left_chunk, pure=True)(s, b) for s, b in zip(s_blocks, bcol))
                for bcol in self.blocks.T]
        return self._metered(S, self.shape[1], lambda: np.concatenate(self.run(*cols), axis=1))

    def _metered(self, S, batch, product):
        """The product, then S's hook for it (an optical sketch meters its frames there: the
        product is built from S's blocks, not through S's own apply)."""
        hook = S.product_hook(batch, self.is_complex)
        out = product()
        if hook is not None:
            hook()
        return out

    def column_means(self):
        from dask import delayed
        cols = [sum_in_order(delayed(_column_sums, pure=True)(b) for b in bcol)
                for bcol in self.blocks.T]
        return np.concatenate(self.run(*cols)) / self.shape[0]

    def fro_norm(self):
        return self.deviation_norm(None)

    def deviation_norm(self, mu):
        from dask import delayed
        cols = self.col_slices()
        total = sum_in_order((delayed(_norm, pure=True)(b, None if mu is None else mu[cols[j]])
                              for row in self.blocks for j, b in enumerate(row)),
                             combine=math.hypot)
        return float(self.run(total)[0])


def file_operator(A, name: str = "A") -> DaskOperator:
    """A np.memmap, h5py.Dataset or zarr array as a :class:`DaskOperator` over row panels of
    64 MiB: products read the file panel by panel (a memmap through the page cache, with no
    private copy), there is no validation pass (NaN/Inf show up in the products), and power
    iterations take one pass each."""
    return DaskOperator(as_panels(ArrayRows(A, name)), name=name)


