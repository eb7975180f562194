"""Results of the low-rank algorithms: small named tuples."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class _SVDFields(NamedTuple):
    U: np.ndarray
    S: np.ndarray
    Vh: np.ndarray


class SVDResult(_SVDFields):
    """U (m x k), S (k, descending), Vh (k x n), as numpy.linalg.svd returns them.

    A 3-tuple (``U, S, Vh = rsvd(A, k)`` unpacks it); ``info`` (not a field) says how the
    result was computed: :func:`randla.rsvd` sets it to a :class:`~randla.lowrank.RSVDInfo`
    (power iterations and passes used), other producers leave it None.
    """

    info = None   # class default: results made by _make/_replace or by other functions

    def __new__(cls, U, S, Vh, info=None):
        self = super().__new__(cls, U, S, Vh)
        if info is not None:
            self.info = info
        return self


class EighResult(NamedTuple):
    """eigenvalues (k, ascending as in numpy.linalg.eigh) and eigenvectors (n x k)."""

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray


class ErrorEstimate(NamedTuple):
    """A posteriori error of a low-rank approximation in the spectral norm.

    ``bound`` >= ||A - U diag(s) Vh||_2 with probability at least ``probability``;
    ``estimate`` is a Ritz value of the residual: a lower bound, usually within a few percent.
    """

    bound: float
    probability: float
    estimate: float


class QBResult(NamedTuple):
    """Q (m x l, orthonormal columns) and B = Q^H A (l x n): A ~ Q B."""

    Q: np.ndarray
    B: np.ndarray
