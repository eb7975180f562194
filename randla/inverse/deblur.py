"""Deblurring an image: pick the fastest exact path for the blur, estimate the noise, choose lam.

Paths, in order of preference:

- ``"spectral"``: the FFT (periodic boundary) or the DCT (reflective boundary, doubly symmetric
  PSF) diagonalizes the blur; Tikhonov, TSVD and every rule are exact, O(N log N).
- ``"kronecker"``: a separable PSF (Gaussian, horizontal/vertical motion) with any boundary is
  A1 kron A2; the exact SVD comes from two n x n SVDs (images up to 1024 pixels a side).
- ``"iterative"``: anything else (a diagonal motion blur with a reflective boundary, a measured
  PSF, a 4096 x 4096 image): hybrid Golub-Kahan Tikhonov
  (:func:`~randla.inverse.hybrid.hybrid_tikhonov`), the rule applied to the projected problem;
  memory a few images plus the Krylov basis while it fits in 512 MiB (then a second pass).
  (CG preconditioned by the periodic model of the same blur was tried and dropped: on a photo
  crop the border mismatch leaves thousands of outlying eigenvalues, 500+ iterations.)
"""
from __future__ import annotations

import inspect
import math
import os
import re
import warnings
from typing import NamedTuple

import numpy as np

from .._validation import check_choice, check_positive_int, check_real
from .blur import BOUNDARIES, BlurOperator, disk_psf, gaussian_psf, motion_psf
from .hybrid import hybrid_tikhonov
from .images import check_image_shape, read_image, to_unit_scale, write_image
from .regularize import RULES, _check_rule, _kronecker_spectrum, choose_rank, vetted_lambda
from .spectral import blur_spectrum

__all__ = ["deblur", "deblur_file", "DeblurResult", "estimate_noise", "parse_psf", "PATHS"]

PATHS = ("auto", "spectral", "kronecker", "iterative")
KRONECKER_MAX_SIDE = 1024  # two dense n x n SVDs: ~1 s at n = 1024, ~10 s at 2048


class DeblurResult(NamedTuple):
    """The deblurred image and how it was obtained.

    For a colour image (H, W, C), ``lam``, ``rule``, ``noise_std`` and ``rank`` are tuples
    with one entry per channel; ``residual_norm`` and ``noise_level`` are norms over all
    channels. ``scale`` is the factor the input was multiplied by (1/255 for uint8).
    """

    image: np.ndarray
    lam: float
    rule: str
    noise_std: float
    noise_estimated: bool
    path: str
    rank: int | None
    residual_norm: float
    scale: float = 1.0

    @property
    def noise_level(self):
        """||e||, the norm of the whole noise array (all channels) for the ``noise_std`` used:
        what the discrepancy principle held the residual to (times ``tau``)."""
        stds = self.noise_std if isinstance(self.noise_std, tuple) else (self.noise_std,)
        pixels = self.image.shape[0] * self.image.shape[1]
        return math.sqrt(pixels * sum(s * s for s in stds))


#: Coefficients beyond this many standard deviations are edges, not noise; a standard normal
#: truncated there keeps this fraction of its variance: 1 - 2 c phi(c) / (2 Phi(c) - 1).
_TRUNCATION = 3.0
_TRUNCATED_VARIANCE = 1 - 2 * _TRUNCATION * math.exp(-_TRUNCATION ** 2 / 2) / math.sqrt(2 * math.pi) \
    / math.erf(_TRUNCATION / math.sqrt(2))


def estimate_noise(image):
    """A robust estimate of the standard deviation of white noise in an image.

    The finest diagonal Haar wavelet coefficients (X[2i, 2j] - X[2i, 2j+1] - X[2i+1, 2j]
    + X[2i+1, 2j+1]) / 2 of white noise of standard deviation sigma have standard deviation
    sigma, while a blurred image contributes almost nothing at that frequency; the median
    absolute value / 0.6745 (Donoho & Johnstone) ignores the few edges that do, and is then
    refined by the variance of the coefficients within three of its standard deviations (the
    median alone is biased on quantized images).

    Examples
    --------
    >>> import numpy as np
    >>> from randla.inverse import estimate_noise
    >>> rng = np.random.default_rng(0)
    >>> smooth = np.add.outer(np.linspace(0, 1, 200), np.linspace(0, 1, 300))
    >>> round(estimate_noise(smooth + 0.02 * rng.standard_normal(smooth.shape)), 2)
    0.02

    An integer image (uint8, uint16) is read on the [0, 1] scale, as :func:`deblur` reads it:
    the estimate is in those units (grey levels / 255 for uint8).
    """
    X, _ = to_unit_scale(image, "image")
    check_image_shape(X, "image")
    X = np.asarray(X, dtype=float)
    if X.ndim == 3:
        return float(np.median([estimate_noise(X[..., c]) for c in range(X.shape[2])]))
    n1, n2 = X.shape[0] // 2 * 2, X.shape[1] // 2 * 2
    X = X[:n1, :n2]
    d = np.abs(X[0::2, 0::2] - X[0::2, 1::2] - X[1::2, 0::2] + X[1::2, 1::2]).ravel() / 2
    sigma = float(np.median(d) / 0.6744897501960817)
    # On 8-bit images the coefficients sit on a grid of 1/510, and the median snaps to it: 13%
    # low at sigma = 0.01, enough for the discrepancy rule to undersmooth into noise. The
    # variance of the coefficients within 3 sigma, corrected for the truncation, is insensitive
    # to the grid (and counts the quantization noise, which is noise too).
    for _ in range(2):
        if sigma == 0.0:
            break
        inside = d[d <= _TRUNCATION * sigma]
        sigma = float(np.sqrt(np.mean(inside ** 2) / _TRUNCATED_VARIANCE))
    return sigma


def parse_psf(spec):
    """A PSF from a short text: ``"gaussian:SIGMA"``, ``"motion:LENGTH[,ANGLE]"``,
    ``"disk:RADIUS"`` or ``"file:PATH"`` (a .npy array or an image file).

    Examples
    --------
    >>> from randla.inverse import parse_psf
    >>> parse_psf("gaussian:3").shape, parse_psf("motion:9,45").shape, parse_psf("disk:2").shape
    ((19, 19), (9, 9), (5, 5))
    """
    if not isinstance(spec, str):
        raise TypeError(f"psf spec must be a string, got {type(spec).__name__}")
    kind, _, args = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "file":
        return _psf_from_file(args)
    try:
        nums = [float(a) for a in re.split(r"[,\s]+", args.strip()) if a]
    except ValueError:
        nums = None
    arity = {"gaussian": (1, 2), "motion": (1, 2), "disk": (1, 1)}
    if kind not in arity or nums is None or not arity[kind][0] <= len(nums) <= arity[kind][1]:
        raise ValueError(f"psf spec must be gaussian:SIGMA[,SIZE], motion:LENGTH[,ANGLE], "
                         f"disk:RADIUS or file:PATH, got {spec!r}")
    if kind == "gaussian":
        size = None if len(nums) == 1 else int(nums[1])
        return gaussian_psf(nums[0], size)
    if kind == "motion":
        return motion_psf(*nums)
    return disk_psf(nums[0])


def _psf_from_file(path):
    if path.endswith(".npy"):
        psf = np.load(path, allow_pickle=False)
    else:
        psf = read_image(path, gray=True)
    return _normalized_psf(psf, f"the PSF in {path!r}")


def _normalized_psf(psf, name="psf"):
    """``psf`` as a float array that sums to 1: a blur keeps the image's brightness, so a PSF in
    any units (photon counts, a peak of 1) means the same as that PSF normalized. A PSF whose
    sum is not clearly positive (zero, or cancelling signs) is no blur, and is refused."""
    P = np.asarray(psf)
    if P.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be real, got dtype {P.dtype}")
    if P.ndim != 2 or P.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {P.shape}")
    if not np.all(np.isfinite(P)):
        raise ValueError(f"{name} contains NaN or Inf")
    P = P.astype(np.float32 if P.dtype == np.float32 else np.float64)
    total = float(np.sum(P, dtype=np.float64))
    # cancellation in the sum of n entries is ~ n eps sum|p|; far above it, the sum is real
    if not total > _PSF_MIN_SUM * float(np.sum(np.abs(P), dtype=np.float64)):
        raise ValueError(f"{name} must have a positive sum (a blur spreads light, it keeps the "
                         f"image's brightness), got sum {total:.3g}")
    return P / P.dtype.type(total)


#: a PSF summing to less than this fraction of the sum of its absolute values is refused
_PSF_MIN_SUM = 1e-8


def deblur(blurred, psf, *, boundary="reflective", method="tikhonov", rule="discrepancy",
           noise_std=None, noise_level=None, lam=None, rank=None, tau=1.0, path="auto",
           center=None, maxiter=500, tol=1e-3):
    """Deblur an image: regularized inversion of a blur with a known PSF.

    Parameters
    ----------
    blurred : array_like, shape (H, W) or (H, W, C)
        The blurred, noisy image (a colour image is deblurred channel by channel). Floats are
        taken as they are; uint8 and uint16 images are divided by 255 or 65535 first (the
        [0, 1] scale of :func:`~randla.inverse.read_image`), and the result's ``scale`` says so.
        Other integer types are refused.
    psf : array_like, shape (p, q), or str
        The point spread function, or a spec for :func:`parse_psf` ("gaussian:3"). It is
        normalized to sum 1 (a PSF in photon counts is the same blur); a PSF whose sum is not
        positive is refused.
    boundary : {"reflective", "periodic", "zero"}
        The model of the scene beyond the image edges. "reflective" suits photographs (the
        scene continues, and mirroring continues it smoothly); "zero" suits a dark background;
        "periodic" only images that really wrap around. A wrong model rings from the edges.
    method : {"tikhonov", "tsvd"}
        TSVD needs the spectral or the Kronecker path.
    rule : {"discrepancy", "gcv", "lcurve"}
        How lam (or the TSVD rank) is chosen when not given. The discrepancy principle
        (||A x - b|| = tau * ||e||) is the default: it is the reliable one on photographs and it
        needs only the noise level, which is estimated when not given. GCV and the L-curve are
        checked against it (see :func:`~randla.inverse.vetted_lambda`).
    noise_std : float, optional
        Standard deviation of the noise per pixel, on the scale the image is deblurred on (its
        own units for floats, [0, 1] for uint8/uint16). Estimated by :func:`estimate_noise`
        (per channel) when neither it nor ``noise_level`` is given.
    noise_level : float, optional
        ||e||, the norm of the whole noise array (all channels), as everywhere in randla:
        ``noise_std = noise_level / sqrt(blurred.size)``. Until this release it was the
        per-pixel standard deviation; passing it warns (FutureWarning) once per call. Giving
        both is an error.
    lam : float, optional
        The Tikhonov parameter (method="tikhonov"); no rule is applied when given.
    rank : int, optional
        The TSVD rank (method="tsvd"), 1 to H * W; chosen by ``rule`` when None.
    tau : float
        Safety factor of the discrepancy principle.
    path : {"auto", "spectral", "kronecker", "iterative"}
        Force a path (see the module docstring); "auto" takes the first that applies.
    center : tuple of 2 ints, optional
        The PSF's center (default: the array center).
    maxiter, tol
        For the iterative path: stop when the solution moves by less than ``tol`` (relative)
        between checks, or after ``maxiter`` Golub-Kahan steps.

    Returns
    -------
    DeblurResult
        ``image`` (same shape; float32 input stays float32, anything else becomes float64), the
        ``lam`` (for TSVD: sigma_rank, the smallest singular value kept), the ``rule`` used
        (``"given"``, or e.g. ``"gcv->discrepancy"`` after a fallback), the ``noise_std`` used
        and whether it was estimated (``noise_level`` gives the matching ||e||), the ``path``,
        the TSVD ``rank``, the residual norm ||A x - b|| over all channels, and ``scale``, the
        factor the input was multiplied by (1/255 for uint8, else 1): ``image``, ``noise_std``
        and the residual are on that scale.

    Examples
    --------
    >>> import numpy as np, scipy.ndimage as ndi
    >>> from randla.inverse import deblur, gaussian_psf
    >>> rng = np.random.default_rng(0)
    >>> x = ndi.gaussian_filter(rng.random((64, 64)), 1.0)
    >>> b = ndi.convolve(x, gaussian_psf(1.5), mode="reflect") + 1e-3 * rng.standard_normal(x.shape)
    >>> res = deblur(b, gaussian_psf(1.5), noise_std=1e-3)
    >>> res.path, bool(np.linalg.norm(res.image - x) < 0.5 * np.linalg.norm(b - x))
    ('spectral', True)
    """
    opts = dict(locals())
    return _deblur(opts.pop("blurred"), opts.pop("psf"), opts, stacklevel=3)


def _deblur(blurred, psf, opts, stacklevel):
    X, scale = _blurred_image(blurred)
    psf = _normalized_psf(parse_psf(psf) if isinstance(psf, str) else psf)
    kw = _check_options(X, scale, opts, stacklevel + 1)
    out_dtype = np.float32 if X.dtype == np.float32 else np.float64
    if X.ndim == 2:
        r = _deblur_channel(X.astype(np.float64), psf, **kw)
        return r._replace(image=r.image.astype(out_dtype, copy=False), scale=scale)
    rs = [_deblur_channel(X[..., c].astype(np.float64), psf, **kw) for c in range(X.shape[2])]
    image = np.stack([r.image for r in rs], axis=-1).astype(out_dtype, copy=False)
    return DeblurResult(image, tuple(r.lam for r in rs), tuple(r.rule for r in rs),
                        tuple(r.noise_std for r in rs), rs[0].noise_estimated, rs[0].path,
                        tuple(r.rank for r in rs),
                        math.sqrt(sum(r.residual_norm**2 for r in rs)), scale)


def _blurred_image(blurred):
    X = np.asarray(blurred)
    if X.dtype.kind not in "fiub":
        raise TypeError(f"blurred must be a real image, got dtype {X.dtype}")
    check_image_shape(X, "blurred")
    X, scale = to_unit_scale(X, "blurred")
    if not np.all(np.isfinite(X)):
        raise ValueError("blurred contains NaN or Inf")
    return X, scale


def _check_options(X, scale, opts, stacklevel):
    """The validated keywords of one channel's deblurring."""
    o = dict(opts)
    check_choice(o["boundary"], "boundary", BOUNDARIES)
    check_choice(o["method"], "method", ("tikhonov", "tsvd"))
    check_choice(o["path"], "path", PATHS)
    if o["rule"] not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {o['rule']!r}")
    if o["lam"] is not None:
        if o["method"] == "tsvd":
            raise ValueError("lam is the Tikhonov parameter: with method='tsvd' pass rank")
        o["lam"] = check_real(o["lam"], "lam")
    if o["rank"] is not None:
        if o["method"] != "tsvd":
            raise ValueError("rank is the TSVD rank: pass method='tsvd' with it, or lam")
        pixels = X.shape[0] * X.shape[1]
        o["rank"] = check_positive_int(o["rank"], "rank")
        if o["rank"] > pixels:
            raise ValueError(f"rank must be <= the number of pixels H * W = {pixels}, got "
                             f"{o['rank']}")
    o["tau"] = check_real(o["tau"], "tau", low_open=True)
    o["noise_std"] = _noise_std(o.pop("noise_std"), o.pop("noise_level"), X, scale, stacklevel + 1)
    return o


def _noise_std(noise_std, noise_level, X, scale, stacklevel):
    """The per-pixel noise standard deviation from either keyword (None: to be estimated)."""
    if noise_std is not None and noise_level is not None:
        raise ValueError("pass noise_std (per pixel) or noise_level (||e||, the norm of the "
                         "noise array), not both")
    if noise_level is not None:
        noise_level = check_real(noise_level, "noise_level", low_open=True)
        noise_std = noise_level / math.sqrt(X.size)
        warnings.warn(f"deblur's noise_level is now ||e||, the norm of the whole noise array, "
                      f"as everywhere in randla: noise_level={noise_level:.4g} is a per-pixel "
                      f"standard deviation of {noise_std:.4g}. It used to be the per-pixel "
                      "standard deviation: pass that as noise_std", FutureWarning,
                      stacklevel=stacklevel)
        name = "noise_level"
    elif noise_std is not None:
        noise_std = check_real(noise_std, "noise_std", low_open=True)
        name = "noise_std"
    if noise_std is not None and scale != 1 and noise_std > 1:
        raise ValueError(f"{name} is on the [0, 1] scale an integer image is deblurred on (its "
                         f"values divided by {round(1 / scale)}); {noise_std:.4g} per pixel is "
                         "more than the whole range: divide it by the same factor")
    return noise_std


def _deblur_channel(B, psf, *, boundary, method, rule, noise_std, lam, rank, tau, path,
                    center, maxiter, tol):
    A = BlurOperator(psf, B.shape, boundary=boundary, center=center)
    estimated = noise_std is None
    sigma = estimate_noise(B) if estimated else noise_std
    delta = sigma * math.sqrt(B.size)  # E||e|| for white noise of that standard deviation
    if sigma == 0 and lam is None and rank is None:
        raise ValueError("the estimated noise level is 0 (a noise-free image?): pass lam (or "
                         "rank with method='tsvd'), or noise_std")
    chosen = _choose_path(A, path, method)
    b = B.ravel()
    if chosen == "iterative":
        r = hybrid_tikhonov(A, b, lam=lam, rule=rule, noise_level=delta, tau=tau,
                            maxiter=maxiter, tol=tol)
        return DeblurResult(r.x.reshape(B.shape), r.lam, r.rule, sigma, estimated, chosen,
                            None, r.residual_norm)
    sp = blur_spectrum(A, b) if chosen == "spectral" else _kronecker_spectrum(
        A.kronecker(), b, None, 0, 0, None)
    if method == "tsvd":
        if rank is None:
            rank, used = choose_rank(sp, rule, delta, tau)
        else:
            used = "given"
        f = (np.arange(sp.s.size) < rank).astype(float)
        cut = float(sp.s[rank - 1])  # the smallest singular value kept
    else:
        if lam is None:
            _check_rule(rule, delta)
            lam, used = vetted_lambda(sp, rule, delta, tau)
        else:
            used = "given"
        f = sp.tikhonov_filter(lam)
        cut = lam
    x = sp.solution(f).real.reshape(B.shape)
    return DeblurResult(x, float(cut), used, sigma, estimated, chosen,
                        None if method == "tikhonov" else int(rank), sp.norms(f)[0])


def _choose_path(A, path, method):
    kron_ok = max(A.image_shape) <= KRONECKER_MAX_SIDE and A.separable_factors() is not None
    if path == "auto":
        path = "spectral" if A.eigenvalues is not None else (
            "kronecker" if kron_ok else "iterative")
    elif path == "spectral" and A.eigenvalues is None:
        raise ValueError("path='spectral' needs a periodic boundary, or a reflective one with "
                         "a doubly symmetric PSF")
    elif path == "kronecker" and A.separable_factors() is None:
        raise ValueError("path='kronecker' needs a separable (rank-one) PSF")
    if method == "tsvd" and path == "iterative":
        raise ValueError("method='tsvd' needs the spectral or Kronecker path (a periodic "
                         "boundary, a doubly symmetric PSF with a reflective boundary, or a "
                         "separable PSF); use method='tikhonov'")
    return path


def deblur_file(in_path, out_path, psf, *, gray=False, **kwargs):
    """Deblur the image in ``in_path`` and write the result to ``out_path`` (the logic of
    ``randla deblur IN --psf SPEC -o OUT``).

    Parameters
    ----------
    in_path, out_path : str or os.PathLike
        Refused when they name the same file (the input would be destroyed).
    psf : str or array_like
        A spec for :func:`~randla.inverse.parse_psf` ("gaussian:3", "motion:15,30", "disk:4",
        "file:psf.png") or an array.
    gray : bool
        Deblur the luminance only.
    **kwargs
        Passed to :func:`~randla.inverse.deblur` (boundary, method, rule, noise_std, lam...).

    Returns
    -------
    DeblurResult
    """
    in_path, out_path = os.fspath(in_path), os.fspath(out_path)
    if os.path.exists(out_path) and os.path.exists(in_path) and os.path.samefile(in_path,
                                                                                  out_path):
        raise ValueError(f"the output {out_path!r} is the input file: refusing to overwrite it")
    folder = os.path.dirname(os.path.abspath(out_path))
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"cannot write to the output folder {folder!r}")
    opts = inspect.signature(deblur).bind(None, None, **kwargs)  # unknown keywords fail here
    opts.apply_defaults()
    opts = {k: v for k, v in opts.arguments.items() if k not in ("blurred", "psf")}
    image = read_image(in_path, gray=gray)
    res = _deblur(image, psf, opts, stacklevel=3)
    write_image(out_path, res.image)
    return res
