"""Kernel methods: implicit kernel matrices, Nystrom approximation and preconditioned solves,
randomly pivoted Cholesky. The scikit-learn estimators (:mod:`randla.kernel.sklearn`) need the
optional scikit-learn (``pip install 'randla[sklearn]'``) and are not imported here."""
from .functions import KernelMatrix, kernel_block
from .nystrom import NystromApprox, PCGResult, nystrom, nystrom_pcg
from .rpcholesky import RPCholeskyResult, column_nystrom, rpcholesky

__all__ = ["KernelMatrix", "kernel_block", "nystrom", "nystrom_pcg", "NystromApprox",
           "PCGResult", "rpcholesky", "column_nystrom", "RPCholeskyResult"]
