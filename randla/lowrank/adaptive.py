"""Accuracy-controlled power iterations with dynamic shifts (the default of :func:`randla.rsvd`).

Subspace iteration alternates products with A^H and A. After any product after the first, the
current bases already give an rSVD candidate at no extra pass: after ``Z = A^H Q`` (Q
orthonormal) it is ``Q (Q^H A)``, after ``W = A P`` (P orthonormal) it is ``(A P) P^H``. Their
singular values (Ritz values) grow monotonically with the products. As in dashSVD (Feng, Yu,
Xie & Tang, ACM TOMS 2024, Algorithm 1043) the loop watches c, the largest change of
sigma_1..sigma_k since the previous product relative to sigma_(k+1) (the per-vector error),
checked every product instead of every iteration so that a fast decaying spectrum can stop
after one iteration (4 passes). What the user asks for, though, is a spectral error within
``tol`` of sigma_(k+1), and how that error relates to c depends on the convergence ratio r of
the iteration: measured on 12 spectra (6000 x 1500, k = 100), the excess
e = ||A - U S V^H||_2 / sigma_(k+1) - 1 was 0.003-0.3 c at r ~ 0.4, up to 0.7 c at r ~ 0.5,
0.1-1 c at r ~ 0.6 and 3-5 c at r ~ 0.77. The loop stops when :func:`estimate`, c times
a factor of r that stays above those measurements, is below tol.

Working precision: a change below NOISE_FLOOR u sigma_1 is rounding, and so is an estimate
below that floor. Such estimates neither count in the change nor set the shift, and the
excess is judged against max(tol sigma_(k+1), NOISE_FLOOR u sigma_1), so that an exactly
low-rank A stops after 3-4 products. Everything is kept relative to the first candidate's
sigma_1 (a power of two), so that no square of a singular value of A * 1e-170 underflows.

Flat spectra: when the first candidate predicts a shifted ratio above KRYLOV_RATE per product,
the default continues with block Krylov (:mod:`randla.lowrank.krylov`).

Dynamic shifts (dashSVD): the iteration applies ``A A^H - alpha I`` with alpha half the
smallest squared Ritz value found so far. Since alpha <= sigma_l^2 / 2, the unwanted
eigenvalues of ``A A^H - alpha I`` lie in [-alpha, sigma_(l+1)^2 - alpha] and the wanted ones
above sigma_k^2 - alpha, so the convergence ratio sigma_(l+1)^2 / sigma_k^2 drops to
(sigma_(l+1)^2 - alpha) / (sigma_k^2 - alpha): the gain is large on slowly decaying spectra.

Mixed precision (optional): the products of early iterations run on a float32 copy of a float64
A. The loop only stops on a float64 candidate compared with the one before it, so float32
rounding can cost iterations but not accuracy; float32 is left as soon as its rounding
(u32 sigma_1 / sigma_(k+1)) is not far below tol, or once its candidates agree to tol. Out of
core the same holds for the fused reads A^H A X, whose rounding is relative to sigma_1^2: each
row panel is rounded to float32 as it is read (:func:`adaptive_power_right`,
:func:`mixed_power_right`).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import scipy.linalg as sla

from .._linalg import (
    between_products,
    final_basis,
    householder,
    one_thread_lapack,
    qr_factor,
    small_svd,
)
from .krylov import check_products as _check_finite
from .krylov import krylov_svd, unit_roundoff
from .range_finder import sketch_columns

#: Tolerance of the adaptive iterations (``power_tol=None``): the spectral error aimed at is
#: (1 + tol) sigma_(k+1), as estimated by :func:`estimate`.
DEFAULT_POWER_TOL = 0.01
#: Largest number of power iterations of the adaptive loop: 2 * 10 + 2 products at most in
#: memory, 10 + 1 reads out of core.
MAX_ADAPTIVE_ITERS = 10
#: Rounding floor: a change of the estimated singular values below NOISE_FLOOR u sigma_1 (u
#: the unit roundoff of the product that gave them) is rounding, not convergence (measured:
#: 2-20 u sigma_1 between products on matrices of exact rank, float32 and float64, up to
#: 20000 x 2000). The adaptive loop's contract is a spectral error of at most
#: (1 + tol) sigma_(k+1) + NOISE_FLOOR u sigma_1.
NOISE_FLOOR = 100.0
#: float32 is used only while its rounding, u32 * sigma_1 / sigma_(k+1), is below tol / this.
_F32_MARGIN = 100.0
#: Convergence ratio per product assumed at most (no oversampling: unknown).
_MAX_RATE = 0.95
#: estimate()'s factor on c is at least 1 / this: single changes are a noisy guide (e^(-i/40), k = 100, r ~ 0.42:
#: changes of 0.04-0.05 sigma_(k+1) came with excesses from 0.001 to 0.015 over three draws).
_EARLY_CHANGE = 2.0
#: The adaptive default ("auto") turns to block Krylov when the shifted power iteration would
#: converge by less than this per product (predicted after the first products).
KRYLOV_RATE = 0.8


class RSVDInfo(NamedTuple):
    """How the iterations of one :func:`randla.rsvd` call went (``result.info``).

    ``power_iters``: power iterations made, in halves (one product with A or A^H each; the
    fused out-of-core path counts whole iterations; for block Krylov, the Krylov depth);
    ``passes``: products with A, or reads of A out of core; ``converged``: the adaptive loop
    met ``power_tol`` (and ``sv_tol``) (None for a fixed count); ``change``: the last estimate
    of the spectral error's excess over sigma_(k+1), relative to max(sigma_(k+1),
    NOISE_FLOOR u sigma_1) (:func:`estimate`; NaN when not measured); ``shift``: the last
    dynamic shift alpha (in units of sigma^2); ``float32_passes``: products (reads, out of
    core) made in float32 (mixed precision); ``method``: "power" or "krylov", the iteration
    the adaptive loop used.
    """

    power_iters: float
    passes: int
    converged: bool | None = None
    change: float = float("nan")
    shift: float = 0.0
    float32_passes: int = 0
    method: str = "power"


def wanted(t, k, floor) -> int:
    """How many of the k leading estimates t (sorted, t[0] the largest) are above the rounding
    floor: below it their accuracy cannot matter to the error (at least 1)."""
    return max(1, int(np.count_nonzero(t[:k] > floor)))


def rate(t, k, alpha) -> float:
    """The factor by which the changes shrink per product: r, with r^2
    = max(t_l^2 - alpha, alpha) / (t_k^2 - alpha) the convergence ratio of the shifted
    iteration, from the current estimates t (any common scale; at most _MAX_RATE). Without an
    estimate beyond the k-th (no oversampling) it is unknown: _MAX_RATE."""
    tk = float(t[k - 1])
    if len(t) <= k or tk <= 0:
        return _MAX_RATE
    a = alpha / tk / tk                  # ratios: no square of t under- or overflows
    top = 1.0 - a
    tail = max((float(t[-1]) / tk) ** 2 - a, a)
    return min(np.sqrt(tail / top), _MAX_RATE) if top > 0 else _MAX_RATE


def extrapolation(r) -> float:
    """g(x) = max(min(x^3, max(1, x)), 1/2), x = r / (1 - r): the factor from the last change
    to the error still to come. For slowly converging iterations (x >= 1) g is x, the sum of
    the changes still to come; for fast ones (r < 1/2) the error is below the change (module
    docstring) and g is 1/2."""
    x = r / (1 - r)
    return max(min(x ** 3, max(1.0, x)), 1 / _EARLY_CHANGE)


class Estimate(NamedTuple):
    """What one candidate's estimates t (relative to a fixed scale) say of convergence."""

    excess: float     # the estimated spectral error's excess, in t's units
    reference: float  # max(t_(k+1), floor): the excess is judged against tol times this
    floor: float      # NOISE_FLOOR u t_1
    sv_excess: float  # max_i (estimated error of t_i) / max(t_i, floor / sv_tol), i <= k


def estimate(prev, t, k, alpha, u, sv_tol=None, r=None) -> Estimate:
    """The estimated excess of the candidate's spectral error over sigma_(k+1): the largest
    change of t_1..t_k since ``prev`` times :func:`extrapolation` of the convergence ratio r
    (:func:`rate` unless given). Only the estimates above the rounding floor count, and the
    ratio is that of the last of them. Scale-free: t may be in any common unit."""
    floor = NOISE_FLOOR * u * float(t[0])
    ref = max(float(t[k]) if len(t) > k else 0.0, floor)
    if prev is None:
        return Estimate(np.inf, ref, floor, np.inf)
    kw = wanted(t, k, floor)
    d = np.abs(t[:kw] - prev[:kw])
    g = extrapolation(rate(t, kw, alpha) if r is None else r)
    sv = (np.inf if sv_tol is None or not np.isfinite(d).all() else
          float(np.max(d * g / np.maximum(t[:kw], floor / sv_tol))))
    return Estimate(float(np.max(d)) * g, ref, floor, sv)


def met(est: Estimate, tol, sv_tol=None) -> bool:
    """The excess within tol sigma_(k+1) or within the rounding floor; the singular values
    within sv_tol (relative) when asked for."""
    ok = est.excess <= max(tol * est.reference, est.floor)
    return ok and (sv_tol is None or est.sv_excess <= sv_tol)


def _factor(Z, normalizer):
    """Z = P R with P orthonormal (Householder for "qr", else CholeskyQR2 with fallbacks)."""
    if normalizer == "qr":
        return tuple(sla.qr(Z, mode="economic", check_finite=False))
    return qr_factor(Z)


def _svdvals(R):
    if not R.size:
        return np.zeros(0)
    with one_thread_lapack(min(R.shape)):
        return sla.svdvals(R, check_finite=False)


class _Products:
    """Products with A, on a float32 copy while ``low`` is set; counts them. The last
    product allowed (``max_passes``) is always in full precision. A product is made with the
    floating-point flags silenced (a NaN or Inf of A, or an overflow, shows in the result,
    which the caller checks), so that no BLAS kernel's flags reach the user as warnings."""

    def __init__(self, op, op32, max_passes, single_scale=1.0):
        self.op, self.op32, self.low = op, op32, op32 is not None
        self.unscale = 1.0 / single_scale   # op32 is a float32 copy of A * single_scale
        self.passes = self.float32_passes = self.redone = 0
        self.max_passes = max_passes
        self.last_single = False   # whether the last product ran in float32

    @property
    def roundoff(self) -> float:
        """The unit roundoff of the last product."""
        return unit_roundoff((self.op32 if self.last_single else self.op).dtype)

    def __call__(self, X, adjoint):
        return self._run(lambda op, dtype: op.rmatmat(X.astype(dtype, copy=False)) if adjoint
                         else op.matmat(X.astype(dtype, copy=False)))

    def sketch(self, sketch_range, S):
        """The range sketch A S^T, the first product."""
        return self._run(lambda op, dtype: sketch_range(op, S))

    def _run(self, product):
        self.passes += 1
        self.last_single = self.low
        if self.low:
            with np.errstate(all="ignore"):   # checked just below
                out = np.asarray(product(self.op32, self.op32.dtype))
            if single_result_ok(out):
                self.float32_passes += 1
                out = out.astype(self.op.dtype)
                return out if self.unscale == 1 else out * self.unscale
            # out of float32's range: this product again, and the rest, in full precision
            self.low = self.last_single = False
            self.passes += 1
            self.redone += 1
        with np.errstate(all="ignore"):
            return np.asarray(product(self.op, self.op.dtype)).astype(self.op.dtype, copy=False)

    def update_precision(self, t, k, est, tol, r):
        """Leave float32 when its rounding is not far below tol, or when the next change is
        expected below tol (so that the next product, in full precision, can end the loop),
        or when the next product is the last one allowed."""
        if not self.low:
            return
        if self.passes + 1 >= self.max_passes:
            self.low = False
            return
        if (single_floor(t, k) * _F32_MARGIN > tol
                or (np.isfinite(est.excess) and est.excess * r <= tol * est.reference)):
            self.low = False


class _Loop:
    """The state of the adaptive iterations: the previous estimates, the dynamic shift and
    the scale they are measured in (the first candidate's sigma_1), so that nothing squares a
    singular value of A (A * 1e155 or 1e-170 costs what A costs)."""

    def __init__(self, k, tol, sv_tol):
        self.k, self.tol, self.sv_tol = k, tol, sv_tol
        self.scale = None
        self.prev, self.alpha, self.est = None, 0.0, None

    def relative(self, s):
        if self.scale is None:   # a power of two: A * 2^j gives the same arithmetic, exactly
            top = float(s[0]) if len(s) else 0.0
            self.scale = 2.0 ** math.frexp(top)[1] if 0 < top < np.inf else 1.0
        return s / self.scale

    def judge(self, s, u, low, r=None):
        """Estimates of a candidate with singular values s from products of unit roundoff u:
        whether the loop may stop on it (a float32 candidate never stops it). ``r``: the
        convergence ratio, when known otherwise than from s (:func:`rate`)."""
        t = self.relative(s)
        self.est = estimate(self.prev, t, self.k, self.alpha, u, self.sv_tol, r)
        return t, (not low and met(self.est, self.tol, self.sv_tol))

    def advance(self, t):
        """After a candidate: it becomes the previous one, and the shift moves to half its
        smallest estimate when that is above the rounding floor (below it, the estimate is
        inflated by rounding, and a shift above sigma_k^2 / 2 stalls the iteration)."""
        self.prev = t
        if t[-1] > self.est.floor:
            self.alpha = max(self.alpha, float(t[-1]) ** 2 / 2)

    def predicted_rate(self, t):
        """The shifted iteration's ratio per product, with the shift the next step uses."""
        kw = wanted(t, self.k, self.est.floor)
        return rate(t, kw, max(self.alpha, float(t[-1]) ** 2 / 2))

    def change(self):
        est = self.est
        if est is None or est.reference <= 0:
            return float("nan")
        return est.excess / est.reference

    def converged(self, low):
        return bool(self.est is not None and not low and met(self.est, self.tol, self.sv_tol))

    def shift(self):
        return self.alpha * self.scale * self.scale if self.scale else 0.0


def adaptive_qb_svd(op, S, k, tol, max_iters, normalizer, sketch_range, op32=None,
                    check_values=None, sv_tol=None, krylov=False, single_scale=1.0):
    """Top-k SVD of A by accuracy-controlled, dynamically shifted subspace iteration, or, with
    ``krylov="auto"``, block Krylov when the first products show that the power iteration
    would converge slowly (:data:`KRYLOV_RATE`).

    Returns ``(U, s, Vh, info)``. At most ``2 * max_iters + 2`` products with A (block
    Krylov: one more, for U). ``check_values``: the validation of A's entries, left to this
    first product (a NaN or Inf anywhere in A reaches the range sketch), called when that is
    not finite. ``op32``: a float32 copy of A times ``single_scale`` for mixed precision."""
    max_passes = 2 * max_iters + 2
    prod = _Products(op, op32, max_passes, single_scale)
    Y = prod.sketch(sketch_range, S)
    if not np.all(np.isfinite(Y)):
        if check_values is not None:
            check_values()
        _check_finite(Y)
    Q = final_basis(Y, normalizer)
    loop = _Loop(k, tol, sv_tol)
    while True:
        # left candidate Q (Q^H A): Z = A^H Q = P R, so Q^H A = R^H P^H
        Z = prod(Q, adjoint=True)
        low = prod.last_single
        _check_finite(Z)
        P, R = _factor(Z, normalizer)
        t, done = loop.judge(_svdvals(R), prod.roundoff, low)
        if done or prod.passes >= max_passes:
            Ub, sb, Wh = small_svd(R.conj().T)
            return (Q @ Ub[:, :k], sb[:k], Wh[:k] @ P.conj().T, _info(prod, loop, low))
        if krylov == "auto" and loop.prev is None and loop.predicted_rate(t) > KRYLOV_RATE:
            return _krylov(op, P, k, loop, prod, max_passes)
        prod.update_precision(t, k, loop.est, tol, loop.predicted_rate(t))
        loop.advance(t)
        # right candidate (A P) P^H: W = A P = Qw Rw
        W = prod(P, adjoint=False)
        low = prod.last_single
        _check_finite(W)
        Qw, Rw = _factor(W, normalizer)
        t, done = loop.judge(_svdvals(Rw), prod.roundoff, low)
        if done or prod.passes >= max_passes:
            Ur, sr, Wh = small_svd(Rw)
            return (Qw @ Ur[:, :k], sr[:k], Wh[:k] @ P.conj().T, _info(prod, loop, low))
        prod.update_precision(t, k, loop.est, tol, loop.predicted_rate(t))
        loop.advance(t)
        # (A A^H - alpha I) Q = A Z - alpha Q = Qw (Rw R) - alpha Q, in units of the scale
        # (Shifting on the short side instead saves one m-side CholeskyQR2 per iteration, but
        # the first shifted product comes one later: 6 passes instead of 5 on bench_lowrank's
        # e^(-i/40).)
        if loop.alpha == 0:
            Q = Qw
        else:
            c = 1.0 / loop.scale
            Q = final_basis(Qw @ ((Rw * c) @ (R * c)) - loop.alpha * Q, normalizer)


def _krylov(op, P, k, loop, prod, max_passes):
    """Block Krylov from P (orthonormal, n x l) within the remaining products, in A's
    precision (:func:`~randla.lowrank.krylov.krylov_svd`)."""
    U, s, Vh, depth, passes, done = krylov_svd(op, P, k, loop, max_passes - prod.passes)
    info = RSVDInfo(power_iters=depth, passes=prod.passes + passes, converged=done,
                    change=loop.change(), shift=0.0, float32_passes=prod.float32_passes,
                    method="krylov")
    return U, s, Vh, info


def _info(prod, loop, low):
    return RSVDInfo(power_iters=(prod.passes - prod.redone - 2) / 2, passes=prod.passes,
                    converged=loop.converged(low), change=loop.change(),
                    shift=loop.shift(), float32_passes=prod.float32_passes)




#: A single-precision result is trusted when finite with its largest entry at least this
#: (8e-31): A beyond float32's range (3e38) overflows, and a product of an A near its underflow
#: (1e-38) falls below it, its digits lost. (A fused read A^H A X scales as sigma_1^2: it
#: stays in float64 for sigma_1 below about 1e-15.)
_F32_TINY = 2.0 ** -100


def single_result_ok(Z) -> bool:
    """Whether a product computed in single precision can be used (else it is redone in full
    precision, and so is every later one)."""
    amax = float(np.max(np.abs(Z))) if Z.size else 0.0
    return np.isfinite(amax) and amax >= _F32_TINY


def single_floor(s, k) -> float:
    """u32 s_1 / s_(k+1): the rounding of a single-precision product relative to the
    (k+1)-th of the values s it resolves (singular values of A, or the eigenvalues of A^H A
    for a fused read, whose rounding is relative to sigma_1^2)."""
    ref = s[k] if len(s) > k else s[-1]
    return float(np.finfo(np.float32).eps) * float(s[0]) / float(ref) if ref > 0 else np.inf


class _Reads:
    """Fused reads A^H A X of a chunked A (one read each), on single-precision panels while
    ``low`` is set. ``products``: the A^H A X obtained; ``reads``: the reads made for them
    (one more where a single-precision read was out of range and redone)."""

    def __init__(self, op, low):
        self.op, self.low = op, bool(low) and getattr(op, "single_gram", False)
        self.products = self.reads = self.float32_reads = 0

    def __call__(self, X):
        """(C, e, single): C 2^-e = A^H A X in A's precision (C near A's scale, see
        :meth:`~randla.operators.Operator.gram_matmat_scaled`), and whether it was computed
        in single precision."""
        self.products += 1
        self.reads += 1
        if self.low:
            C, e = self.op.gram_matmat_scaled(X, single=True)
            C = np.asarray(C)
            if single_result_ok(C):
                self.float32_reads += 1
                return C.astype(self.op.dtype, copy=False), e, True
            self.low = False   # out of float32's range: this read again, and the rest, in full
            self.reads += 1
        C, e = self.op.gram_matmat_scaled(X)
        C = np.asarray(C)
        _check_finite(C)
        return C, e, False

    def keep_single(self, C, k, tol) -> bool:
        """Whether float32 stays fine after the read that gave C: its rounding, u32 times the
        spread of A^H A's eigenvalues (the singular values of C), far below tol."""
        Cn = C / np.max(np.abs(C)) if C.size and np.max(np.abs(C)) > 0 else C   # no underflow
        s = np.sqrt(np.clip(np.linalg.eigvalsh(Cn.conj().T @ Cn), 0, None))[::-1]
        self.low = self.low and single_floor(s, k) * _F32_MARGIN <= tol
        return self.low


def mixed_power_right(op, S, k, q, normalizer, tol=DEFAULT_POWER_TOL):
    """power_right (q fused reads) with reads on single-precision panels while the spread of
    the spectrum allows it (:meth:`_Reads.keep_single`). When a read shows the spread too
    wide, every single-precision read made so far is made up by one more read in full
    precision (the spread measured after the first read, from a random start, can look
    narrower than it is), so that the result is as good as q full-precision reads.
    Returns (X, reads)."""
    X = sketch_columns(op, S)
    reads = _Reads(op, True)
    todo = q
    while todo > 0:
        C, _, low = reads(X)
        todo -= 1
        if low and not reads.keep_single(C, k, tol):
            todo += reads.float32_reads
        X = between_products(C, normalizer)
    return X, reads


def adaptive_power_right(op, S, k, tol, max_iters, normalizer, single=False, sv_tol=None):
    """Out of core, A^H A X in one read each: X (n x l) orthonormal spanning the dominant
    right singular space, iterated with dynamic shifts until the Ritz values of A on span X
    (square roots of the eigenvalues of X^H A^H A X, free from the product) meet the rule of
    :func:`estimate` (its change taken between two reads, a conservative use). Returns
    ``(X, reads, loop)`` with ``reads`` a :class:`_Reads` and ``loop`` the :class:`_Loop`; at
    most ``max_iters`` reads. These Ritz values come from A^H A, so their rounding floor is
    sqrt(NOISE_FLOOR u) sigma_1 rather than NOISE_FLOOR u sigma_1. With ``single``, reads run
    on single-precision panels as products do in memory (see :class:`_Products`): the loop
    only stops on a full-precision read."""
    X = sketch_columns(op, S)
    X = final_basis(np.ascontiguousarray(X, dtype=op.dtype), normalizer)
    reads = _Reads(op, single)
    loop = _Loop(k, tol, sv_tol)
    while reads.reads < max_iters:
        C, e, low = reads(X)          # C 2^-e = A^H A X
        H = X.conj().T @ C
        lam = np.clip(np.linalg.eigvalsh((H + H.conj().T) / 2)[::-1], 0, None)
        if loop.scale is None:        # eigenvalues are kept relative to the first read's
            ref = (float(lam[0]) if lam[0] > 0 else 1.0, e)
            loop.scale = 1.0
        t = np.sqrt(np.ldexp(lam / ref[0], ref[1] - e))
        u = unit_roundoff(np.float32 if low else op.dtype)
        t, done = loop.judge(t, np.sqrt(u / NOISE_FLOOR), low)
        if not done:
            loop.advance(t)
        # (A^H A - alpha) X in C's units: alpha (relative) * ref * 2^(e - e_ref)
        shifted = C - (loop.alpha * ref[0] * 2.0 ** (e - ref[1])) * X
        X = householder(shifted) if normalizer == "qr" else final_basis(shifted, normalizer)
        if done:
            break
        if low and (reads.reads + 1 >= max_iters or not reads.keep_single(C, k, tol)
                    or (np.isfinite(loop.est.excess)
                        and loop.est.excess * loop.predicted_rate(t) ** 2 <= tol * loop.est.reference)):
            reads.low = False   # the next read can end the loop: in full precision
    return X, reads, loop
