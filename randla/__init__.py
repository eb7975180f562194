"""randla: randomized numerical linear algebra, with an optical (OPU) backend.

Top-level names are imported lazily, so ``import randla`` stays fast and a module's
dependencies are only loaded when it is used.
"""
from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    # low-rank (randla.lowrank)
    "rsvd": "randla.lowrank",
    "reigh": "randla.lowrank",
    "estimate_error": "randla.lowrank",
    "SVDResult": "randla.lowrank",
    "EighResult": "randla.lowrank",
    # out-of-core / single pass (randla.streaming)
    "sketchy_svd": "randla.streaming",
    # least squares (randla.lstsq)
    "lstsq": "randla.lstsq",
    "LstsqResult": "randla.lstsq",
    # Nystrom and kernels (randla.nystrom, randla.kernels, randla.kernel_models)
    "nystrom": "randla.nystrom",
    "NystromApprox": "randla.nystrom",
    "nystrom_pcg": "randla.nystrom",
    "rpcholesky": "randla.rpcholesky",
    "KernelMatrix": "randla.kernels",
    "NystromFeatures": "randla.kernel_models",
    "KernelRidge": "randla.kernel_models",
    # operators
    "as_operator": "randla.operators",
}
_SUBMODULES = {"sketch", "operators", "lowrank", "trace", "inverse", "streaming", "lstsq",
               "nystrom", "rpcholesky", "kernels", "kernel_models", "cli"}

__all__ = sorted(_EXPORTS) + sorted(_SUBMODULES)


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


class _Package(types.ModuleType):
    """After importing a submodule, Python binds it as an attribute of the package. Where a
    public function shares its submodule's name (randla.lstsq, randla.nystrom,
    randla.rpcholesky), keep the function: the module stays reachable by import."""

    def __setattr__(self, name, value):
        if (isinstance(value, types.ModuleType) and _EXPORTS.get(name) == value.__name__
                and hasattr(value, name)):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
