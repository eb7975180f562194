"""Sketches: random linear maps applied block by block (see :class:`Sketcher`)."""
from .base import Sketcher, available, make, prefers_long_side, register, resolve
from .dask import sketch_dask
from .gaussian import Gaussian, Rademacher
from .sparse_sign import SparseSign
from .srtt import SRTT

register("gaussian", Gaussian)
register("rademacher", Rademacher)
register("sparse_sign", SparseSign)
register("srtt", SRTT)
register("optical", "opu.sketcher:OpticalSketch")

__all__ = ["Sketcher", "Gaussian", "Rademacher", "SparseSign", "SRTT", "available", "make",
           "register", "resolve", "sketch_dask", "prefers_long_side"]
