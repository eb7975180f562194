"""QB: A ~ Q B with Q orthonormal (m x l) and B = Q^H A (l x n), the second layer.

Fixed size: a range finder (power iterations, or block Krylov) then B = Q^H A. Fixed accuracy:
randQB_EI grows Q block by block until ||A - Q B||_F <= tol ||A||_F. Out of core, B is solved
from A^H A X and A X read together (one pass) where that is accurate.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla

from .. import sketch as _sketch
from .._linalg import cholqr, final_basis, fro_norm, householder, project_out, small_svd, unit_scale
from .._validation import check_choice, check_random_state, real_dtype
from ..operators import CenteredOperator, Operator, ResidualOperator, as_operator
from ._params import METHODS
from .range_finder import _setup, find_range, power, sketch_range
from .results import QBResult

#: First block of the fixed-accuracy mode; later blocks double the basis.
_FIRST_BLOCK = 16
#: Out of core, B = Q^H A is solved from A^H A X instead of read again when cond(R) of
#: A X = Q R is at most u^(-1/3) (u the unit roundoff): its error is ~u cond(R) ||A||.
_SOLVE_COND_EXPONENT = 1 / 3


def well_conditioned(R) -> bool:
    """cond(R) small enough for B to be solved through R (see _SOLVE_COND_EXPONENT)."""
    return np.linalg.cond(R) <= np.finfo(R.dtype).eps ** -_SOLVE_COND_EXPONENT


def qb_from_right(op, X, normalizer, one_pass=False):
    """Q (m x l) and B = Q^H A from X (n x l) in ONE read of an out-of-core A: A X and
    A^H A X are formed panel by panel, Q R = A X, and B = R^-H (A^H A X)^H (Yu et al. 2017).
    When R is too ill-conditioned for that, B = Q^H A costs a second read, or with
    ``one_pass`` the directions of A X below sqrt(u) ||A X|| are dropped instead."""
    if isinstance(op, CenteredOperator):
        # a centered A^H A X is A^H A X minus a rank-one term, which cancels when the column
        # means are large: solving B from it would amplify that by cond(R), so B is read
        Q = final_basis(np.asarray(op.matmat(X)), normalizer)
        return Q, np.asarray(op.rmatmat(Q)).conj().T
    (C, e), Y = op.gram_and_product_scaled(X)   # C 2^-e = A^H A X
    C = np.asarray(C)
    Q = final_basis(np.asarray(Y), normalizer)
    R = Q.conj().T @ Y
    if well_conditioned(R):
        return Q, unscale(sla.solve(R.conj().T, C.conj().T, check_finite=False), e)
    if not one_pass:
        return Q, np.asarray(op.rmatmat(Q)).conj().T
    Ur, sr, Vrh = small_svd(R)
    keep = sr > np.sqrt(np.finfo(R.dtype).eps) * sr[0]
    return Q @ Ur[:, keep], unscale((Vrh[keep] @ C.conj().T) / sr[keep, None], e)


def unscale(B, e):
    """B * 2^-e (a product scaled by :meth:`~randla.operators.Operator.gram_matmat_scaled`)."""
    return B if e == 0 else B * np.asarray(2.0 ** -e, B.real.dtype)


def extend_basis(W, P):
    """Orthonormal columns spanning W's part orthogonal to the orthonormal P (BCGS2: project,
    CholeskyQR, twice). When W is (nearly) inside range(P), Householder QR of [P, W]
    completes the basis with directions orthogonal to P instead."""
    if P is None or P.shape[1] == 0:
        return cholqr(W)
    Q = cholqr(project_out(W, P))
    Q = cholqr(project_out(Q, P))
    tol = 100 * np.finfo(Q.dtype).eps * max(Q.shape)
    ortho = max(np.abs(P.conj().T @ Q).max(), np.abs(Q.conj().T @ Q - np.eye(Q.shape[1])).max())
    if ortho <= tol:
        return Q
    return householder(np.hstack([P, W]))[:, P.shape[1]:]


def krylov_qb(op, S, q):
    """Block Krylov (Musco & Musco 2015): Q spans [Y, (AA^H) Y, ..., (AA^H)^q Y], Y = A S^T,
    and B = Q^H A. Each block is orthogonalized against the previous ones; B reuses the
    A^H Q_i already computed, so only the last block costs an extra pass."""
    Qs, Zs = [], []
    Qi = cholqr(sketch_range(op, S))
    for _ in range(q):
        Zi = np.asarray(op.rmatmat(Qi))
        Qs.append(Qi)
        Zs.append(Zi)
        scale = unit_scale(Zi) or 1.0   # A Z_i squares A's scale: 1e300 would overflow
        Qi = extend_basis(np.asarray(op.matmat(Zi * np.asarray(scale, Zi.real.dtype))),
                          np.hstack(Qs))
    Qs.append(Qi)
    Zs.append(np.asarray(op.rmatmat(Qi)))
    return np.hstack(Qs), np.hstack(Zs).conj().T


def operator_fro_norm(op: Operator) -> float:
    """||A||_F: from the operator when it knows it, else by products with identity blocks
    on the shorter side (as costly as forming A, but exact). NaN or Inf in A's products is an
    error: a norm that is not finite cannot certify anything."""
    norm = op.fro_norm()
    if norm is None:
        m, n = op.shape
        side, size = (op.matmat, n) if n <= m else (op.rmatmat, m)
        norm = math.hypot(*(fro_norm(side(np.eye(size, min(256, size - j), -j, dtype=op.dtype)))
                            for j in range(0, size, 256)))
    if not math.isfinite(norm):
        raise ValueError("A produced NaN or Inf in products (check the data or the LinearOperator)")
    return float(norm)


def residual_fro_norm(op: Operator, Q, B) -> float:
    """||A - Q B||_F measured through products (exact, as costly as forming A once)."""
    return operator_fro_norm(ResidualOperator(op, Q, np.ones(Q.shape[1], real_dtype(op.dtype)), B))


def energy_floor(dtype) -> float:
    """Below this, ||A - QB||_F^2 / ||A||_F^2 tracked as 1 - ||B||_F^2 / ||A||_F^2 is rounding
    noise: the subtraction carries errors of a few units of roundoff."""
    return 50 * np.finfo(dtype).eps


def krylov_depth(q, ell, size) -> int:
    """The Krylov depth actually used: the basis, ell * (q + 1) wide, stays within min(m, n)."""
    return min(q, size // ell - 1)


def qb_of(op: Operator, S, q: int, normalizer: str, method: str) -> QBResult:
    """Q B of the operator from the sketch S: power iterations then B = Q^H A, or block
    Krylov (whose B reuses the products already made)."""
    if method == "krylov":
        return QBResult(*krylov_qb(op, S, krylov_depth(q, S.shape[0], min(op.shape))))
    Q = find_range(op, S, q, normalizer)
    return QBResult(Q, np.asarray(op.rmatmat(Q)).conj().T)


def qb(A, l, *, power_iters=None, method="power", sketch="gaussian", normalizer="auto",
       rng=None) -> QBResult:
    """Randomized QB decomposition: ``A ~ Q B`` with Q (m x l) orthonormal and B = Q^H A.

    Parameters
    ----------
    A : ndarray, scipy.sparse matrix, LinearOperator or dask array, shape (m, n)
    l : int
        Columns of Q, 1 <= l <= min(m, n).
    power_iters : int, optional
        Power iterations (or block Krylov depth), default 2.
    method : {"power", "krylov"}
        Subspace iteration, or block Krylov: Q is then ``l * (power_iters + 1)`` wide (capped
        at min(m, n)).
    sketch, normalizer, rng
        As in :func:`randla.range_finder`.

    Returns
    -------
    QBResult
        ``(Q, B)``; ``Q @ B`` is the approximation, and ``numpy.linalg.svd(B)`` gives its SVD.

    Examples
    --------
    >>> import numpy as np, randla
    >>> A = np.random.default_rng(0).standard_normal((300, 8)) @ np.random.default_rng(1).standard_normal((8, 100))
    >>> Q, B = randla.qb(A, 10, rng=0)
    >>> B.shape, bool(np.allclose(Q @ B, A))
    ((10, 100), True)
    """
    op = as_operator(A)
    check_choice(method, "method", METHODS)
    S, q = _setup(op, l, power_iters, sketch, normalizer, rng)
    Q, B = qb_of(op, S, q, normalizer, method)
    return QBResult(np.ascontiguousarray(Q, dtype=op.dtype), np.ascontiguousarray(B, dtype=op.dtype))


def qb_to_tolerance(op: Operator, tol: float, basis_cap: int, q: int, normalizer: str, sketch,
                    rng):
    """randQB_EI (Yu, Gu, Li 2018): grow Q and B = Q^H A block by block; the residual energy
    ||A - QB||_F^2 = ||A||_F^2 - ||B||_F^2 is tracked without forming A - QB, relative to
    ||A||_F^2 (so that A scaled by 1e200 or 1e-170 neither overflows nor underflows). Stops when
    it is below tol^2 or the basis has ``basis_cap`` columns. A tol too small for that
    subtraction to resolve (:func:`energy_floor`) is checked on the measured ||A - QB||_F.

    Returns ``(Q, B, residual, total)``: Q is None for A == 0; ``residual`` is
    ||A - Q B||_F^2 / ||A||_F^2 (tracked, or measured) and ``total`` is ||A||_F."""
    gen = check_random_state(rng)
    n = op.shape[1]
    total = operator_fro_norm(op)
    energy, target = (1.0 if total > 0 else 0.0), tol ** 2
    floor = energy_floor(real_dtype(op.dtype))
    Q, B = None, np.zeros((0, n), dtype=op.dtype)
    width = 0
    while width < basis_cap and energy > target:
        b = min(max(width, _FIRST_BLOCK), basis_cap - width)
        S = _sketch.resolve(sketch, b, n, rng=gen, dtype=real_dtype(op.dtype))
        Y = power(op, project_out(sketch_range(op, S), Q), q, normalizer, against=Q)
        Qi = extend_basis(Y, Q)
        Bi = np.asarray(op.rmatmat(Qi)).conj().T
        Q = Qi if Q is None else np.hstack([Q, Qi])
        B = np.vstack([B, Bi])
        if not np.all(np.isfinite(Bi)):
            raise ValueError("A produced NaN or Inf in products (check the data or the LinearOperator)")
        energy -= (fro_norm(Bi) / total) ** 2
        width += b
        if energy <= max(target, floor) and target < floor:  # tracked value is noise here
            energy = (residual_fro_norm(op, Q, B) / total) ** 2
    return Q, B, energy, total
