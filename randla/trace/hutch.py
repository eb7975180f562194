"""Hutchinson's estimator and its variance-reduced successors: Hutch++ (adaptive and
non-adaptive, Meyer-Musco-Musco-Woodruff 2021) and Nystrom++ (Persson-Cortinovis-Kressner 2022),
and Hutchinson's diagonal estimator (Bekas-Kokiopoulou-Saad 2007)."""
from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla

from .._validation import check_unit_interval
from ._core import DiagResult, chunks, ct, finish, rowdot, run, sample_error, setup

_COMMON = """    A : ndarray, scipy.sparse matrix, LinearOperator or callable, shape (n, n)
        A real square matrix, or a function ``x -> A @ x`` for vectors of length ``n``.
    m : int, optional
        Number of products with A to spend. With ``tol``/``atol`` it is the cap (default n);
        with neither, min(n, 100).
    tol, atol : float, optional
        Adaptive mode: stop when the estimator's own error estimate is at most
        ``max(atol, tol * |estimate|)``; the budget grows by doubling.
    sketch : str, Sketcher or factory
        Where the test vectors come from: a name of :func:`randla.sketch.available` (columns of
        ``sqrt(d) S^T``, so that E[w w^T] = I), "sphere" (Gaussian vectors of norm sqrt(n)), a
        factory, or a Sketcher instance whose rows are the only test vectors used.
    normalize : bool
        Scale every test vector to norm sqrt(n).
    n : int, optional
        Size of A; required when A is a callable.
    rng : None, int or numpy.random.Generator"""


_EXAMPLE = """    >>> import numpy as np, randla.trace as rt
    >>> U = np.linalg.qr(np.random.default_rng(0).standard_normal((200, 200)))[0]
    >>> A = (U * 0.9 ** np.arange(200)) @ U.T"""


def _doc(func):
    """Fill the parameters and the example matrix shared by every estimator's docstring."""
    func.__doc__ = func.__doc__.replace("    {common}", _COMMON).replace("    {example}", _EXAMPLE)
    return func


def _quadratic_forms(op, vectors, k):
    """k samples w^T A w (real part), drawn in memory-bounded blocks."""
    out = []
    for width in chunks(k, op.shape[0]):
        omega = vectors.draw(width)
        out.append(rowdot(omega, op.matmat(omega)).real)
    return np.concatenate(out) if out else np.empty(0)


class _Hutchinson:
    def __init__(self, op, vectors):
        self.op, self.vectors, self.samples = op, vectors, np.empty(0)

    def grow(self, budget):
        extra = budget - len(self.samples)
        if extra > 0:
            self.samples = np.concatenate([self.samples,
                                           _quadratic_forms(self.op, self.vectors, extra)])

    def estimate(self):
        return float(np.mean(self.samples)), sample_error(self.samples)


@_doc
def hutchinson(A, m=None, *, tol=None, atol=None, sketch="rademacher", normalize=False,
               n=None, rng=None):
    """Hutchinson's estimator: tr(A) ~ mean of w_i^T A w_i over m test vectors.

    Unbiased; its variance is 2 ||A||_F^2 / m for Gaussian and
    2 (||A||_F^2 - sum a_ii^2) / m for Rademacher vectors (A symmetric).

    Parameters
    ----------
    {common}

    Returns
    -------
    TraceResult
        A float with ``.error`` (standard error of the sample mean) and ``.matvecs``.

    Examples
    --------
    >>> import numpy as np, randla.trace as rt
    >>> G = np.random.default_rng(0).standard_normal((300, 300))
    >>> A = G @ G.T
    >>> t = rt.hutchinson(A, 100, rng=1)
    >>> t.matvecs, abs(t - np.trace(A)) < 4 * t.error
    (100, True)
    """
    op, vectors, m, adaptive = setup(A, m, tol, atol, n, sketch, normalize, rng, 2)
    state = _Hutchinson(op, vectors)
    return finish(state, m, adaptive, tol, atol, 16, "hutchinson")


class _HutchPP:
    """Adaptive Hutch++: Q spans A S; exact trace on range(Q), Hutchinson on the rest.
    Not extendable (A Q changes with Q), so a larger budget starts over."""

    restarts = True

    def __init__(self, op, vectors):
        self.op, self.vectors, self.budget = op, vectors, 0

    def grow(self, budget):
        if budget <= self.budget:
            return
        self.budget = budget
        k = budget // 3
        l = budget - 2 * k
        Q = sla.qr(self.op.matmat(self.vectors.draw(k)), mode="economic")[0]
        low = np.trace(ct(Q) @ self.op.matmat(Q)).real
        G = self.vectors.draw(l)
        G = G - Q @ (ct(Q) @ G)
        self.result = low, rowdot(G, self.op.matmat(G)).real

    def estimate(self):
        low, samples = self.result
        return float(low + np.mean(samples)), sample_error(samples)


@_doc
def hutchpp(A, m=None, *, tol=None, atol=None, sketch="rademacher", normalize=False, n=None,
            rng=None):
    """Hutch++: m/3 products find the dominant range Q, m/3 give tr(Q^T A Q) exactly and m/3
    run Hutchinson on the deflated (I - QQ^T) A (I - QQ^T). Error ~ 1/m instead of 1/sqrt(m)
    for matrices with decaying spectra.

    Parameters
    ----------
    {common}

    Returns
    -------
    TraceResult
        ``.error`` is the standard error of the Hutchinson part. In adaptive mode each doubling
        starts over (A Q cannot be reused): the products of the earlier rounds count against
        the cap ``m``.

    Examples
    --------
    {example}
    >>> t = rt.hutchpp(A, 60, sketch="gaussian", rng=0)
    >>> bool(abs(t - np.trace(A)) < 0.05 * np.trace(A))
    True
    """
    op, vectors, m, adaptive = setup(A, m, tol, atol, n, sketch, normalize, rng, 3)
    state = _HutchPP(op, vectors)
    return finish(state, m, adaptive, tol, atol, 24, "hutchpp")


class _NAHutchPP:
    """NA-Hutch++: all products are independent of each other (one pass), so budgets extend."""

    def __init__(self, op, vectors, c1, c2):
        self.op, self.vectors, self.c = op, vectors, (c1, c2)
        n = op.shape[0]
        self.S = self.W = self.R = self.Z = self.G = self.AG = np.zeros((n, 0), op.dtype)

    def grow(self, budget):
        k1 = max(1, round(budget * self.c[0]))
        k2 = max(1, round(budget * self.c[1]))
        l = budget - k1 - k2
        if l < 1:
            raise ValueError(f"m={budget} leaves no products for the Hutchinson part")
        for name, image, k, adjoint in (("S", "W", k1, True), ("R", "Z", k2, False),
                                        ("G", "AG", l, False)):
            extra = k - getattr(self, name).shape[1]
            if extra > 0:
                X = self.vectors.draw(extra)
                AX = self.op.rmatmat(X) if adjoint else self.op.matmat(X)
                setattr(self, name, np.hstack([getattr(self, name), X]))
                setattr(self, image, np.hstack([getattr(self, image), AX]))

    def estimate(self):
        # A_hat = Z (S^H Z)^+ W^H with Z = A R, W = A^H S: a two-sided sketch of A.
        # the cutoff of the working precision: float64's (numpy's default) keeps the rounding
        # noise of float32 products as signal (rank-5 A, float32: 5e-2 error instead of 1e-7)
        core = ct(self.S) @ self.Z
        X = np.linalg.pinv(core, rcond=max(core.shape) * np.finfo(core.dtype).eps * 10)
        low = np.trace(X @ (ct(self.W) @ self.Z)).real
        GZ = ct(self.G) @ self.Z
        WG = ct(self.W) @ self.G
        samples = (rowdot(self.G, self.AG) - np.einsum("ij,jk,ki->i", GZ, X, WG)).real
        return float(low + np.mean(samples)), sample_error(samples)


@_doc
def na_hutchpp(A, m=None, *, tol=None, atol=None, sketch="rademacher", normalize=False,
               n=None, symmetric=False, c1=1 / 6, c2=1 / 3, rng=None):
    """Non-adaptive Hutch++: every product with A can be computed at once (a single pass).

    ``c1 m`` products sketch A^T (S), ``c2 m`` sketch A (R) and the rest run Hutchinson on
    A - A R (S^T A R)^+ S^T A. The defaults c1 = 1/6, c2 = 1/3 are those of pylops.

    Parameters
    ----------
    {common}
    symmetric : bool
        A is symmetric: products with A^T are taken as products with A (needed when A is a
        callable without a transpose).
    c1, c2 : float
        Fractions of the budget for the two sketches, 0 < c1, c2 and c1 + c2 < 1.

    Returns
    -------
    TraceResult

    Examples
    --------
    {example}
    >>> t = rt.na_hutchpp(A, 120, sketch="gaussian", rng=0)
    >>> bool(abs(t - np.trace(A)) < 0.05 * np.trace(A))
    True
    """
    c1, c2 = check_unit_interval(c1, "c1"), check_unit_interval(c2, "c2")
    if c1 + c2 >= 1:
        raise ValueError(f"c1 + c2 must be < 1, got {c1 + c2}")
    op, vectors, m, adaptive = setup(A, m, tol, atol, n, sketch, normalize, rng, 3,
                                     symmetric=symmetric)
    state = _NAHutchPP(op, vectors, c1, c2)
    return finish(state, m, adaptive, tol, atol, 24, "na_hutchpp")


def nystrom_factor(Omega, Y):
    """B with B B^T the Nystrom approximation of A + nu I from Y = A Omega, and the shift nu.

    The small shift nu (eps ||Y||_F) keeps the Cholesky factorization of Omega^T (A + nu I) Omega
    stable (Tropp-Yurtsever-Udell-Cevher 2017); a failure means A is not PSD. Y = 0 (A = 0 on
    the test vectors) gives B = 0 and no factor C (None): there is no core to factor."""
    eps = np.finfo(np.result_type(Y.dtype, np.float32)).eps
    nu = eps * np.linalg.norm(Y)
    if nu == 0:
        return np.zeros_like(Y), None, 0.0
    Y_nu = Y + nu * Omega
    G = ct(Omega) @ Y_nu
    try:
        C = sla.cholesky((G + ct(G)) / 2, lower=False, check_finite=False)
    except np.linalg.LinAlgError:
        raise ValueError("A does not appear to be positive semidefinite (the Nystrom core "
                         "Omega^T A Omega is not positive definite)") from None
    B = sla.solve_triangular(C, ct(Y_nu), trans="C", lower=False, check_finite=False)
    return ct(B), C, nu


def check_psd_samples(omega, A_omega, forms):
    """Raise when some w^T A w is clearly negative (A is not PSD)."""
    eps = np.finfo(np.result_type(A_omega.dtype, np.float32)).eps
    scale = np.linalg.norm(omega, axis=0) * np.linalg.norm(A_omega, axis=0)
    if np.any(forms < -100 * eps * scale):
        raise ValueError("A is not positive semidefinite: w^T A w < 0 for a test vector w")


class _NystromPP:
    def __init__(self, op, vectors):
        self.op, self.vectors = op, vectors
        n = op.shape[0]
        self.Omega = self.Y = self.Psi = self.APsi = np.zeros((n, 0), op.dtype)

    def grow(self, budget):
        k = budget // 2
        for name, image, size in (("Omega", "Y", k), ("Psi", "APsi", budget - k)):
            extra = size - getattr(self, name).shape[1]
            if extra > 0:
                X = self.vectors.draw(extra)
                AX = self.op.matmat(X)
                check_psd_samples(X, AX, rowdot(X, AX).real)
                setattr(self, name, np.hstack([getattr(self, name), X]))
                setattr(self, image, np.hstack([getattr(self, image), AX]))

    def estimate(self):
        B, _, nu = nystrom_factor(self.Omega, self.Y)
        n = self.Omega.shape[0]
        forms = rowdot(self.Psi, self.APsi).real + nu * np.linalg.norm(self.Psi, axis=0) ** 2
        samples = forms - np.linalg.norm(ct(B) @ self.Psi, axis=0) ** 2
        low = np.linalg.norm(B) ** 2 - n * nu
        return float(low + np.mean(samples)), sample_error(samples)


@_doc
def nystrompp(A, m=None, *, tol=None, atol=None, sketch="gaussian", normalize=False, n=None,
              rng=None):
    """Nystrom++ for positive semidefinite A: m/2 products build a Nystrom approximation
    A_hat = Y (Omega^T Y)^+ Y^T (Y = A Omega), whose trace is exact, and m/2 run Hutchinson on
    A - A_hat. Needs half the products of Hutch++ for the low-rank part.

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
    >>> t = rt.nystrompp(A, 60, rng=0)
    >>> bool(abs(t - np.trace(A)) < 0.05 * np.trace(A))
    True
    """
    op, vectors, m, adaptive = setup(A, m, tol, atol, n, sketch, normalize, rng, 3)
    state = _NystromPP(op, vectors)
    return finish(state, m, adaptive, tol, atol, 16, "nystrompp")


class _DiagHutchinson:
    def __init__(self, op, vectors):
        self.op, self.vectors, self.k = op, vectors, 0
        n = op.shape[0]
        self.num, self.den, self.num2, self.cross, self.den2 = (np.zeros(n) for _ in range(5))

    def grow(self, budget):
        extra = budget - self.k
        for width in chunks(max(0, extra), self.op.shape[0]):
            omega = self.vectors.draw(width)
            x = (omega.conj() * self.op.matmat(omega)).real
            w = np.abs(omega) ** 2
            self.num += x.sum(1)
            self.den += w.sum(1)
            self.num2 += (x * x).sum(1)
            self.cross += (x * w).sum(1)
            self.den2 += (w * w).sum(1)
            self.k += width

    def estimate(self):
        d = self.num / self.den
        # Delta-method variance of the ratio estimator sum x / sum w, entry by entry.
        resid2 = np.maximum(self.num2 - 2 * d * self.cross + d * d * self.den2, 0.0)
        var = resid2 / self.den ** 2 * self.k / max(1, self.k - 1)
        return d, float(math.sqrt(var.sum())) if self.k > 1 else math.nan


@_doc
def diag_hutchinson(A, m=None, *, tol=None, atol=None, sketch="rademacher", normalize=False,
                    n=None, rng=None):
    """Hutchinson's diagonal estimator: diag(A) ~ sum_i w_i * (A w_i) / sum_i w_i * w_i.

    Parameters
    ----------
    {common}

    Returns
    -------
    DiagResult
        ``estimate`` (length-n array in A's precision), ``error`` (an estimate of
        ``||estimate - diag(A)||_2``; the stopping rule compares it with
        ``tol * ||estimate||_2``) and ``matvecs``.

    Examples
    --------
    >>> import numpy as np, randla.trace as rt
    >>> A = np.diag(np.arange(1.0, 6.0)) + 0.01
    >>> d = rt.diag_hutchinson(A, 200, rng=0)
    >>> bool(np.allclose(d.estimate, np.diag(A), atol=0.01))
    True
    """
    op, vectors, m, adaptive = setup(A, m, tol, atol, n, sketch, normalize, rng, 2)
    state = _DiagHutchinson(op, vectors)
    est, err = run(state, m, adaptive, tol, atol, first=16)
    return DiagResult(est.astype(op.dtype, copy=False), err, op.matvecs)
