"""Adaptive block Krylov for flat spectra: the branch the adaptive default of
:func:`randla.rsvd` takes when power iteration would converge slowly.

On a flat spectrum (sigma_(l+1) / sigma_k near 1) subspace iteration gains a factor of at most
that ratio per product, where block Krylov converges like a Chebyshev polynomial, with the
square root of the gap (Musco & Musco 2015; Tropp & Webber 2023). The Krylov space of A^H A,
``[V0, (A^H A) V0, (A^H A)^2 V0, ...]``, is built on A's second side (n), each block
orthogonalized against the earlier ones (block Gram-Schmidt, twice). Its Rayleigh-Ritz matrix
``G = V^H A^H A V`` comes free from the products (``Z = A^H A V_j`` is also the next block),
so each step costs two products and the Ritz values of every step are known. The loop stops
with the same rule as the power iteration (:func:`randla.lowrank.adaptive.estimate`), the
change of the estimates not extrapolated (Krylov's convergence accelerates), and one last
product gives U from the Ritz vectors: ``A V_k = U S W^H``.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from .._linalg import one_thread_lapack, qr_factor, small_svd
from .qb import extend_basis


def unit_roundoff(dtype) -> float:
    return float(np.finfo(dtype).eps)


def check_products(Z):
    if not np.all(np.isfinite(Z)):
        raise ValueError("A produced NaN or Inf in products (check the data or the LinearOperator)")


def _ritz(G, scale):
    """Ritz values of A (sqrt of G's eigenvalues, descending, relative to ``scale``) and G's
    eigenvectors."""
    with one_thread_lapack(G.shape[0]):
        lam, Y = sla.eigh((G + G.conj().T) / 2, check_finite=False)
    return np.sqrt(np.clip(lam[::-1], 0, None)) / scale, Y[:, ::-1]


def krylov_svd(op, P, k, loop, budget):
    """Top-k SVD of A from block Krylov on A^H A started at the orthonormal P (n x b).

    ``loop`` (the adaptive loop's state: scale, previous estimates, tolerances) judges each
    step; ``budget``: products allowed, the last one for U. Returns ``(U, s, Vh, depth,
    passes, converged)``."""
    n, b = P.shape
    c = 1.0 / loop.scale
    V, G = P, np.zeros((0, 0), P.dtype)
    passes, depth, done = 0, 0, False
    Vj = P
    while True:
        with np.errstate(all="ignore"):    # checked below
            # A^H A V_j / scale^2, scaled on the small side (no m x b temporary)
            Z = np.asarray(op.rmatmat(np.asarray(op.matmat(Vj * c)))) * c
        passes += 2
        check_products(Z)
        w = V.shape[1]
        col = V.conj().T @ Z                     # G[:, j-th block]
        G = np.block([[G, col[:w - Vj.shape[1]]], [col[:w - Vj.shape[1]].conj().T, col[w - Vj.shape[1]:]]])
        t, Y = _ritz(G, 1.0)
        # no extrapolation (r = 1/2: the factor is 1): Krylov's changes shrink ever faster
        # G squares the singular values: its rounding floor is sqrt(NOISE_FLOOR u) sigma_1
        t, done = loop.judge(t * loop.scale, np.sqrt(unit_roundoff(op.dtype) / 100.0), False,
                             r=0.5)
        loop.prev = t
        depth += 1
        if V.shape[1] == n:          # the whole space: the Ritz pairs are A's own
            done = True
        if done or passes + 3 > budget:
            break
        Vj = extend_basis(Z, V)[:, :n - V.shape[1]]   # the last block may fill the space
        V = np.hstack([V, Vj])
    # U from the Ritz vectors: A (V Y_k) = U S W^H, one more product
    Vk = V @ Y[:, :k]
    with np.errstate(all="ignore"):
        W = np.asarray(op.matmat(Vk))
    passes += 1
    check_products(W)
    Qw, Rw = qr_factor(W)
    Ur, s, Wh = small_svd(Rw)
    return Qw @ Ur, s, Wh @ Vk.conj().T, depth, passes, done
