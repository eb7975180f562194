"""Randomized low-rank approximation: range finder -> QB -> SVD (Halko, Martinsson, Tropp 2011).

This first version provides the fixed-rank power method; block Krylov, fixed accuracy,
centering, reigh and a-posteriori error estimates are built on the same layers.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg as sla

from . import sketch as _sketch
from ._validation import check_positive_int, real_dtype
from .operators import as_operator


class SVDResult(NamedTuple):
    """U (m x k), S (k, descending), Vh (k x n), as numpy.linalg.svd returns them."""

    U: np.ndarray
    S: np.ndarray
    Vh: np.ndarray


def orthonormalize(Y, normalizer="qr"):
    """An orthonormal basis of range(Y) (or, for "lu"/"none", a well-scaled one)."""
    if normalizer == "qr":
        return sla.qr(Y, mode="economic", overwrite_a=True, check_finite=False)[0]
    if normalizer == "cholqr":
        return _cholqr2(Y)
    if normalizer == "lu":
        L = sla.lu(Y, permute_l=True, check_finite=False)[0]
        return L
    if normalizer == "none":
        return Y
    raise ValueError(f"normalizer must be 'qr', 'cholqr', 'lu' or 'none', got {normalizer!r}")


def _cholqr2(Y):
    """CholeskyQR2: two Cholesky-based passes; falls back to Householder QR if Y^H Y is not
    numerically positive definite (rank-deficient Y)."""
    for _ in range(2):
        G = Y.conj().T @ Y
        try:
            R = sla.cholesky(G, lower=False, check_finite=False)
        except np.linalg.LinAlgError:
            return sla.qr(Y, mode="economic", check_finite=False)[0]
        Y = sla.solve_triangular(R, Y.T, trans="T", lower=False, check_finite=False).T \
            if not np.iscomplexobj(Y) else Y @ sla.inv(R)
    return Y


def _fix_signs(U, Vh):
    """Make the largest-magnitude entry of each column of U real and positive."""
    idx = np.argmax(np.abs(U), axis=0)
    phase = U[idx, np.arange(U.shape[1])]
    phase = phase / np.where(np.abs(phase) == 0, 1, np.abs(phase))
    phase = np.where(np.abs(phase) == 0, 1, phase)
    return U * phase.conj(), Vh * phase[:, None]


def rsvd(A, k, *, oversample=10, power_iters=2, normalizer="qr", sketch="gaussian", rng=None):
    """Randomized SVD of A: the top-k singular triplets.

    Parameters
    ----------
    A : ndarray, scipy.sparse matrix or LinearOperator, shape (m, n)
    k : int
        Rank, 1 <= k <= min(m, n).
    oversample : int
        Extra sketch columns beyond k.
    power_iters : int
        Power iterations, each followed by re-orthonormalization.
    normalizer : {"qr", "cholqr", "lu", "none"}
    sketch : str or Sketcher
        Any name of :func:`randla.sketch.available`, or a Sketcher of shape (k + oversample, n).
    rng : None, int or numpy.random.Generator

    Returns
    -------
    SVDResult
        ``(U, S, Vh)`` with float32 kept as float32.

    Examples
    --------
    >>> import numpy as np, randla
    >>> A = np.random.default_rng(0).standard_normal((200, 8)) @ np.diag([5., 4, 3, 2, 1, .5, .2, .1]) @ np.eye(8, 50)
    >>> U, S, Vh = randla.rsvd(A, 3, rng=0)
    >>> np.allclose(S, np.linalg.svd(A, compute_uv=False)[:3])
    True
    """
    op = as_operator(A)
    m, n = op.shape
    k = check_positive_int(k, "k")
    if k > min(m, n):
        raise ValueError(f"k must be <= min(m, n) = {min(m, n)}, got {k}")
    oversample = check_positive_int(oversample, "oversample", minimum=0)
    power_iters = check_positive_int(power_iters, "power_iters", minimum=0)
    ell = min(k + oversample, min(m, n))
    S = _sketch.resolve(sketch, ell, n, rng=rng, dtype=real_dtype(op.dtype))
    Q = orthonormalize(np.asarray(op.sketch_right(S)), "qr")
    for _ in range(power_iters):
        Z = orthonormalize(op.rmatmat(Q), normalizer)
        Q = orthonormalize(op.matmat(Z), "qr")
    B = op.rmatmat(Q).conj().T  # Q^H A, (ell x n)
    Ub, s, Vh = sla.svd(B, full_matrices=False, check_finite=False)
    U = Q @ Ub[:, :k]
    U, Vh = _fix_signs(U, Vh[:k])
    return SVDResult(U, s[:k].astype(real_dtype(op.dtype), copy=False), Vh)
