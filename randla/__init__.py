"""randla: randomized numerical linear algebra, with an optical (OPU) backend.

Top-level names are imported lazily, so ``import randla`` stays fast and a module's
dependencies are only loaded when it is used. The packages, lowest layer first:
``sketch`` and ``io`` (L1), ``operators`` (L2), ``lowrank``, ``solvers``, ``kernel``, ``trace``
(L3), ``inverse`` and ``testing`` (L4), ``cli`` (L5).
"""
from __future__ import annotations

import importlib

from ._numba_cache import choose_cache_dir
from .exceptions import AccuracyWarning

choose_cache_dir()

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    # low-rank (randla.lowrank)
    "rsvd": "randla.lowrank",
    "reigh": "randla.lowrank",
    "range_finder": "randla.lowrank",
    "qb": "randla.lowrank",
    "estimate_error": "randla.lowrank",
    "sketchy_svd": "randla.lowrank",
    "SVDResult": "randla.lowrank",
    "QBResult": "randla.lowrank",
    "EighResult": "randla.lowrank",
    "ErrorEstimate": "randla.lowrank",
    # least squares (randla.solvers)
    "lstsq": "randla.solvers",
    "LstsqResult": "randla.solvers",
    # Nystrom and kernels (randla.kernel)
    "nystrom": "randla.kernel",
    "NystromApprox": "randla.kernel",
    "nystrom_pcg": "randla.kernel",
    "rpcholesky": "randla.kernel",
    "KernelMatrix": "randla.kernel",
    "NystromFeatures": "randla.kernel.sklearn",
    "KernelRidge": "randla.kernel.sklearn",
    # operators
    "as_operator": "randla.operators",
}
_SUBMODULES = {"sketch", "io", "operators", "lowrank", "solvers", "kernel", "trace", "recommend",
               "changepoint", "inverse", "testing", "cli"}

__all__ = sorted(_EXPORTS) + sorted(_SUBMODULES) + ["AccuracyWarning"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = importlib.import_module(f"randla.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'randla' has no attribute {name!r}")


def __dir__():
    return __all__
