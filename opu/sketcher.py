"""The OPU seen through randla's Sketcher contract: ``sketch="optical"``.

The sketch of shape (d, n) is the projection an OPU measures with the anchor scheme of
:mod:`opu.linear`, on a DMD of at most :data:`opu.DMD_MIRRORS` mirrors:

* the input is split into ``n_blocks`` column blocks of at most ``DMD_MIRRORS - n_anchor``
  columns (one block when ``n + n_anchor`` fits the DMD). Every block is shown on the same DMD,
  input mirrors first and the ``n_anchor`` anchor mirrors after them, and is read on its own
  ``d`` camera pixels: block ``b`` reads pixels ``b d ... (b + 1) d - 1``, whose rows of the
  medium are independent of the other blocks' rows. The linear outputs of the blocks are summed
  digitally, and every block costs its own frames;
* real (default): block ``b`` of S is ``sqrt(2 / d) Re(exp(-i arg(M_b r)) H_b[:, :w])``, i.i.d.
  N(0, 1/d), with ``H_b`` the rows of block ``b`` and ``M_b r`` the field of its anchor;
* ``complex=True``: ``H_b[:, :w] / sqrt(d)``, i.i.d. complex CN(0, 1/d) (ideal mode only: a
  camera measures no phase);
* ``densify=True``: the rows are first multiplied by a fixed random orthogonal transform
  ``Q_b = F diag(s_b)`` (random signs, then the orthonormal DCT-II), so that sparse rows light
  half the mirrors; S becomes ``S_b Q_b`` per block, still exactly i.i.d. Gaussian (a Gaussian
  matrix times a fixed orthogonal matrix).

``mode="ideal"`` applies S exactly (block addressable, like the Gaussian sketch, with H generated
tile by tile and never stored). ``mode="device"`` sends the data through the simulated device:
bit-plane encoding, anchor frames, the 8-bit camera with its noise and a calibrated gain, so it
has the real device's accuracy (a few percent per projection with 8 bits, see the user guide);
camera pixels with a weak reference read 0 (``S.masks``). Its blocks (``S[:, i:j]``,
``to_dense``) are the nominal matrix: the ideal S with the masked rows zeroed.

Both modes report to :func:`opu.metering`: device mode the frames the simulated camera takes,
ideal mode the frames the device would take for the same projection (:meth:`frames_for`).
Products with a LinearOperator or a chunked matrix (dask, files read in panels) are made on the
CPU from S's blocks, the nominal S in either mode: they report the frames the device would take
(modelled), counted wherever dask computes them (:meth:`product_hook`).
"""
from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import scipy.fft
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from randla._validation import check_finite, check_positive_int, check_random_state, working_dtype
from randla.sketch import rng as _rng
from randla.sketch.base import Sketcher, _is_dask

from . import meter as metering
from .device import CACHE_BYTES, DMD_MIRRORS, FRAME_US, OPU, POWER_W
from .linear import LinearProjection, unit_phase
from .medium import TILE_BYTES

_MODES = ("ideal", "device")
#: Philox stream of the random signs of ``densify=True`` (asked of randla.sketch.rng.STREAMS).
STREAM_SIGNS = _rng.STREAMS["opu.densify.signs"]
#: Device mode refuses rows whose participation ratio ``(sum |x|)^2 / sum x^2`` (the mirrors a
#: row effectively lights) in a column block is below this fraction of the anchor: measured (see
#: the user guide), the error of the anchor scheme passes 10% below it.
MIN_SPREAD = 0.4
_UNSET = object()


def default_anchor(n) -> int:
    """Anchor mirrors for an input of ``n`` columns: ``n // 2`` (an anchor about as bright as a
    typical bit plane) when ``n + n // 2`` fits the DMD, else a third of the DMD."""
    n_anchor = max(1, n // 2)
    return n_anchor if n + n_anchor <= DMD_MIRRORS else DMD_MIRRORS // 3


class OpticalSketch(Sketcher):
    """The optical random projection as a randla sketch.

    Parameters
    ----------
    d, n : int
        Sketch size and input dimension (any ``n``: inputs wider than the DMD are split into
        column blocks).
    seed : None, int or numpy.random.Generator
        Names the medium (S); None draws it from ``rng``.
    rng : None, int or numpy.random.Generator
        The randomness of the calls: the medium when ``seed`` is None (so ``rng=0`` names the
        same S, as for every randla sketch), then the camera noise and calibration probes.
    dtype : dtype
        Precision when the data does not fix it.
    mode : {"ideal", "device"}
    complex : bool
        Complex projections (``mode="ideal"`` only).
    n_anchor : int, optional
        Anchor mirrors (:func:`default_anchor`).
    n_bits : int
        Bits per magnitude of the bit-plane encoding (device mode).
    densify : bool
        Multiply the rows by a fixed random orthogonal transform first (``O(n log n)`` on the
        CPU per row): what makes device mode accurate on sparse rows, which it otherwise
        refuses.
    tile_bytes : int
        Memory budget of the streamed products.
    noise_rng : deprecated
        The former name of ``rng`` (with ``rng`` then naming the medium, now ``seed``).
    **camera
        Passed to :class:`opu.OPU` (``exposure_us``, ``shot_noise``, ``read_noise``,
        ``black_level``, ...), device mode.

    Examples
    --------
    >>> import numpy as np, randla, opu
    >>> A = np.random.default_rng(0).standard_normal((300, 6)) @ np.random.default_rng(1).standard_normal((6, 2000))
    >>> U, s, Vh = randla.rsvd(A, 6, sketch="optical", rng=0)
    >>> bool(np.allclose(s, np.linalg.svd(A, compute_uv=False)[:6]))
    True
    >>> S = opu.OpticalSketch(20, 2_000_000, seed=0)      # wider than the DMD: 3 blocks
    >>> S.n_blocks, S.block_width, S.frames_for(batch=1)
    (3, 666667, 96)
    """

    kind = "optical"
    long_side = True  # the DMD's width is the device's strength: A's larger dimension goes in

    def __init__(self, d, n, *, seed=None, rng=None, dtype=np.float64, mode="ideal",
                 complex=False, n_anchor=None, n_bits=8, densify=False, tile_bytes=TILE_BYTES,
                 noise_rng=_UNSET, **camera):
        if noise_rng is not _UNSET:
            warnings.warn("OpticalSketch(noise_rng=) is deprecated: the medium is seed=, the "
                          "noise rng= (OpticalSketch(seed=old_rng, rng=old_noise_rng))",
                          DeprecationWarning, stacklevel=2)
            seed, rng = (rng if seed is None else seed), noise_rng
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if complex and mode == "device":
            raise ValueError("complex=True needs mode='ideal': a camera measures intensities, "
                             "the anchor scheme recovers real projections")
        if camera and mode == "ideal":
            raise TypeError(f"camera options {sorted(camera)} only apply to mode='device'")
        self.is_complex = bool(complex)
        rng = check_random_state(rng) if not isinstance(rng, (int, np.integer)) else rng
        super().__init__(d, n, rng=rng if seed is None else seed, dtype=dtype)
        noise = check_random_state(rng)
        self.mode = mode
        self.densify = bool(densify)
        self.n_anchor = (default_anchor(self.n) if n_anchor is None
                         else check_positive_int(n_anchor, "n_anchor"))
        if self.n_anchor >= DMD_MIRRORS:
            raise ValueError(f"n_anchor must leave input mirrors on the {DMD_MIRRORS:,}-mirror "
                             f"DMD, got {n_anchor}")
        self.n_bits = check_positive_int(n_bits, "n_bits")
        self.n_blocks = math.ceil(self.n / (DMD_MIRRORS - self.n_anchor))
        self.block_width = math.ceil(self.n / self.n_blocks)
        # device mode sends many chunks of frames through each block's OPU: they share one
        # cache budget for their effective matrices (ideal mode streams the medium instead)
        cache = CACHE_BYTES // self.n_blocks if mode == "device" else 0
        self.opus = [OPU(self.block_width + self.n_anchor, self.d, seed=self.seed, rng=noise,
                         cache_bytes=cache, tile_bytes=tile_bytes, row0=b * self.d, **camera)
                     .fit1d(n_features=self.block_width, macro_pixels=False,
                            reserve=self.n_anchor) for b in range(self.n_blocks)]
        self.projections = None
        if mode == "device":
            self.projections = [LinearProjection(o, n_bits=n_bits, rng=noise) for o in self.opus]

    def params(self):
        return {"complex": self.is_complex, "mode": self.mode, "n_anchor": self.n_anchor,
                "n_bits": self.n_bits, "densify": self.densify}

    # -- the device --------------------------------------------------------------------------
    @property
    def opu(self) -> OPU:
        """The OPU of the first column block (the only one when the input fits the DMD)."""
        return self.opus[0]

    @property
    def projection(self):
        return self.projections[0] if self.projections else None

    @property
    def medium(self):
        return self.opu.medium

    @property
    def stats(self):
        """Frames, device seconds and joules of all blocks' devices so far."""
        total = self.opus[0].stats
        for o in self.opus[1:]:
            total = total + o.stats
        return total

    def _cols(self, b):
        """Columns of S in block ``b``."""
        return b * self.block_width, min(self.n, (b + 1) * self.block_width)

    def frames_for(self, batch=1, complex_data=False) -> int:
        """Frames the device takes to project ``batch`` real vectors: per column block, 2 frames
        per bit plane (with and without the anchor), ``2 n_bits`` planes per vector (sign
        split); the calibration (probes and the reference, once per block) is not included.
        Complex data (or ``complex=True``) takes twice as many."""
        per_block = 2 * 2 * self.n_bits * batch
        return self.n_blocks * per_block * (2 if complex_data or self.is_complex else 1)

    def _meter_ideal(self, batch, complex_data):
        if metering.active():
            self._modelled_record(batch, complex_data)()

    def _modelled_record(self, batch, complex_data, also=()):
        """A function that meters the frames the device would take for ``batch`` vectors."""
        frames = self.frames_for(batch, complex_data)
        seconds = frames * FRAME_US * 1e-6
        return functools.partial(metering.record, frames, seconds, seconds * POWER_W,
                                 calls=self.n_blocks, modelled=True, also=also)

    def product_hook(self, batch, complex_data=False):
        """Meters the frames of a product made from S's blocks (chunked matrices, in dask's
        threads) in the meters open here and in those of the thread that computes it. The
        product is the nominal S (device mode's noise is not simulated): modelled frames."""
        return self._modelled_record(batch, complex_data, also=metering.capture())

    @property
    def masks(self) -> np.ndarray:
        """(n_blocks, d): camera pixels measured in each block (device mode: reference above
        threshold; all True in ideal mode)."""
        if self.mode != "device":
            return np.ones((self.n_blocks, self.d), dtype=bool)
        for p in self.projections:
            if p.mask_ is None:
                p.project_binary(np.zeros((1, self.block_width), np.uint8))
        return np.array([p.mask_ for p in self.projections])

    @property
    def mask(self) -> np.ndarray:
        """Rows of S measured in every block (see :attr:`masks`)."""
        return self.masks.all(axis=0)

    # -- blocks -------------------------------------------------------------------------------
    def _real_scale(self, b, dtype):
        """exp(-i arg(M_b r)) sqrt(2/d) per row of block b, with masked rows zeroed."""
        p = self.projections[b] if self.projections else None
        phase = p.phase if p else unit_phase(self.opus[b].reserved_field)
        return (phase.conj() * np.sqrt(2.0 / self.d) * self.masks[b]).astype(dtype)

    def _signs(self, b, dtype=np.float64):
        c0, c1 = self._cols(b)
        return _rng.sign_block(self.seed, STREAM_SIGNS, (0, 1), (c0, c1), dtype)[0]

    def _raw_block(self, b, start, stop, dtype):
        """Columns start:stop (local to block b) of the undensified S_b."""
        cdt = np.result_type(dtype, np.complex64)
        T = self.opus[b].medium.block(slice(None), slice(start, stop), dtype=cdt)
        if self.is_complex:
            return T / np.sqrt(self.d).astype(np.finfo(cdt).dtype)
        return np.ascontiguousarray((T * self._real_scale(b, cdt)[:, None]).real, dtype=dtype)

    def _block(self, start, stop, dtype):
        parts = []
        for b in range(self.n_blocks):
            c0, c1 = self._cols(b)
            lo, hi = max(start, c0), min(stop, c1)
            if lo >= hi:
                continue
            if not self.densify:
                parts.append(self._raw_block(b, lo - c0, hi - c0, dtype))
                continue
            # S_b F diag(s): every column needs the whole block, (R F) = idct(R) along rows
            R = self._raw_block(b, 0, c1 - c0, np.result_type(dtype, np.float64))
            RF = scipy.fft.idct(R, type=2, norm="ortho", axis=1, workers=-1)
            parts.append((RF[:, lo - c0:hi - c0] * self._signs(b)[lo - c0:hi - c0])
                         .astype(dtype, copy=False))
        if not parts:
            return np.zeros((self.d, 0), dtype)
        return parts[0] if len(parts) == 1 else np.hstack(parts)

    # -- application --------------------------------------------------------------------------
    def apply(self, X):
        if _is_dask(X):
            return super().apply(X)  # metered by product_hook
        if isinstance(X, spla.LinearOperator):  # the nominal S, applied on the CPU
            Y = super().apply(X)
            self._meter_ideal(X.shape[1], np.dtype(X.dtype).kind == "c")
            return Y
        if getattr(X, "ndim", 2) == 1:
            return self.apply_right(X)
        Xt = X.T if sp.issparse(X) else np.asarray(X).T
        return self.apply_right(Xt).T

    def apply_right(self, X):
        """``X @ S.T``: the rows of X through the medium, block by block (or the device)."""
        if _is_dask(X) or isinstance(X, spla.LinearOperator):
            return super().apply_right(X)  # through apply (X.T), which meters
        X = X if sp.issparse(X) else np.asarray(X)
        vector = X.ndim == 1
        X = X.reshape(1, -1) if vector else X
        if X.ndim != 2 or X.shape[1] != self.n:
            raise ValueError(f"X must have {self.n} columns to be sketched by S of shape "
                             f"{self.shape}, got shape {X.shape}")
        dt = self.dtype_for(working_dtype(X.dtype, "X"))
        complex_data = X.dtype.kind == "c"
        if sp.issparse(X):
            X = X.tocsc()  # column blocks
        out_dtype = np.result_type(X.dtype if X.dtype.kind in "fc" else np.float64, dt)
        Y = np.zeros((X.shape[0], self.d), dtype=out_dtype)
        if self.mode == "device" or self.densify:  # before the spread or the DCT sees them
            check_finite(X, "X")
        if self.mode == "device" and not self.densify:
            self._check_light(X)
        for b in range(self.n_blocks):
            c0, c1 = self._cols(b)
            Xb = X[:, c0:c1]
            if complex_data and not self.is_complex:  # real S: sketch both parts
                Y += self._apply_real(b, Xb.real, dt) + 1j * self._apply_real(b, Xb.imag, dt)
            elif self.is_complex:
                F = self._field(b, Xb, np.result_type(dt, np.complex64))
                Y += F / np.sqrt(self.d).astype(F.real.dtype)
            else:
                Y += self._apply_real(b, Xb, dt)
        if self.mode == "ideal":
            self._meter_ideal(X.shape[0], complex_data)
        return Y[0] if vector else Y

    def _rows(self, n_rows, itemsize=8):
        """Rows per chunk so a densified chunk stays within the tile budget."""
        return max(1, self.opus[0].medium.tile_bytes // (itemsize * self.block_width))

    def _densified(self, b, X):
        """Chunks (start, dense Q_b x) of the rows of X (block b's columns)."""
        signs = self._signs(b)
        for i in range(0, X.shape[0], self._rows(X.shape[0])):
            Xi = X[i:i + self._rows(X.shape[0])]
            Xi = Xi.toarray() if sp.issparse(Xi) else np.asarray(Xi, dtype=np.float64)
            yield i, scipy.fft.dct(Xi * signs, type=2, norm="ortho", axis=1, workers=-1)

    def _field(self, b, X, cdt):
        """X @ H_b[:, :w].T, densified first if asked."""
        medium = self.opus[b].medium
        if not self.densify:
            return medium.field(X, col0=0, dtype=cdt)
        F = np.empty((X.shape[0], self.d), cdt)
        for i, Xi in self._densified(b, X):
            F[i:i + len(Xi)] = medium.field(Xi, col0=0, dtype=cdt)
        return F

    def _apply_real(self, b, X, dt):
        if self.mode == "ideal":
            F = self._field(b, X, np.result_type(dt, np.complex64))
            return (F * self._real_scale(b, F.dtype)).real
        proj, w = self.projections[b], self.block_width
        if not self.densify:
            return proj.project(self._pad(X, w)) * np.sqrt(2.0 / self.d)
        Y = np.empty((X.shape[0], self.d))
        for i, Xi in self._densified(b, X):
            Y[i:i + len(Xi)] = proj.project(self._pad(Xi, w)) * np.sqrt(2.0 / self.d)
        return Y

    @staticmethod
    def _pad(X, w):
        """X with zero columns up to w (the dark mirrors of a narrower last block)."""
        if X.shape[1] == w:
            return X
        if sp.issparse(X):
            return sp.csr_matrix((X.tocsr().data, X.tocsr().indices, X.tocsr().indptr),
                                 shape=(X.shape[0], w))
        return np.pad(np.asarray(X), ((0, 0), (0, w - X.shape[1])))

    def _check_light(self, X):
        """Refuse rows too sparse or too spiky for the anchor scheme (see MIN_SPREAD)."""
        for b in range(self.n_blocks):
            c0, c1 = self._cols(b)
            spread = participation(X[:, c0:c1])
            spread = spread[np.isfinite(spread)]  # zero rows project to zero exactly
            if spread.size and spread.min() < MIN_SPREAD * self.n_anchor:
                raise ValueError(
                    f"device mode: a row spreads over about {spread.min():.0f} mirrors "
                    f"((sum |x|)^2 / sum x^2) against an anchor of {self.n_anchor}: its bit "
                    f"planes are too dim for the 8-bit camera (the signal falls toward one "
                    f"count) and the error would pass 10%. Use densify=True (a random "
                    f"orthogonal transform on the CPU, O(n log n) per row, spreads each row "
                    f"over all mirrors; S stays i.i.d. Gaussian), or mode='ideal', or a "
                    f"software sketch for sparse data.")


def participation(X) -> np.ndarray:
    """``(sum |x|)^2 / sum x^2`` per row (inf for zero rows): the number of mirrors a row
    effectively lights, ``nnz`` for a flat row, ``2/pi n`` for a dense Gaussian one."""
    # each row divided by its largest |x| first: the ratio is the same, and squares of rows of
    # 1e160 do not overflow (nor those of 1e-170 underflow)
    if sp.issparse(X):
        X = abs(X.tocsr())
        peak = X.max(axis=1).toarray().ravel()
        X = sp.diags(1.0 / np.where(peak > 0, peak, 1.0)) @ X
        l1 = np.asarray(X.sum(axis=1)).ravel()
        l2 = np.asarray(X.multiply(X).sum(axis=1)).ravel()
    else:
        X = np.abs(np.asarray(X))
        peak = X.max(axis=1, initial=0.0)
        X = X / np.where(peak > 0, peak, 1.0)[:, None]
        l1, l2 = X.sum(axis=1), (X**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(l2 > 0, l1**2 / np.where(l2 > 0, l2, 1), np.inf)
