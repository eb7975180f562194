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
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
import scipy.sparse.linalg as spla

from .. import sketch as _sketch
from .._validation import (
    check_positive_int,
    check_random_state,
    check_rank,
    check_square,
    check_unit_interval,
    real_dtype,
    seed_from_rng,
)
from ..operators import as_operator
from ..solvers import conjugate_gradients


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


def nystrom(A, k, *, sketch_size=None, sketch="gaussian", rng=None, rank=None) -> NystromApprox:
    """Stable randomized Nystrom approximation of rank k of a positive semidefinite matrix.

    With a test matrix Omega (n x l, l the sketch size), the sketch Y = A Omega is taken of the
    shifted matrix A + nu I (nu = sqrt(n) eps ||Y||_F), whose Nystrom approximation is formed
    through a Cholesky factor of Omega^H Y_nu and an SVD; the shift is then removed, the (tiny)
    negative eigenvalues it leaves are clipped to zero, and the result is truncated to rank k.
    One product with A (l columns).

    Parameters
    ----------
    A : ndarray, sparse matrix or LinearOperator (e.g. :class:`~randla.KernelMatrix`), (n, n)
        Positive semidefinite (Hermitian). Only products ``A @ X`` are used.
    k : int
        Rank of the approximation, 1 <= k <= n.
    sketch_size : int, optional
        l, the columns of the test matrix, k <= l <= n. Default: k, or the rows of a Sketcher
        passed as ``sketch``. Oversampling pays: the rank-k truncation of a sketch of size l obeys
        E||A - [A_hat]_k||_* <= (1 + k / (l - k - 1)) ||A - [A]_k||_*.
    sketch : str or Sketcher
        Name of a sketch (``randla.sketch.available()``) or a Sketcher S of shape (l, n);
        Omega = S^T.
    rng : None, int or numpy.random.Generator
    rank : int, optional
        Deprecated (the old meaning of ``k`` was the sketch size): ``nystrom(A, l, rank=k)`` is
        ``nystrom(A, k, sketch_size=l)``.

    Returns
    -------
    NystromApprox
        ``U`` (n x k, orthonormal) and ``eigvals`` (descending, >= 0), float32 kept.

    Examples
    --------
    >>> import numpy as np, randla
    >>> G = np.random.default_rng(0).standard_normal((300, 5))
    >>> A = G @ G.T                                  # PSD of rank 5
    >>> approx = randla.nystrom(A, 5, sketch_size=10, rng=0)
    >>> approx.U.shape, bool(np.allclose(approx.to_dense(), A))
    ((300, 5), True)
    """
    op = as_operator(A)
    n = check_square(op.shape, what="PSD")
    if rank is not None:
        warnings.warn("nystrom(A, l, rank=k) is deprecated: k is now the rank, write "
                      "nystrom(A, k, sketch_size=l)", DeprecationWarning, stacklevel=2)
        k, sketch_size = rank, k
        check_rank(sketch_size, "sketch_size", n, n)
    k = check_rank(k, "k", n, n)
    if sketch_size is None:
        sketch_size = sketch.shape[0] if isinstance(sketch, _sketch.Sketcher) else k
    sketch_size = check_rank(sketch_size, "sketch_size", n, n)
    if sketch_size < k:
        raise ValueError(f"sketch_size must be >= k = {k} (the rank), got {sketch_size}")
    S = _sketch.resolve(sketch, sketch_size, n, rng=rng, dtype=real_dtype(op.dtype))
    Y = np.asarray(op.sketch_right(S))
    Omega = S.to_dense(S.dtype_for(op.dtype)).T
    return _nystrom_from_sketch(Omega, Y, k)


def _check_psd_core(Omega, Y, eps):
    """Refuse an A that is not Hermitian positive semidefinite, from what the sketch already
    gives: the core Omega^H A Omega must be Hermitian and have no eigenvalue below rounding
    level (sqrt(eps) relative; rounding leaves ~l eps). Indefinite or non-symmetric input would
    otherwise give a confident, wrong approximation."""
    core = Omega.conj().T @ Y
    scale = np.sqrt(eps) * float(np.linalg.norm(Omega) * np.linalg.norm(Y))
    if np.linalg.norm(core - core.conj().T) > scale:
        raise ValueError("A must be Hermitian (symmetric if real) positive semidefinite: "
                         "Omega^H A Omega is not Hermitian for the random test matrix Omega")
    low = float(np.linalg.eigvalsh(0.5 * (core + core.conj().T))[0])
    if low < -scale:
        raise ValueError("A must be positive semidefinite: Omega^H A Omega has the negative "
                         f"eigenvalue {low:.3g} for the random test matrix Omega (use "
                         "randla.reigh for indefinite Hermitian matrices)")


def _nystrom_from_sketch(Omega, Y, rank, eigvals_only=False):
    """The shifted Nystrom approximation from the test matrix Omega and the sketch Y = A Omega
    (with ``eigvals_only``, just its eigenvalues, from the small Gram matrix E^H E)."""
    n = Y.shape[0]
    dtype = np.result_type(Y.dtype, Omega.dtype)
    Y = Y.astype(dtype, copy=False)
    eps = np.finfo(real_dtype(dtype)).eps
    _check_psd_core(Omega, Y, eps)
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
    n = check_square(op.shape, what="PSD")
    mu = _check_mu(mu)
    b = np.asarray(b)
    if b.shape != (n,):
        raise ValueError(f"b must have shape ({n},), got {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError("b contains NaN or Inf")
    b = b.astype(np.result_type(b.dtype, op.dtype), copy=False)
    tol = check_unit_interval(tol, "tol")
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
