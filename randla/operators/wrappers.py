"""Operators defined through another one, never formed: centered (PCA) and residual."""
from __future__ import annotations

import numpy as np

from .._linalg import fro_norm
from .base import Operator, _Wrapped


class CenteredOperator(_Wrapped):
    """A - 1 mu^T, mu the column means of A, without forming it (PCA of sparse or matrix-free
    data). Every product is A's product corrected by a rank-one term; the fused A^H A X of an
    out-of-core A stays one pass: (A - 1 mu^T)^H (A - 1 mu^T) X = A^H A X - m conj(mu) mu^T X.
    """

    kind = "centered"

    def __init__(self, inner: Operator):
        super().__init__(inner)
        self.mean = np.asarray(inner.column_means(), dtype=self.dtype)

    def matmat(self, X):
        return self.A.matmat(X) - (self.mean @ X)[None, :]

    def rmatmat(self, Y):
        return self.A.rmatmat(Y) - np.outer(self.mean.conj(), Y.sum(axis=0))

    def gram_matmat(self, X):
        return self._center_gram(self.A.gram_matmat(X), X)

    def gram_and_product(self, X):
        C, Y = self.A.gram_and_product(X)
        return self._center_gram(C, X), Y - (self.mean @ X)[None, :]

    def _center_gram(self, C, X):
        return C - self.shape[0] * np.outer(self.mean.conj(), self.mean @ X)

    @property
    def fused_gram(self) -> bool:
        return self.A.fused_gram

    def sketch_right(self, S):
        Y = self.A.sketch_right(S)
        return Y - (S @ self.mean)[None, :]

    def sketch_left(self, S):
        Y = self.A.sketch_left(S)
        return Y - np.outer(S @ np.ones(self.shape[0], dtype=self.dtype), self.mean)

    def column_means(self):
        return np.zeros(self.shape[1], dtype=self.dtype)

    def fro_norm(self):
        direct = self.A.deviation_norm(self.mean)
        if direct is not None:
            return direct
        total = self.A.fro_norm()
        if total is None:
            return None
        # ||A - 1 mu^T||_F^2 = ||A||_F^2 - m ||mu||^2 cancels when the means dominate: then
        # the norm is not known to working accuracy, and None makes callers measure it
        offset = np.sqrt(self.shape[0]) * fro_norm(self.mean)
        if offset > 0.5 * total:
            return None
        return float((total - offset) * (total + offset)) ** 0.5


class ResidualOperator(_Wrapped):
    """E = A - U diag(s) Vh, through products with A and the factors (never formed)."""

    kind = "residual"

    def __init__(self, inner: Operator, U, s, Vh):
        super().__init__(inner)
        self.U, self.s, self.Vh = U, s, Vh

    def matmat(self, X):
        return self.A.matmat(X) - self.U @ (self.s[:, None] * (self.Vh @ X))

    def rmatmat(self, Y):
        return self.A.rmatmat(Y) - self.Vh.conj().T @ (self.s[:, None] * (self.U.conj().T @ Y))


class HermitianOperator(_Wrapped):
    """A Hermitian A whose A^H products are taken as A products (one code path, and the same
    rounding in both directions, for eigensolvers)."""

    kind = "hermitian"

    def matmat(self, X):
        return self.A.matmat(X)

    def rmatmat(self, Y):
        return self.A.matmat(Y)
