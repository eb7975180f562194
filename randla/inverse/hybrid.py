"""Hybrid Tikhonov regularization for operators without a usable SVD (large blurs).

Golub-Kahan bidiagonalization, A V_k = U_{k+1} B_k, projects min ||A x - b||^2 + lam^2 ||x||^2
onto the Krylov space range(V_k), where it is a small (k + 1) x k problem whose SVD gives every
parameter rule for free (Chung, Nagy & O'Leary, ETNA 2008). The iteration stops when the
projected solution for the chosen lam stops changing. The basis V_k is kept while it fits in
``memory`` bytes; past that it is dropped and regenerated in a second, identical pass that
accumulates x = V_k y: memory stays a few vectors, whatever the number of iterations.
"""
from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import scipy.linalg as sla

from .._validation import check_positive_int, check_real
from ..exceptions import AccuracyWarning
from .regularize import Spectrum, _check_rule, vetted_lambda

__all__ = ["hybrid_tikhonov", "HybridResult"]


class HybridResult(NamedTuple):
    """x = V_k y(lam), the projected Tikhonov solution after ``iterations`` steps."""

    x: np.ndarray
    lam: float
    rule: str
    iterations: int
    residual_norm: float
    solution_norm: float
    converged: bool
    spectrum: Spectrum  # of the projected problem (its ``solution`` maps to y, not x)


class _GolubKahan:
    """Lower bidiagonalization of A started from b; keeps alphas, betas and (optionally) V."""

    def __init__(self, A, b, keep):
        self.A, self.keep = A, keep
        self.beta1 = float(np.linalg.norm(b))
        self.u = b / self.beta1
        v = A.rmatvec(self.u)
        self.alphas, self.betas, self.V = [float(np.linalg.norm(v))], [], []
        self.v = v / self.alphas[0] if self.alphas[0] > 0 else v  # A^H b = 0: x = 0

    def step(self):
        """One more column of B_k; yields v_i (the basis vector just completed)."""
        v = self.v
        if self.keep:
            self.V.append(v)
        u = self.A.matvec(v) - self.alphas[-1] * self.u
        beta = float(np.linalg.norm(u))
        self.betas.append(beta)
        self.u = u / beta if beta > 0 else u
        w = self.A.rmatvec(self.u) - beta * v
        alpha = float(np.linalg.norm(w))
        self.alphas.append(alpha)
        self.v = w / alpha if alpha > 0 else w
        return v

    def B(self):
        k = len(self.betas)
        B = np.zeros((k + 1, k))
        B[np.arange(k), np.arange(k)] = self.alphas[:k]
        B[np.arange(1, k + 1), np.arange(k)] = self.betas
        return B

    def broke_down(self):
        return self.betas[-1] == 0 or self.alphas[-1] == 0


def _projected_spectrum(B, beta1, m):
    U, s, Vh = sla.svd(B, full_matrices=False, check_finite=False)
    beta = beta1 * U[0]
    outside2 = max(beta1**2 - float(beta @ beta), 0.0)  # the LSQR residual
    return Spectrum(s, beta, outside2, m, lambda c: Vh.T @ c)


def hybrid_tikhonov(A, b, *, lam=None, rule="discrepancy", noise_level=None, tau=1.0,
                    maxiter=500, tol=1e-3, memory=2**29):
    """Tikhonov regularization of a large operator by hybrid Golub-Kahan iterations.

    Parameters
    ----------
    A : scipy LinearOperator (or anything with matvec and rmatvec), shape (m, n)
    b : ndarray, shape (m,)
    lam : float, optional
        The parameter; chosen by ``rule`` on the projected problem at each check when None.
    rule : {"gcv", "lcurve", "discrepancy"}
        As in :func:`~randla.inverse.tikhonov`, applied to the projected problem (GCV with the
        full m in its denominator), and vetted as :func:`~randla.inverse.vetted_lambda` does.
    noise_level : float, optional
        ||e||, the norm of the noise in b.
    maxiter : int
        Bidiagonalization steps at most.
    tol : float
        Stop when the projected solution moves by less than ``tol`` (relative) over the last
        checks and lam by less than 1%.
    memory : int
        Bytes allowed for the stored basis V_k before switching to the two-pass mode.

    Returns
    -------
    HybridResult

    Examples
    --------
    >>> import numpy as np
    >>> from randla.inverse import BlurOperator, gaussian_psf
    >>> from randla.inverse.hybrid import hybrid_tikhonov
    >>> A = BlurOperator(gaussian_psf(1.5), (32, 32), boundary="zero")
    >>> x = np.random.default_rng(0).random(1024)
    >>> res = hybrid_tikhonov(A, A @ x, lam=1e-2)
    >>> res.converged and res.iterations < 500
    True
    """
    b = np.asarray(b, dtype=np.result_type(np.asarray(b).dtype, np.float64))
    m, n = A.shape
    if b.shape != (m,):
        raise ValueError(f"b must be a vector of length {m}, got shape {b.shape}")
    maxiter = check_positive_int(maxiter, "maxiter")
    tol = check_real(tol, "tol", low_open=True)
    if lam is not None:
        lam = check_real(lam, "lam")
    else:
        _check_rule(rule, noise_level)
    if not np.any(b):
        return HybridResult(np.zeros(n), 0.0 if lam is None else lam, rule, 0, 0.0, 0.0, True,
                            Spectrum(np.zeros(0), np.zeros(0), 0.0, m, lambda c: c))
    keep_max = int(memory // (8 * n))
    gk = _GolubKahan(A, b, keep=keep_max > 0)
    if gk.alphas[0] == 0:  # A^H b = 0 (a zero A, or b orthogonal to its range): x = 0 for any lam
        return HybridResult(np.zeros(n), 0.0 if lam is None else lam, rule, 0, gk.beta1, 0.0,
                            True, Spectrum(np.zeros(0), np.zeros(0), gk.beta1**2, m, lambda c: c))
    y_prev, lam_prev, converged, chosen, used_rule = None, None, False, lam, rule
    k, next_check, sp = 0, 10, None
    while k < maxiter:
        gk.step()
        k += 1
        if gk.keep and len(gk.V) >= keep_max:
            gk.keep, gk.V = False, []  # too big: regenerate in a second pass instead
        if k < next_check and not gk.broke_down() and k < maxiter:
            continue
        next_check = k + max(5, k // 10)
        sp = _projected_spectrum(gk.B(), gk.beta1, m)
        with warnings.catch_warnings():  # only the final choice may warn
            warnings.simplefilter("ignore")
            chosen, used_rule = _choose(sp, lam, rule, noise_level, tau, k, maxiter, gk)
        y = sp.solution(sp.tikhonov_filter(chosen))
        if y_prev is not None and lam_prev is not None:
            dy = np.linalg.norm(y - np.append(y_prev, np.zeros(y.size - y_prev.size)))
            small_step = dy <= tol * np.linalg.norm(y)
            if small_step and abs(chosen - lam_prev) <= 1e-2 * max(chosen, 1e-300):
                converged = True
                break
        if gk.broke_down():
            converged = True
            break
        y_prev, lam_prev = y, chosen
    sp = _projected_spectrum(gk.B(), gk.beta1, m)
    chosen, used_rule = _choose(sp, lam, rule, noise_level, tau, k, maxiter, gk)
    if not converged:
        _warn_unconverged(k, tol)
    y = sp.solution(sp.tikhonov_filter(chosen))
    x = _combine(A, b, gk, y)
    res, sol = sp.norms(sp.tikhonov_filter(chosen))
    return HybridResult(x, float(chosen), used_rule if lam is None else "given", k, res, sol,
                        converged, sp)


def _choose(sp, lam, rule, noise_level, tau, k, maxiter, gk):
    if lam is not None:
        return lam, "given"
    if rule == "discrepancy" and math.sqrt(sp.outside2) > tau * noise_level and k < maxiter \
            and not gk.broke_down():
        # the Krylov space cannot fit the data to the noise level yet: lam_dp would be the grid
        # minimum; keep iterating without warning
        return float(sp.lambda_grid()[0]), rule
    return vetted_lambda(sp, rule, noise_level, tau)


def _combine(A, b, gk, y):
    """x = V_k y, from the stored basis or by regenerating it (same operations, same vectors)."""
    if gk.keep:
        basis = iter(gk.V)
    else:
        again = _GolubKahan(A, b, keep=False)
        basis = (again.step() for _ in range(y.size))
    x = np.zeros(A.shape[1], dtype=np.result_type(gk.v.dtype, y.dtype))
    for yi, v in zip(y, basis):
        x += yi * v
    return x


def _warn_unconverged(k, tol):
    warnings.warn(f"hybrid Tikhonov stopped at maxiter = {k} before its solution settled to "
                  f"tol = {tol:g}: raise maxiter", AccuracyWarning, stacklevel=3)
