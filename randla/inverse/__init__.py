"""Regularized solutions of ill-posed problems through randomized SVDs, and test problems.

- :func:`tsvd`, :func:`tikhonov`: filtered SVD solutions with the parameter chosen by GCV, the
  L-curve corner or the discrepancy principle.
- :mod:`randla.inverse.problems`: Hansen's Regularization Tools problems and image deblurring.
"""
from . import problems
from .regularize import Spectrum, TikhonovResult, TSVDResult, choose_lambda, spectrum, tikhonov, tsvd

__all__ = ["tsvd", "tikhonov", "spectrum", "choose_lambda", "Spectrum", "TikhonovResult",
           "TSVDResult", "problems"]
