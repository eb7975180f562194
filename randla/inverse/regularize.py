"""Spectral regularization through a randomized SVD: TSVD and Tikhonov with parameter choice.

Both methods filter the SVD expansion x = sum_i f_i (u_i^H b / sigma_i) v_i: TSVD keeps the
first k terms, Tikhonov damps them with f_i = sigma_i^2 / (sigma_i^2 + lam^2). With only the
top singular triplets of A (from :func:`randla.rsvd`), every quantity a parameter choice rule
needs, residual and solution norms for each parameter, costs O(rank) per parameter.
"""
from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import scipy.linalg as sla
import scipy.optimize as sopt

from .._validation import check_finite, check_positive_int, check_rank, check_real
from ..exceptions import AccuracyWarning
from ..lowrank import rsvd
from ..operators import as_operator
from .problems import KroneckerOperator

RULES = ("gcv", "lcurve", "discrepancy")
# A rule's lam below this fraction of the discrepancy principle's is flagged as undersmoothing
# (GCV's known failure): on shaw/gravity/baart/phillips (n = 200, 1e-2 and 1e-3 noise, 240
# draws) every pick 3x worse than the best lam had a ratio below 0.21 but two (0.27, 0.30,
# phillips); sound picks had ratios down to 0.14, and for those the discrepancy principle's
# lam is as good (within 2.5x of the best error in every draw).
UNDERSMOOTHING_RATIO = 0.25


class Spectrum:
    """The SVD information regularization needs: sorted singular values ``s``, coefficients
    ``beta = U^H b``, the energy of b outside range(U) and a map from coefficients to x.

    Attributes
    ----------
    s : ndarray
        Singular values, descending.
    beta : ndarray
        u_i^H b in the same order.
    """

    def __init__(self, s, beta, outside2, m, to_x):
        self.s, self.beta = s, beta
        self.outside2 = float(outside2)
        self.m = m
        self._to_x = to_x

    def solution(self, filt):
        """x for filter factors ``filt`` (one per singular value); a zero singular value
        contributes nothing (as in the pseudo-inverse), whatever its filter factor."""
        return self._to_x(self._coefficients(filt))

    def _coefficients(self, filt):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where((filt > 0) & (self.s > 0), filt * self.beta / self.s, 0.0)

    def tikhonov_filter(self, lam):
        s2 = self.s**2
        den = s2 + lam**2
        return np.divide(s2, den, out=np.zeros_like(den), where=den > 0)

    def _squares(self):
        if not hasattr(self, "_s2"):
            self._s2, self._b2 = self.s**2, np.abs(self.beta) ** 2
        return self._s2, self._b2

    def tikhonov_residual(self, lam):
        """(||A x_lam - b||, sum of the filter factors) for Tikhonov: what GCV and the
        discrepancy principle need, in a few passes over the spectrum."""
        s2, b2 = self._squares()
        g = lam**2 / (s2 + lam**2)  # 1 - f
        return math.sqrt(float(b2 @ (g * g)) + self.outside2), float(s2.size - g.sum())

    def norms(self, filt):
        """(||A x - b||, ||x||) for filter factors ``filt``."""
        kept = np.where(self.s > 0, filt, 0.0)  # a zero singular value fits nothing
        res2 = np.sum(np.abs((1 - kept) * self.beta) ** 2) + self.outside2
        sol2 = np.sum(np.abs(self._coefficients(filt)) ** 2)
        return math.sqrt(res2), math.sqrt(sol2)

    def lcurve(self, lams=None):
        """Residual and solution norms of the Tikhonov solutions for ``lams`` (default: a
        log grid over the singular values): ``(lams, residual_norms, solution_norms)``."""
        lams = self.lambda_grid() if lams is None else np.asarray(lams, dtype=float)
        pts = np.array([self.norms(self.tikhonov_filter(lam)) for lam in lams])
        return lams, pts[:, 0], pts[:, 1]

    def lambda_grid(self, num=None):
        """A log grid over the singular values: 400 points, 80 for spectra of more than 20000
        values (images: a rule then refines the grid's pick)."""
        if num is None:
            num = 400 if self.s.size <= 20000 else 80
        s = self.s[self.s > 0]
        if s.size == 0:
            raise ValueError("every singular value is 0 (A is zero): there is no lam to choose, "
                             "every regularized solution is x = 0")
        hi = s[0]
        lo = max(s[-1], hi * 16 * np.finfo(float).eps)  # as Hansen's Regularization Tools
        return np.logspace(np.log10(lo), np.log10(hi), num)

    def picard(self):
        """``(sigma_i, abs(u_i^H b), abs(u_i^H b) / sigma_i)``: the data of a Picard plot."""
        with np.errstate(divide="ignore"):
            return self.s, np.abs(self.beta), np.abs(self.beta) / self.s


class TikhonovResult(NamedTuple):
    """x = argmin ||A x - b||^2 + lam^2 ||x||^2 (within the computed rank)."""

    x: np.ndarray
    lam: float
    rule: str
    residual_norm: float
    solution_norm: float
    spectrum: Spectrum


class TSVDResult(NamedTuple):
    """x = sum_{i <= rank} (u_i^H b / sigma_i) v_i."""

    x: np.ndarray
    rank: int
    rule: str
    residual_norm: float
    solution_norm: float
    spectrum: Spectrum


def spectrum(A, b, *, rank=None, oversample=10, power_iters=2, rng=None, _name="rank"):
    """The :class:`Spectrum` of (A, b) from a rank-``rank`` randomized SVD.

    A :class:`~randla.inverse.problems.KroneckerOperator` A1 kron A2 is decomposed factor by
    factor (its SVD is the Kronecker product of theirs), so a 262144 x 262144 blur costs two
    512 x 512 decompositions. A dense A (or factor) whose requested rank is at least half its
    smaller dimension goes to LAPACK's SVD, which is then the cheaper of the two.
    """
    if isinstance(A, KroneckerOperator):
        return _kronecker_spectrum(A, b, rank, oversample, power_iters, rng)
    op = as_operator(A)
    m, n = op.shape
    b = _check_b(b, m)
    # rank > min(m, n) is refused for every kind of A (it was clipped for ndarrays only)
    rank = min(m, n, 100) if rank is None else check_rank(rank, _name, m, n)
    U, s, Vh = _top_svd(A, rank, oversample, power_iters, rng)
    beta = U.conj().T @ b
    outside2 = max(float(np.linalg.norm(b) ** 2 - np.linalg.norm(beta) ** 2), 0.0)
    return Spectrum(np.asarray(s, dtype=float), beta, outside2, m, lambda c: Vh.conj().T @ c)


def _top_svd(A, k, oversample, power_iters, rng):
    """The top-k SVD: randomized, or LAPACK's for a dense A when k >= min(m, n) / 2 (where a
    randomized SVD costs more than the full one)."""
    if isinstance(A, np.ndarray) and 2 * k >= min(A.shape):
        U, s, Vh = sla.svd(A, full_matrices=False, check_finite=False)
        return U[:, :k], s[:k], Vh[:k]
    # Householder QR between products: regularized solutions weigh singular directions far
    # below sqrt(eps) * sigma_1, which CholeskyQR (rsvd's fast default) resolves less well.
    return rsvd(A, k, oversample=min(oversample, min(A.shape) - k),
                       power_iters=power_iters, normalizer="qr", rng=rng)


def _kronecker_spectrum(A, b, rank, oversample, power_iters, rng):
    m = A.shape[0]
    b = _check_b(b, m)
    svds = []
    for F in A.factors:
        k = min(F.shape) if rank is None else min(check_positive_int(rank, "rank"), min(F.shape))
        svds.append(_top_svd(F, k, oversample, power_iters, rng))
    (U1, s1, V1h), (U2, s2, V2h) = svds
    B = b.reshape(A.out_shape)
    beta = (U1.conj().T @ B @ U2.conj()).ravel()
    s = np.outer(s1, s2).ravel()
    order = np.argsort(-s, kind="stable")
    outside2 = max(float(np.linalg.norm(b) ** 2 - np.linalg.norm(beta) ** 2), 0.0)
    shape = (len(s1), len(s2))

    def to_x(c):
        C = np.zeros(s.size, dtype=c.dtype)
        C[order] = c
        return (V1h.conj().T @ C.reshape(shape) @ V2h.conj()).ravel()

    return Spectrum(s[order], beta[order], outside2, m, to_x)


def _check_b(b, m):
    b = np.asarray(b)
    if b.ndim != 1 or b.shape[0] != m:
        raise ValueError(f"b must be a vector of length m = {m}, got shape {b.shape}")
    if b.dtype.kind not in "fciub":
        raise TypeError(f"b must be numeric, got dtype {b.dtype}")
    check_finite(b, "b")
    return b


def _check_rule(rule, noise_level):
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if rule == "discrepancy":
        if noise_level is None:
            raise ValueError("rule='discrepancy' needs noise_level (the norm of the noise)")
        check_real(noise_level, "noise_level", low_open=True)


def _check_nonzero(sp, rule, param):
    """A zero A leaves a rule nothing to choose: say so (with ``param`` given, x = 0 is returned)."""
    if not np.any(sp.s > 0):
        raise ValueError(f"A is zero (all its computed singular values are 0): every "
                         f"regularized solution is x = 0 and rule={rule!r} has no {param} to "
                         f"choose; pass {param} to get that zero solution")


def _check_lam(lam):
    return check_real(lam, "lam")


# -- parameter choice for Tikhonov -------------------------------------------------------------
def choose_lambda(sp, rule, noise_level=None, tau=1.0):
    """The Tikhonov parameter that ``rule`` picks for the spectrum ``sp``."""
    grid = sp.lambda_grid()
    if rule == "gcv":
        def gcv(loglam):
            res, trace = sp.tikhonov_residual(10.0**loglam)
            return res**2 / (sp.m - trace) ** 2
        vals = np.array([gcv(v) for v in np.log10(grid)])
        return _refine_min(gcv, np.log10(grid), int(np.argmin(vals)))
    if rule == "discrepancy":
        target = tau * noise_level
        fun = lambda v: sp.tikhonov_residual(10.0**v)[0] - target  # noqa: E731
        lo, hi = np.log10(grid[0]), np.log10(grid[-1])
        if fun(lo) >= 0:
            return float(grid[0])
        if fun(hi) <= 0:
            return float(grid[-1])
        # the residual grows with lam: one crossing
        return float(10.0 ** sopt.brentq(fun, lo, hi, xtol=1e-6))
    return _lcurve_corner(sp, grid)


def _refine_min(fun, logs, i):
    lo, hi = logs[max(i - 1, 0)], logs[min(i + 1, len(logs) - 1)]
    if hi <= lo:
        return float(10.0 ** logs[i])
    r = sopt.minimize_scalar(fun, bounds=(lo, hi), method="bounded",
                             options={"xatol": 1e-4})
    return float(10.0 ** (r.x if r.fun <= fun(logs[i]) else logs[i]))


def _lcurve_corner(sp, grid):
    """The point of maximum curvature of (log ||r||, log ||x||) along the Tikhonov curve."""
    _, res, sol = sp.lcurve(grid)
    t = np.log(grid)
    xi, eta = np.log(res), np.log(sol)
    dxi, deta = np.gradient(xi, t), np.gradient(eta, t)
    ddxi, ddeta = np.gradient(dxi, t), np.gradient(deta, t)
    kappa = (dxi * ddeta - ddxi * deta) / np.maximum((dxi**2 + deta**2) ** 1.5, 1e-300)
    kappa[[0, -1]] = -np.inf  # one-sided differences at the ends are unreliable
    return float(grid[int(np.argmax(kappa))])


# -- public solvers ------------------------------------------------------------------------------
def tikhonov(A, b, *, lam=None, rule="gcv", rank=None, noise_level=None, tau=1.0,
             oversample=10, power_iters=2, rng=None):
    """Tikhonov regularization min ||A x - b||^2 + lam^2 ||x||^2 through a randomized SVD.

    Parameters
    ----------
    A : ndarray, scipy.sparse matrix or LinearOperator, shape (m, n)
        A :class:`~randla.inverse.problems.KroneckerOperator` is decomposed factor by factor.
    b : ndarray, shape (m,)
    lam : float, optional
        The parameter (the ridge is lam**2). Chosen by ``rule`` when None.
    rule : {"gcv", "lcurve", "discrepancy"}
        Generalized cross-validation, the corner (maximum curvature) of the L-curve, or
        Morozov's discrepancy principle ||A x - b|| = tau * noise_level.
    rank : int, optional
        Rank of the randomized SVD (default min(m, n, 100)). Singular values beyond it are
        treated as zero, which is harmless when they lie well below the chosen lam.
    noise_level : float, optional
        ||e||, the norm of the noise in b (needed by "discrepancy").
    tau : float
        Safety factor of the discrepancy principle.
    oversample, power_iters, rng
        Passed to :func:`randla.rsvd`.

    Returns
    -------
    TikhonovResult
        ``x``, the ``lam`` used, the ``rule`` (``"given"`` when lam was given), the residual and
        solution norms and the :class:`Spectrum` (for L-curve and Picard plots).

    Examples
    --------
    >>> import numpy as np
    >>> from randla.inverse import tikhonov
    >>> from randla.inverse.problems import shaw
    >>> A, b, x = shaw(200)
    >>> e = np.random.default_rng(0).standard_normal(200); e *= 1e-3 * np.linalg.norm(b) / np.linalg.norm(e)
    >>> res = tikhonov(A, b + e, rule="gcv", rank=40, rng=0)
    >>> bool(np.linalg.norm(res.x - x) < 0.2 * np.linalg.norm(x))
    True
    """
    if lam is not None:
        lam = _check_lam(lam)
    else:
        _check_rule(rule, noise_level)
    sp = spectrum(A, b, rank=rank, oversample=oversample, power_iters=power_iters, rng=rng)
    if lam is None:
        _check_nonzero(sp, rule, "lam")
        lam, rule = vetted_lambda(sp, rule, noise_level, tau)
    else:
        rule = "given"
    f = sp.tikhonov_filter(lam)
    res, sol = sp.norms(f)
    return TikhonovResult(sp.solution(f), lam, rule, res, sol, sp)


def tsvd(A, b, *, rank=None, rule="gcv", noise_level=None, tau=1.0, max_rank=None,
         oversample=10, power_iters=2, rng=None):
    """Truncated SVD solution x_k = sum_{i <= k} (u_i^H b / sigma_i) v_i through a randomized
    SVD.

    Parameters
    ----------
    A, b
        As in :func:`tikhonov`.
    rank : int, optional
        The truncation rank k; chosen by ``rule`` among 1..max_rank when None.
    rule : {"gcv", "lcurve", "discrepancy"}
        GCV minimizes ||r_k||^2 / (m - k)^2; "discrepancy" takes the smallest k with
        ||r_k|| <= tau * noise_level; "lcurve" keeps the singular values above the Tikhonov
        L-curve corner (the two methods' filters cross over at sigma = lam).
    max_rank : int, optional
        Rank of the randomized SVD (default ``rank`` if given, else min(m, n, 100)).

    Returns
    -------
    TSVDResult

    Examples
    --------
    >>> import numpy as np
    >>> from randla.inverse import tsvd
    >>> from randla.inverse.problems import deriv2
    >>> A, b, x = deriv2(100)
    >>> tsvd(A, b, rank=10, rng=0).rank
    10
    """
    name = "max_rank"
    if rank is not None:
        rank = check_positive_int(rank, "rank")
        if max_rank is not None and rank > max_rank:
            raise ValueError(f"rank ({rank}) must be <= max_rank ({max_rank})")
        if max_rank is None:
            max_rank, name = rank, "rank"
    else:
        _check_rule(rule, noise_level)
    sp = spectrum(A, b, rank=max_rank, oversample=oversample, power_iters=power_iters, rng=rng,
                  _name=name)
    s = sp.s
    kmax = int(np.sum(s > s[0] * np.finfo(float).eps * max(sp.m, s.size))) if s.size else 0
    if rank is None:
        _check_nonzero(sp, rule, "rank")
        rank, rule = choose_rank(sp, rule, noise_level, tau, kmax=kmax)
    else:
        rule = "given"
        if rank > s.size:
            raise ValueError(f"rank must be <= the computed rank {s.size}, got {rank}")
    f = (np.arange(s.size) < rank).astype(float)
    res, sol = sp.norms(f)
    return TSVDResult(sp.solution(f), int(rank), rule, res, sol, sp)


def _residuals2(sp, kmax):
    """||r_k||^2 for k = 0..kmax: the energy of b beyond the first k singular directions, which
    includes the components between kmax and the computed rank and those outside range(U)."""
    beta2 = np.abs(sp.beta) ** 2
    tail = np.cumsum(beta2[::-1])[::-1]  # tail[k] = sum_{i >= k} beta_i^2
    tail = np.append(tail, 0.0)
    return np.maximum(tail[:kmax + 1] + sp.outside2, 0.0)


#: GCV's residual needs degrees of freedom: with m - k residual components left it is a sum of
#: that many noise terms, and with a handful a small draw makes a spurious minimum near k = m
#: (measured: 9 of 200 noise draws on deblur(32), m = 1024, picked rank 1023, with 1e10 times
#: the error; with fewer than 8 left excluded, none of them).
_GCV_MIN_DOF = 8


def choose_rank(sp, rule, noise_level=None, tau=1.0, *, kmax=None):
    """The TSVD rank that ``rule`` picks for the spectrum ``sp``, vetted as
    :func:`vetted_lambda` does: ``(rank, rule_used)``."""
    if kmax is None:
        s = sp.s
        kmax = int(np.sum(s > s[0] * np.finfo(float).eps * max(sp.m, s.size))) if s.size else 0
    kmax = max(kmax, 1)
    res2 = _residuals2(sp, kmax)
    ks = np.arange(kmax + 1)
    k_dp = None
    if noise_level is not None:
        ok = np.nonzero(np.sqrt(res2[1:]) <= tau * noise_level)[0]
        k_dp = int(ok[0]) + 1 if ok.size else kmax
    if rule == "discrepancy":
        if k_dp == kmax and np.sqrt(res2[kmax]) > tau * noise_level:
            _warn(f"no rank up to {kmax} brings the residual ({math.sqrt(res2[kmax]):.3g}) down "
                  f"to tau * noise_level = {tau * noise_level:.3g}: the noise level is "
                  f"overestimated or the computed rank is too small; using rank {kmax}")
        return k_dp, rule
    top = kmax
    if rule == "gcv":
        # ranks leaving fewer than _GCV_MIN_DOF residual components (a quarter of m for
        # small m) are not searched
        top = max(1, min(kmax, sp.m - min(_GCV_MIN_DOF, max(1, sp.m // 4))))
        with np.errstate(divide="ignore", invalid="ignore"):
            g = res2[1:top + 1] / (sp.m - ks[1:top + 1]) ** 2
        g[~np.isfinite(g)] = np.inf
        k = int(np.argmin(g)) + 1
    else:
        lam = _lcurve_corner(sp, sp.lambda_grid())
        k = max(1, min(kmax, int(np.sum(sp.s >= lam))))
    edge = k == top and top > 1
    # TSVD moves in whole components: one past the discrepancy rank (a residual below the
    # noise level) already cost up to 4x the best error on shaw (40 draws; the discrepancy
    # rank itself stayed within 2x), so any rank beyond it is undersmoothing
    under = k_dp is not None and k > k_dp
    if not (edge or under):
        return k, rule
    why = (f"rank {k} is the largest of the search range" if edge else
           f"it exceeds the discrepancy principle's rank {k_dp}: the residual is below the "
           "noise level, the solution undersmoothed")
    if k_dp is None:
        _warn(f"rule={rule!r} picked rank {k}, which it cannot vouch for: {why}. Pass "
              "noise_level (then the discrepancy principle takes over) or a rank")
        return k, rule
    _warn(f"rule={rule!r} picked rank {k}: {why}; using the discrepancy principle's rank "
          f"{k_dp} instead (noise_level was given)")
    return k_dp, f"{rule}->discrepancy"


def vetted_lambda(sp, rule, noise_level=None, tau=1.0):
    """The Tikhonov parameter of ``rule``, checked: ``(lam, rule_used)``.

    GCV and the L-curve fail silently on some noise draws (GCV on 20-30% of them on shaw or
    gravity), picking a lam far too small. Two symptoms are checked. (1) The lam sits at the
    edge of the search grid. (2) With ``noise_level`` given: the lam lies below
    ``UNDERSMOOTHING_RATIO`` (1/4) times the discrepancy principle's, i.e. the residual is
    clearly below the noise level. Then an :class:`~randla.exceptions.AccuracyWarning` is issued
    and, when ``noise_level`` is known, the discrepancy principle's lam is used instead
    (``rule_used`` reads e.g. ``"gcv->discrepancy"``).
    """
    grid = sp.lambda_grid()
    lam = choose_lambda(sp, rule, noise_level, tau)
    if rule == "discrepancy":
        _check_discrepancy_reached(sp, lam, grid, noise_level, tau)
        return lam, rule
    edge = lam <= grid[1] or lam >= grid[-2]
    lam_dp = None if noise_level is None else choose_lambda(sp, "discrepancy", noise_level, tau)
    under = lam_dp is not None and lam < UNDERSMOOTHING_RATIO * lam_dp
    if not (edge or under):
        return lam, rule
    why = (f"it is at the edge of the search range [{grid[0]:.3g}, {grid[-1]:.3g}]" if edge
           else f"it is below a quarter of the discrepancy principle's lam ({lam_dp:.3g}): the "
           "residual is below the noise level, the solution undersmoothed")
    if lam_dp is None:
        _warn(f"rule={rule!r} picked lam={lam:.3g}, which it cannot vouch for: {why}. Pass "
              "noise_level (then the discrepancy principle takes over) or lam")
        return lam, rule
    _warn(f"rule={rule!r} picked lam={lam:.3g}: {why}; using the discrepancy principle's "
          f"lam={lam_dp:.3g} instead (noise_level was given)")
    return lam_dp, f"{rule}->discrepancy"


def _check_discrepancy_reached(sp, lam, grid, noise_level, tau):
    target = tau * noise_level
    res = sp.norms(sp.tikhonov_filter(lam))[0]
    if lam <= grid[0] and res > target * (1 + 1e-6):
        _warn(f"the residual cannot be brought down to tau * noise_level = {target:.3g} (it is "
              f"{res:.3g} at the smallest lam): the noise level is overestimated, or the "
              "computed rank is too small")
    elif lam >= grid[-1] and res < target * (1 - 1e-6):
        _warn(f"the residual ({res:.3g}) stays below tau * noise_level = {target:.3g} even at "
              "the largest lam: the noise level is larger than the data's own size")


def _warn(msg):
    warnings.warn(msg, AccuracyWarning, stacklevel=4)
