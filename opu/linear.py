"""Real linear random projections ``y = R x`` from intensity-only camera frames (anchor scheme).

The camera measures ``|field|^2`` only. Light an anchor pattern ``r`` on mirrors disjoint from
the input area: with ``a = M x`` and ``c = M r``,

    |a + c|^2 - |a|^2 - |c|^2 = 2 Re(a conj(c)),   so
    (|M(x + r)|^2 - |M x|^2 - |M r|^2) / (2 |M r|) = Re(exp(-i arg(M r)) M) x = R x.

Because the anchor columns of M are independent of the input columns and a circular Gaussian
rotated by any independent phase is still circular Gaussian, ``R`` is *exactly* i.i.d. N(0, 1/2)
(reported here per unit macro-pixel, so the DMD layout does not show). Cost: 2 frames per binary
input (with and without the anchor) plus 1 reference frame (the anchor alone) per call; real
inputs go through :class:`opu.encoding.BitPlaneEncoder`, ``2 n_bits`` binary planes each (with the
sign split), so ``4 n_bits`` frames per real vector.

Camera pixels where the reference ``|M r|`` is weak divide the quantization error by a small
number: those rows are masked (set to 0, see ``mask_``). The unknown camera gain is calibrated by
probing: random patterns set the exposure so the brightest pixel sits below saturation, and
their mean count against the number of lit mirrors gives the gain.
"""
from __future__ import annotations

import numpy as np

from randla._validation import check_positive_int, check_random_state

from .device import OPU, check_binary
from .encoding import BitPlaneEncoder

#: Bytes of binary frames one chunk of :meth:`LinearProjection.project` may hold.
_CHUNK_BYTES = 64 * 2**20


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
    n_probes : int
        Random frames used by :meth:`calibrate`.
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
    (True, 33.0)
    """

    def __init__(self, opu: OPU, *, n_bits=8, min_reference=0.05, n_probes=16, rng=None):
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
        self.n_probes = check_positive_int(n_probes, "n_probes")
        self.rng = check_random_state(rng)
        self.scale_ = None   # sqrt(counts per unit |field|^2 per macro-pixel), from calibrate
        self.mask_ = None    # rows with a usable reference, from the last reference frame

    # -- frames -------------------------------------------------------------------------------
    @property
    def phase(self) -> np.ndarray:
        """``exp(i arg(M r))`` per camera pixel: the rotation that defines R."""
        return unit_phase(self.opu.reserved_field)

    def frames_per_vector(self, batch=1, real=True) -> float:
        """Frames per projected vector: 2 per binary frame, plus the reference frame shared by
        the batch; real vectors take ``frames_per_vector`` binary planes each."""
        planes = self.encoder.frames_per_vector if real else 1
        return 2.0 * planes + 1.0 / batch

    # -- calibration --------------------------------------------------------------------------
    def calibrate(self, target=0.8):
        """Probe random patterns (anchor lit): set the exposure so the brightest pixel reads
        about ``target * 255``, then estimate the gain from the mean counts. Returns self."""
        opu, lay = self.opu, self.opu._layout()
        probes = (self.rng.random((self.n_probes, lay.n_features)) < 0.5).astype(np.uint8)
        field = opu.field(probes, reserved=True)
        lit = (probes.sum(axis=1) * lay.macro + lay.reserved)[:, None]
        for _ in range(40):  # saturated: the level is unknown, so back off until it is not
            counts = opu.expose(field, new_call=False)
            if counts.max() < 255:
                break
            opu.exposure_us = opu.exposure_us / 4
        opu.exposure_us = opu.exposure_us * target * 255 / max(1, int(counts.max()))
        counts = opu.expose(field, new_call=False).astype(np.float64)
        gain = counts.mean() / (lit.mean() / opu.n_in)  # counts per unit intensity
        self.scale_ = np.sqrt(gain / opu.n_in * lay.macro)
        return self

    # -- projections --------------------------------------------------------------------------
    def project_binary(self, X, *, new_call=True) -> np.ndarray:
        """``R x`` for binary x (batch, n_features): 2 frames each plus 1 reference frame."""
        lay = self.opu._layout()
        X = check_binary(X, lay.n_features)
        if self.scale_ is None:
            self.calibrate()
        opu = self.opu
        if new_call:
            opu.begin_call()
        c = opu.reserved_field
        a = opu.field(X)
        cr = opu.expose(c[None, :], new_call=False)[0]
        c1 = opu.expose(a + c, new_call=False)
        c0 = opu.expose(a, new_call=False)
        return self.from_frames(c1, c0, cr)

    def from_frames(self, c1, c0, cr) -> np.ndarray:
        """``R x`` from the counts of the frames ``x + r`` (c1), ``x`` (c0) and ``r`` (cr):
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
        out = []
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


def unit_phase(c):
    """``exp(i arg(c))`` (1 where c is 0)."""
    return c / np.where(np.abs(c) > 0, np.abs(c), 1)
