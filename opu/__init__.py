"""opu: a faithful simulation of LightOn's Optical Processing Unit.

* :class:`Medium` — the complex Gaussian transmission matrix H, generated tile by tile.
* :class:`OPU` — the device: binary DMD input, 8-bit camera, frame/time/energy accounting.
* :mod:`opu.encoding` — real data to binary frames and back.
* :class:`LinearProjection` — exact real Gaussian projections from intensity-only frames.
* :class:`OpticalSketch` — the OPU as a randla Sketcher (``sketch="optical"``).
* :func:`features` — optical random features |Hx|^2, approximating :func:`kernel`.
* :func:`metering` — frames, device seconds and joules of every optical projection in a block.

Names: ``seed`` names the medium (H) everywhere; ``rng`` is the randomness of the calls (camera
noise, probes, and the medium when ``seed`` is not given).
"""
from .device import CACHE_BYTES, DMD_MIRRORS, DMD_PIXELS, DMD_SHAPE, OPU, Camera, FrameStats
from .linear import LinearProjection
from .medium import TILE_BYTES, Medium
from .meter import Meter, metering
from .random_features import features, kernel

__all__ = ["Medium", "OPU", "Camera", "FrameStats", "DMD_MIRRORS", "DMD_PIXELS", "DMD_SHAPE",
           "CACHE_BYTES", "TILE_BYTES", "LinearProjection", "OpticalSketch", "features",
           "kernel", "metering", "Meter"]


def __getattr__(name):
    if name == "OpticalSketch":  # imports randla's Sketcher contract: only on demand
        from .sketcher import OpticalSketch
        return OpticalSketch
    raise AttributeError(f"module 'opu' has no attribute {name!r}")
