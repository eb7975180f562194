"""The OPU: binary inputs on a DMD, a scattering medium, intensities on an 8-bit camera.

What is modelled (and what a real LightOn OPU does):

* The DMD has ``n_in`` binary micromirrors, at most :data:`DMD_MIRRORS` (1140 x 912 = 1,039,680 on
  the real device; a wider input is refused here, and split into column blocks by
  :class:`opu.OpticalSketch`). An input
  of ``n_features < n_in`` features is repeated into macro-pixels of ``m = n_in // n_features``
  mirrors, so feature ``f`` lights mirrors ``f m ... (f + 1) m - 1``. Mirrors outside the input
  area (and outside a reserved area, see :meth:`OPU.fit1d`) are lit when ``bias=True`` and add a
  fixed field ``b``: the camera sees ``|H_eff x + b|^2``.
* The light spreads over the camera: intensity ``I = |field|^2 / n_in``, so a fully lit DMD gives
  a mean intensity of 1 per camera pixel (speckle: exponentially distributed, brightest pixel of
  a million about 14x the mean).
* The camera integrates for ``exposure_us``: ``counts = gain * I`` with
  ``gain = counts_per_us * exposure_us`` (a device constant the user does not know: calibrate by
  probing), adds optional shot noise (Poisson photo-electrons) and read noise (Gaussian, in
  counts), then rounds to 8 bits: values below ``black_level`` read as ``black_level`` (the floor)
  and values above 255 saturate.
* Every input vector is one frame of ``frametime_us`` (500 us, 2 kHz; longer when the exposure
  needs it); the device draws ``power_w`` (30 W). Each call adds its frames, modelled device time
  and energy to :attr:`OPU.stats`, sets :attr:`OPU.last_call` and reports to the open
  :func:`opu.metering` blocks.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from randla._validation import check_positive_int, check_random_state, seed_from_rng

from . import meter as metering
from .medium import TILE_BYTES, Medium, as_batch

#: The real device's DMD: 1140 x 912 binary micromirrors.
DMD_SHAPE = (1140, 912)
#: Mirrors of the real DMD: no simulated device is wider.
DMD_MIRRORS = DMD_SHAPE[0] * DMD_SHAPE[1]
DMD_PIXELS = DMD_MIRRORS  # the former name
assert DMD_MIRRORS == 1_039_680
#: Default budget of the effective matrix an OPU keeps between calls (complex64 bytes): like
#: lightonml's simulated OPU, which stores H whole, but bounded; beyond it the rest of H is
#: regenerated on every call.
CACHE_BYTES = 2**30
FRAME_US = 500.0
EXPOSURE_US = 400.0
READOUT_US = 100.0
POWER_W = 30.0
#: Default camera sensitivity: a fully lit DMD reads 32 counts on average at 400 us.
COUNTS_PER_US = 0.08


@dataclasses.dataclass
class FrameStats:
    """Frames sent through the device, and the device time and energy they take."""

    frames: int = 0
    device_seconds: float = 0.0
    energy_joules: float = 0.0

    def __add__(self, other):
        return FrameStats(self.frames + other.frames, self.device_seconds + other.device_seconds,
                          self.energy_joules + other.energy_joules)


@dataclasses.dataclass
class Camera:
    """An 8-bit camera: exposure gain, optional shot and read noise, floor and saturation.

    Parameters
    ----------
    exposure_us : float
        Exposure time; the gain (counts per unit intensity) is ``counts_per_us * exposure_us``.
    counts_per_us : float
        Sensitivity of the device (unknown to a user of the real device).
    black_level : int
        The floor: intensities that would read below it read as it.
    shot_noise : bool
        Poisson noise on ``counts * electrons_per_count`` photo-electrons.
    electrons_per_count : float
        Photo-electrons per count (full well / 255).
    read_noise : float
        Standard deviation of the Gaussian read noise, in counts.
    """

    exposure_us: float = EXPOSURE_US
    counts_per_us: float = COUNTS_PER_US
    black_level: int = 0
    shot_noise: bool = False
    electrons_per_count: float = 40.0
    read_noise: float = 0.0

    def __post_init__(self):
        for name in ("exposure_us", "counts_per_us", "electrons_per_count"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= int(self.black_level) < 255:
            raise ValueError(f"black_level must be in [0, 255), got {self.black_level}")
        if not float(self.read_noise) >= 0:
            raise ValueError(f"read_noise must be >= 0, got {self.read_noise}")

    @property
    def gain(self) -> float:
        """Counts per unit intensity at the current exposure."""
        return self.counts_per_us * self.exposure_us

    @property
    def noiseless(self) -> bool:
        return not self.shot_noise and self.read_noise == 0

    def expose(self, intensity, rng) -> np.ndarray:
        """uint8 counts for an array of intensities."""
        counts = np.multiply(intensity, self.gain, dtype=np.float64)
        if self.shot_noise:
            counts = rng.poisson(counts * self.electrons_per_count) / self.electrons_per_count
        if self.read_noise:
            counts += rng.normal(0.0, self.read_noise, size=counts.shape)
        np.rint(counts, out=counts)
        np.clip(counts, self.black_level, 255, out=counts)
        return counts.astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the features sit on the DMD (set by :meth:`OPU.fit1d`)."""

    n_features: int
    macro: int        # mirrors per feature
    reserved: int     # mirrors right after the input area, lit on demand (e.g. an anchor)
    leftover: int     # remaining mirrors: lit when bias=True

    @property
    def input_pixels(self):
        return self.n_features * self.macro


class OPU:
    """A simulated optical processing unit with a lightonml-like interface.

    Parameters
    ----------
    n_in : int
        DMD mirrors, at most ``opu.DMD_MIRRORS`` = 1,039,680 (the real device).
    n_out : int
        Camera pixels read out (the number of random features, ``n_components``).
    seed : None, int or numpy.random.Generator
        Names the scattering medium (the transmission matrix H); None draws it from ``rng``.
    exposure_us, counts_per_us, black_level, shot_noise, electrons_per_count, read_noise
        The camera, see :class:`Camera`.
    bias : bool
        Light the mirrors outside the input area (a fixed bias field on every frame).
    frametime_us : float, optional
        Frame period; 500 us by default, or exposure + 100 us readout when longer.
    power_w : float
        Electrical power of the device, for the energy account.
    rng : None, int or numpy.random.Generator
        The randomness of the calls: camera noise (and the medium when ``seed`` is None).
    cache_bytes : int
        After :meth:`fit1d`, the first rows of the effective matrix (n_features x n_out,
        complex64) that fit in this many bytes (1 GiB by default) are kept on first use, so
        repeated transforms do not generate them again; the rest is regenerated tile by tile
        on every call, at the generator's rate.
    tile_bytes : int
        Memory budget of the streamed products.
    row0 : int
        First camera pixel read out (a region of interest): the OPU sees rows ``row0 ...
        row0 + n_out - 1`` of the medium named by ``seed``.

    Examples
    --------
    >>> import numpy as np
    >>> from opu import OPU
    >>> opu = OPU(4096, 100, seed=0)
    >>> opu.fit1d(n_features=1000)
    OPU(n_in=4096, n_out=100, n_features=1000, macro=4)
    >>> X = np.random.default_rng(0).integers(0, 2, size=(3, 1000), dtype=np.uint8)
    >>> Y = opu.transform(X)
    >>> Y.shape, Y.dtype, opu.last_call.frames
    ((3, 100), dtype('uint8'), 3)
    """

    def __init__(self, n_in=DMD_PIXELS, n_out=1000, *, seed=None, exposure_us=EXPOSURE_US,
                 counts_per_us=COUNTS_PER_US, black_level=0, shot_noise=False,
                 electrons_per_count=40.0, read_noise=0.0, bias=False, frametime_us=None,
                 power_w=POWER_W, rng=None, cache_bytes=CACHE_BYTES, tile_bytes=TILE_BYTES,
                 row0=0):
        n_in = check_positive_int(n_in, "n_in")
        if n_in > DMD_MIRRORS:
            raise ValueError(f"n_in = {n_in} exceeds the {DMD_MIRRORS:,} mirrors of the DMD "
                             f"(opu.DMD_MIRRORS): split wider inputs into column blocks and sum "
                             f"the linear outputs (opu.OpticalSketch does this)")
        rng = check_random_state(rng)
        seed = seed_from_rng(rng) if seed is None else seed
        self.medium = Medium(n_in, n_out, seed=seed, tile_bytes=tile_bytes, row0=row0)
        self.camera = Camera(exposure_us, counts_per_us, black_level, bool(shot_noise),
                             electrons_per_count, read_noise)
        self.bias = bool(bias)
        self._frametime_us = None if frametime_us is None else float(frametime_us)
        self.power_w = float(power_w)
        self.rng = rng
        self.cache_bytes = check_positive_int(cache_bytes, "cache_bytes", minimum=0)
        self.layout = None
        self._cache = {}
        self.stats = FrameStats()
        self.last_call = FrameStats()

    # -- description --------------------------------------------------------------------------
    @property
    def n_in(self):
        return self.medium.n_in

    @property
    def n_out(self):
        return self.medium.n_out

    n_components = n_out

    @property
    def frametime_us(self) -> float:
        if self._frametime_us is not None:
            return max(self._frametime_us, self.camera.exposure_us)
        return max(FRAME_US, self.camera.exposure_us + READOUT_US)

    @property
    def exposure_us(self) -> float:
        return self.camera.exposure_us

    @exposure_us.setter
    def exposure_us(self, value):
        if not float(value) > 0:
            raise ValueError(f"exposure_us must be > 0, got {value}")
        self.camera.exposure_us = float(value)

    def __repr__(self):
        lay = self.layout
        fit = "" if lay is None else f", n_features={lay.n_features}, macro={lay.macro}"
        return f"OPU(n_in={self.n_in}, n_out={self.n_out}{fit})"

    # -- layout -------------------------------------------------------------------------------
    def fit1d(self, X=None, n_features=None, *, macro_pixels=True, reserve=0):
        """Lay out inputs of ``n_features`` features on the DMD (or ``X.shape[1]``).

        Parameters
        ----------
        X : array_like, optional
            A batch whose number of columns gives ``n_features``.
        n_features : int, optional
        macro_pixels : bool
            Repeat each feature over ``(n_in - reserve) // n_features`` mirrors (more light,
            as lightonml's "full" strategy); else one mirror per feature.
        reserve : int
            Mirrors kept after the input area for an auxiliary pattern (the anchor of
            :class:`opu.linear.LinearProjection`); they are never part of the bias.
        """
        if X is not None:
            n_features = np.shape(X)[-1]
        if n_features is None:
            raise ValueError("fit1d needs X or n_features")
        n_features = check_positive_int(n_features, "n_features")
        reserve = check_positive_int(reserve, "reserve", minimum=0)
        if n_features + reserve > self.n_in:
            raise ValueError(f"n_features + reserve = {n_features + reserve} exceeds the "
                             f"{self.n_in} mirrors of the DMD")
        macro = (self.n_in - reserve) // n_features if macro_pixels else 1
        leftover = self.n_in - n_features * macro - reserve
        self.layout = Layout(n_features, macro, reserve, leftover)
        self._cache = {}
        return self

    def _layout(self):
        if self.layout is None:
            raise RuntimeError("call fit1d(n_features=...) before transform")
        return self.layout

    def _lit_field(self, start, n_pixels):
        """Field of ``n_pixels`` lit mirrors from ``start``: the sum of those columns of H."""
        ones = np.ones((1, 1 if n_pixels else 0), np.uint8)
        return self.medium.field(ones, col0=start, group=max(1, n_pixels),
                                 dtype=np.complex128)[0]

    @property
    def bias_field(self) -> np.ndarray:
        """The fixed field ``b`` of the lit mirrors outside the input and reserved areas
        (zeros when ``bias=False``)."""
        lay = self._layout()
        if "bias" not in self._cache:
            n_lit = lay.leftover if self.bias else 0
            self._cache["bias"] = self._lit_field(self.n_in - lay.leftover, n_lit)
        return self._cache["bias"]

    @property
    def reserved_field(self) -> np.ndarray:
        """The field of all reserved mirrors lit (an anchor pattern)."""
        lay = self._layout()
        if "reserved" not in self._cache:
            self._cache["reserved"] = self._lit_field(lay.input_pixels, lay.reserved)
        return self._cache["reserved"]

    def _effective_t(self):
        """The first rows of H_eff.T (n_features x n_out, complex64) that fit ``cache_bytes``,
        generated once and kept (None when not even one row fits)."""
        lay = self._layout()
        if "h_eff" not in self._cache:
            rows = min(lay.n_features, self.cache_bytes // (self.n_out * 8))
            self._cache["h_eff"] = self.medium.macro_t(0, rows, lay.macro) if rows else None
        return self._cache["h_eff"]

    # -- physics ------------------------------------------------------------------------------
    def field(self, X, *, reserved=False) -> np.ndarray:
        """Complex field on the camera, ``X @ H_eff.T + b``, for binary X (batch, n_features).

        No frame is counted: this is the light before the camera. ``reserved=True`` lights the
        reserved mirrors too.
        """
        lay = self._layout()
        X = check_binary(X, lay.n_features)
        H_t = self._effective_t()
        k = 0 if H_t is None else H_t.shape[0]
        if sp.issparse(X):
            X = X.tocsc()
        if k:  # the kept rows: one real GEMM on the interleaved (re, im) parts
            F = np.ascontiguousarray(X[:, :k].astype(np.float32) @ H_t.view(np.float32))
            F = F.view(np.complex64)
        else:
            F = np.zeros((X.shape[0], self.n_out), np.complex64)
        if k < lay.n_features:  # the rest, regenerated tile by tile
            F += self.medium.field(X[:, k:], col0=k * lay.macro, group=lay.macro,
                                   dtype=np.complex64)
        F += self.bias_field
        if reserved:
            F += self.reserved_field
        return F

    def expose(self, field, *, new_call=True) -> np.ndarray:
        """Camera frames (uint8) of complex fields, one frame per row, counted in
        :attr:`stats` (and in :attr:`last_call`, which ``new_call=False`` extends)."""
        field = np.asarray(field)
        intensity = (field.real**2 + field.imag**2) / self.n_in
        self._count(intensity.shape[0] if intensity.ndim > 1 else 1, new_call)
        return self.camera.expose(intensity, self.rng)

    def _count(self, frames, new_call=True):
        """Account ``frames``: a new call, or more frames of the current one."""
        seconds = frames * self.frametime_us * 1e-6
        spent = FrameStats(int(frames), seconds, seconds * self.power_w)
        self.last_call = spent if new_call else self.last_call + spent
        self.stats = self.stats + spent
        metering.record(spent.frames, seconds, spent.energy_joules, calls=int(new_call))

    def begin_call(self):
        """Start a new call made of several exposures (``expose(..., new_call=False)``)."""
        self.last_call = FrameStats()
        metering.record(0, 0.0, 0.0, calls=1)

    # -- lightonml-like face ------------------------------------------------------------------
    def transform(self, X, encoder=None, decoder=None):
        """Intensities (uint8, shape (batch, n_out)) of a binary batch X (batch, n_features).

        ``encoder`` (an object with ``encode(X) -> encoded`` whose ``bits`` are binary, see
        :mod:`opu.encoding`) turns real X into frames; ``decoder`` (``decode(Y, encoded)``)
        maps the frames back. Without an encoder, X must be bool or 0/1 integers.
        """
        lay = self._layout()
        encoded = None
        if encoder is not None:
            encoded = encoder.encode(X)
            X = encoded.bits
        vector = np.ndim(X) == 1
        X = check_binary(X, lay.n_features)
        Y = self.expose(self.field(X))
        if decoder is not None:
            Y = decoder.decode(Y, encoded) if encoded is not None else decoder.decode(Y)
        return Y[0] if vector else Y


def check_binary(X, n_features, name="X"):
    """X as a 2-D bool/uint8 dense or sparse batch of 0/1 with ``n_features`` columns."""
    X = as_batch(X, n_features, name)
    if X.dtype == np.bool_:
        return X
    if X.dtype.kind not in "iu":
        raise TypeError(f"{name} must be binary (bool or 0/1 integers) for the DMD, got dtype "
                        f"{X.dtype}: pass an encoder from opu.encoding for real data")
    data = X.data if sp.issparse(X) else X
    if data.size and (data.min() < 0 or data.max() > 1):
        raise ValueError(f"{name} must hold only 0 and 1 for the DMD: pass an encoder from "
                         f"opu.encoding for other values")
    return X
