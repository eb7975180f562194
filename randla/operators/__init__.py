"""Operators: any input seen through products with A and A^H (the door is :func:`as_operator`).

Layers: :mod:`~randla.operators.base` (the interface, dense, sparse, adjoint),
:mod:`~randla.operators.wrappers` (centered, residual, Hermitian views),
:mod:`~randla.operators.chunked` (dask arrays and files, one read per product),
:mod:`~randla.operators.convert` (:func:`as_operator`).
"""
from .base import AdjointOperator, DenseOperator, Operator, SparseOperator
from .chunked import DaskOperator, file_operator
from .convert import as_operator, check_values
from .wrappers import CenteredOperator, HermitianOperator, ResidualOperator

__all__ = ["as_operator", "Operator", "DenseOperator", "SparseOperator", "AdjointOperator",
           "CenteredOperator", "ResidualOperator", "HermitianOperator", "DaskOperator",
           "file_operator", "check_values"]
