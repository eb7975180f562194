"""Trace, diagonal and matrix-function estimation from products with A.

Every estimator takes A as an ndarray, a scipy.sparse matrix, a LinearOperator or a matvec
callable (with ``n=``), a budget of products ``m`` or a tolerance ``tol=``, test vectors from any
randla sketch (``sketch=``) and ``rng``; it returns a :class:`TraceResult` (a float carrying
``error`` and ``matvecs``) or, for diagonals, a :class:`DiagResult`.
"""
from ._core import DiagResult, TraceResult
from .exchangeable import xdiag, xnystrace, xtrace
from .hutch import diag_hutchinson, hutchinson, hutchpp, na_hutchpp, nystrompp
from .lanczos import logdet, slq

__all__ = ["TraceResult", "DiagResult", "hutchinson", "hutchpp", "na_hutchpp", "nystrompp",
           "xtrace", "xnystrace", "xdiag", "diag_hutchinson", "slq", "logdet"]
