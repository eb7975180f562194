"""Regularized solutions of ill-posed problems, and image deblurring.

- :func:`tsvd`, :func:`tikhonov`: filtered SVD solutions (through a randomized SVD) with the
  parameter chosen by GCV, the L-curve corner or the discrepancy principle, and checked.
- :class:`BlurOperator`: 2-D blurs with zero, periodic or reflective boundary conditions, and
  the PSFs :func:`gaussian_psf`, :func:`motion_psf`, :func:`disk_psf`.
- :func:`deblur`: deblur an image (spectral, Kronecker or hybrid iterative path), with
  :func:`estimate_noise`; :func:`deblur_file`, :func:`read_image`, :func:`write_image` for files.
- :mod:`randla.inverse.problems`: Hansen's Regularization Tools problems and image deblurring.
"""
from . import problems
from .blur import BlurOperator, disk_psf, gaussian_psf, motion_psf
from .deblur import DeblurResult, deblur, deblur_file, estimate_noise, parse_psf
from .hybrid import HybridResult, hybrid_tikhonov
from .images import read_image, write_image
from .regularize import (
                         Spectrum,
                         TikhonovResult,
                         TSVDResult,
                         choose_lambda,
                         choose_rank,
                         spectrum,
                         tikhonov,
                         tsvd,
                         vetted_lambda,
)
from .spectral import blur_spectrum

__all__ = ["tsvd", "tikhonov", "spectrum", "choose_lambda", "choose_rank", "vetted_lambda",
           "Spectrum", "TikhonovResult", "TSVDResult", "problems",
           "BlurOperator", "gaussian_psf", "motion_psf", "disk_psf", "blur_spectrum",
           "hybrid_tikhonov", "HybridResult", "deblur", "DeblurResult", "estimate_noise",
           "parse_psf", "deblur_file", "read_image", "write_image"]
