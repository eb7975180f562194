"""Exchangeable estimators of Epperly, Tropp and Webber (2023): XTrace, XNysTrace and XDiag.

Each of the k test vectors w_i is used both ways: as a Hutchinson vector for the residual of
the low-rank approximation built from the *other* k - 1 vectors, and to build the others'
approximations. The k leave-one-out approximations are never formed: with Y = A Omega = Q R, the
range of Y without column i is Q (I - s_i s_i^H) Q^H, s_i the normalized i-th column of R^{-H},
so every quantity is a k x k computation on top of one QR.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from ._core import DiagResult, ct, finish, rowdot, run, setup
from .hutch import _doc, check_psd_samples, nystrom_factor


def _inv_h_colnorm(R):
    """Columns of R^{-H}, and their norms. Exactly zero pivots (A of rank < k) are floored at
    eps |R|, which only perturbs directions that A does not reach."""
    d = np.abs(np.diag(R))
    floor = np.finfo(np.result_type(R.dtype, np.float32)).eps * max(d.max(initial=0.0), 1e-300)
    if np.any(d < floor):
        R = R.copy()
        idx = np.flatnonzero(d < floor)
        R[idx, idx] = floor
    X = sla.solve_triangular(R, np.eye(R.shape[0], dtype=R.dtype), trans="C", lower=False,
                             check_finite=False)
    norms = np.linalg.norm(X, axis=0)
    return X, norms


class _RangeState:
    """Omega, Y = A Omega = Q R grown block by block (block Gram-Schmidt, two passes, so the
    old columns of Q and R never change) and Z = A Q (or A^H Q)."""

    def __init__(self, op, vectors, adjoint=False):
        self.op, self.vectors, self.adjoint = op, vectors, adjoint
        n = op.shape[0]
        self.Omega = self.Q = self.Z = np.zeros((n, 0), op.dtype)
        self.R = np.zeros((0, 0), op.dtype)
        self.Omega_Y = np.zeros(0)

    @property
    def k(self):
        return self.Omega.shape[1]

    def grow(self, budget):
        extra = budget // 2 - self.k
        if extra <= 0:
            return
        W = self.vectors.draw(extra)
        Y = self.op.matmat(W)
        self.Omega_Y = np.concatenate([self.Omega_Y, rowdot(W, Y)])
        C = ct(self.Q) @ Y
        Y -= self.Q @ C                       # in place: at n = 10^6 every n x k copy counts
        C2 = ct(self.Q) @ Y
        Y -= self.Q @ C2
        Qn, Rn = sla.qr(Y, mode="economic", overwrite_a=True, check_finite=False)
        del Y
        k = self.k
        R = np.zeros((k + extra, k + extra), dtype=np.result_type(self.R, Rn))
        R[:k, :k], R[:k, k:], R[k:, k:] = self.R, C + C2, Rn
        self.R = R
        self.Q = np.hstack([self.Q, Qn])
        self.Z = np.hstack([self.Z, self.op.rmatmat(Qn) if self.adjoint else self.op.matmat(Qn)])
        self.Omega = np.hstack([self.Omega, W])

    def vanishes(self) -> bool:
        """A Omega = 0 and A Q = 0 (A = 0, in practice): R has no pivot to invert, and every
        sample of the estimators is 0."""
        return not (np.any(self.R) or np.any(self.Z))


class _XTrace(_RangeState):
    def estimate(self):
        n, k = self.Omega.shape
        if self.vanishes():
            return 0.0, 0.0
        Q, R, Z, Om = self.Q, self.R, self.Z, self.Omega
        S, _ = _inv_h_colnorm(R)
        S /= np.linalg.norm(S, axis=0)
        W = ct(Q) @ Om
        H = ct(Q) @ Z
        T = ct(Z) @ Om
        c = rowdot(S, W)                       # s_i^H W_i
        U = W - S * c                          # P_i w_i = Q u_i
        low = np.trace(H) - rowdot(S, H @ S)   # tr(A P_i)
        resid = self.Omega_Y - rowdot(T, U) - rowdot(U, R) + rowdot(U, H @ U)
        if self.vectors.rotation_invariant:
            # Rescale the residual test vector (I - P_i) w_i to norm sqrt(n - k + 1): unbiased
            # for rotation-invariant w_i, and of lower variance (ETW 2023, section 2.3).
            norm2 = np.linalg.norm(Om, axis=0) ** 2 - np.linalg.norm(U, axis=0) ** 2
            resid = resid * (n - k + 1) / norm2
        t = (low + resid).real
        return float(np.mean(t)), float(np.std(t, ddof=1) / np.sqrt(k))


@_doc
def xtrace(A, m=None, *, tol=None, atol=None, sketch="sphere", normalize=False, n=None,
           rng=None):
    """XTrace: the exchangeable version of Hutch++ (Epperly, Tropp, Webber 2023).

    m/2 test vectors w_i give Y = A Omega = QR and Z = A Q; the estimate averages, over i,
    tr(A P_i) + w_i^T (I - P_i) A (I - P_i) w_i with P_i the projector onto the range of Y
    without column i. Exact (up to rounding) when rank(A) < m/2.

    Parameters
    ----------
    {common}

    Returns
    -------
    TraceResult
        ``.error`` is the paper's estimate std(t_i) / sqrt(m/2). In adaptive mode the budget
        doubles and all earlier products are reused.

    Examples
    --------
    {example}
    >>> t = rt.xtrace(A, 60, rng=0)
    >>> bool(abs(t - np.trace(A)) < 0.05 * np.trace(A))
    True
    """
    op, vectors, m, adaptive = setup(A, m, tol, atol, n, sketch, normalize, rng, 4,
                                     default_cap=lambda size: 2 * size)
    if m // 2 > op.shape[0]:
        raise ValueError(f"m must be <= 2n = {2 * op.shape[0]}, got {m}")
    state = _XTrace(op, vectors)
    return finish(state, m, adaptive, tol, atol, 16, "xtrace")


class _XNysTrace:
    def __init__(self, op, vectors):
        self.op, self.vectors = op, vectors
        self.Omega = self.Y = np.zeros((op.shape[0], 0), op.dtype)

    def grow(self, budget):
        extra = budget - self.Omega.shape[1]
        if extra > 0:
            W = self.vectors.draw(extra)
            Y = self.op.matmat(W)
            check_psd_samples(W, Y, rowdot(W, Y).real)
            self.Omega, self.Y = np.hstack([self.Omega, W]), np.hstack([self.Y, Y])

    def estimate(self):
        n, k = self.Omega.shape
        B, C, nu = nystrom_factor(self.Omega, self.Y)
        if C is None:  # A Omega = 0: every sample, w_i^T A w_i included, is 0
            return 0.0, 0.0
        # Leave-one-out Nystrom: with G = Omega^T Y = C^H C and x_i = C^{-H} e_i,
        # tr(A_hat_i) = ||B||_F^2 - ||B x_i||^2 / ||x_i||^2, residual w_i^T (A - A_hat_i) w_i
        # = 1 / ||x_i||^2.
        X, xnorm = _inv_h_colnorm(C)
        RB = sla.qr(B, mode="r", check_finite=False)[0][:k]
        low = np.linalg.norm(B) ** 2 - np.linalg.norm(RB @ X, axis=0) ** 2 / xnorm ** 2
        resid = 1.0 / xnorm ** 2
        if self.vectors.rotation_invariant:
            # A - A_hat_i vanishes on range(Omega_{-i}): rescale (I - P_i) w_i to norm
            # sqrt(n - k + 1), where ||(I - P_i) w_i|| = 1 / ||R_Omega^{-H} e_i||.
            R_omega = sla.qr(self.Omega, mode="r", check_finite=False)[0][:k]
            resid = resid * (n - k + 1) * _inv_h_colnorm(R_omega)[1] ** 2
        t = (low + resid).real - n * nu
        return float(np.mean(t)), float(np.std(t, ddof=1) / np.sqrt(k))


@_doc
def xnystrace(A, m=None, *, tol=None, atol=None, sketch="sphere", normalize=False, n=None,
              rng=None):
    """XNysTrace: exchangeable Nystrom trace estimator for positive semidefinite A
    (Epperly, Tropp, Webber 2023). Every one of the m products is used both for the Nystrom
    approximation and as a Hutchinson sample. Exact when rank(A) < m.

    Parameters
    ----------
    {common}

    Returns
    -------
    TraceResult

    Raises
    ------
    ValueError
        When A is detectably not positive semidefinite.

    Examples
    --------
    {example}
    >>> t = rt.xnystrace(A, 60, rng=0)
    >>> bool(abs(t - np.trace(A)) < 0.05 * np.trace(A))
    True
    """
    op, vectors, m, adaptive = setup(A, m, tol, atol, n, sketch, normalize, rng, 2)
    if m > op.shape[0]:
        raise ValueError(f"m must be <= n = {op.shape[0]}, got {m}")
    state = _XNysTrace(op, vectors)
    return finish(state, m, adaptive, tol, atol, 8, "xnystrace")


class _XDiag(_RangeState):
    def estimate(self):
        k = self.k
        if self.vanishes():
            return np.zeros(self.Omega.shape[0]), 0.0
        Q, R, Z, Om = self.Q, self.R, self.Z, self.Omega
        S, _ = _inv_h_colnorm(R)
        S /= np.linalg.norm(S, axis=0)
        QS, ZS = Q @ S, Z @ S
        base = np.einsum("ij,ij->i", Q, Z.conj())             # diag(Q Q^H A)
        # Column i: diag(P_i A) + conj(w_i) * ((I - P_i) A w_i), with (I - P_i) y_i
        # = Q s_i (s_i^H R_i).
        D = (base[:, None] - QS * ZS.conj() + Om.conj() * QS * rowdot(S, R)).real
        d = D.mean(axis=1)
        err = np.linalg.norm(D - d[:, None]) / np.sqrt(k * (k - 1))
        return d, float(err)


@_doc
def xdiag(A, m=None, *, tol=None, atol=None, sketch="rademacher", normalize=False, n=None,
          symmetric=False, rng=None):
    """XDiag: exchangeable diagonal estimator (Epperly, Tropp, Webber 2023): the diagonal of
    the low-rank approximation from m/2 - 1 test vectors plus a Hutchinson diagonal estimate of
    the residual with the remaining one, averaged over all m/2 choices.

    Parameters
    ----------
    {common}
    symmetric : bool
        A is symmetric: products with A^T are products with A.

    Returns
    -------
    DiagResult
        ``error`` is the standard error of the average, as a 2-norm over the entries.

    Examples
    --------
    >>> import numpy as np, randla.trace as rt
    >>> U = np.linalg.qr(np.random.default_rng(0).standard_normal((300, 300)))[0]
    >>> A = (U * 0.8 ** np.arange(300)) @ U.T
    >>> d = rt.xdiag(A, 80, symmetric=True, rng=0)
    >>> bool(np.linalg.norm(d.estimate - np.diag(A)) < 1e-3 * np.linalg.norm(np.diag(A)))
    True
    """
    op, vectors, m, adaptive = setup(A, m, tol, atol, n, sketch, normalize, rng, 4,
                                     symmetric=symmetric, default_cap=lambda size: 2 * size)
    if m // 2 > op.shape[0]:
        raise ValueError(f"m must be <= 2n = {2 * op.shape[0]}, got {m}")
    state = _XDiag(op, vectors, adjoint=True)
    est, err = run(state, m, adaptive, tol, atol, first=16)
    return DiagResult(est.astype(op.dtype, copy=False), err, op.matvecs)
