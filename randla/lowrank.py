"""Randomized low-rank approximation, in layers (Halko, Martinsson, Tropp 2011):
sketch -> range finder (power or block Krylov) -> QB -> small SVD.

Every product with A goes through an :class:`~randla.operators.Operator`, so dense, sparse,
matrix-free and out-of-core input share one code path; an operator whose ``gram_matmat`` reads
A once (out-of-core) gets one-pass power iterations.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import scipy.linalg as sla

from . import sketch as _sketch
from ._orth import (NORMALIZERS, between_products, cholqr, final_basis, householder,
                    orthonormalize, project_out, qr_factor)
from ._validation import check_positive_int, check_random_state, real_dtype
from .operators import (AdjointOperator, CenteredOperator, DenseOperator, ResidualOperator,
                        SparseOperator, as_operator)

__all__ = ["rsvd", "reigh", "estimate_error", "SVDResult", "EighResult", "ErrorEstimate",
           "orthonormalize", "DEFAULT_POWER_ITERS", "default_oversample"]

METHODS = ("power", "krylov")
#: Power iterations (or block Krylov depth) used when ``power_iters=None``. With the default
#: oversampling, two iterations reach a spectral error within 1% of sigma_{k+1} on
#: matrices with a decaying spectrum at 6 passes over A (see benchmarks/bench_lowrank.py).
DEFAULT_POWER_ITERS = 2
#: First block of the fixed-accuracy mode; later blocks double the basis.
_FIRST_BLOCK = 16
#: Out of core, B = Q^H A is solved from A^H A X instead of read again when cond(R) of
#: A X = Q R is at most u^(-1/3) (u the unit roundoff): its error is ~u cond(R) ||A||.
_SOLVE_COND_EXPONENT = 1 / 3


class SVDResult(NamedTuple):
    """U (m x k), S (k, descending), Vh (k x n), as numpy.linalg.svd returns them."""

    U: np.ndarray
    S: np.ndarray
    Vh: np.ndarray


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


# -- validation ------------------------------------------------------------------------------
def _check_rank(k, name, m, n):
    k = check_positive_int(k, name)
    if k > min(m, n):
        raise ValueError(f"{name} must be <= min(m, n) = {min(m, n)}, got {k}")
    return k


def _check_choice(value, name, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def default_oversample(k) -> int:
    """Oversampling used when ``oversample=None``: ``max(10, k // 5)``. The expected error of
    the range finder carries a factor ``1 + sqrt(k / (p - 1))`` (Halko, Martinsson & Tropp
    2011, Thm. 10.6), so p grows with k to keep it bounded: at k = 100 and two power
    iterations, p = 10 gave 1.004-1.018 sigma_(k+1) and p = 20 gave 1.0001-1.0002 in the same
    time (benchmarks/bench_lowrank.py's matrix, three seeds)."""
    return max(10, (k or 0) // 5)


def _check_oversample(oversample, k, sketch):
    if oversample is None:
        if isinstance(sketch, _sketch.Sketcher) and k is not None and sketch.shape[0] >= k:
            return sketch.shape[0] - k
        return default_oversample(k)
    return check_positive_int(oversample, "oversample", minimum=0)


def _check_iters(power_iters):
    if power_iters is None:
        return DEFAULT_POWER_ITERS
    return check_positive_int(power_iters, "power_iters", minimum=0)


def _check_tol(tol):
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating, np.integer)):
        raise TypeError(f"tol must be a float, got {type(tol).__name__}")
    if not 0 < tol < 1:
        raise ValueError(f"tol must be in (0, 1), got {tol}")
    return float(tol)


# -- building blocks -------------------------------------------------------------------------
def _sketch_range(op, S):
    """A @ S.T as a dense array. A complex sketch of real data keeps its real part, itself a
    real sketch of the same family, so real input gets a real basis."""
    Y = np.asarray(op.sketch_right(S))
    if Y.dtype.kind == "c" and not op.is_complex:
        Y = np.ascontiguousarray(Y.real)
    return Y


def _power_right(op, S, q, normalizer):
    """X (n x l) spanning (A^H A)^q S^T, by fused A^H A products: one read of A each."""
    X = S.to_dense(S.dtype_for(op.dtype)).T
    X = np.ascontiguousarray(X.real) if X.dtype.kind == "c" and not op.is_complex else X
    for _ in range(q):
        X = between_products(np.asarray(op.gram_matmat(X)), normalizer)
    return X


def _well_conditioned(R):
    return np.linalg.cond(R) <= np.finfo(R.dtype).eps ** -_SOLVE_COND_EXPONENT


def _qb_from_right(op, X, normalizer, one_pass=False):
    """Q (m x l) and B = Q^H A from X (n x l) in ONE read of an out-of-core A: A X and
    A^H A X are formed panel by panel, Q R = A X, and B = R^-H (A^H A X)^H (Yu et al. 2017).
    When R is too ill-conditioned for that, B = Q^H A costs a second read, or with
    ``one_pass`` the directions of A X below sqrt(u) ||A X|| are dropped instead."""
    if isinstance(op, CenteredOperator):
        # a centered A^H A X is A^H A X minus a rank-one term, which cancels when the column
        # means are large: solving B from it would amplify that by cond(R), so B is read
        Q = final_basis(np.asarray(op.matmat(X)), normalizer)
        return Q, np.asarray(op.rmatmat(Q)).conj().T
    C, Y = op.gram_and_product(X)
    Q = final_basis(np.asarray(Y), normalizer)
    R = Q.conj().T @ Y
    if _well_conditioned(R):
        return Q, sla.solve(R.conj().T, np.asarray(C).conj().T, check_finite=False)
    if not one_pass:
        return Q, np.asarray(op.rmatmat(Q)).conj().T
    Ur, sr, Vrh = _small_svd(R)
    keep = sr > np.sqrt(np.finfo(R.dtype).eps) * sr[0]
    return Q @ Ur[:, keep], (Vrh[keep] @ np.asarray(C).conj().T) / sr[keep, None]


def _power_range(op, S, q, normalizer):
    """Orthonormal Q (m x l) spanning (A A^H)^q A S^T, normalized between products."""
    Y = _sketch_range(op, S)
    for _ in range(q):
        Z = between_products(np.asarray(op.rmatmat(between_products(Y, normalizer))), normalizer)
        Y = np.asarray(op.matmat(Z))
    return final_basis(Y, normalizer)


def _extend_basis(W, P):
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


def _krylov_qb(op, S, q):
    """Block Krylov (Musco & Musco 2015): Q spans [Y, (AA^H) Y, ..., (AA^H)^q Y], Y = A S^T,
    and B = Q^H A. Each block is orthogonalized against the previous ones; B reuses the
    A^H Q_i already computed, so only the last block costs an extra pass."""
    Qs, Zs = [], []
    Qi = cholqr(_sketch_range(op, S))
    for _ in range(q):
        Zi = np.asarray(op.rmatmat(Qi))
        Qs.append(Qi)
        Zs.append(Zi)
        Qi = _extend_basis(np.asarray(op.matmat(Zi)), np.hstack(Qs))
    Qs.append(Qi)
    Zs.append(np.asarray(op.rmatmat(Qi)))
    return np.hstack(Qs), np.hstack(Zs).conj().T


def _small_svd(B):
    try:
        return sla.svd(B, full_matrices=False, check_finite=False)
    except np.linalg.LinAlgError:  # gesdd rarely fails to converge; gesvd is the safe path
        return sla.svd(B, full_matrices=False, check_finite=False, lapack_driver="gesvd")


def _svd_of_b(B, k):
    """Top-k SVD of the l x n B. A wide B is first reduced by CholeskyQR of B^H = P R, so
    LAPACK's SVD runs on the l x l R^H instead of a Householder bidiagonalization of B."""
    if not np.all(np.isfinite(B)):
        raise ValueError("A produced NaN or Inf in products (check the LinearOperator)")
    ell, n = B.shape
    if n > 2 * ell:
        P, R = qr_factor(np.ascontiguousarray(B.conj().T))
        Ub, s, Wh = _small_svd(R.conj().T)
        Vh = Wh[:k] @ P.conj().T
    else:
        Ub, s, Vh = _small_svd(B)
        Vh = Vh[:k]
    return Ub[:, :k], s[:k], Vh


def _svd_of_qb(Q, B, k):
    """Top-k SVD of Q B."""
    Ub, s, Vh = _svd_of_b(B, k)
    return Q @ Ub, s, Vh


def _fix_signs_by_rows(U, Vh):
    """Make the largest-magnitude entry of each row of Vh real and positive."""
    V, Uh = _fix_signs(Vh.conj().T, U.conj().T)
    return Uh.conj().T, V.conj().T


def _fix_signs(U, Vh):
    """Make the largest-magnitude entry of each column of U real and positive."""
    idx = np.argmax(np.abs(U), axis=0)
    phase = U[idx, np.arange(U.shape[1])]
    phase = phase / np.where(np.abs(phase) == 0, 1, np.abs(phase))
    phase = np.where(np.abs(phase) == 0, 1, phase)
    return U * phase.conj(), Vh * phase[:, None]


def _fro_norm_sq(op) -> float:
    """||A||_F^2: from the operator when it knows it, else by products with identity blocks
    on the shorter side (as costly as forming A, but exact)."""
    norm = op.fro_norm()
    if norm is not None:
        return float(norm) ** 2
    m, n = op.shape
    side, size = (op.matmat, n) if n <= m else (op.rmatmat, m)
    total = 0.0
    for j in range(0, size, 256):
        eye = np.eye(size, min(256, size - j), -j, dtype=op.dtype)
        total += float(np.linalg.norm(side(eye)) ** 2)
    return total


# -- fixed rank and fixed accuracy -----------------------------------------------------------
def _out_of_core_fixed_rank(op, k, ell, q, normalizer, sketch, rng, lazy):
    """Top-k SVD of an A whose A^H A X reads A once: q reads for the power iterations, one for
    B (see :func:`_qb_from_right`). With ``lazy``, that last read gives the triangular factor R
    of A X (TSQR over row panels) instead of A X itself, and U = Q Ub = A (X R^-1 Ub) is
    returned unevaluated, so no m x l block is ever held (its signs: the largest entry of each
    row of Vh is real positive); when R is ill-conditioned, U is computed in memory instead."""
    S = _sketch.resolve(sketch, ell, op.shape[1], rng=rng, dtype=real_dtype(op.dtype))
    X = _power_right(op, S, q, normalizer)
    if lazy:
        C, R = op.gram_qr(X)
        if R.shape[0] == ell and _well_conditioned(R):
            B = sla.solve_triangular(R, C.conj().T, trans="C", check_finite=False)
            Ub, s, Vh = _svd_of_b(B, k)
            W, Vh = _fix_signs_by_rows(X @ sla.solve_triangular(R, Ub, check_finite=False), Vh)
            return op.A @ W, s, Vh
        # ill-conditioned (a numerically rank-deficient A X): U in memory, two more reads
        Q = final_basis(np.asarray(op.matmat(X)), normalizer)
        return _svd_of_qb(Q, np.asarray(op.rmatmat(Q)).conj().T, k)
    return _svd_of_qb(*_qb_from_right(op, X, normalizer), k)


def _fixed_rank(op, k, ell, q, normalizer, method, sketch, rng, lazy=False):
    if method == "power" and getattr(op, "fused_gram", False):
        return _out_of_core_fixed_rank(op, k, ell, q, normalizer, sketch, rng, lazy)
    S = _sketch.resolve(sketch, ell, op.shape[1], rng=rng, dtype=real_dtype(op.dtype))
    if method == "krylov":
        # the Krylov basis is ell * (q + 1) wide; keep it within the matrix
        q = min(q, min(op.shape) // ell - 1)
        Q, B = _krylov_qb(op, S, q)
    else:
        Q = _power_range(op, S, q, normalizer)
        B = np.asarray(op.rmatmat(Q)).conj().T
    return _svd_of_qb(Q, B, k)


def _fixed_accuracy(op, tol, cap, basis_cap, q, normalizer, sketch, rng):
    """randQB_EI (Yu, Gu, Li 2018): grow Q and B = Q^H A block by block; the residual energy
    ||A - QB||_F^2 = ||A||_F^2 - ||B||_F^2 is tracked without forming A - QB. The final
    rank is the smallest r <= cap with ||A - Q B_r||_F <= tol ||A||_F (B_r: B's truncated
    SVD). The basis may grow past cap, up to basis_cap, so that a capped result is accurate."""
    gen = check_random_state(rng)
    n = op.shape[1]
    energy = _fro_norm_sq(op)
    target = tol ** 2 * energy
    Q, B = None, np.zeros((0, n), dtype=op.dtype)
    width = 0
    while width < basis_cap and energy > target:
        b = min(max(width, _FIRST_BLOCK), basis_cap - width)
        S = _sketch.resolve(sketch, b, n, rng=gen, dtype=real_dtype(op.dtype))
        Y = project_out(_sketch_range(op, S), Q)
        for _ in range(q):
            Z = between_products(np.asarray(op.rmatmat(between_products(Y, normalizer))),
                                 normalizer)
            Y = project_out(np.asarray(op.matmat(Z)), Q)
        Qi = _extend_basis(Y, Q)
        Bi = np.asarray(op.rmatmat(Qi)).conj().T
        Q = Qi if Q is None else np.hstack([Q, Qi])
        B = np.vstack([B, Bi])
        energy -= float(np.linalg.norm(Bi.astype(np.complex128 if op.is_complex else np.float64))
                        ** 2)
        width += b
    if Q is None:  # A == 0: rank 0 meets any tol
        return np.zeros((op.shape[0], 0), op.dtype), np.zeros(0), B
    U, s, Vh = _svd_of_qb(Q, B, width)
    # tail[r] = ||A - Q B_r||_F^2 = energy + sum_{i >= r} s_i^2
    tail = max(energy, 0.0) + np.concatenate([np.cumsum((s.astype(np.float64) ** 2)[::-1])[::-1],
                                              [0.0]])
    met = np.nonzero(tail[:min(cap, width) + 1] <= target)[0]
    if met.size == 0:
        r = min(cap, width)
        warnings.warn(f"rsvd: tol={tol} not reached at the maximum rank {cap}; returning rank "
                      f"{r} (relative error ~{np.sqrt(tail[r] / (target / tol ** 2)):.3g})",
                      UserWarning, stacklevel=3)
    else:
        r = max(int(met[0]), 1)
    return U[:, :r], s[:r], Vh[:r]


# -- public drivers --------------------------------------------------------------------------
def rsvd(A, k=None, *, oversample=None, power_iters=None, normalizer="auto", method="power",
         sketch="gaussian", tol=None, max_rank=None, center=False, passes=None, compute=False,
         rng=None):
    """Randomized SVD: the top singular triplets of A, at a fixed rank or a fixed accuracy.

    Parameters
    ----------
    A : ndarray, scipy.sparse matrix, LinearOperator or dask array, shape (m, n)
        Integer input is promoted to float64; float32 and complex64 are kept.
    k : int, optional
        Rank, 1 <= k <= min(m, n). With ``tol`` it caps the rank.
    oversample : int, optional
        Sketch columns beyond k (the block size of the range finder is ``k + oversample``).
        Default: ``max(10, k // 5)`` (see :func:`default_oversample`); with an explicit
        Sketcher, its number of rows minus k.
    power_iters : int, optional
        Power iterations (``method="power"``) or Krylov depth (``"krylov"``). ``None`` uses
        :data:`DEFAULT_POWER_ITERS` (2): within 1% of the optimal spectral error on decaying
        spectra; flat spectra need more, or ``method="krylov"``.
    normalizer : {"auto", "qr", "lu", "cholqr", "none"}
        Normalization between products. "auto": one CholeskyQR pass (shifted when the block is
        ill conditioned) between products, CholeskyQR2 at the end; "qr": Householder QR
        throughout (slow on tall blocks); "lu": pivoted LU between products (as fbpca);
        "cholqr": CholeskyQR2 throughout; "none": no normalization (unstable beyond one or two
        iterations). The final basis is always orthonormal.
    method : {"power", "krylov"}
        Subspace (power) iteration, or block Krylov (Musco & Musco 2015): same passes over A,
        a basis ``power_iters + 1`` times wider, markedly better on flat spectra.
    sketch : str, Sketcher or callable
        Any name of :func:`randla.sketch.available`, a Sketcher of shape
        ``(k + oversample, min(m, n))``, or a factory ``f(d, n, rng=, dtype=)``.
    tol : float, optional
        Fixed-accuracy mode: the smallest rank r found with
        ``||A - U diag(s) Vh||_F <= tol * ||A||_F``, growing the basis block by block
        (randQB_EI). Below ~sqrt(machine epsilon) the criterion cannot be resolved.
    max_rank : int, optional
        Largest rank in fixed-accuracy mode (default ``min(m, n)``); if ``tol`` is not met
        there, a UserWarning says so.
    center : bool
        Decompose ``A - ones(m) @ A.mean(axis=0)`` (PCA) without forming it.
    passes : int, optional
        Reads of A allowed, instead of ``power_iters``. 1: a single pass (fixed rank,
        ``method="power"``, no ``center``): out of core, the range sketch ``A S^T`` and
        ``A^H A S^T`` are formed in the same read of each row panel; in memory,
        :func:`randla.sketchy_svd`. N >= 2 sets ``power_iters`` to N - 1 out of core (N - 2
        when U is returned lazy: evaluating it is the last read; two less with ``center``)
        and to (N - 2) // 2 in memory. Not with ``tol``.
    compute : bool
        Only for a dask array A: False (default) returns U as a dask array, evaluated lazily as
        ``A @ W`` chunk by chunk when the matrix is tall (m >= n) and the method the fixed-rank
        power method, so no m x k block is ever held; True returns numpy arrays. Other inputs
        always give numpy arrays.
    rng : None, int or numpy.random.Generator

    Returns
    -------
    SVDResult
        ``(U, S, Vh)``; the largest-magnitude entry of each column of U is real positive
        (of each row of Vh for a lazy U). float32 input gives float32 output.

    Notes
    -----
    Passes over A: ``2 * power_iters + 2`` for both methods (one sketch, two per iteration,
    one for B = Q^H A); an out-of-core operator with a fused A^H A product needs
    ``power_iters + 1``: its last read gives A X and A^H A X together, and B is solved from
    them. One more read evaluates a lazy U, or is taken when A X is numerically
    rank-deficient. A lazy U is accurate to about ``u cond(A X)`` (u the unit roundoff, X the
    sketch after the power iterations); when that is not small, U is computed in memory
    instead. A wide A is decomposed through A^H so that the small SVD and the Householder-free
    orthonormalizations run on the long side.

    Examples
    --------
    >>> import numpy as np, randla
    >>> A = np.random.default_rng(0).standard_normal((200, 8)) @ np.diag([5., 4, 3, 2, 1, .5, .2, .1]) @ np.eye(8, 50)
    >>> U, S, Vh = randla.rsvd(A, 3, rng=0)
    >>> np.allclose(S, np.linalg.svd(A, compute_uv=False)[:3])
    True
    >>> r = randla.rsvd(A, tol=0.05, rng=0)
    >>> len(r.S)
    6
    """
    dask_input = type(A).__module__.startswith("dask.")
    op = as_operator(A)
    m, n = op.shape
    if k is None and tol is None:
        raise ValueError("give the rank k, the tolerance tol, or both")
    k = None if k is None else _check_rank(k, "k", m, n)
    oversample = _check_oversample(oversample, k, sketch)
    _check_choice(normalizer, "normalizer", NORMALIZERS)
    _check_choice(method, "method", METHODS)
    if not isinstance(compute, (bool, np.bool_)):
        raise TypeError(f"compute must be True or False, got {compute!r}")
    fused_power = getattr(op, "fused_gram", False) and method == "power" and tol is None
    lazy = fused_power and dask_input and not compute and m >= n and not center
    # extra reads: evaluating a lazy U; centering: the column means, and B read on its own
    extra = int(lazy) + (2 if fused_power else 1) * int(center)
    q = _check_passes(passes, power_iters, tol, fused_power, extra)
    if q is None:  # one pass
        if tol is not None or center or method != "power":
            raise ValueError("passes=1 (single pass) needs a fixed rank k, method='power' and "
                             "center=False")
        return _as_requested(_single_pass(op, k, min(k + oversample, min(m, n)), normalizer,
                                          sketch, rng), A, dask_input, compute)
    if center:
        op = CenteredOperator(op)
    explicit_n = isinstance(sketch, _sketch.Sketcher) and sketch.shape[1] == n
    transpose = m < n and not getattr(op, "fused_gram", False) and not explicit_n
    if transpose:
        op = AdjointOperator(op)
    if tol is None:
        ell = min(k + oversample, min(m, n))
        U, s, Vh = _fixed_rank(op, k, ell, q, normalizer, method, sketch, rng, lazy)
    else:
        tol = _check_tol(tol)
        cap = min(m, n) if max_rank is None else _check_rank(max_rank, "max_rank", m, n)
        cap = cap if k is None else min(cap, k)
        if isinstance(sketch, _sketch.Sketcher):
            raise ValueError("with tol, sketch must be a name or a factory: blocks of "
                             "different sizes are drawn")
        basis_cap = min(cap + oversample, min(m, n)) if cap < min(m, n) else cap
        U, s, Vh = _fixed_accuracy(op, tol, cap, basis_cap, q, normalizer, sketch, rng)
    if transpose:
        U, Vh = Vh.conj().T, U.conj().T
    if isinstance(U, np.ndarray):   # else a lazy U, whose signs follow Vh's rows
        U, Vh = _fix_signs(U, Vh)
        U = np.ascontiguousarray(U, dtype=op.dtype)
    return _as_requested(SVDResult(U, s.astype(real_dtype(op.dtype)),
                                   np.ascontiguousarray(Vh, dtype=op.dtype)),
                         A, dask_input, compute)


def _check_passes(passes, power_iters, tol, fused_power, extra):
    """power_iters from ``passes`` (None for a single pass) or from ``power_iters``. The fused
    power method reads A q + 1 times, the others 2 q + 2, plus ``extra`` reads."""
    if passes is None:
        return _check_iters(power_iters)
    passes = check_positive_int(passes, "passes")
    if power_iters is not None:
        raise ValueError("give passes or power_iters, not both")
    if passes == 1:
        return None
    if tol is not None:
        raise ValueError("passes cannot be combined with tol: the number of blocks, hence of "
                         "reads, depends on tol; give power_iters instead")
    q = passes - 1 - extra if fused_power else (passes - 2 - extra) // 2
    if q < 0:
        raise ValueError(f"passes={passes} is too few for this call: it needs at least "
                         f"{(1 if fused_power else 2) + extra}")
    return q


def _single_pass(op, k, ell, normalizer, sketch, rng):
    """One read of A. Row panels (out of core): the range sketch A S^T and A^H (A S^T) in the
    same read (:func:`_qb_from_right`); otherwise the sketches of :func:`sketchy_svd`."""
    if not getattr(op, "fused_gram", False):
        from .streaming import sketchy_svd
        data = op.A if isinstance(op, (DenseOperator, SparseOperator)) else op
        return sketchy_svd(data, k, sketch=sketch, rng=rng)
    S = _sketch.resolve(sketch, ell, op.shape[1], rng=rng, dtype=real_dtype(op.dtype))
    U, s, Vh = _svd_of_qb(*_qb_from_right(op, _power_right(op, S, 0, normalizer), normalizer,
                                          one_pass=True), k)
    U, Vh = _fix_signs(*_complete(U, Vh, k, rng))
    s = np.concatenate([s, np.zeros(k - len(s), s.dtype)])
    return SVDResult(U.astype(op.dtype, copy=False), s.astype(real_dtype(op.dtype)),
                     Vh.astype(op.dtype, copy=False))


def _complete(U, Vh, k, rng):
    """Extend U and Vh^H to k orthonormal columns (a numerically rank-deficient A has fewer
    than k directions to give; the extra singular values are zero)."""
    r = U.shape[1]
    if r == k:
        return U, Vh
    gen = check_random_state(rng)

    def extend(B):
        return np.hstack([B, householder(np.hstack([B, gen.standard_normal((B.shape[0], k - r))
                                                    .astype(B.dtype)]))[:, r:]])
    return extend(U), extend(Vh.conj().T).conj().T


def _as_requested(result, A, dask_input, compute):
    """A dask array A gets U as a dask array (chunked like A's rows) unless compute=True."""
    if not dask_input or compute or not isinstance(result.U, np.ndarray):
        return result
    import dask.array as da
    U = da.from_array(result.U, chunks=(A.chunks[0], -1))
    return SVDResult(U, result.S, result.Vh)


def _check_hermitian(op, rng):
    """One random probe: ||A x - A^H x|| must be at rounding level."""
    m, n = op.shape
    if m != n:
        raise ValueError(f"A must be square (Hermitian), got shape {op.shape}")
    x = check_random_state(rng).standard_normal((n, 1)).astype(op.dtype)
    ax, ahx = np.asarray(op.matmat(x)), np.asarray(op.rmatmat(x))
    scale = np.linalg.norm(ax) + np.linalg.norm(ahx)
    if np.linalg.norm(ax - ahx) > np.sqrt(np.finfo(op.dtype).eps) * scale:
        raise ValueError("A must be Hermitian (symmetric if real): A x != A^H x for a random x")


def reigh(A, k, *, oversample=None, power_iters=None, sketch="gaussian", rng=None):
    """Randomized eigendecomposition of a Hermitian A: the k eigenpairs of largest magnitude,
    by a randomized range finder and Rayleigh-Ritz (Halko, Martinsson, Tropp 2011, Alg. 5.3).

    Parameters
    ----------
    A : ndarray, scipy.sparse matrix, LinearOperator or dask array, shape (n, n)
        Hermitian (symmetric if real); checked with one random probe.
    k : int
        Number of eigenpairs, 1 <= k <= n.
    oversample, power_iters, sketch, rng
        As in :func:`rsvd`; ``2 * power_iters + 2`` products with A in all.

    Returns
    -------
    EighResult
        ``(eigenvalues, eigenvectors)``, eigenvalues ascending as numpy.linalg.eigh returns
        them; the largest-magnitude entry of each eigenvector is real positive.

    See Also
    --------
    randla.nystrom : Nystrom approximation for positive semidefinite A (one pass, more accurate).

    Examples
    --------
    >>> import numpy as np, randla
    >>> Q = np.linalg.qr(np.random.default_rng(0).standard_normal((100, 100)))[0]
    >>> A = (Q * 0.5 ** np.arange(100)) @ Q.T
    >>> w, V = randla.reigh(A, 3, rng=0)
    >>> np.round(w, 6)
    array([0.25, 0.5 , 1.  ])
    """
    op = as_operator(A)
    n = op.shape[1]
    _check_hermitian(op, rng)
    k = _check_rank(k, "k", *op.shape)
    oversample = _check_oversample(oversample, k, sketch)
    q = _check_iters(power_iters)
    ell = min(k + oversample, n)
    S = _sketch.resolve(sketch, ell, n, rng=rng, dtype=real_dtype(op.dtype))
    Y = _sketch_range(op, S)
    for _ in range(2 * q):
        Y = np.asarray(op.matmat(between_products(Y, "auto")))
    Q = cholqr(Y)
    T = Q.conj().T @ np.asarray(op.matmat(Q))
    w, V = np.linalg.eigh((T + T.conj().T) / 2)
    top = np.sort(np.argsort(-np.abs(w), kind="stable")[:k])  # eigh sorts ascending already
    V, _ = _fix_signs(Q @ V[:, top], np.zeros((k, 0)))
    return EighResult(w[top].astype(real_dtype(op.dtype)), np.ascontiguousarray(V, op.dtype))


def estimate_error(A, U, s, Vh, *, n_probes=10, n_iter=4, rng=None):
    """A posteriori error of ``A ~ U diag(s) Vh`` in the spectral norm.

    The bound is Lemma 4.1 of Halko, Martinsson, Tropp (2011): for Gaussian vectors w_i,
    ``||E||_2 <= 10 sqrt(2/pi) max_i ||E w_i||`` with probability at least
    ``1 - 10**-n_probes``, E = A - U diag(s) Vh. The estimate is the top Ritz value of E on a
    block Krylov space grown from the probes (``n_iter`` steps): a lower bound on ||E||_2.

    Parameters
    ----------
    A : ndarray, scipy.sparse matrix, LinearOperator or dask array, shape (m, n)
    U, s, Vh : arrays of shapes (m, r), (r,), (r, n)
        The approximation, e.g. from :func:`rsvd`.
    n_probes : int
        Gaussian probes; the bound fails with probability at most ``10**-n_probes``.
    n_iter : int
        Krylov steps of the estimate (0: the estimate is ``max_i ||E w_i|| / ||w_i||``).
    rng : None, int or numpy.random.Generator

    Returns
    -------
    ErrorEstimate
        ``(bound, probability, estimate)``; costs ``1 + (2 n_iter + 2)`` products with A.

    Examples
    --------
    >>> import numpy as np, randla
    >>> A = np.random.default_rng(0).standard_normal((300, 200)) * 0.9 ** np.arange(200)
    >>> U, s, Vh = randla.rsvd(A, 20, rng=0)
    >>> err = randla.estimate_error(A, U, s, Vh, rng=1)
    >>> true = np.linalg.norm(A - (U * s) @ Vh, 2)
    >>> bool(err.estimate <= true * (1 + 1e-9) <= err.bound), err.probability
    (True, 0.9999999999)
    """
    op = as_operator(A)
    m, n = op.shape
    U, s, Vh = np.asarray(U), np.asarray(s), np.asarray(Vh)
    r = s.shape[0] if s.ndim == 1 else -1
    if U.shape != (m, r) or Vh.shape != (r, n):
        raise ValueError(f"U, s, Vh must have shapes (m, r), (r,), (r, n) with (m, n) = {(m, n)},"
                         f" got {U.shape}, {s.shape}, {Vh.shape}")
    n_probes = check_positive_int(n_probes, "n_probes")
    n_iter = check_positive_int(n_iter, "n_iter", minimum=0)
    gen = check_random_state(rng)
    E = ResidualOperator(op, U.astype(op.dtype, copy=False), s.astype(real_dtype(op.dtype)),
                         Vh.astype(op.dtype, copy=False))
    W = gen.standard_normal((n, n_probes))
    if E.is_complex:  # circular complex probes: P(|z| < t) <= t^2, stronger than the real case
        W = (W + 1j * gen.standard_normal((n, n_probes))) / np.sqrt(2)
    EW = np.asarray(E.matmat(W.astype(E.dtype)))
    norms = np.linalg.norm(EW.astype(np.result_type(EW.dtype, np.float64)), axis=0)
    bound = 10 * np.sqrt(2 / np.pi) * float(norms.max())
    estimate = float((norms / np.linalg.norm(W, axis=0)).max())
    if n_iter > 0 and min(m, n) > 1:
        ritz = rsvd(E, 1, oversample=min(n_probes, min(m, n)) - 1, power_iters=n_iter,
                    method="krylov", rng=gen).S[0]
        estimate = max(estimate, float(ritz))
    return ErrorEstimate(bound, 1 - 10.0 ** -n_probes, estimate)
