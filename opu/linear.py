"""Real linear random projections ``y = R x`` from intensity-only camera frames (anchor scheme).

The camera measures ``|field|^2`` only. Light an anchor pattern ``r`` on mirrors disjoint from
the input area: with ``a = M x`` and ``c = M r``,

    |a + c|^2 - |a|^2 - |c|^2 = 2 Re(a conj(c)),   so
    (|M(x + r)|^2 - |M x|^2 - |M r|^2) / (2 |M r|) = Re(exp(-i arg(M r)) M) x = R x.

Because the anchor columns of M are independent of the input columns and a circular Gaussian
rotated by any independent phase is still circular Gaussian, ``R`` is *exactly* i.i.d. N(0, 1/2)
(reported here per unit macro-pixel, so the DMD layout does not show). Cost: 2 frames per binary
input (with and without the anchor); the reference (the anchor alone) is measured once, at
calibration, at a longer exposure that makes its rounding error small; real
inputs go through :class:`opu.encoding.BitPlaneEncoder`, ``2 n_bits`` binary planes each (with the
sign split), so ``4 n_bits`` frames per real vector.

Camera pixels where the reference ``|M r|`` is weak divide the quantization error by a small
number: those rows are masked (set to 0, see ``mask_``). The unknown camera gain is calibrated by
probing: random patterns set the exposure so the brightest pixel sits below saturation, and
their mean count against the number of lit mirrors gives the gain.
"""
from __future__ import annotations

import numpy as np

from randla._validation import check_positive_int, check_random_state, check_unit_interval

from .device import OPU, check_binary
from .encoding import BitPlaneEncoder

#: Bytes of binary frames one chunk of :meth:`LinearProjection.project` may hold.
_CHUNK_BYTES = 64 * 2**20
#: Camera readings the default calibration averages (probe frames x camera pixels).
_PROBE_READINGS = 8192


class LinearProjection:
    """Exact real Gaussian projections ``R x`` (R: n_out x n_features, i.i.d. N(0, 1/2)) measured
    on an :class:`~opu.OPU` through its camera.

    Parameters
    ----------
    opu : OPU
        Fitted with ``fit1d(n_features=..., reserve=n_anchor)``: the reserved mirrors are the
        anchor. ``bias`` must be off (the anchor takes the place of the lit border).
    n_bits : int
        Bits per magnitude for real inputs.
    min_reference : float
        Rows whose reference intensity is below this fraction of the mean are masked.
    n_probes : int, optional
        Random frames used by :meth:`calibrate`; by default enough for 8192 camera readings
        (at least 16). Its error is a systematic scale error of every projection: at 20 camera
        pixels the gain's error has median 2.6% and 90th percentile 6.4% (150 draws), where a
        plain mean of the counts had 11%.
    rng : None, int or numpy.random.Generator
        Draws the probe patterns.

    Examples
    --------
    >>> import numpy as np
    >>> from opu import OPU, LinearProjection
    >>> opu = OPU(3000, 200, seed=1).fit1d(n_features=1000, macro_pixels=False, reserve=1000)
    >>> proj = LinearProjection(opu, rng=0)
    >>> x = np.random.default_rng(2).standard_normal((1, 1000))
    >>> y = proj.project(x)
    >>> err = np.linalg.norm(y - proj.ideal(x) * proj.mask_) / np.linalg.norm(proj.ideal(x))
    >>> bool(err < 0.15), proj.frames_per_vector(batch=1)
    (True, 32.0)
    """

    def __init__(self, opu: OPU, *, n_bits=8, min_reference=0.05, n_probes=None, rng=None):
        if not isinstance(opu, OPU):
            raise TypeError(f"opu must be an opu.OPU, got {type(opu).__name__}")
        lay = opu._layout()
        if lay.reserved == 0:
            raise ValueError("the OPU has no anchor: fit1d(..., reserve=n_anchor) with n_anchor > 0")
        if opu.bias:
            raise ValueError("the anchor scheme needs bias=False: the anchor replaces the lit border")
        self.opu = opu
        self.encoder = BitPlaneEncoder(n_bits)
        self.min_reference = float(min_reference)
        if not 0 <= self.min_reference < 1:
            raise ValueError(f"min_reference must be in [0, 1), got {min_reference}")
        if n_probes is None:
            n_probes = max(16, -(-_PROBE_READINGS // opu.n_out))
        self.n_probes = check_positive_int(n_probes, "n_probes")
        self.rng = check_random_state(rng)
        self.scale_ = None   # sqrt(counts per unit |field|^2 per macro-pixel), from calibrate
        self.reference_ = None  # counts of the anchor alone, from calibrate
        self.mask_ = None    # rows with a usable reference

    # -- frames -------------------------------------------------------------------------------
    @property
    def phase(self) -> np.ndarray:
        """``exp(i arg(M r))`` per camera pixel: the rotation that defines R."""
        return unit_phase(self.opu.reserved_field)

    def frames_per_vector(self, batch=1, real=True) -> float:
        """Frames per projected vector: 2 per binary frame (with and without the anchor); real
        vectors take ``encoder.frames_per_vector`` binary planes each. The reference (anchor
        alone) is measured once, by :meth:`calibrate`."""
        planes = self.encoder.frames_per_vector if real else 1
        return 2.0 * planes

    # -- calibration --------------------------------------------------------------------------
    def calibrate(self, target=0.8):
        """Probe random patterns (anchor lit): set the exposure so the brightest pixel of 16
        probes reads about ``target * 255`` (``0 < target < 1``), estimate the gain from the mean counts of all
        probes, and measure the reference (the anchor alone) once, at the longer exposure that
        puts its brightest pixel near 255 (so its rounding error is small). Returns self."""
        target = check_unit_interval(target, "target")
        opu, lay = self.opu, self.opu._layout()
        probes = (self.rng.random((self.n_probes, lay.n_features)) < 0.5).astype(np.uint8)
        field = opu.field(probes, reserved=True)
        first = field[:16]
        for _ in range(40):  # saturated: the level is unknown, so back off until it is not
            counts = opu.expose(first, new_call=False)
            if counts.max() < 255:
                break
            opu.exposure_us = opu.exposure_us / 4
        opu.exposure_us = opu.exposure_us * target * 255 / max(1, int(counts.max()))
        counts = opu.expose(field, new_call=False).astype(np.float64)
        gain = _gain(counts, lay.n_features * lay.macro, opu.n_in)  # counts per unit intensity
        self.scale_ = np.sqrt(gain / opu.n_in * lay.macro)
        self.reference_ = self._long_reference()
        return self

    def _long_reference(self):
        """Counts of the anchor alone at the working exposure, measured at a longer one."""
        opu, c = self.opu, self.opu.reserved_field[None, :]
        work = opu.exposure_us
        cr = opu.expose(c, new_call=False)[0]
        factor = 1.0 if cr.max() >= 255 else 0.9 * 255 / max(1, int(cr.max()))
        if factor > 1:
            opu.exposure_us = work * factor
            cr = opu.expose(c, new_call=False)[0]
            opu.exposure_us = work
        return cr.astype(np.float64) / factor

    # -- projections --------------------------------------------------------------------------
    def project_binary(self, X, *, new_call=True) -> np.ndarray:
        """``R x`` for binary x (batch, n_features): 2 frames each."""
        lay = self.opu._layout()
        X = check_binary(X, lay.n_features)
        if self.scale_ is None:
            self.calibrate()
        opu = self.opu
        if new_call:
            opu.begin_call()
        c = opu.reserved_field
        a = opu.field(X)
        c1 = opu.expose(a + c, new_call=False)
        c0 = opu.expose(a, new_call=False)
        return self.from_frames(c1, c0, self.reference_)

    def from_frames(self, c1, c0, cr) -> np.ndarray:
        """``R x`` from the counts of the frames ``x + r`` (c1), ``x`` (c0) and ``r`` (cr, at
        the working exposure, not necessarily integer):
        ``(c1 - c0 - cr) / (2 sqrt(cr))`` over the calibrated scale; sets ``mask_``."""
        c1, c0, cr = (np.asarray(c, dtype=np.float64) for c in (c1, c0, cr))
        self.mask_ = cr > self.min_reference * cr.mean()
        denom = 2.0 * np.sqrt(np.where(self.mask_, cr, 1.0)) * self.scale_
        return np.where(self.mask_, (c1 - c0 - cr) / denom, 0.0)

    def project(self, X) -> np.ndarray:
        """``R x`` for real x (batch, n_features), dense or sparse, through bit planes."""
        lay = self.opu._layout()
        n_rows = X.shape[0] if getattr(X, "ndim", 2) == 2 else 1
        chunk = max(1, _CHUNK_BYTES // (self.encoder.frames_per_vector * lay.n_features))
        out = [np.zeros((0, self.opu.n_out))]   # an empty batch projects to an empty result
        self.opu.begin_call()
        for i in range(0, n_rows, chunk):
            Xi = X[i:i + chunk] if getattr(X, "ndim", 2) == 2 else X
            enc = self.encoder.encode(Xi)
            out.append(self.encoder.decode(self.project_binary(enc.bits, new_call=False), enc))
        return np.concatenate(out)

    def ideal(self, X) -> np.ndarray:
        """What a perfect camera would give: ``X @ R.T`` computed from the field (no frames)."""
        lay = self.opu._layout()
        X = np.asarray(X) if not hasattr(X, "tocsr") else X
        F = self.opu.medium.field(X, col0=0, group=lay.macro, dtype=np.complex128)
        return (F * self.phase.conj()).real / np.sqrt(lay.macro)

    def matrix(self) -> np.ndarray:
        """R itself (n_out x n_features), for small sizes and tests."""
        lay = self.opu._layout()
        H_t = self.opu.medium.macro_t(0, lay.n_features, lay.macro, dtype=np.complex128)
        return (H_t * self.phase.conj()).real.T / np.sqrt(lay.macro)


def _gain(counts, input_pixels, n_in):
    """Counts per unit intensity from probe frames (n_probes, n_out) of random half-lit inputs.

    At a camera pixel a probe's field is ``u + g``: ``u`` fixed (the mean pattern and the
    anchor, a speckle value of its own per pixel, which biases a plain mean of the counts by
    about ``1 / (2 sqrt(n_out))``) and ``g ~ CN(0, s)`` over the probes, with ``s = gain *
    input_pixels / (4 n_in)`` known up to the gain. Over the probes the counts have mean
    ``m = |u|^2 + s`` and variance ``v = s^2 + 2 |u|^2 s``, so ``s = m - sqrt(m^2 - v)`` per
    pixel (the root below m), whatever ``u``.
    """
    m = counts.mean(axis=0)
    v = np.maximum(counts.var(axis=0) - 1.0 / 12.0, 0.0)  # less the rounding's variance
    ok = counts.max(axis=0) < 255  # saturated pixels would bias the variance
    ok = ok if ok.any() else np.ones_like(ok)
    s = m - np.sqrt(np.maximum(m**2 - v, 0.0))
    return 4.0 * n_in * s[ok].mean() / input_pixels


def unit_phase(c):
    """``exp(i arg(c))`` (1 where c is 0)."""
    return c / np.where(np.abs(c) > 0, np.abs(c), 1)
