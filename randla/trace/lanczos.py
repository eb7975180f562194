"""Stochastic Lanczos quadrature (Golub-Meurant; Ubaru-Chen-Saad 2017): tr f(A) for symmetric
A, and log det(A) for positive definite A.

For a test vector w, k Lanczos steps from w / ||w|| give a tridiagonal T_k = V diag(theta) V^T,
and w^T f(A) w ~ ||w||^2 sum_j V_{1j}^2 f(theta_j), a k-point Gauss quadrature, exact for
polynomials f of degree < 2k. Averaging over test vectors gives tr f(A).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla

from .._budget import rows_within
from .._validation import check_choice, check_positive_int
from ._core import TraceResult, run, sample_error, setup

_FUNCTIONS = {
    "log": (np.log, True),
    "exp": (np.exp, False),
    "inv": (np.reciprocal, True),
    "sqrt": (np.sqrt, True),
}
_REORTH = ("full", "partial", "none")
#: Memory for the stored Lanczos bases of one block of test vectors.
_BASIS_BYTES = 2**28


def _resolve_function(f):
    if isinstance(f, str):
        if f not in _FUNCTIONS:
            raise ValueError(f"f must be a callable or one of {sorted(_FUNCTIONS)}, got {f!r}")
        return _FUNCTIONS[f]
    if not callable(f):
        raise TypeError(f"f must be a callable or a name, got {type(f).__name__}")
    return f, False


def lanczos(op, V, steps, reorth="full"):
    """Lanczos on the columns of V (n x b, unit norm) side by side, ``steps`` steps each.

    Returns (alpha, beta, lengths): column c's tridiagonal matrix has diagonal
    ``alpha[:lengths[c], c]`` and off-diagonal ``beta[:lengths[c] - 1, c]``. A column stops early
    when its Krylov space becomes invariant. ``reorth`` is "full" (Gram-Schmidt against the
    whole basis at every step, repeated when it cancels much), "partial" (Simon's omega
    recurrence monitors the loss of orthogonality and reorthogonalizes only when it exceeds
    sqrt(eps)) or "none".
    """
    n, b = V.shape
    eps = np.finfo(np.result_type(V.dtype, np.float32)).eps
    alpha, beta = np.zeros((steps, b)), np.zeros((steps, b))
    lengths = np.full(b, steps)
    active = np.ones(b, dtype=bool)
    basis = np.empty((b, steps, n), V.dtype) if reorth != "none" else None
    q, q_prev, tmp = np.ascontiguousarray(V), np.zeros_like(V), np.empty_like(V)
    beta_prev = np.zeros(b)
    omega, omega_prev = np.zeros((steps + 1, b)), np.zeros((steps + 1, b))
    omega[0] = 1.0
    force = np.zeros(b, dtype=bool)  # partial: reorthogonalize twice in a row
    norm_est = np.zeros(b)
    for j in range(steps):
        if basis is not None:
            basis[:, j] = q.T
        if active.all():
            w = np.ascontiguousarray(op.matmat(q))
        else:
            w = np.zeros_like(q)
            w[:, active] = op.matmat(q[:, active])
        a = np.einsum("ij,ij->j", q, w)
        alpha[j] = a
        w -= np.multiply(q, a, out=tmp)            # in place: no n x b temporaries per step
        w -= np.multiply(q_prev, beta_prev, out=tmp)
        if reorth == "full":
            _reorthogonalize(w, basis[:, :j + 1])
        bnorm = np.sqrt(np.einsum("ij,ij->j", w, w))
        if reorth == "partial":
            omega_next = _omega_step(omega, omega_prev, alpha, beta, bnorm, beta_prev, j, eps)
            lost = ((np.abs(omega_next[:j + 1]).max(axis=0) > math.sqrt(eps)) | force) & active
            for c in np.flatnonzero(lost):
                B, x = basis[c, :j + 1], w[:, c].copy()
                for _ in range(2):
                    x -= (B @ x) @ B
                w[:, c] = x
                bnorm[c] = np.linalg.norm(x)
            omega_next[:j + 1, lost] = eps
            force = lost & ~force
            omega_prev, omega = omega, omega_next
        beta[j] = bnorm
        norm_est = np.maximum(norm_est, np.abs(a) + bnorm + beta_prev)
        done = active & (bnorm <= 10 * eps * np.maximum(norm_est, np.finfo(float).tiny))
        lengths[done] = j + 1
        active &= ~done
        if not active.any() or j == steps - 1:
            break
        scale = np.where(active, 1.0 / np.where(active, bnorm, 1.0), 0.0)
        w *= scale                                  # becomes q_{j+1}; zero for stopped columns
        q_prev, q = q, w
        beta_prev = np.where(active, bnorm, 0.0)
    return alpha, beta, lengths


def _reorthogonalize(w, basis):
    """Classical Gram-Schmidt of every column c of w (n x b) against its own basis ``basis[c]``
    (b x steps x n) by batched matrix-vector products; a second pass only when the first
    cancelled much of a column ("twice is enough", Kahan-Parlett)."""
    wt = np.ascontiguousarray(w.T)[:, :, None]
    before = np.linalg.norm(wt, axis=1)
    wt -= np.matmul(basis.transpose(0, 2, 1), np.matmul(basis, wt))
    if np.any(np.linalg.norm(wt, axis=1) < 0.7 * before):
        wt -= np.matmul(basis.transpose(0, 2, 1), np.matmul(basis, wt))
    w[:] = wt[:, :, 0].T


def _omega_step(omega, omega_prev, alpha, beta, beta_j, beta_jm1, j, eps):
    """Simon's recurrence: estimates of q_{j+1}^T q_k, k <= j, from the tridiagonal entries."""
    out = np.zeros_like(omega)
    safe = np.where(beta_j > 0, beta_j, 1.0)
    if j > 0:
        k = np.arange(j)
        beta_km1 = np.vstack([np.zeros((1, beta.shape[1])), beta[:j - 1]])
        omega_km1 = np.vstack([np.zeros((1, omega.shape[1])), omega[:j - 1]])
        val = (beta[k] * omega[k + 1] + (alpha[k] - alpha[j]) * omega[k]
               + beta_km1 * omega_km1 - beta_jm1 * omega_prev[k])
        out[:j] = (val + np.sign(val) * 2 * eps * np.abs(beta_j)) / safe
    out[j] = eps * math.sqrt(omega.shape[0])
    out[j + 1] = 1.0
    return out


class _SLQ:
    def __init__(self, op, vectors, f, positive, degree, reorth):
        self.op, self.vectors, self.f, self.positive = op, vectors, f, positive
        self.degree, self.reorth = degree, reorth
        self.samples = np.empty(0)

    def grow(self, budget):
        n = self.op.shape[0]
        extra = budget // self.degree - len(self.samples)
        itemsize = np.dtype(self.op.dtype).itemsize
        stored = self.degree if self.reorth != "none" else 4   # basis, or q, q_prev, w, W
        width = rows_within(_BASIS_BYTES, stored * n * itemsize, total=32)
        while extra > 0:
            b = min(width, extra)
            W = self.vectors.draw(b)
            norms = np.linalg.norm(W, axis=0)
            alpha, beta, lengths = lanczos(self.op, W / norms, self.degree, self.reorth)
            values = [self._quadrature(alpha[:L, c], beta[:L - 1, c]) for c, L in
                      enumerate(lengths)]
            self.samples = np.concatenate([self.samples, norms ** 2 * np.array(values)])
            extra -= b

    def _quadrature(self, a, b):
        theta, V = sla.eigh_tridiagonal(a, b, check_finite=False)
        if self.positive and theta.min() <= 0:
            raise ValueError(f"A is not positive definite: Lanczos found the eigenvalue "
                             f"{theta.min():.3g} <= 0, outside the domain of f")
        values = np.asarray(self.f(theta), dtype=float)
        if values.shape != theta.shape:
            raise ValueError("f must map an array of eigenvalues to an array of the same shape")
        return float(np.sum(V[0] ** 2 * values))

    def estimate(self):
        return float(np.mean(self.samples)), sample_error(self.samples)


def slq(A, f, m=None, *, degree=30, tol=None, atol=None, reorth="full", sketch="rademacher",
        normalize=False, n=None, rng=None):
    """Stochastic Lanczos quadrature: an estimate of tr f(A) for symmetric A.

    Parameters
    ----------
    A : ndarray, scipy.sparse matrix, LinearOperator or callable, shape (n, n)
        Real symmetric A, or a function ``x -> A @ x`` for vectors of length ``n``.
    f : callable or {"log", "exp", "inv", "sqrt"}
        Applied to arrays of Ritz values. "log", "inv" and "sqrt" need A positive definite.
    m : int, optional
        Products with A to spend: ``m // degree`` test vectors of ``degree`` Lanczos steps each
        (fewer when a Krylov space becomes invariant). With ``tol``/``atol``, the cap
        (default ``degree * n``).
    degree : int
        Lanczos steps (quadrature nodes) per test vector.
    tol, atol : float, optional
        Adaptive mode: add test vectors until the standard error is at most
        ``max(atol, tol * |estimate|)``.
    reorth : {"full", "partial", "none"}
        Reorthogonalization of the Lanczos vectors (see :func:`lanczos`). "none" stores no basis.
    sketch, normalize, n, rng
        As for :func:`hutchinson`.

    Returns
    -------
    TraceResult
        ``.error`` is the Monte Carlo standard error over test vectors; it does not include
        the quadrature error, which decays fast in ``degree`` for smooth f.

    Examples
    --------
    >>> import numpy as np, randla.trace as rt
    >>> G = np.random.default_rng(0).standard_normal((200, 200))
    >>> A = G @ G.T / 200 + np.eye(200)
    >>> t = rt.slq(A, "log", 600, degree=20, rng=0)
    >>> exact = np.linalg.slogdet(A)[1]
    >>> t.matvecs, bool(abs(t - exact) < 4 * t.error + 1e-6 * exact)
    (600, True)
    """
    func, positive = _resolve_function(f)
    check_choice(reorth, "reorth", _REORTH)
    degree = check_positive_int(degree, "degree")
    op, vectors, m, adaptive = setup(A, m, tol, atol, n, sketch, normalize, rng, 1,
                                     symmetric=True, default_cap=lambda size: degree * size,
                                     default_budget=lambda size: degree * min(size, 20))
    if m < degree:
        raise ValueError(f"m must be >= degree = {degree} (one test vector), got {m}")
    state = _SLQ(op, vectors, func, positive, min(degree, op.shape[0]), reorth)
    est, err = run(state, m, adaptive, tol, atol, first=8 * degree)
    return TraceResult(est, err, op.matvecs, "slq" if not isinstance(f, str) else f"slq-{f}")


def logdet(A, m=None, *, degree=30, tol=None, atol=None, reorth="full", sketch="rademacher",
           normalize=False, n=None, rng=None):
    """log det(A) of a symmetric positive definite A, by stochastic Lanczos quadrature:
    ``slq(A, "log", ...)``; see :func:`slq` for the parameters.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, randla.trace as rt
    >>> L = sp.diags([-1.0, 2.5, -1.0], [-1, 0, 1], shape=(500, 500))
    >>> t = rt.logdet(L, 300, rng=0)
    >>> exact = np.linalg.slogdet(L.toarray())[1]
    >>> bool(abs(t - exact) < 0.01 * exact)
    True
    """
    result = slq(A, "log", m, degree=degree, tol=tol, atol=atol, reorth=reorth, sketch=sketch,
                 normalize=normalize, n=n, rng=rng)
    return TraceResult(float(result), result.error, result.matvecs, "logdet")
