"""Randomized SVD, the third layer: range finder -> QB -> SVD of the small B
(Halko, Martinsson & Tropp 2011), at a fixed rank or a fixed accuracy.

Every product with A goes through an :class:`~randla.operators.Operator`, so dense, sparse,
matrix-free and out-of-core input share one code path. The path is chosen once, by
:func:`plan_rsvd`, from the operator's capabilities and the arguments.
"""
from __future__ import annotations

import functools
import math
import warnings
from typing import NamedTuple

import numpy as np
import scipy.linalg as sla

from .. import sketch as _sketch
from .._linalg import (
    NORMALIZERS,
    final_basis,
    fix_signs,
    fix_signs_by_rows,
    householder,
    qr_factor,
    small_svd,
)
from .._validation import (
    check_choice,
    check_positive_int,
    check_random_state,
    check_rank,
    check_unit_interval,
    real_dtype,
)
from ..exceptions import AccuracyWarning
from ..operators import (
    AdjointOperator,
    CenteredOperator,
    DenseOperator,
    Operator,
    as_operator,
    check_values,
)
from ._params import RSVD_METHODS, check_iters, check_oversample
from .adaptive import (
    DEFAULT_POWER_TOL,
    MAX_ADAPTIVE_ITERS,
    RSVDInfo,
    adaptive_power_right,
    adaptive_qb_svd,
    mixed_power_right,
)
from .qb import krylov_depth, qb_from_right, qb_of, qb_to_tolerance, unscale, well_conditioned
from .range_finder import power_right, sketch_range
from .results import SVDResult
from .sketchy import sketchy_svd


class RSVDPlan(NamedTuple):
    """How :func:`rsvd` computes, decided before any product with A.

    ``path`` is one of "single_pass" (one read of A), "fused_power" (power iterations by
    A^H A products that read A once each: chunked double-precision data), "fixed_rank"
    (power or Krylov iterations, one product at a time) and "fixed_accuracy" (randQB_EI).
    ``transpose``: A^H is decomposed (a wide A, so the orthonormalizations run on the long
    side; for a sketch that prefers the long side, :attr:`~randla.sketch.Sketcher.long_side`,
    a tall A, so that the sketch's input is A's larger dimension). ``lazy_u``: U is returned
    unevaluated as A @ W. ``reads``: passes over A (None where the tolerance decides; an
    upper bound when ``adaptive``). ``adaptive``: the power iterations stop by accuracy
    (``power_tol``), ``power_iters`` being then their maximum.
    """

    path: str
    power_iters: int
    center: bool
    transpose: bool
    lazy_u: bool
    reads: int | None
    adaptive: bool = False


def plan_rsvd(op: Operator, *, tol=None, method="power", center=False, passes=None,
              power_iters=None, sketch="gaussian", lazy_ok=False) -> RSVDPlan:
    """The path :func:`rsvd` takes for the operator ``op`` and these arguments (checked).

    ``lazy_ok``: the caller accepts an unevaluated U (dask input without ``compute``).
    ``power_iters=None`` with neither ``passes`` nor ``tol`` and ``method="power"`` plans the
    adaptive iterations: at most :data:`~randla.lowrank.adaptive.MAX_ADAPTIVE_ITERS`, and
    ``reads`` is then an upper bound.
    """
    m, n = op.shape
    long_side = _sketch.prefers_long_side(sketch)   # an optical sketch: along max(m, n)
    fused = (op.fused_gram and method in ("auto", "power") and tol is None
             and not (long_side and m > n))
    lazy = fused and lazy_ok and op.lazy_products and m >= n and not center
    # extra reads: evaluating a lazy U; centering: the column means, and B read on its own
    extra = int(lazy) + (2 if fused else 1) * int(center)
    adaptive = (power_iters is None and passes is None and tol is None
                and method in ("auto", "power"))
    q = MAX_ADAPTIVE_ITERS if adaptive else _iters_from_passes(passes, power_iters, tol, fused,
                                                               extra)
    if q is None:
        if tol is not None or center or method == "krylov":
            raise ValueError("passes=1 (single pass) needs a fixed rank k, method='power' and "
                             "center=False")
        return RSVDPlan("single_pass", 0, False, False, False, 1)
    explicit_n = isinstance(sketch, _sketch.Sketcher) and sketch.shape[1] == n
    if long_side:
        transpose = m > n and not explicit_n
    else:
        transpose = m < n and not op.fused_gram and not explicit_n
    if tol is not None:
        return RSVDPlan("fixed_accuracy", q, center, transpose, False, None)
    reads = (q + 1 if fused else 2 * q + 2) + extra
    return RSVDPlan("fused_power" if fused else "fixed_rank", q, center, transpose, lazy, reads,
                    adaptive)


def _iters_from_passes(passes, power_iters, tol, fused, extra):
    """power_iters from ``passes`` (None for a single pass) or from ``power_iters``. The fused
    power method reads A q + 1 times, the others 2 q + 2, plus ``extra`` reads."""
    if passes is None:
        return check_iters(power_iters)
    passes = check_positive_int(passes, "passes")
    if power_iters is not None:
        raise ValueError("give passes or power_iters, not both")
    if passes == 1:
        return None
    if tol is not None:
        raise ValueError("passes cannot be combined with tol: the number of blocks, hence of "
                         "reads, depends on tol; give power_iters instead")
    q = passes - 1 - extra if fused else (passes - 2 - extra) // 2
    if q < 0:
        raise ValueError(f"passes={passes} is too few for this call: it needs at least "
                         f"{(1 if fused else 2) + extra}")
    return q


def rsvd(A, k=None, *, oversample=None, power_iters=None, power_tol=None, sv_tol=None,
         normalizer="auto", method="auto", sketch="gaussian", tol=None, max_rank=None,
         center=False, passes=None, mixed_precision="auto", compute=False, rng=None):
    """Randomized SVD: the top singular triplets of A, at a fixed rank or a fixed accuracy.

    Parameters
    ----------
    A : ndarray, scipy.sparse matrix, LinearOperator or dask array, shape (m, n)
        Integer input is promoted to float64; float32 and complex64 are kept.
    k : int, optional
        Rank, 1 <= k <= min(m, n). With ``tol`` it caps the rank.
    oversample : int, optional
        Sketch columns beyond k (the block size of the range finder is ``k + oversample``).
        Default: ``max(10, k // 5)`` (see :func:`randla.lowrank.default_oversample`); with an explicit
        Sketcher, its number of rows minus k.
    power_iters : int, optional
        A fixed number of power iterations (``method="power"`` or ``"auto"``) or the Krylov
        depth (``"krylov"``). ``None`` (default): with ``method="auto"`` or ``"power"`` (and
        neither ``passes`` nor ``tol``), accuracy-controlled iterations with dynamic shifts
        stop when the estimated singular values settle (see ``power_tol``; at most
        :data:`~randla.lowrank.adaptive.MAX_ADAPTIVE_ITERS` iterations); the count used is in
        ``result.info``. Otherwise :data:`randla.lowrank.DEFAULT_POWER_ITERS` (2).
    power_tol : float, optional
        Accuracy requested of the adaptive iterations: a spectral error within
        ``(1 + power_tol) * sigma_(k+1) + c u sigma_1`` (u the unit roundoff of A's
        precision, c = :data:`~randla.lowrank.adaptive.NOISE_FLOOR` = 100: below that,
        rounding hides any further change). They stop when the estimated excess is below it:
        the largest change of the estimated sigma_1..sigma_k in the last product with A
        (dashSVD's per-vector error), scaled by how fast the iteration converges
        (:func:`randla.lowrank.adaptive.estimate`). Default
        :data:`~randla.lowrank.adaptive.DEFAULT_POWER_TOL` (0.01); smaller is more accurate
        and slower. Only with ``power_iters=None``. A loop that ends without meeting it
        warns (:class:`randla.AccuracyWarning`).
    sv_tol : float, optional
        Relative accuracy asked of the singular values as well (adaptive iterations only):
        the loop goes on until every estimated s_i, i <= k, is within ``sv_tol * s_i`` (or
        ``c u sigma_1 / sv_tol`` for values below that). Without it, the default's singular
        values satisfy ``0 <= sigma_i - s_i <= E**2 / (2 s_i)``, E the spectral error bound
        above: tight for the leading ones, loose near sigma_k on flat spectra.
    normalizer : {"auto", "qr", "lu", "cholqr", "none"}
        Normalization between products. "auto": one CholeskyQR pass (shifted when the block is
        ill conditioned) between products, CholeskyQR2 at the end; "qr": Householder QR
        throughout (slow on tall blocks); "lu": pivoted LU between products (as fbpca);
        "cholqr": CholeskyQR2 throughout; "none": no normalization (unstable beyond one or two
        iterations). The final basis is always orthonormal. The adaptive iterations
        (``power_iters=None``) need orthonormal bases after every product: they use
        Householder QR for "qr" and CholeskyQR (with its fallbacks) otherwise.
    method : {"auto", "power", "krylov"}
        "auto" (default): the adaptive power iteration, which turns to block Krylov when the
        first products show a flat spectrum (predicted convergence ratio above
        :data:`~randla.lowrank.adaptive.KRYLOV_RATE` per product); with ``power_iters``,
        the power method. "power": subspace iteration only. "krylov": block Krylov (Musco &
        Musco 2015) of depth ``power_iters``: same passes over A, a basis
        ``power_iters + 1`` times wider, markedly better on flat spectra.
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
    mixed_precision : {"auto", True, False}
        Adaptive iterations on float64 (complex128) input: run the early products in float32
        (complex64), the last ones in the input precision. Safe by construction: the loop
        only stops on a full-precision result close to the one before it, float32 is left as
        soon as its rounding, u32 sigma_1 / sigma_(k+1) (squared for the fused reads out of
        core), is not far below ``power_tol``, and a float32 result out of float32's range
        is redone in full precision. In memory the products use a float32 copy of A (half
        of A's memory: pass False where that matters); out of core each row panel is rounded
        as it is read. "auto" (default): on dense A in memory (sparse products do not get
        faster in float32) and on row panels out of core; True: also on sparse A, and for a
        fixed ``power_iters`` out of core, where a float32 read found too coarse afterwards
        is made up by one more full-precision read; a ValueError where it cannot apply.
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
        ``result.info`` (an attribute, not a tuple field) is a
        :class:`~randla.lowrank.RSVDInfo`: power iterations and passes used, whether the
        adaptive iterations converged, and the method they ended with. When
        ``k + oversample >= min(m, n)`` the sketch would span all of A: A itself is taken in
        one product and decomposed by LAPACK (exact to A's precision).

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
    >>> randla.rsvd(A, 3, rng=0).info.converged
    True
    """
    dask_input = type(A).__module__.startswith("dask.")
    op = as_operator(A, check_finite_values=False)   # checked below, or by the first product
    m, n = op.shape
    if k is None and tol is None:
        raise ValueError("give the rank k, the tolerance tol, or both")
    k = None if k is None else check_rank(k, "k", m, n)
    oversample = check_oversample(oversample, k, sketch)
    check_choice(normalizer, "normalizer", NORMALIZERS)
    check_choice(method, "method", RSVD_METHODS)
    if not isinstance(compute, (bool, np.bool_)):
        raise TypeError(f"compute must be True or False, got {compute!r}")
    plan = plan_rsvd(op, tol=tol, method=method, center=center, passes=passes,
                     power_iters=power_iters, sketch=sketch, lazy_ok=dask_input and not compute)
    power_tol = _check_tol(power_tol, "power_tol", plan) or DEFAULT_POWER_TOL
    sv_tol = _check_tol(sv_tol, "sv_tol", plan)
    # the default path (dense A, adaptive) finds a NaN or Inf of A in its first product: the
    # separate check would be a read of A (40 ms of 0.66 s on 20000 x 5000 float64)
    deferred = plan.adaptive and plan.path == "fixed_rank" and type(op) is DenseOperator
    values_check = functools.partial(check_values, op)
    if not deferred:
        values_check()
    mixed_precision = _check_mixed(mixed_precision)
    op32, single_scale = _low_precision(op, plan, mixed_precision)
    single = _single_reads(op, plan, mixed_precision, passes)
    if plan.path == "single_pass":
        result = _single_pass(op, k, min(k + oversample, min(m, n)), normalizer, sketch, rng)
        return _as_requested(SVDResult(*result, info=RSVDInfo(0, 1)), A, dask_input, compute)
    op, op32 = (_wrap(o, plan) for o in (op, op32))
    q = plan.power_iters
    info = RSVDInfo(q, plan.reads)
    ell = None if k is None else min(k + oversample, min(m, n))
    if ell == min(m, n) and plan.path in ("fixed_rank", "fused_power"):
        # the sketch spans all of A's range: A itself, in one product, and LAPACK's SVD
        U, s, Vh = _whole(op, k)
        # (centered: the column means are one more product or read)
        info = RSVDInfo(0, 1 + int(plan.center), converged=True if plan.adaptive else None)
    elif plan.path == "fixed_accuracy":
        tol = check_unit_interval(tol, "tol")
        cap = min(m, n) if max_rank is None else check_rank(max_rank, "max_rank", m, n)
        cap = cap if k is None else min(cap, k)
        if isinstance(sketch, _sketch.Sketcher):
            raise ValueError("with tol, sketch must be a name or a factory: blocks of "
                             "different sizes are drawn")
        basis_cap = min(cap + oversample, min(m, n)) if cap < min(m, n) else cap
        U, s, Vh = _fixed_accuracy(op, tol, cap, basis_cap, q, normalizer, sketch, rng)
        info = RSVDInfo(q, None)
    else:
        S = _sketch.resolve(sketch, ell, op.shape[1], rng=rng, dtype=real_dtype(op.dtype))
        if plan.path == "fused_power":
            U, s, Vh, info = _fused_fixed_rank(op, k, S, q, normalizer, plan.lazy_u,
                                               power_tol if plan.adaptive else None, single,
                                               sv_tol)
        elif plan.adaptive:
            U, s, Vh, info = adaptive_qb_svd(op, S, k, power_tol, q, normalizer, sketch_range,
                                             op32, values_check if deferred else None, sv_tol,
                                             krylov="auto" if method == "auto" else False,
                                             single_scale=single_scale)
            # centered: the column means were one more product
            info = info._replace(passes=info.passes + int(plan.center))
        elif method == "krylov":
            depth = krylov_depth(q, ell, min(m, n))     # the basis stays within the matrix
            U, s, Vh = svd_of_qb(*qb_of(op, S, depth, normalizer, method), k)
            info = RSVDInfo(depth, plan.reads - 2 * (q - depth), method="krylov")
        else:
            U, s, Vh = svd_of_qb(*qb_of(op, S, q, normalizer, "power"), k)
        if plan.adaptive and not info.converged:
            _warn_unconverged(info, power_tol, sv_tol)
    if plan.transpose:
        U, Vh = Vh.conj().T, U.conj().T
    if isinstance(U, np.ndarray):   # else a lazy U, whose signs follow Vh's rows
        U, Vh = fix_signs(U, Vh)
        U = np.ascontiguousarray(U, dtype=op.dtype)
    return _as_requested(SVDResult(U, s.astype(real_dtype(op.dtype)),
                                   np.ascontiguousarray(Vh, dtype=op.dtype), info=info),
                         A, dask_input, compute)


def _check_tol(value, name, plan):
    """power_tol or sv_tol: None, or a positive real number, for the adaptive iterations."""
    if value is None:
        return None
    if not plan.adaptive:
        raise ValueError(f"{name} applies to the adaptive iterations: give it without "
                         "power_iters, passes or tol, and with method='auto' or 'power'")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a positive real number, got {value!r}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive real number, got {value!r}")
    return float(value)


def _warn_unconverged(info, power_tol, sv_tol):
    asked = f"power_tol={power_tol:g}" + ("" if sv_tol is None else f", sv_tol={sv_tol:g}")
    warnings.warn(f"rsvd: the adaptive iterations did not reach {asked} in {info.passes} "
                  f"passes over A (estimated excess {info.change:.3g} sigma_(k+1)); the result "
                  "may be less accurate than asked", AccuracyWarning, stacklevel=3)


def _whole(op, k):
    """Top-k SVD of A (m >= n) from A itself: one product with the identity, then LAPACK."""
    n = op.shape[1]
    with np.errstate(all="ignore"):   # a NaN or Inf of A shows in the result
        A = np.asarray(op.matmat(np.eye(n, dtype=op.dtype)))
    if not np.all(np.isfinite(A)):
        raise ValueError("A contains NaN or Inf")
    Q, R = qr_factor(A) if A.shape[0] > A.shape[1] else (None, A)
    Ub, s, Vh = small_svd(R)
    U = Ub if Q is None else Q @ Ub
    return U[:, :k], s[:k], Vh[:k]

def _check_mixed(mixed_precision):
    if not (isinstance(mixed_precision, (bool, np.bool_)) or mixed_precision == "auto"):
        raise TypeError(f"mixed_precision must be 'auto', True or False, got {mixed_precision!r}")
    return mixed_precision


def _low_precision(op, plan, mixed_precision):
    """A float32 (complex64) copy of a float64 (complex128) dense or sparse A, times a power
    of two that brings A into float32's range, for the early products of mixed precision,
    and that factor; (None, 1.0) when not asked for, when A is single already, or out of
    core (whose reads round panel by panel: :func:`_single_reads`)."""
    if not mixed_precision or plan.path == "fused_power":
        return None, 1.0
    if not plan.adaptive or plan.path != "fixed_rank" or op.kind not in ("dense", "sparse"):
        if mixed_precision == "auto":
            return None, 1.0
        raise ValueError("mixed_precision=True applies to a float64 or complex128 A: in "
                         "memory (dense or sparse) with the adaptive iterations "
                         "(power_iters=None, method='auto' or 'power', no passes or tol), out "
                         "of core (row panels) with power_iters too")
    if op.dtype.itemsize <= (8 if op.is_complex else 4):
        return None, 1.0
    if mixed_precision == "auto" and op.kind != "dense":
        # sparse products are bound by reading the indices, which float32 does not shrink:
        # on a 20000 x 5000 sparse matrix (density 1e-3, k = 20) mixed took 1.06 s, not 0.62 s
        return None, 1.0
    single = np.complex64 if op.is_complex else np.float32
    scale = _single_scale(op.A)
    with np.errstate(over="ignore", under="ignore"):   # out of range: products say so
        if scale == 1:
            A32 = op.A.astype(single)
        elif op.kind == "sparse":
            A32 = (op.A * scale).astype(single)
        else:   # one pass, no float64 temporary
            A32 = np.empty(op.A.shape, single)
            np.multiply(op.A, scale, out=A32, casting="same_kind")
    return as_operator(A32, check_finite_values=False), scale


def _single_scale(A) -> float:
    """A power of two that brings the entries of A near 1, judged from a few of its rows (a
    guess: a product still out of float32's range is redone in float64), or 1 when they are
    well within float32's range already."""
    step = max(1, A.shape[0] // 64)
    rows = A[::step]
    vals = np.abs(rows.data if hasattr(rows, "data") and not isinstance(rows, np.ndarray) else rows)
    amax = float(np.max(vals)) if vals.size else 0.0
    if not np.isfinite(amax) or amax == 0 or 2.0 ** -40 <= amax <= 2.0 ** 40:
        return 1.0
    return 2.0 ** -math.frexp(amax)[1]


def _single_reads(op, plan, mixed_precision, passes):
    """Whether the fused reads of an out-of-core A run on single-precision panels: with
    "auto" in the adaptive iterations, with True also for a fixed count (not for a budget of
    ``passes``: a read found too coarse is made up by one more)."""
    if not mixed_precision or plan.path != "fused_power":
        return False
    if plan.center or not getattr(op, "single_gram", False) or passes is not None:
        if mixed_precision == "auto":
            return False
        raise ValueError("mixed_precision=True out of core needs an uncentered float64 or "
                         "complex128 A read in row panels, and power_iters rather than passes")
    return plan.adaptive or mixed_precision is True or mixed_precision is np.True_


def _wrap(op, plan):
    """The operator rsvd decomposes: centered, then transposed, as the plan says."""
    if op is None:
        return None
    op = CenteredOperator(op) if plan.center else op
    return AdjointOperator(op) if plan.transpose else op


# -- the small SVD -----------------------------------------------------------------------------
def svd_of_b(B, k):
    """Top-k SVD of the l x n B. A wide B is first reduced by CholeskyQR of B^H = P R, so
    LAPACK's SVD runs on the l x l R^H instead of a Householder bidiagonalization of B."""
    if not np.all(np.isfinite(B)):
        raise ValueError("A produced NaN or Inf in products (check the LinearOperator)")
    ell, n = B.shape
    if n > 2 * ell:
        P, R = qr_factor(np.ascontiguousarray(B.conj().T))
        Ub, s, Wh = small_svd(R.conj().T)
        Vh = Wh[:k] @ P.conj().T
    else:
        Ub, s, Vh = small_svd(B)
        Vh = Vh[:k]
    return Ub[:, :k], s[:k], Vh


def svd_of_qb(Q, B, k):
    """Top-k SVD of Q B."""
    Ub, s, Vh = svd_of_b(B, k)
    return Q @ Ub, s, Vh


# -- paths -------------------------------------------------------------------------------------
def _fused_fixed_rank(op, k, S, q, normalizer, lazy, power_tol=None, single=False, sv_tol=None):
    """Top-k SVD of an A whose A^H A X reads A once: q reads for the power iterations, one for
    B (see :func:`~randla.lowrank.qb.qb_from_right`). With ``lazy``, that last read gives the
    triangular factor R of A X (TSQR over row panels) instead of A X itself, and
    U = Q Ub = A (X R^-1 Ub) is returned unevaluated, so no m x l block is ever held (its
    signs: the largest entry of each row of Vh is real positive); when R is ill-conditioned,
    U is computed in memory instead. ``power_tol``: accuracy-controlled iterations (at most
    q) to that tolerance, instead of q iterations. ``single``: reads on
    single-precision panels while that is safe (see :mod:`randla.lowrank.adaptive`).
    Returns U, s, Vh and an :class:`RSVDInfo`."""
    ell = S.shape[0]
    counter = op.A if isinstance(op, CenteredOperator) else op
    start = getattr(counter, "passes", None)
    if power_tol is not None:
        X, reads, loop = adaptive_power_right(op, S, k, power_tol, q, normalizer, single,
                                              sv_tol)
        info = RSVDInfo(reads.products, 0, loop.converged(False), loop.change(), loop.shift(),
                        reads.float32_reads)
    elif single:
        X, reads = mixed_power_right(op, S, k, q, normalizer)
        info = RSVDInfo(reads.products, 0, float32_passes=reads.float32_reads)
    else:
        X = power_right(op, S, q, normalizer)
        info = RSVDInfo(q, 0)
    U, s, Vh = _fused_svd(op, k, X, normalizer, lazy, ell)
    # the reads made (one more for B when A X is ill-conditioned, or centered), the column
    # means' read (made before) and the one that will evaluate a U still lazy
    centered = isinstance(op, CenteredOperator)
    reads = (counter.passes - start + int(centered) if start is not None
             else info.power_iters + 1 + 2 * int(centered))
    return U, s, Vh, info._replace(passes=reads + int(not isinstance(U, np.ndarray)))


def _fused_svd(op, k, X, normalizer, lazy, ell):
    """The last read of the fused path: U, s, Vh from X (see _fused_fixed_rank)."""
    if lazy:
        (C, e), R = op.gram_qr(X)          # C 2^-e = A^H A X
        if R.shape[0] == ell and well_conditioned(R):
            B = unscale(sla.solve_triangular(R, C.conj().T, trans="C", check_finite=False), e)
            Ub, s, Vh = svd_of_b(B, k)
            W, Vh = fix_signs_by_rows(X @ sla.solve_triangular(R, Ub, check_finite=False), Vh)
            return op.lazy_matmat(W), s, Vh
        # ill-conditioned (a numerically rank-deficient A X): U in memory, two more reads
        Q = final_basis(np.asarray(op.matmat(X)), normalizer)
        return svd_of_qb(Q, np.asarray(op.rmatmat(Q)).conj().T, k)
    return svd_of_qb(*qb_from_right(op, X, normalizer), k)


def _fixed_accuracy(op, tol, cap, basis_cap, q, normalizer, sketch, rng):
    """The smallest rank r <= cap with ||A - Q B_r||_F <= tol ||A||_F (B_r: B's truncated
    SVD) from randQB_EI's Q and B. The basis may grow past cap, up to basis_cap, so that a
    capped result is accurate."""
    Q, B, energy, total = qb_to_tolerance(op, tol, basis_cap, q, normalizer, sketch, rng)
    if Q is None:  # A == 0: rank 0 meets any tol
        return np.zeros((op.shape[0], 0), op.dtype), np.zeros(0), B
    width = Q.shape[1]
    U, s, Vh = svd_of_qb(Q, B, width)
    # tail[r] = ||A - Q B_r||_F^2 / ||A||_F^2 = energy + sum_{i >= r} (s_i / ||A||_F)^2
    rel = s.astype(np.float64) / total
    tail = max(energy, 0.0) + np.concatenate([np.cumsum((rel ** 2)[::-1])[::-1], [0.0]])
    met = np.nonzero(tail[:min(cap, width) + 1] <= tol ** 2)[0]
    if met.size == 0:
        r = min(cap, width)
        why = (f"the maximum rank {cap}" if r == cap else
               f"rank {r}: below ~sqrt(machine epsilon) the {real_dtype(op.dtype)} data cannot carry it")
        warnings.warn(f"rsvd: tol={tol} not reached at {why}; returning rank {r} (relative "
                      f"error ~{np.sqrt(tail[r]):.3g})", AccuracyWarning, stacklevel=3)
    else:
        r = max(int(met[0]), 1)
    return U[:, :r], s[:r], Vh[:r]


def _single_pass(op, k, ell, normalizer, sketch, rng):
    """One read of A. Row panels (out of core): the range sketch A S^T and A^H (A S^T) in the
    same read (:func:`~randla.lowrank.qb.qb_from_right`); otherwise the sketches of
    :func:`sketchy_svd`."""
    if not op.fused_gram:
        return sketchy_svd(op.A if op.kind in ("dense", "sparse") else op, k, sketch=sketch,
                           rng=rng)
    S = _sketch.resolve(sketch, ell, op.shape[1], rng=rng, dtype=real_dtype(op.dtype))
    U, s, Vh = svd_of_qb(*qb_from_right(op, power_right(op, S, 0, normalizer), normalizer,
                                        one_pass=True), k)
    U, Vh = fix_signs(*_complete(U, Vh, k, rng))
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
    return SVDResult(U, result.S, result.Vh, info=result.info)
