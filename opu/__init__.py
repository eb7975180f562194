"""opu: a faithful simulation of LightOn's Optical Processing Unit.

* :class:`Medium` — the complex Gaussian transmission matrix H, generated tile by tile.
* :class:`OPU` — the device: binary DMD input, 8-bit camera, frame/time/energy accounting.
* :mod:`opu.encoding` — real data to binary frames and back.
* :class:`LinearProjection` — exact real Gaussian projections from intensity-only frames.
* :class:`OpticalSketch` — the OPU as a randla Sketcher (``sketch="optical"``).
* :func:`features` — optical random features |Hx|^2, approximating :func:`kernel`.
"""
from .device import DMD_PIXELS, DMD_SHAPE, OPU, Camera, FrameStats
from .random_features import features, kernel
from .linear import LinearProjection
from .medium import Medium

__all__ = ["Medium", "OPU", "Camera", "FrameStats", "DMD_PIXELS", "DMD_SHAPE",
           "LinearProjection", "OpticalSketch", "features", "kernel"]


def __getattr__(name):
    if name == "OpticalSketch":  # imports randla's Sketcher contract: only on demand
        from .sketcher import OpticalSketch
        return OpticalSketch
    raise AttributeError(f"module 'opu' has no attribute {name!r}")
