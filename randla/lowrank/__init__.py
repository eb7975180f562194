"""Randomized low-rank approximation, in layers as RandLAPACK builds it:
range finder -> QB -> SVD (or eigendecomposition), plus single-pass sketches and a posteriori
error estimates. Each layer is public and takes the one below it.

- :mod:`~randla.lowrank.range_finder`: :func:`range_finder`, the power loop;
- :mod:`~randla.lowrank.qb`: :func:`qb`, block Krylov, randQB_EI (fixed accuracy);
- :mod:`~randla.lowrank.rsvd`: :func:`rsvd` and its planner :func:`plan_rsvd`;
- :mod:`~randla.lowrank.adaptive`: the accuracy-controlled power iterations, the default;
- :mod:`~randla.lowrank.reigh`, :mod:`~randla.lowrank.error`, :mod:`~randla.lowrank.sketchy`.
"""
from .._linalg import orthonormalize
from ._params import DEFAULT_POWER_ITERS, METHODS, default_oversample
from .adaptive import DEFAULT_POWER_TOL, MAX_ADAPTIVE_ITERS, RSVDInfo
from .error import estimate_error
from .qb import qb
from .range_finder import range_finder
from .reigh import reigh
from .results import EighResult, ErrorEstimate, QBResult, SVDResult
from .rsvd import RSVDPlan, plan_rsvd, rsvd
from .sketchy import SketchySVD, sketchy_svd

__all__ = ["rsvd", "reigh", "estimate_error", "range_finder", "qb", "sketchy_svd", "SketchySVD",
           "plan_rsvd", "RSVDPlan", "RSVDInfo", "SVDResult", "EighResult", "ErrorEstimate", "QBResult",
           "orthonormalize", "DEFAULT_POWER_ITERS", "DEFAULT_POWER_TOL", "MAX_ADAPTIVE_ITERS",
           "METHODS", "default_oversample"]
