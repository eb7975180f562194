"""Out-of-core and distributed linear algebra: dask arrays, memory-mapped files, single pass SVD.

Every product with a chunked matrix A is a sum of per-chunk products, so each one is a graph of
small tasks (one per chunk of A) summed in row order. A sketch S is never formed: the task
for a chunk generates only the block of S that chunk touches (``S.block(i, j)``), which is the
same block whatever the chunking, so the result equals the in-memory one to rounding.

Passes over A (each chunk read once per pass):

=================================  =====================================================
``matmat``, ``rmatmat``             1
``gram_matmat`` (A^H A X)           1 (row panels: A_i^H (A_i X), summed)
``gram_and_product``, ``gram_qr``   1 (A^H A X, and A X or the R factor of A X)
``sketch_right``/``_left``          1
``sketchy_svd``                     1 (range, co-range and core sketches)
=================================  =====================================================
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from . import sketch as _sketch
from ._validation import check_positive_int, real_dtype, seed_from_rng, working_dtype
from .operators import Operator


# -- scheduling ------------------------------------------------------------------------------
def _compute(*objs):
    """Compute delayed objects. A scheduler the user chose (``dask.config.set(scheduler=...)``,
    or a ``distributed.Client``, which sets it) is respected. Otherwise the synchronous
    scheduler runs one chunk at a time with multi-threaded BLAS inside: on a few cores this beats
    dask's thread pool, which oversubscribes the cores with BLAS threads, and it keeps at most
    one chunk in memory."""
    import dask
    scheduler = None if dask.config.get("scheduler", None) is not None else "synchronous"
    return dask.compute(*objs, scheduler=scheduler)


def _sum_in_order(parts, combine=None):
    """Combine delayed parts (by default: sum them) one after the other, as a chain. Memory
    stays at one partial result, and dask runs a chain's parts in order, where it runs the
    parts of a tree reduction in an arbitrary order: in order, a file reader can read the next
    row panel ahead while the current one is multiplied (see :mod:`randla._direct_read`).
    The chain is one graph layer: linking delayed calls would merge graphs quadratically."""
    from dask.base import tokenize
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph
    combine = _sum if combine is None else combine
    parts = list(parts)
    if len(parts) == 1:
        return parts[0]
    name = "sum-in-order-" + tokenize(combine, *(p.key for p in parts))
    layer = {(name, 1): (combine, parts[0].key, parts[1].key)}
    for i in range(2, len(parts)):
        layer[(name, i)] = (combine, (name, i - 1), parts[i].key)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=parts)
    return Delayed((name, len(parts) - 1), graph, layer=name)


def _sum(*xs):
    out = xs[0].copy() if isinstance(xs[0], np.ndarray) else xs[0]
    for x in xs[1:]:
        out += x
    return out


def _offsets(chunks):
    return np.concatenate([[0], np.cumsum(chunks)]).astype(int)


# -- chunk kernels (run inside tasks; plain numpy) ---------------------------------------------
def _dense(blk):
    return np.asarray(blk.toarray() if sp.issparse(blk) else blk)


def _h(a):
    """Conjugate transpose, free for real data."""
    return a.conj().T if np.iscomplexobj(a) else a.T


def _times_st(a, s_blk):
    """a @ s_blk.T for a dense chunk and a dense or sparse block of S (sparse on the left,
    where scipy is fast; dense as written, which BLAS runs fastest on a row panel)."""
    return np.asarray((s_blk @ a.T).T) if sp.issparse(s_blk) else a @ s_blk.T


def _s_times(s_blk, a):
    """s_blk @ a for a short-wide block of S: OpenBLAS runs (a^T s_blk^T)^T ~6x faster than
    the product as written when s_blk has few rows (measured on a 21 x 1600 @ 1600 x 1000)."""
    return np.asarray(s_blk @ a) if sp.issparse(s_blk) else (a.T @ s_blk.T).T


def _matmul(a, x):
    return _dense(a) @ x


def _rmatmul(a, y):
    return _h(_dense(a)) @ y


def _sketch_left_chunk(s_blk, a):
    return _s_times(s_blk, _dense(a))


def _sketch_right_chunk(a, s_blk):
    return _times_st(_dense(a), s_blk)


def _gram_panel(x_blocks, keep, *chunks):
    """A_i^H (A_i X) for the row panel A_i = [chunks], without concatenating the panel; with
    keep="product" also A_i X, with keep="r" also the triangular factor of A_i X."""
    chunks = [_dense(c) for c in chunks]
    y = sum(c @ xb for c, xb in zip(chunks, x_blocks))
    c = np.concatenate([_h(c) @ y for c in chunks], axis=0)
    if keep == "product":
        return c, y
    return (c, _r_factor(y)) if keep == "r" else c


def _r_factor(y):
    # one BLAS thread: 2-thread OpenBLAS runs this small QR ~10x slower here, and slows the
    # GEMMs around it as well (measured on 1677 x 60 panels)
    with _one_blas_thread():
        return sla.qr(y, mode="r", check_finite=False)[0][:min(y.shape)]


_blas_lock = threading.Lock()
_blas_limit = {"depth": 0, "limiter": None}


@contextlib.contextmanager
def _one_blas_thread():
    """BLAS limited to one thread. The limit is process-wide: tasks running at the same time
    share one limiter, and the last to leave restores the threads."""
    from threadpoolctl import threadpool_limits
    with _blas_lock:
        if _blas_limit["depth"] == 0:
            _blas_limit["limiter"] = threadpool_limits(limits=1, user_api="blas")
        _blas_limit["depth"] += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_limit["depth"] -= 1
            if _blas_limit["depth"] == 0:
                _blas_limit["limiter"].restore_original_limits()


def _merge_gram_qr(*parts):
    """Sum the A_i^H A_i X and merge the R_i: QR of the stacked factors (TSQR)."""
    return _sum(*(c for c, _ in parts)), _r_factor(np.vstack([r for _, r in parts]))


def _column_sums(a):
    return _dense(a).sum(axis=0)


def _sq_norm(a):
    a = _dense(a)
    return float(np.linalg.norm(a)) ** 2


def _check_finite_result(x, name):
    # NaN/Inf anywhere in A reaches every product with a dense random matrix: checking the
    # (small) result costs nothing and spares a separate validation pass over A.
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or Inf")
    return x


# -- S @ X for a dask X (the hook randla.sketch.base calls) -------------------------------------
def sketch_dask(S, X):
    """``S @ X`` for a dask array X with S.shape[1] rows: a lazy dask array of S.shape[0] rows.

    Each chunk X_ij is multiplied by the column block of S matching its rows; the products are
    summed over i.
    """
    import dask.array as da
    from dask import delayed

    vector = X.ndim == 1
    if vector:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] != S.n:
        raise ValueError(f"X must have {S.n} rows to be sketched by S of shape {S.shape}, "
                         f"got shape {X.shape}")
    dt = S.dtype_for(working_dtype(X.dtype, "X"))
    out_dtype = np.result_type(X.dtype if X.dtype.kind in "fc" else np.float64, dt)
    rows = _offsets(X.chunks[0])
    s_blocks = [delayed(S.block, pure=True)(rows[i], rows[i + 1], dt)
                for i in range(len(X.chunks[0]))]
    blocks = X.to_delayed()
    cols = []
    for j, width in enumerate(X.chunks[1]):
        total = _sum_in_order(delayed(_sketch_left_chunk, pure=True)(s_blocks[i], blocks[i, j])
                          for i in range(len(X.chunks[0])))
        cols.append(da.from_delayed(total, shape=(S.d, width), dtype=out_dtype))
    Y = da.concatenate(cols, axis=1)
    return Y[:, 0] if vector else Y


# -- the operator -------------------------------------------------------------------------------
class DaskOperator(Operator):
    """A dask array (or anything chunked into one) seen through products, one pass each.

    Results of products are small (m x p or n x p for p much smaller than m, n) and returned as
    numpy arrays; A itself is only ever touched chunk by chunk. ``passes`` counts the passes
    made over A so far.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> from randla.streaming import DaskOperator
    >>> A = np.random.default_rng(0).standard_normal((300, 40))
    >>> op = DaskOperator(da.from_array(A, chunks=(70, 25)))
    >>> X = np.ones((40, 3))
    >>> bool(np.allclose(op.gram_matmat(X), A.T @ (A @ X))), op.passes
    (True, 1)
    """

    kind = "dask"

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
        self._rows = _offsets(A.chunks[0])
        self._cols = _offsets(A.chunks[1])
        self._blocks = A.to_delayed()

    # each public product is one pass: build the per-chunk graph, compute, check, count
    def _run(self, *objs):
        self.passes += 1
        out = _compute(*objs)
        for x in out:
            for part in x if isinstance(x, tuple) else (x,):
                _check_finite_result(np.asarray(part), self.name)
        return out

    def _row_slices(self):
        return [slice(a, b) for a, b in zip(self._rows[:-1], self._rows[1:])]

    def _col_slices(self):
        return [slice(a, b) for a, b in zip(self._cols[:-1], self._cols[1:])]

    def matmat(self, X):
        from dask import delayed
        X = np.asarray(X)
        xs = [delayed(X[c], pure=True) for c in self._col_slices()]
        rows = [_sum_in_order(delayed(_matmul, pure=True)(b, x) for b, x in zip(brow, xs))
                for brow in self._blocks]
        return np.concatenate(self._run(*rows), axis=0)

    def rmatmat(self, Y):
        from dask import delayed
        Y = np.asarray(Y)
        ys = [delayed(Y[r], pure=True) for r in self._row_slices()]
        cols = [_sum_in_order(delayed(_rmatmul, pure=True)(b, y) for b, y in zip(bcol, ys))
                for bcol in self._blocks.T]
        return np.concatenate(self._run(*cols), axis=0)

    def _gram_parts(self, X, keep=None):
        from dask import delayed
        X = np.asarray(X)
        xs = delayed([X[c] for c in self._col_slices()], pure=True)
        return [delayed(_gram_panel, pure=True)(xs, keep, *brow) for brow in self._blocks]

    def gram_matmat(self, X):
        """A^H (A X) in ONE pass: sum over row panels A_i of A_i^H (A_i X)."""
        return self._run(_sum_in_order(self._gram_parts(X)))[0]

    def gram_and_product(self, X):
        """``(A^H (A X), A X)`` in ONE pass: each row panel A_i gives A_i X and then
        A_i^H (A_i X) while it is in memory."""
        parts = self._gram_parts(X, "product")
        C, *Y = self._run(_sum_in_order(p[0] for p in parts), *(p[1] for p in parts))
        return C, np.concatenate(Y, axis=0)

    def gram_qr(self, X):
        """``(A^H (A X), R)`` in ONE pass, R the upper triangular factor of A X (TSQR over
        the row panels): A X itself is never held."""
        return self._run(_sum_in_order(self._gram_parts(X, "r"), _merge_gram_qr))[0]

    def sketch_right(self, S):
        """A @ S.T, S of shape (d, n): chunk (i, j) uses columns of S matching its columns."""
        from dask import delayed
        dt = S.dtype_for(self.dtype)
        s_blocks = [delayed(S.block, pure=True)(c.start, c.stop, dt) for c in self._col_slices()]
        rows = [_sum_in_order(delayed(_sketch_right_chunk, pure=True)(b, s) for b, s in zip(brow, s_blocks))
                for brow in self._blocks]
        return np.concatenate(self._run(*rows), axis=0)

    def sketch_left(self, S):
        """S @ A, S of shape (d, m): chunk (i, j) uses columns of S matching its rows."""
        from dask import delayed
        dt = S.dtype_for(self.dtype)
        s_blocks = [delayed(S.block, pure=True)(r.start, r.stop, dt) for r in self._row_slices()]
        cols = [_sum_in_order(delayed(_sketch_left_chunk, pure=True)(s, b) for s, b in zip(s_blocks, bcol))
                for bcol in self._blocks.T]
        return np.concatenate(self._run(*cols), axis=1)

    def column_means(self):
        from dask import delayed
        cols = [_sum_in_order(delayed(_column_sums, pure=True)(b) for b in bcol)
                for bcol in self._blocks.T]
        return np.concatenate(self._run(*cols)) / self.shape[0]

    def fro_norm(self):
        from dask import delayed
        total = _sum_in_order(delayed(_sq_norm, pure=True)(b) for b in self._blocks.ravel())
        return float(np.sqrt(self._run(total)[0]))

    def sketches(self, sketcher):
        """The three sketches of :class:`SketchySVD` in ONE pass over A."""
        from dask import delayed
        maps = delayed(sketcher.maps, pure=True)
        rows, cols = self._row_slices(), self._col_slices()
        nr, nc = self._blocks.shape
        parts = [[delayed(_sketchy_chunk, pure=True, nout=3)(self._blocks[i, j], maps,
                                                             rows[i].start, cols[j].start)
                  for j in range(nc)] for i in range(nr)]
        Y = [_sum_in_order(parts[i][j][0] for j in range(nc)) for i in range(nr)]
        X = [_sum_in_order(parts[i][j][1] for i in range(nr)) for j in range(nc)]
        W = _sum_in_order(parts[i][j][2] for i in range(nr) for j in range(nc))
        out = self._run(W, *Y, *X)
        return np.concatenate(out[1:1 + nr], axis=0), np.concatenate(out[1 + nr:], axis=1), out[0]


def file_operator(A, name: str = "A") -> DaskOperator:
    """A np.memmap, h5py.Dataset or zarr array as a :class:`DaskOperator` over row panels of
    64 MiB: products read the file panel by panel (a memmap through the page cache, with no
    private copy), there is no validation pass (NaN/Inf show up in the products), and power
    iterations take one pass each."""
    from .io import ArrayRows, as_panels
    return DaskOperator(as_panels(ArrayRows(A, name)), name=name)


# -- single pass: Tropp, Yurtsever, Udell & Cevher (2017, 2019) ----------------------------------
def _sketchy_chunk(a, maps, r0, c0):
    """Contributions of the chunk A_ij, whose first entry is A[r0, c0], to the range
    (A Omega^T), co-range (Upsilon A) and core (Phi A Psi^T) sketches: each map is applied
    through its columns that meet the chunk (sparse sign maps without forming them)."""
    a = _dense(a)
    omega, upsilon, phi, psi = maps
    return (omega.apply_block(a.T, c0).T, upsilon.apply_block(a, r0),
            phi.apply_block(psi.apply_block(a.T, c0).T, r0))


class SketchySVD:
    """Single-pass low-rank approximation of an m x n matrix from linear sketches.

    Keeps the range sketch ``Y = A Omega^T`` (m x k), the co-range sketch ``X = Upsilon A``
    (k x n) and the core sketch ``Z = Phi A Psi^T`` (s x s) of Tropp, Yurtsever, Udell & Cevher
    (SIAM J. Sci. Comput. 2019). A is never stored: it is fed as any sequence of linear updates
    ``A[rows, cols] += H`` through :meth:`update`, each entry any number of times, and
    :meth:`finalize` reconstructs a rank-r SVD from the sketches.

    Parameters
    ----------
    shape : (int, int)
    rank : int
        Target rank r.
    range_size : int, optional
        k, the size of the range and co-range sketches; default ``2 r + 1``.
    core_size : int, optional
        s, the size of the core sketch; default ``2 k + 1`` (the paper requires s >= 2k + 1 for
        real data).
    sketch : str
        Name of the sketch used for the four test matrices.
    rng : None, int or numpy.random.Generator
    dtype : dtype
        dtype of the data (float32 stays float32).

    Examples
    --------
    >>> import numpy as np
    >>> from randla.streaming import SketchySVD
    >>> A = np.random.default_rng(0).standard_normal((100, 5)) @ np.random.default_rng(1).standard_normal((5, 80))
    >>> sk = SketchySVD(A.shape, 5, rng=0)
    >>> for i in range(0, 100, 30):      # rows arrive in blocks
    ...     _ = sk.update(A[i:i + 30], row_start=i)
    >>> U, S, Vh = sk.finalize()
    >>> bool(np.allclose((U * S) @ Vh, A))
    True
    """

    def __init__(self, shape, rank, *, range_size=None, core_size=None, sketch="gaussian",
                 rng=None, dtype=np.float64):
        if len(shape) != 2:
            raise ValueError(f"shape must be (m, n), got {shape}")
        m, n = (check_positive_int(v, "shape") for v in shape)
        self.shape = (m, n)
        self.rank = check_positive_int(rank, "rank")
        if self.rank > min(m, n):
            raise ValueError(f"rank must be <= min(m, n) = {min(m, n)}, got {rank}")
        k = min(m, n, 2 * self.rank + 1 if range_size is None else
                check_positive_int(range_size, "range_size"))
        if k < self.rank:
            raise ValueError(f"range_size must be >= rank = {self.rank}, got {range_size}")
        s = min(m, n, 2 * k + 1 if core_size is None else check_positive_int(core_size, "core_size"))
        if s < k:
            raise ValueError(f"core_size must be >= range_size = {k}, got {core_size}")
        self.range_size, self.core_size = k, s
        self.dtype = working_dtype(dtype, "dtype")
        seed = seed_from_rng(rng)
        sub = np.random.SeedSequence(seed).generate_state(4, dtype=np.uint64)
        rd = real_dtype(self.dtype)
        make = lambda d, dim, i: _sketch.resolve(sketch, d, dim, rng=int(sub[i] >> np.uint64(1)), dtype=rd)
        self.Omega, self.Upsilon = make(k, n, 0), make(k, m, 1)
        self.Phi, self.Psi = make(s, m, 2), make(s, n, 3)
        self.sketch_dtype = self.Omega.dtype_for(self.dtype)
        out = np.result_type(self.dtype, self.sketch_dtype)
        self.Y = np.zeros((m, k), out)
        self.X = np.zeros((k, n), out)
        self.Z = np.zeros((s, s), out)

    @property
    def maps(self):
        """The test matrices (Omega, Upsilon, Phi, Psi)."""
        return self.Omega, self.Upsilon, self.Phi, self.Psi

    def update(self, H, row_start=0, col_start=0):
        """Add the block H (dense or sparse) to A at ``A[row_start:, col_start:]``."""
        if not sp.issparse(H):
            H = np.asarray(H)
            if H.ndim == 1:
                H = H[None, :]
        if H.ndim != 2:
            raise ValueError(f"H must be 2-D, got shape {H.shape}")
        if H.dtype.kind not in "biufc":
            raise TypeError(f"H must be numeric, got dtype {H.dtype}")
        r0, c0 = int(row_start), int(col_start)
        r1, c1 = r0 + H.shape[0], c0 + H.shape[1]
        if r0 < 0 or c0 < 0 or r1 > self.shape[0] or c1 > self.shape[1]:
            raise ValueError(f"block of shape {H.shape} at ({r0}, {c0}) does not fit in a matrix "
                             f"of shape {self.shape}")
        dt = self.sketch_dtype
        if sp.issparse(H):
            H = H.tocsr()
            if not np.all(np.isfinite(H.data)):
                raise ValueError("H contains NaN or Inf")
            y = np.asarray(H @ _dense(self.Omega.block(c0, c1, dt)).T)
            ups, phi = (_dense(S.block(r0, r1, dt)) for S in (self.Upsilon, self.Phi))
            x = np.asarray((H.T @ ups.T).T)
            w = phi @ np.asarray(H @ _dense(self.Psi.block(c0, c1, dt)).T)
        else:
            if not np.all(np.isfinite(H)):
                raise ValueError("H contains NaN or Inf")
            y, x, w = _sketchy_chunk(H, self.maps, r0, c0)
        self._add(r0, r1, c0, c1, y, x, w)
        return self

    def _add(self, r0, r1, c0, c1, y, x, w):
        self.Y[r0:r1] += y
        self.X[:, c0:c1] += x
        self.Z += w

    def finalize(self, rank=None):
        """Rank-r SVD ``(U, S, Vh)`` of the approximation ``Q C P^H`` reconstructed from the
        sketches (the paper's Algorithm 7 with truncation)."""
        r = self.rank if rank is None else check_positive_int(rank, "rank")
        if r > self.range_size:
            raise ValueError(f"rank must be <= range_size = {self.range_size}, got {r}")
        Q, C, P = self.reconstruct()
        Uc, s, Vch = sla.svd(C, full_matrices=False, check_finite=False)
        U, Vh = Q @ Uc[:, :r], Vch[:r] @ _h(P)
        from .lowrank import SVDResult, _fix_signs
        U, Vh = _fix_signs(U, Vh)
        rd = real_dtype(self.dtype)
        return SVDResult(U.astype(self.Y.dtype, copy=False), s[:r].astype(rd, copy=False),
                         Vh.astype(self.Y.dtype, copy=False))

    def reconstruct(self):
        """``(Q, C, P)`` with ``A ~ Q C P^H``: Q (m x k) and P (n x k) orthonormal bases of the
        range and co-range sketches, C (k x k) the core solved from the core sketch."""
        Q = sla.qr(self.Y, mode="economic", check_finite=False)[0]
        P = sla.qr(_h(self.X), mode="economic", check_finite=False)[0]
        phiQ = self.Phi.apply(Q)                     # (s, k)
        psiP = self.Psi.apply(P.conj()).conj()       # conj(Psi) P, (s, k)
        W = sla.lstsq(phiQ, self.Z, check_finite=False)[0]           # (ΦQ)^+ Z, (k, s)
        C = _h(sla.lstsq(psiP, _h(W), check_finite=False)[0])        # W (P^H Ψ^T)^+
        return Q, C, P


def _panel_rows(shape, itemsize, target_bytes=64 * 2**20):
    return max(1, min(shape[0], target_bytes // max(1, shape[1] * itemsize)))


def sketchy_svd(A, k, *, range_size=None, core_size=None, sketch="gaussian", rng=None):
    """Single-pass randomized SVD (Tropp, Yurtsever, Udell & Cevher 2019): A is read once.

    The right tool when reading A is the bottleneck (a file larger than memory, a matrix that
    arrives as a stream). Less accurate than :func:`randla.rsvd` with power iterations, which
    reads A several times; see :class:`SketchySVD` for the sketch sizes and for streams of
    updates.

    Parameters
    ----------
    A : ndarray (memmaps included), scipy.sparse matrix, dask array or LinearOperator
    k : int
        Rank of the result.
    range_size, core_size, sketch, rng
        As in :class:`SketchySVD`.

    Returns
    -------
    SVDResult
        ``(U, S, Vh)``.

    Examples
    --------
    >>> import numpy as np, randla
    >>> A = np.random.default_rng(0).standard_normal((200, 6)) @ np.random.default_rng(1).standard_normal((6, 90))
    >>> U, S, Vh = randla.sketchy_svd(A, 6, rng=0)
    >>> bool(np.allclose(S, np.linalg.svd(A, compute_uv=False)[:6]))
    True
    """
    from .operators import as_operator
    A = np.asarray(A) if isinstance(A, (list, tuple)) else A
    if len(A.shape) != 2:
        raise ValueError(f"A must be 2-D, got shape {A.shape}")
    op = A if isinstance(A, Operator) else (
        None if isinstance(A, np.ndarray) or sp.issparse(A) else as_operator(A))
    dtype = working_dtype(A.dtype, "A") if op is None else op.dtype
    sk = SketchySVD(A.shape if op is None else op.shape, k, range_size=range_size,
                    core_size=core_size, sketch=sketch, rng=rng, dtype=dtype)
    if isinstance(op, DaskOperator):
        sk._add(0, sk.shape[0], 0, sk.shape[1], *op.sketches(sk))
    elif op is None:                       # arrays (memmaps too) and sparse: row panels
        step = _panel_rows(A.shape, np.dtype(dtype).itemsize)
        for i in range(0, A.shape[0], step):
            sk.update(A[i:i + step], row_start=i)
    else:                                  # a generic operator: three products
        sk._add(0, sk.shape[0], 0, sk.shape[1], op.sketch_right(sk.Omega), op.sketch_left(sk.Upsilon),
                sk.Phi.apply(op.sketch_right(sk.Psi)))
    return sk.finalize()
