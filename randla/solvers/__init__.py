"""Solvers: sketched least squares and (preconditioned) conjugate gradients."""
from .cg import conjugate_gradients
from .lstsq import (
           LstsqResult,
           SketchPreconditioner,
           lstsq,
           residual_and_gradient,
           statistical_dimension,
)

__all__ = ["lstsq", "LstsqResult", "SketchPreconditioner", "statistical_dimension",
           "residual_and_gradient", "conjugate_gradients"]
