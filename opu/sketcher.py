"""The OPU seen through randla's Sketcher contract: ``sketch="optical"``.

The sketch of shape (d, n) is the projection an OPU with a DMD of ``n + n_anchor`` mirrors and
``d`` camera pixels measures with the anchor scheme of :mod:`opu.linear`:

* real (default): ``S = sqrt(2 / d) Re(exp(-i arg(M r)) H[:, :n])``, i.i.d. N(0, 1/d);
* ``complex=True``: ``S = H[:, :n] / sqrt(d)``, i.i.d. complex CN(0, 1/d) (ideal mode only: a
  camera measures no phase).

``mode="ideal"`` applies S exactly (block addressable, like the Gaussian sketch, with H generated
tile by tile and never stored). ``mode="device"`` sends the data through the simulated device:
bit-plane encoding, anchor frames, the 8-bit camera with its noise and a calibrated gain, so it
has the real device's accuracy (a few percent per projection with 8 bits, see the user guide);
camera pixels with a weak reference read 0 (``S.mask``). Its blocks (``S[:, i:j]``,
``to_dense``) are the nominal matrix: the ideal S with the masked rows zeroed.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from randla._validation import check_positive_int, check_random_state, working_dtype
from randla.sketch.base import Sketcher, _is_dask

from .device import OPU
from .linear import LinearProjection, unit_phase
from .medium import TILE_BYTES

_MODES = ("ideal", "device")


class OpticalSketch(Sketcher):
    """The optical random projection as a randla sketch.

    Parameters
    ----------
    d, n : int
        Sketch size and input dimension.
    rng : None, int or numpy.random.Generator
        Names the medium.
    dtype : dtype
        Precision when the data does not fix it.
    mode : {"ideal", "device"}
    complex : bool
        Complex projections (``mode="ideal"`` only).
    n_anchor : int, optional
        Anchor mirrors (``max(1, n // 2)`` by default: an anchor about as bright as a typical
        bit plane balances the quantization error).
    n_bits : int
        Bits per magnitude of the bit-plane encoding (device mode).
    noise_rng : None, int or numpy.random.Generator
        Camera noise and calibration probes (device mode).
    tile_bytes : int
        Memory budget of the streamed products.
    **camera
        Passed to :class:`opu.OPU` (``exposure_us``, ``shot_noise``, ``read_noise``,
        ``black_level``, ...), device mode.

    Examples
    --------
    >>> import numpy as np, randla
    >>> A = np.random.default_rng(0).standard_normal((300, 6)) @ np.random.default_rng(1).standard_normal((6, 2000))
    >>> U, s, Vh = randla.rsvd(A, 6, sketch="optical", rng=0)
    >>> bool(np.allclose(s, np.linalg.svd(A, compute_uv=False)[:6]))
    True
    """

    kind = "optical"

    def __init__(self, d, n, *, rng=None, dtype=np.float64, mode="ideal", complex=False,
                 n_anchor=None, n_bits=8, noise_rng=None, tile_bytes=TILE_BYTES, **camera):
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if complex and mode == "device":
            raise ValueError("complex=True needs mode='ideal': a camera measures intensities, "
                             "the anchor scheme recovers real projections")
        if camera and mode == "ideal":
            raise TypeError(f"camera options {sorted(camera)} only apply to mode='device'")
        self.is_complex = bool(complex)
        super().__init__(d, n, rng=rng, dtype=dtype)
        self.mode = mode
        self.n_anchor = (max(1, self.n // 2) if n_anchor is None
                         else check_positive_int(n_anchor, "n_anchor"))
        self.n_bits = check_positive_int(n_bits, "n_bits")
        self.opu = OPU(self.n + self.n_anchor, self.d, seed=self.seed, rng=noise_rng,
                       cache_bytes=0, tile_bytes=tile_bytes, **camera)
        self.opu.fit1d(n_features=self.n, macro_pixels=False, reserve=self.n_anchor)
        self.projection = None
        if mode == "device":
            self.projection = LinearProjection(self.opu, n_bits=n_bits,
                                               rng=check_random_state(noise_rng))

    def params(self):
        return {"complex": self.is_complex, "mode": self.mode, "n_anchor": self.n_anchor,
                "n_bits": self.n_bits}

    @property
    def medium(self):
        return self.opu.medium

    @property
    def mask(self) -> np.ndarray:
        """Rows measured (device mode: reference above threshold; all True in ideal mode)."""
        if self.mode == "device":
            if self.projection.mask_ is None:
                self.projection.project_binary(np.zeros((1, self.n), np.uint8))
            return self.projection.mask_
        return np.ones(self.d, dtype=bool)

    # -- blocks -------------------------------------------------------------------------------
    def _real_scale(self, dtype):
        """exp(-i arg(M r)) sqrt(2/d) per row, with masked rows zeroed."""
        phase = self.projection.phase if self.projection else unit_phase(self.opu.reserved_field)
        return (phase.conj() * np.sqrt(2.0 / self.d) * self.mask).astype(dtype)

    def _block(self, start, stop, dtype):
        cdt = np.result_type(dtype, np.complex64)
        T = self.medium.block(slice(None), slice(start, stop), dtype=cdt)
        if self.is_complex:
            return T / np.sqrt(self.d).astype(np.finfo(cdt).dtype)
        return np.ascontiguousarray((T * self._real_scale(cdt)[:, None]).real, dtype=dtype)

    # -- application --------------------------------------------------------------------------
    def apply(self, X):
        if _is_dask(X) or isinstance(X, spla.LinearOperator):
            return super().apply(X)
        if getattr(X, "ndim", 2) == 1:
            return self.apply_right(X)
        Xt = X.T if sp.issparse(X) else np.asarray(X).T
        return self.apply_right(Xt).T

    def apply_right(self, X):
        """``X @ S.T``: the rows of X through the medium, tile by tile (or the device)."""
        if _is_dask(X) or isinstance(X, spla.LinearOperator):
            return super().apply_right(X)
        X = X if sp.issparse(X) else np.asarray(X)
        vector = X.ndim == 1
        X = X.reshape(1, -1) if vector else X
        if X.ndim != 2 or X.shape[1] != self.n:
            raise ValueError(f"X must have {self.n} columns to be sketched by S of shape "
                             f"{self.shape}, got shape {X.shape}")
        dt = self.dtype_for(working_dtype(X.dtype, "X"))
        if X.dtype.kind == "c" and not self.is_complex:  # real S: sketch both parts
            Y = self._apply_real(X.real, dt) + 1j * self._apply_real(X.imag, dt)
        elif self.is_complex:
            F = self.medium.field(X, col0=0, dtype=np.result_type(dt, np.complex64))
            Y = F / np.sqrt(self.d).astype(F.real.dtype)
        else:
            Y = self._apply_real(X, dt)
        out_dtype = np.result_type(X.dtype if X.dtype.kind in "fc" else np.float64, dt)
        Y = Y.astype(out_dtype, copy=False)
        return Y[0] if vector else Y

    def _apply_real(self, X, dt):
        if self.mode == "device":
            y = self.projection.project(X)
            return y * np.sqrt(2.0 / self.d)
        F = self.medium.field(X, col0=0, dtype=np.result_type(dt, np.complex64))
        return (F * self._real_scale(F.dtype)).real

