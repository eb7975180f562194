"""Randomized Nystrom approximation of PSD matrices and Nystrom-preconditioned CG.

- :func:`nystrom`: the numerically stable (shifted) randomized Nystrom approximation of
  Tropp, Yurtsever, Udell and Cevher, "Fixed-rank approximation of a positive-semidefinite
  matrix from streaming data" (NeurIPS 2017), Algorithm 3.
- :func:`nystrom_pcg`: conjugate gradients on (A + mu I) x = b preconditioned by a Nystrom
  approximation whose rank is chosen adaptively from the effective dimension (Frangella, Tropp
  and Udell, "Randomized Nystrom preconditioning", SIMAX 2023).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
import scipy.sparse.linalg as spla

from . import sketch as _sketch
from ._validation import check_positive_int, check_random_state, real_dtype, seed_from_rng
from .operators import as_operator


@dataclass
class NystromApprox:
    """A PSD low-rank approximation ``A_hat = U diag(eigvals) U^H``.

    Attributes
    ----------
    U : ndarray, shape (n, k)
        Orthonormal columns.
    eigvals : ndarray, shape (k,)
        Non-negative, descending.

    The object multiplies (``A_hat @ x``) and solves ``(A_hat + mu I) x = b`` in O(nk) work per
    right-hand side (:meth:`solve`); :meth:`preconditioner` gives the Nystrom preconditioner
    of Frangella et al.
    """

    U: np.ndarray
    eigvals: np.ndarray

    __array_ufunc__ = None

    @property
    def shape(self):
        n = self.U.shape[0]
        return (n, n)

    @property
    def rank(self) -> int:
        return self.eigvals.shape[0]

    def __matmul__(self, x):
        x = np.asarray(x)
        coef = self.eigvals[:, None] * (self.U.conj().T @ x.reshape(x.shape[0], -1))
        return (self.U @ coef).reshape((self.U.shape[0],) + x.shape[1:])

    def to_dense(self) -> np.ndarray:
        return (self.U * self.eigvals) @ self.U.conj().T

    def solve(self, b, mu):
        """x = (A_hat + mu I)^{-1} b for mu > 0 (b a vector or a block of vectors)."""
        mu = _check_mu(mu)
        b = np.asarray(b)
        flat = b.reshape(b.shape[0], -1)
        coef = self.U.conj().T @ flat
        scale = (1.0 / (self.eigvals + mu) - 1.0 / mu)[:, None]
        x = flat / mu + self.U @ (scale * coef)
        return x.reshape(b.shape)

    def preconditioner(self, mu):
        """The inverse Nystrom preconditioner as a LinearOperator:
        P^{-1} = (lambda_k + mu) U (Lambda + mu I)^{-1} U^H + (I - U U^H)."""
        mu = _check_mu(mu)
        lam_k = self.eigvals[-1] if self.rank else 0.0
        scale = (lam_k + mu) / (self.eigvals + mu) - 1.0

        def apply(x):
            x = np.asarray(x)
            flat = x.reshape(x.shape[0], -1)
            out = flat + self.U @ (scale[:, None] * (self.U.conj().T @ flat))
            return out.reshape(x.shape)

        n = self.U.shape[0]
        return spla.LinearOperator((n, n), matvec=apply, matmat=apply, rmatvec=apply,
                                   rmatmat=apply, dtype=self.U.dtype)

    def effective_dimension(self, mu) -> float:
        """sum_i eigvals_i / (eigvals_i + mu): the effective dimension of A_hat at mu."""
        mu = _check_mu(mu)
        return float(np.sum(self.eigvals / (self.eigvals + mu)))


def _check_mu(mu):
    if isinstance(mu, bool) or not isinstance(mu, numbers.Real) or not np.isfinite(mu) or mu <= 0:
        raise ValueError(f"mu must be a positive finite number, got {mu!r}")
    return float(mu)


def _check_square(op, name="A"):
    n, m = op.shape
    if n != m:
        raise ValueError(f"{name} must be square (PSD), got shape {op.shape}")
    return n


def nystrom(A, k, *, rank=None, sketch="gaussian", rng=None) -> NystromApprox:
    """Stable randomized Nystrom approximation of a positive semidefinite matrix.

    With a test matrix Omega (n x k), the sketch Y = A Omega is taken of the shifted matrix
    A + nu I (nu = sqrt(n) eps ||Y||_F), whose Nystrom approximation is formed through a
    Cholesky factor of Omega^H Y_nu and an SVD; the shift is then removed and the (tiny)
    negative eigenvalues it leaves are clipped to zero. One product with A (k columns).

    Parameters
    ----------
    A : ndarray, sparse matrix or LinearOperator (e.g. :class:`~randla.KernelMatrix`), (n, n)
        Positive semidefinite (Hermitian). Only products ``A @ X`` are used.
    k : int
        Sketch size, 1 <= k <= n.
    rank : int, optional
        Truncate the approximation to this rank (<= k). The truncated approximation obeys
        E||A - [A_hat]_r||_* <= (1 + r / (k - r - 1)) ||A - [A]_r||_*. Default: k.
    sketch : str or Sketcher
        Name of a sketch (``randla.sketch.available()``) or a Sketcher S of shape (k, n);
        Omega = S^T.
    rng : None, int or numpy.random.Generator

    Returns
    -------
    NystromApprox
        ``U`` (n x rank, orthonormal) and ``eigvals`` (descending, >= 0), float32 kept.

    Examples
    --------
    >>> import numpy as np, randla
    >>> G = np.random.default_rng(0).standard_normal((300, 5))
    >>> A = G @ G.T                                  # PSD of rank 5
    >>> approx = randla.nystrom(A, 10, rng=0)
    >>> approx.U.shape, bool(np.allclose(approx.to_dense(), A))
    ((300, 10), True)
    """
    op = as_operator(A)
    n = _check_square(op)
    k = check_positive_int(k, "k")
    if k > n:
        raise ValueError(f"k must be <= n = {n}, got {k}")
    rank = k if rank is None else check_positive_int(rank, "rank")
    if rank > k:
        raise ValueError(f"rank must be <= k = {k}, got {rank}")
    S = _sketch.resolve(sketch, k, n, rng=rng, dtype=real_dtype(op.dtype))
    Y = np.asarray(op.sketch_right(S))
    Omega = S.to_dense(S.dtype_for(op.dtype)).T
    return _nystrom_from_sketch(Omega, Y, rank)


def _nystrom_from_sketch(Omega, Y, rank, eigvals_only=False):
    """The shifted Nystrom approximation from the test matrix Omega and the sketch Y = A Omega
    (with ``eigvals_only``, just its eigenvalues, from the small Gram matrix E^H E)."""
    n = Y.shape[0]
    dtype = np.result_type(Y.dtype, Omega.dtype)
    Y = Y.astype(dtype, copy=False)
    eps = np.finfo(real_dtype(dtype)).eps
    nu = float(np.sqrt(n) * eps * np.linalg.norm(Y))  # a Python float keeps float32
    if nu == 0:  # A Omega = 0: the approximation is zero
        U = np.linalg.qr(Omega.astype(dtype))[0][:, :rank]
        return NystromApprox(U, np.zeros(rank, dtype=real_dtype(dtype)))
    Y_nu = Y + nu * Omega
    B = Omega.conj().T @ Y_nu
    B = 0.5 * (B + B.conj().T)
    C = None
    for _ in range(8):
        try:
            C = sla.cholesky(B, lower=False, check_finite=False)
            break
        except np.linalg.LinAlgError:
            # Rounding made Omega^H Y_nu indefinite: grow the shift past its smallest eigenvalue.
            extra = float(max(-np.linalg.eigvalsh(B)[0], nu)) * 2.0
            nu += extra
            Y_nu = Y_nu + extra * Omega
            B = B + extra * (Omega.conj().T @ Omega)
    if C is None:
        raise np.linalg.LinAlgError("Nystrom: the shifted core matrix is not positive definite")
    E = sla.solve_triangular(C, Y_nu.T, trans="T", lower=False, check_finite=False).T \
        if dtype.kind != "c" else Y_nu @ sla.solve_triangular(C, np.eye(C.shape[0], dtype=dtype),
                                                             check_finite=False)
    if eigvals_only:
        s2 = np.linalg.eigvalsh(E.conj().T @ E)[::-1]
        return np.maximum(s2[:rank] - nu, 0.0)
    U, s, _ = sla.svd(E, full_matrices=False, check_finite=False)
    eigvals = np.maximum(s[:rank] ** 2 - nu, 0.0).astype(real_dtype(dtype), copy=False)
    return NystromApprox(U[:, :rank], eigvals)


@dataclass
class PCGResult:
    """Result of :func:`nystrom_pcg`.

    Attributes
    ----------
    x : ndarray
        The solution of (A + mu I) x = b.
    iterations : int
        CG iterations taken.
    converged : bool
        Whether the relative residual reached ``tol``.
    residuals : list of float
        Relative residual norm ||b - (A + mu I) x|| / ||b|| after each iteration.
    preconditioner : NystromApprox or None
        The Nystrom approximation used (None for plain CG).
    """

    x: np.ndarray
    iterations: int
    converged: bool
    residuals: list = field(default_factory=list)
    preconditioner: NystromApprox | None = None


def nystrom_pcg(A, b, mu, *, rank=None, tol=1e-8, maxiter=None, x0=None, initial_rank=16,
                max_rank=None, sketch="gaussian", rng=None) -> PCGResult:
    """Solve (A + mu I) x = b by conjugate gradients with the Nystrom preconditioner.

    The preconditioner is the stable Nystrom approximation A_hat = U diag(lambda) U^H of rank
    l, applied as P^{-1} = (lambda_l + mu) U (Lambda + mu I)^{-1} U^H + (I - U U^H). With
    l ~ 2 * 1.5 * d_eff(mu) the preconditioned condition number is below 28 in expectation
    (Frangella, Tropp and Udell 2023), so CG converges in a few tens of iterations whatever the
    spectrum of A.

    Parameters
    ----------
    A : ndarray, sparse matrix or LinearOperator, shape (n, n)
        Positive semidefinite.
    b : array, shape (n,)
    mu : float
        Regularization, > 0.
    rank : int, optional
        Preconditioner rank. Default: adaptive. Starting from ``initial_rank`` the sketch is
        doubled (new sketch columns are appended, nothing is recomputed) until the rank is at
        least 2 * ceil(1.5 * d_eff) + 1, where d_eff = sum lambda_i / (lambda_i + mu) is the
        effective dimension estimated from the current approximation (the rank of Frangella
        et al.'s bound), or until lambda_l <= mu (every eigenvalue the preconditioner leaves out
        is below mu, so the preconditioned condition number is about 1 + (lambda_l + ||A -
        A_hat||) / mu, a few units: in practice the earlier of the two), or ``max_rank`` is
        reached. ``rank=0`` runs plain CG.
    tol : float
        Relative residual tolerance ||b - (A + mu I) x|| <= tol ||b||.
    maxiter : int, optional
        Default 10 n.
    x0 : array, optional
        Starting guess (zero by default).
    initial_rank, max_rank : int
        Bounds of the adaptive rank (``max_rank`` defaults to min(n, 2000)).
    sketch : str or Sketcher factory
    rng : None, int or numpy.random.Generator

    Returns
    -------
    PCGResult

    Examples
    --------
    >>> import numpy as np, randla
    >>> rng = np.random.default_rng(0)
    >>> Q = np.linalg.qr(rng.standard_normal((400, 400)))[0]
    >>> A = (Q * 0.7 ** np.arange(400)) @ Q.T        # fast spectral decay
    >>> b = rng.standard_normal(400)
    >>> res = randla.nystrom_pcg(A, b, 1e-6, rng=0)
    >>> res.converged, bool(np.allclose(A @ res.x + 1e-6 * res.x, b, atol=1e-6))
    (True, True)
    """
    op = as_operator(A)
    n = _check_square(op)
    mu = _check_mu(mu)
    b = np.asarray(b)
    if b.shape != (n,):
        raise ValueError(f"b must have shape ({n},), got {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError("b contains NaN or Inf")
    b = b.astype(np.result_type(b.dtype, op.dtype), copy=False)
    if not (isinstance(tol, numbers.Real) and 0 < tol < 1):
        raise ValueError(f"tol must be in (0, 1), got {tol!r}")
    maxiter = 10 * n if maxiter is None else check_positive_int(maxiter, "maxiter")
    if rank is None:
        max_rank = min(n, 2000) if max_rank is None else check_positive_int(max_rank, "max_rank")
        approx = _adaptive_nystrom(op, mu, min(check_positive_int(initial_rank, "initial_rank"),
                                                max_rank), max_rank, sketch, rng)
    else:
        rank = check_positive_int(rank, "rank", minimum=0)
        if rank > n:
            raise ValueError(f"rank must be <= n = {n}, got {rank}")
        approx = nystrom(op, rank, sketch=sketch, rng=rng) if rank else None
    M = approx.preconditioner(mu) if approx is not None else None
    x, it, ok, res = conjugate_gradients(lambda v: op.matmat(v[:, None])[:, 0] + mu * v, b,
                                         M=M, tol=tol, maxiter=maxiter, x0=x0)
    return PCGResult(x, it, ok, res, approx)


#: The adaptive rank stops growing once lambda_l <= _LAMBDA_RATIO * mu: then the preconditioned
#: condition number is about 1 + (lambda_l + ||A - A_hat||) / mu, a few units. (A ratio of 10
#: halves the rank but doubles or triples the iterations: measured on rbf kernel systems.)
_LAMBDA_RATIO = 1.0


def _adaptive_nystrom(op, mu, ell, max_rank, sketch, rng):
    """Double the sketch until its rank covers the effective dimension it estimates."""
    n = op.shape[0]
    gen = check_random_state(rng)
    dtype = real_dtype(op.dtype)
    Omegas, Ys = [], []
    have = 0
    while True:
        S = _sketch.resolve(sketch, ell - have, n, rng=seed_from_rng(gen), dtype=dtype)
        Ys.append(np.asarray(op.sketch_right(S)))
        Omegas.append(S.to_dense(S.dtype_for(op.dtype)).T)
        have = ell
        Omega, Y = np.hstack(Omegas), np.hstack(Ys)
        lam = _nystrom_from_sketch(Omega, Y, ell, eigvals_only=True)
        d_eff = float(np.sum(lam / (lam + mu)))
        if ell >= 2 * np.ceil(1.5 * d_eff) + 1 or lam[-1] <= _LAMBDA_RATIO * mu \
                or ell >= max_rank:
            return _nystrom_from_sketch(Omega, Y, ell)
        ell = min(2 * ell, max_rank)


def conjugate_gradients(matvec, b, *, M=None, tol=1e-8, maxiter=None, x0=None):
    """(Preconditioned) conjugate gradients for a Hermitian positive definite system.

    Returns ``(x, iterations, converged, residuals)`` with the relative residual norms of the
    recursively updated residual after each iteration.
    """
    n = b.shape[0]
    maxiter = 10 * n if maxiter is None else maxiter
    dtype = np.result_type(b.dtype, np.float32)
    x = np.zeros(n, dtype=dtype) if x0 is None else np.array(x0, dtype=dtype)
    r = b - matvec(x) if x0 is not None else b.astype(dtype, copy=True)
    bnorm = np.linalg.norm(b)
    if bnorm == 0:
        return np.zeros(n, dtype=dtype), 0, True, []
    z = M @ r if M is not None else r
    p = z.copy()
    rz = np.vdot(r, z)
    residuals = []
    for it in range(1, maxiter + 1):
        Ap = matvec(p)
        alpha = rz / np.vdot(p, Ap)
        x += alpha * p
        r -= alpha * Ap
        rel = float(np.linalg.norm(r) / bnorm)
        residuals.append(rel)
        if rel <= tol:
            return x, it, True, residuals
        z = M @ r if M is not None else r
        rz_new = np.vdot(r, z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x, maxiter, False, residuals
