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
0.1-1 c at r ~ 0.6 and 3-5 c at r ~ 0.77. The loop stops when :func:`error_estimate`, c times
a factor of r that stays above those measurements, is below tol.

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
from .range_finder import sketch_columns

#: Tolerance of the adaptive power iterations (``power_tol=None``): the spectral error aimed at
#: is (1 + tol) sigma_(k+1), as estimated by :func:`error_estimate`.
DEFAULT_POWER_TOL = 0.01
#: Largest number of power iterations of the adaptive loop: 2 * 10 + 2 products at most in
#: memory, 10 + 1 reads out of core.
MAX_ADAPTIVE_ITERS = 10
#: float32 is used only while its rounding, u32 * sigma_1 / sigma_(k+1), is below tol / this.
_F32_MARGIN = 100.0
#: Convergence ratio per product assumed at most (no oversampling: unknown).
_MAX_RATE = 0.95
#: error_estimate's factor on c is at least 1 / this: single changes are a noisy guide (e^(-i/40), k = 100, r ~ 0.42:
#: changes of 0.04-0.05 sigma_(k+1) came with excesses from 0.001 to 0.015 over three draws).
_EARLY_CHANGE = 2.0


class RSVDInfo(NamedTuple):
    """How the power iterations of one :func:`randla.rsvd` call went (``result.info``).

    ``power_iters``: power iterations made, in halves (one product with A or A^H each; the
    fused out-of-core path counts whole iterations); ``passes``: products with A, or reads of
    A out of core; ``converged``: the adaptive loop met ``power_tol`` (None for a fixed
    count); ``change``: the last estimate of the spectral error's excess over sigma_(k+1),
    relative to it (:func:`error_estimate`; NaN when not measured); ``shift``: the last
    dynamic shift alpha (in units of sigma^2);
    ``float32_passes``: products (reads, out of core) made in float32 (mixed precision).
    """

    power_iters: float
    passes: int
    converged: bool | None = None
    change: float = float("nan")
    shift: float = 0.0
    float32_passes: int = 0


def rate(s, k, alpha) -> float:
    """The factor by which the changes shrink per product: r, with r^2
    = max(sigma_l^2 - alpha, alpha) / (sigma_k^2 - alpha) the convergence ratio of the
    shifted iteration, from the current estimates s (at most _MAX_RATE)."""
    top = float(s[k - 1]) ** 2 - alpha
    tail = max(float(s[-1]) ** 2 - alpha, alpha) if len(s) > k else top
    return min(np.sqrt(tail / top), _MAX_RATE) if top > 0 else _MAX_RATE


def error_estimate(prev, s, k, alpha) -> float:
    """The estimated excess of the candidate's spectral error over sigma_(k+1), relative to
    sigma_(k+1): c = :func:`relative_change` times g(x), x = r / (1 - r) with r the
    convergence ratio per product (:func:`rate`), g(x) = max(min(x^3, max(1, x)), 1/2).
    For slowly converging iterations (x >= 1) g is x, the sum of the changes still to come;
    for fast ones (r < 1/2) the error is below the change (module docstring) and g is 1/2."""
    c = relative_change(prev, s, k)
    if not np.isfinite(c) or c == 0:
        return c
    r = rate(s, k, alpha)
    x = r / (1 - r)
    return c * max(min(x ** 3, max(1.0, x)), 1 / _EARLY_CHANGE)


def relative_change(prev, s, k) -> float:
    """max_{i <= k} |s_i - prev_i| / s_(k+1) (s_k when there is no s_(k+1))."""
    if prev is None:
        return np.inf
    ref = s[k] if len(s) > k else s[k - 1]
    if ref <= 0:
        return 0.0 if np.array_equal(prev[:k], s[:k]) else np.inf
    return float(np.max(np.abs(s[:k] - prev[:k])) / ref)


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
    product allowed (``max_passes``) is always in full precision."""

    def __init__(self, op, op32, max_passes):
        self.op, self.op32, self.low = op, op32, op32 is not None
        self.passes = self.float32_passes = self.redone = 0
        self.max_passes = max_passes
        self.last_single = False   # whether the last product ran in float32

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
            with np.errstate(over="ignore", invalid="ignore"):   # checked just below
                out = np.asarray(product(self.op32, self.op32.dtype))
            if single_result_ok(out):
                self.float32_passes += 1
                return out.astype(self.op.dtype)
            # out of float32's range: this product again, and the rest, in full precision
            self.low = self.last_single = False
            self.passes += 1
            self.redone += 1
        return np.asarray(product(self.op, self.op.dtype)).astype(self.op.dtype, copy=False)

    def update_precision(self, s, k, change, tol, rate):
        """Leave float32 when its rounding is not far below tol, or when the next change is
        expected below tol (so that the next product, in full precision, can end the loop),
        or when the next product is the last one allowed."""
        if not self.low:
            return
        if self.passes + 1 >= self.max_passes:
            self.low = False
            return
        if (single_floor(s, k) * _F32_MARGIN > tol
                or (np.isfinite(change) and change * rate <= tol)):
            self.low = False


def adaptive_qb_svd(op, S, k, tol, max_iters, normalizer, sketch_range, op32=None,
                    check_values=None):
    """Top-k SVD of A by accuracy-controlled, dynamically shifted subspace iteration.

    Returns ``(U, s, Vh, info)``. At most ``2 * max_iters + 2`` products with A.
    ``check_values``: the validation of A's entries, left to this first product (a NaN or Inf
    anywhere in A reaches the range sketch), called when that is not finite."""
    max_passes = 2 * max_iters + 2
    prod = _Products(op, op32, max_passes)
    Y = prod.sketch(sketch_range, S)
    if check_values is not None and not np.all(np.isfinite(Y)):
        check_values()
    Q = final_basis(Y, normalizer)
    prev, alpha, change = None, 0.0, np.inf
    while True:
        # left candidate Q (Q^H A): Z = A^H Q = P R, so Q^H A = R^H P^H
        Z = prod(Q, adjoint=True)
        low = prod.last_single
        _check_finite(Z)
        P, R = _factor(Z, normalizer)
        s = _svdvals(R)
        change = error_estimate(prev, s, k, alpha)
        if _done(low, change, tol, prod.passes, max_passes):
            Ub, sb, Wh = small_svd(R.conj().T)
            return (Q @ Ub[:, :k], sb[:k], Wh[:k] @ P.conj().T,
                    _info(prod, change, tol, alpha, low))
        prod.update_precision(s, k, change, tol, rate(s, k, alpha))
        prev = s
        alpha = max(alpha, float(s[-1]) ** 2 / 2)
        # right candidate (A P) P^H: W = A P = Qw Rw
        W = prod(P, adjoint=False)
        low = prod.last_single
        _check_finite(W)
        Qw, Rw = _factor(W, normalizer)
        s = _svdvals(Rw)
        change = error_estimate(prev, s, k, alpha)
        if _done(low, change, tol, prod.passes, max_passes):
            Ur, sr, Wh = small_svd(Rw)
            return (Qw @ Ur[:, :k], sr[:k], Wh[:k] @ P.conj().T,
                    _info(prod, change, tol, alpha, low))
        prod.update_precision(s, k, change, tol, rate(s, k, alpha))
        prev = s
        alpha = max(alpha, float(s[-1]) ** 2 / 2)
        # (A A^H - alpha I) Q = A Z - alpha Q = Qw (Rw R) - alpha Q. (Shifting on the short
        # side instead saves one m-side CholeskyQR2 per iteration, but the first shifted
        # product comes one later: 6 passes instead of 5 on bench_lowrank's e^(-i/40).)
        Q = Qw if alpha == 0 else final_basis(Qw @ (Rw @ R) - alpha * Q, normalizer)


def _done(low, change, tol, passes, max_passes):
    """A float64 candidate close to the previous one, or the last product allowed (a
    float32 candidate never ends the loop before that)."""
    return (not low and change <= tol) or passes >= max_passes


def _info(prod, change, tol, alpha, low):
    return RSVDInfo(power_iters=(prod.passes - prod.redone - 2) / 2, passes=prod.passes,
                    converged=bool(change <= tol and not low), change=float(change),
                    shift=float(alpha), float32_passes=prod.float32_passes)


def _check_finite(Z):
    if not np.all(np.isfinite(Z)):
        raise ValueError("A produced NaN or Inf in products (check the data or the LinearOperator)")


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
        """(A^H A X in A's precision, whether it was computed in single precision)."""
        self.products += 1
        self.reads += 1
        if self.low:
            C = np.asarray(self.op.gram_matmat(X, single=True))
            if single_result_ok(C):
                self.float32_reads += 1
                return C.astype(self.op.dtype, copy=False), True
            self.low = False   # out of float32's range: this read again, and the rest, in full
            self.reads += 1
        C = np.asarray(self.op.gram_matmat(X))
        _check_finite(C)
        return C, False

    def keep_single(self, C, k, tol) -> bool:
        """Whether float32 stays fine after the read that gave C: its rounding, u32 times the
        spread of A^H A's eigenvalues (the singular values of C), far below tol."""
        s = np.sqrt(np.clip(np.linalg.eigvalsh(C.conj().T @ C), 0, None))[::-1]
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
        C, low = reads(X)
        todo -= 1
        if low and not reads.keep_single(C, k, tol):
            todo += reads.float32_reads
        X = between_products(C, normalizer)
    return X, reads


def adaptive_power_right(op, S, k, tol, max_iters, normalizer, single=False):
    """Out of core, A^H A X in one read each: X (n x l) orthonormal spanning the dominant
    right singular space, iterated with dynamic shifts until the Ritz values of A on span X
    (eigenvalues of X^H A^H A X, free from the product) give an :func:`error_estimate`
    below tol (its change c taken between two reads, a conservative use). Returns
    ``(X, reads, change, alpha)`` with ``reads`` a :class:`_Reads`; at most ``max_iters``
    reads. A change below the rounding level of these Ritz values (u (sigma_1 /
    sigma_(k+1))^2) counts as converged: more reads could not be told apart. With
    ``single``, reads run on single-precision panels as products do in memory (see
    :class:`_Products`): the loop only stops on a full-precision read."""
    X = sketch_columns(op, S)
    X = final_basis(np.ascontiguousarray(X, dtype=op.dtype), normalizer)
    reads = _Reads(op, single)
    prev, alpha, change = None, 0.0, np.inf
    while reads.reads < max_iters:
        C, low = reads(X)
        H = X.conj().T @ C
        lam = np.clip(np.linalg.eigvalsh((H + H.conj().T) / 2)[::-1], 0, None)
        s = np.sqrt(lam)
        change = error_estimate(prev, s, k, alpha)
        ref = s[k] if len(s) > k else s[k - 1]
        noise = 100 * np.finfo(op.dtype).eps * (s[0] / ref) ** 2 if ref > 0 else np.inf
        alpha = max(alpha, float(lam[-1]) / 2)
        X = householder(C - alpha * X) if normalizer == "qr" else final_basis(C - alpha * X,
                                                                                normalizer)
        if not low and change <= max(tol, noise):
            break
        if low and (reads.reads + 1 >= max_iters or not reads.keep_single(C, k, tol)
                    or (np.isfinite(change) and change * rate(s, k, alpha) ** 2 <= tol)):
            reads.low = False   # the next read can end the loop: in full precision
        prev = s
    return X, reads, float(change), alpha
