"""Single pass low-rank approximation (Tropp, Yurtsever, Udell & Cevher 2017, 2019): A is read
once, or arrives as a stream of linear updates, and only three small sketches are kept."""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from .. import sketch as _sketch
from .._budget import PANEL_BYTES, rows_within
from .._dask import conj_t, dense, sum_in_order
from .._linalg import fix_signs
from .._validation import check_positive_int, real_dtype, seed_from_rng, working_dtype
from ..operators import DaskOperator, Operator, as_operator
from .results import SVDResult


def _sketchy_chunk(a, maps, r0, c0):
    """Contributions of the chunk A_ij, whose first entry is A[r0, c0], to the range
    (A Omega^T), co-range (Upsilon A) and core (Phi A Psi^T) sketches: each map is applied
    through its columns that meet the chunk (sparse sign maps without forming them)."""
    a = dense(a)
    omega, upsilon, phi, psi = maps
    return (omega.apply_block(a.T, c0).T, upsilon.apply_block(a, r0),
            phi.apply_block(psi.apply_block(a.T, c0).T, r0))



def _dask_sketches(op: DaskOperator, sketcher: SketchySVD):
    """The three sketches of :class:`SketchySVD` in ONE pass over a chunked A: each chunk's
    task adds its share to the range, co-range and core sketches."""
    from dask import delayed
    maps = delayed(sketcher.maps, pure=True)
    rows, cols = op.row_slices(), op.col_slices()
    nr, nc = op.blocks.shape
    parts = [[delayed(_sketchy_chunk, pure=True, nout=3)(op.blocks[i, j], maps,
                                                         rows[i].start, cols[j].start)
              for j in range(nc)] for i in range(nr)]
    Y = [sum_in_order(parts[i][j][0] for j in range(nc)) for i in range(nr)]
    X = [sum_in_order(parts[i][j][1] for i in range(nr)) for j in range(nc)]
    W = sum_in_order(parts[i][j][2] for i in range(nr) for j in range(nc))
    out = op.run(W, *Y, *X)
    return np.concatenate(out[1:1 + nr], axis=0), np.concatenate(out[1 + nr:], axis=1), out[0]


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
    >>> from randla.lowrank import SketchySVD
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
        return self._update(H, row_start, col_start, "H")

    def _update(self, H, row_start, col_start, name):
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
                raise ValueError(f"{name} contains NaN or Inf")
            y = np.asarray(H @ dense(self.Omega.block(c0, c1, dt)).T)
            ups, phi = (dense(S.block(r0, r1, dt)) for S in (self.Upsilon, self.Phi))
            x = np.asarray((H.T @ ups.T).T)
            w = phi @ np.asarray(H @ dense(self.Psi.block(c0, c1, dt)).T)
        else:
            if not np.all(np.isfinite(H)):
                raise ValueError(f"{name} contains NaN or Inf")
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
        U, Vh = Q @ Uc[:, :r], Vch[:r] @ conj_t(P)
        U, Vh = fix_signs(U, Vh)
        rd = real_dtype(self.dtype)
        return SVDResult(U.astype(self.Y.dtype, copy=False), s[:r].astype(rd, copy=False),
                         Vh.astype(self.Y.dtype, copy=False))

    def reconstruct(self):
        """``(Q, C, P)`` with ``A ~ Q C P^H``: Q (m x k) and P (n x k) orthonormal bases of the
        range and co-range sketches, C (k x k) the core solved from the core sketch."""
        Q = sla.qr(self.Y, mode="economic", check_finite=False)[0]
        P = sla.qr(conj_t(self.X), mode="economic", check_finite=False)[0]
        phiQ = self.Phi.apply(Q)                     # (s, k)
        psiP = self.Psi.apply(P.conj()).conj()       # conj(Psi) P, (s, k)
        W = sla.lstsq(phiQ, self.Z, check_finite=False)[0]           # (ΦQ)^+ Z, (k, s)
        C = conj_t(sla.lstsq(psiP, conj_t(W), check_finite=False)[0])        # W (P^H Ψ^T)^+
        return Q, C, P


def _panel_rows(shape, itemsize):
    return rows_within(PANEL_BYTES, shape[1] * itemsize, total=shape[0])


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
    A = np.asarray(A) if isinstance(A, (list, tuple)) else A
    if len(A.shape) != 2:
        raise ValueError(f"A must be 2-D, got shape {A.shape}")
    op = A if isinstance(A, Operator) else (
        None if isinstance(A, np.ndarray) or sp.issparse(A) else as_operator(A))
    dtype = working_dtype(A.dtype, "A") if op is None else op.dtype
    sk = SketchySVD(A.shape if op is None else op.shape, k, range_size=range_size,
                    core_size=core_size, sketch=sketch, rng=rng, dtype=dtype)
    if isinstance(op, DaskOperator):
        sk._add(0, sk.shape[0], 0, sk.shape[1], *_dask_sketches(op, sk))
    elif op is None:                       # arrays (memmaps too) and sparse: row panels
        step = _panel_rows(A.shape, np.dtype(dtype).itemsize)
        for i in range(0, A.shape[0], step):
            sk._update(A[i:i + step], i, 0, "A")
    else:                                  # a generic operator: three products
        sk._add(0, sk.shape[0], 0, sk.shape[1], op.sketch_right(sk.Omega), op.sketch_left(sk.Upsilon),
                sk.Phi.apply(op.sketch_right(sk.Psi)))
    return sk.finalize()
