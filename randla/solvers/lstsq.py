"""Sketched overdetermined least squares: min ||A x - b||^2 + ridge ||x||^2, for m >= n.

A sketch S (d x m, d a small multiple of n) compresses the tall problem to a d x n one whose
triangular factor R (SA = QR) is a near-perfect right preconditioner: A R^{-1} has singular
values in about [1 - sqrt(n/d), 1 + sqrt(n/d)]. Three ways to use it:

- ``"sketch_and_solve"`` solves the small problem min ||S(Ax - b)|| and stops (one pass, an
  error of order sqrt(n/d) ||r||);
- ``"sap"`` (sketch-and-precondition) starts from that solution and runs preconditioned LSQR,
  twice, as iterative refinement: the second round, started from the first's answer, is what
  makes the method backward (hence forward) stable (Meier, Nakatsukasa, Townsend, Webb 2024;
  Epperly, Meier, Nakatsukasa 2024 "SPIR");
- ``"iterative_sketching"`` runs x <- x + alpha M^{-1} A^H (b - A x) + beta (x - x_prev) with
  M = R^H R, the damping and momentum of Epperly 2024, which is forward stable.

``"direct"`` (Householder QR, no sketch) is there for the small and not-very-tall problems where sketching
does not pay; ``"auto"`` picks between them (see :func:`lstsq`).
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .. import sketch as _sketch
from .._budget import rows_within
from .._linalg import _gram, fro_norm
from .._validation import (
    check_choice,
    check_finite,
    check_positive_int,
    check_real,
    check_unit_interval,
    real_dtype,
    seed_from_rng,
    working_dtype,
)
from ..lowrank import rsvd
from ..operators import DenseOperator, SparseOperator, as_operator
from ..sketch.sparse_sign import SparseSign, sparse_sign_pattern
from . import _fused

METHODS = ("auto", "direct", "sketch_and_solve", "sap", "iterative_sketching")

#: Sketch rows per column of A for each method (d = factor * n, capped at m).
_SKETCH_FACTOR = {"sketch_and_solve": 4, "sap": 4, "iterative_sketching": 8}
#: "iterative_sketching" on a dense A that is very tall for its width takes a bigger sketch:
#: (m / n^2 threshold, factor) pairs. Each iteration is a pass over A (m n) and costs as much as
#: the Gram matrix of the sketch (2 d n^2 flops) when d is about m / 35 n at BLAS-3 speed, so
#: where m / n^2 is large, doubling d (iterations fall as 1 / log(d / n)) is nearly free.
#: Measured at 200000 x 500 (one thread): factor 8, 30 iterations, 5.1 s; 16, 25, 4.8 s;
#: 32, 20, 4.4 s. At 40000 x 1000 (m / n^2 = 0.04) 8 is as good as any.
_TALL_FACTORS = ((0.4, 32), (0.1, 16))
#: Dense problems at most this large (m * n), or with m < _TALL * n, go to LAPACK under "auto".
_DIRECT_SIZE = 2_000_000
_TALL = 10
#: Refinement rounds of "sap" (the second one is what buys stability).
_SAP_ROUNDS = 2
#: Nonzeros per column of the default sparse sign sketch of a dense A. Applying it costs zeta
#: additions per entry of A (at d = 8n, zeta = 8 took as long as 28 passes over A); zeta = 4
#: keeps collisions of whole columns negligible (zeta = 2 makes two coinciding columns, a
#: singular SA for a full-rank coherent A, a few per cent likely at n = 1000, d = 8n).
_DENSE_ZETA = 4


class LstsqResult(NamedTuple):
    """Solution of :func:`lstsq`.

    Attributes
    ----------
    x : ndarray, shape (n,) or (n, k)
    residual_norm : float or ndarray (k,)
        ||A x - b|| per right-hand side (without the ridge term).
    iterations : int
        Iterations of the solver (LSQR steps summed over rounds and right-hand sides for "sap";
        0 for "direct" and "sketch_and_solve").
    backward_error : float or ndarray (k,)
        Estimate of the relative normwise backward error min ||dA||_F / ||A||_F such that x
        solves the perturbed problem: the Karlson-Walden estimate, evaluated with the sketch's
        Gram matrix in place of A^H A (within a small factor of the true one).
    method : str
        The method that ran (what "auto" chose).
    sketch_size : int
        Rows d of the sketch (0 for "direct").
    """

    x: np.ndarray
    residual_norm: object
    iterations: int
    backward_error: object
    method: str
    sketch_size: int


def lstsq(A, b, *, method="auto", sketch=None, ridge=0.0, tol=None, maxiter=None, rng=None,
          sketch_size=None):
    """Solve min ||A x - b||^2 + ridge ||x||^2 for tall A (m >= n) with a random sketch.

    Parameters
    ----------
    A : ndarray, scipy.sparse matrix or LinearOperator, shape (m, n), m >= n
    b : ndarray, shape (m,) or (m, k)
        One or several right-hand sides.
    method : {"auto", "sketch_and_solve", "sap", "iterative_sketching", "direct"}
        ``"auto"`` uses LAPACK (``"direct"``) for a dense A with m * n <= 2e6 or m < 10 n,
        where sketching does not pay; ``"iterative_sketching"`` for larger dense A (block
        iterations, one pass over A per product, all right-hand sides at once); ``"sap"`` for
        sparse A and LinearOperators (LSQR needs only products).
    sketch : None, str, Sketcher or callable
        The sketch (see :func:`randla.sketch.resolve`). None picks ``"sparse_sign"`` for arrays
        (its cost is a few passes over A, not d of them) and ``"gaussian"`` otherwise.
    ridge : float >= 0
        Tikhonov damping. With ridge > 0 the sketch size follows the statistical dimension
        d_ridge = sum sigma_i^2 / (sigma_i^2 + ridge), estimated from a few singular values.
    tol : float, optional
        Relative accuracy at which the iterative methods stop. The default runs them to full
        accuracy: until the update stops shrinking ("iterative_sketching") or LSQR's
        stopping tests reach a few unit roundoffs ("sap").
    maxiter : int, optional
        Iteration cap per LSQR run ("sap") or in total ("iterative_sketching").
    rng : None, int or numpy.random.Generator
    sketch_size : int, optional
        Rows of the sketch; default a multiple of n (4 for "sap", 8 for
        "iterative_sketching"), capped at m.

    Returns
    -------
    LstsqResult

    Notes
    -----
    When the sketch shows A to be rank deficient, the preconditioner comes from a truncated
    SVD of the sketch and the methods return the minimum-norm solution.

    Examples
    --------
    >>> import numpy as np, randla
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((2000, 20)); b = A @ np.ones(20) + 1e-3 * rng.standard_normal(2000)
    >>> res = randla.lstsq(A, b, method="iterative_sketching", rng=0)
    >>> bool(np.allclose(res.x, np.linalg.lstsq(A, b, rcond=None)[0], atol=1e-12))
    True
    """
    op = as_operator(A, check_finite_values=False)
    m, n = op.shape
    b, vector = _check_rhs(b, m)
    dtype = np.result_type(op.dtype, b.dtype)
    b = b.astype(dtype, copy=False)
    ridge = _check_ridge(ridge)
    if m < n:
        raise ValueError(f"A must be overdetermined (m >= n) for lstsq, got shape {(m, n)}; "
                         "solve the transposed (minimum-norm) problem instead")
    check_choice(method, "method", METHODS)
    tol = None if tol is None else check_unit_interval(tol, "tol")
    if maxiter is not None:
        maxiter = check_positive_int(maxiter, "maxiter")
    if method == "auto":
        method = _choose_method(op)
    # a dense A sketched by the default sketch is checked for NaN/Inf through SA, which every
    # entry of A reaches (and scaled, when out of range, by ||SA||_F): two passes over A saved
    deferred = (type(op) is DenseOperator and method != "direct" and sketch is None
                and ridge == 0)
    if type(op) in (DenseOperator, SparseOperator) and not deferred:
        op = as_operator(op.A)   # the finiteness check, now
    sa = sb = 1.0
    if not deferred:
        op, b, sa, sb = _balance(op, b)
    ridge = ridge * sa * sa
    if method == "direct":
        res = _direct(op, b, ridge)
    else:
        res, sa, sb = _sketched(op, b, method, sketch, sketch_size, ridge, tol, maxiter, rng,
                                deferred, sa, sb)
    if sa != 1.0 or sb != 1.0:   # back to the user's scale (exact: powers of two)
        res = res._replace(x=res.x * (sa / sb), residual_norm=res.residual_norm / sb)
    if vector:
        res = res._replace(x=res.x[:, 0], residual_norm=float(res.residual_norm[0]),
                           backward_error=float(res.backward_error[0]))
    return res


# -- validation ------------------------------------------------------------------------------
def _check_rhs(b, m):
    b = np.asarray(b)
    if b.ndim not in (1, 2):
        raise ValueError(f"b must be 1-D or 2-D, got shape {b.shape}")
    if b.shape[0] != m:
        raise ValueError(f"b must have m = {m} rows to match A, got shape {b.shape}")
    b = b.astype(working_dtype(b.dtype, "b"), copy=False)
    check_finite(b, "b")
    return (b[:, None], True) if b.ndim == 1 else (b, False)


def _check_ridge(ridge):
    return check_real(ridge, "ridge")


def _choose_method(op):
    m, n = op.shape
    if type(op) is DenseOperator:
        return "direct" if (m * n <= _DIRECT_SIZE or m < _TALL * n) else "iterative_sketching"
    return "sap"


#: Norms beyond 2^(+-450) (~1e+-135) are rescaled: their squares, which the normal-equation
#: quantities (A^H r, singular values squared) reach, would overflow or underflow.
_SAFE_EXPONENT = 450


def _balance(op, b):
    """``(op, b, sa, sb)`` with A and b scaled by powers of two (sa, sb) when their norms are
    out of the safe range; the solution of the scaled problem is x (sb / sa). A and b in the
    safe range are returned as they are (no copy)."""
    sa = sb = 1.0
    if type(op) in (DenseOperator, SparseOperator):
        sa = _power_of_two_scale(op.fro_norm(), op.A)
        if sa != 1.0:
            op = type(op)(op.A * op.dtype.type(sa), op.dtype)
    sb = _power_of_two_scale(fro_norm(b), b)
    if sb != 1.0:
        b = b * b.dtype.type(sb)
    return op, b, sa, sb


def _power_of_two_scale(norm, X):
    """2^-e with e the exponent of ``norm`` when it is out of the safe range, else 1. A norm
    beyond the largest float (finite entries near it) takes the largest entry's exponent."""
    if not math.isfinite(norm):
        data = X.data if sp.issparse(X) else X
        norm = float(np.max(np.abs(data)))
    if norm > 0 and abs(math.frexp(norm)[1]) > _SAFE_EXPONENT:
        return math.ldexp(1.0, -math.frexp(norm)[1])
    return 1.0


# -- direct (no sketch) -----------------------------------------------------------------------
def _direct(op, b, ridge):
    """Householder QR of [A, b] (the identity as the "sketch"): R^-1 Q^H b when A has full
    rank, the SVD of R otherwise or with a ridge."""
    if type(op) is not DenseOperator:
        raise TypeError("method='direct' needs a dense A; use 'sap' for sparse A or operators")
    pre = SketchPreconditioner(op.A, b, ridge)
    x = pre.sketch_solution
    r = b - op.matmat(x)
    g = op.rmatmat(r) - ridge * x
    be = pre.backward_error(g, r, x, op.fro_norm())
    return LstsqResult(x, np.linalg.norm(r, axis=0), 0, be, "direct", 0)


# -- the sketched methods --------------------------------------------------------------------
def _sketched(op, b, method, sketch, sketch_size, ridge, tol, maxiter, rng, deferred=False,
              sa=1.0, sb=1.0):
    """The sketched methods; returns (result, sa, sb), the scalings of A and b in force (set
    here from the sketch when ``deferred``)."""
    m, n = op.shape
    seed = seed_from_rng(rng)
    d_eff = statistical_dimension(op, ridge, rng=seed) if ridge > 0 else n
    if sketch_size is None:
        d = min(m, _sketch_factor(method, m, n, ridge) * int(math.ceil(d_eff)) + 10)
        if ridge == 0:
            d = max(d, min(m, n + 10))
    else:
        d = check_positive_int(sketch_size, "sketch_size")
        if d > m or (ridge == 0 and d < n):
            raise ValueError(f"sketch_size must be in [{n if ridge == 0 else 1}, m={m}], got {d}")
    S = _make_sketch(sketch, d, m, seed, op)
    SA = _sketch_dense(S, op) if deferred else np.asarray(op.sketch_left(S))
    fro = None
    if deferred:
        op, SA, b, sa, sb, fro = _check_and_balance_from_sketch(op, S, SA, b)
    Sb = np.asarray(S @ b)
    # the iterations need R only as a preconditioner: CholeskyQR's R (half the flops of
    # Householder's) serves; sketch-and-solve returns R^-1 Q^H Sb itself, so keeps Householder
    pre = SketchPreconditioner(SA, Sb, ridge, cholesky=method != "sketch_and_solve")
    del SA
    x = pre.sketch_solution
    fro = op.fro_norm() if fro is None else fro
    iters, r = 0, None
    if method == "sap":
        x, iters = _sap(op, b, x, pre, ridge, tol, maxiter)
    elif method == "iterative_sketching":
        x, iters, r, g = _iterative_sketching(op, b, x, pre, ridge, tol, maxiter, d_eff, d)
    if r is None:  # no pass at the returned x yet
        r, g = residual_and_gradient(op, b, x)
        g = g - ridge * x
    be = pre.backward_error(g, r, x, fro)
    return LstsqResult(x, np.linalg.norm(r, axis=0), iters, be, method, d), sa, sb


def _sketch_dense(S, op):
    """S A for the default sketch of a dense A: the sparse sign kernel of :mod:`._fused` (a
    private accumulator per column tile, 2x faster at 40000 x 1000 than the sketch's own, same
    sums in the same order) for a C-ordered real A, else the sketch's."""
    A = op.A
    if isinstance(S, SparseSign) and A.flags.c_contiguous and A.dtype.kind == "f":
        return _fused.sparse_sign_apply(
            S, A, functools.partial(sparse_sign_pattern, S.seed, S.shape[0], S.zeta))
    return np.asarray(op.sketch_left(S))


def _check_and_balance_from_sketch(op, S, SA, b):
    """What :func:`_balance` and the finiteness check of A do, from SA instead of passes over
    A. Returns (op, SA, b, sa, sb, fro) with fro an estimate of ||A||_F (scaled).

    A NaN or Inf in A makes SA non-finite (each column of S has a nonzero), and SA is an
    embedding of range(A): ||SA||_F = ||A||_F (1 +- eps), eps ~ sqrt(n/d), which is all the
    power-of-two scaling and the backward error's normalization need."""
    with np.errstate(over="ignore", invalid="ignore"):   # an overflow is handled below
        total = np.sum(SA)
    if not np.isfinite(total):
        check_finite(op.A, "A")      # raises for NaN/Inf; else the sketch overflowed (entries
        # near the largest float, whose ||A||_F may not even be representable): bring the
        # largest entry to [1/2, 1), then sketch again
        sa = _power_of_two_scale(math.inf, op.A)
        op = type(op)(op.A * op.dtype.type(sa), op.dtype)
        _, b, _, sb = _balance(None, b)
        SA = np.asarray(op.sketch_left(S))
        return op, SA, b, sa, sb, fro_norm(SA)
    fro = fro_norm(SA)
    sa = _power_of_two_scale(fro, SA)
    if sa != 1.0:
        op = type(op)(op.A * op.dtype.type(sa), op.dtype)
        SA = SA * SA.dtype.type(sa)
        fro *= sa
    _, b, _, sb = _balance(None, b)
    return op, SA, b, sa, sb, fro


def _sketch_factor(method, m, n, ridge):
    if method == "iterative_sketching" and ridge == 0:
        for threshold, factor in _TALL_FACTORS:
            if m >= threshold * n * n and factor * n <= m // 4:
                return factor
    return _SKETCH_FACTOR[method]


def _make_sketch(sketch, d, m, seed, op):
    dtype = real_dtype(op.dtype)
    if sketch is not None:
        return _sketch.resolve(sketch, d, m, rng=seed, dtype=dtype)
    if isinstance(op, (DenseOperator, SparseOperator)):
        try:
            if type(op) is DenseOperator:
                return _sketch.make("sparse_sign", d, m, rng=seed, dtype=dtype, zeta=_DENSE_ZETA)
            return _sketch.resolve("sparse_sign", d, m, rng=seed, dtype=dtype)
        except ImportError:  # not built in this installation: a dense sketch is always there
            pass
    return _sketch.resolve("gaussian", d, m, rng=seed, dtype=dtype)


def statistical_dimension(A, ridge, *, rank=32, rng=None):
    """An upper estimate of d_ridge = sum_i sigma_i^2 / (sigma_i^2 + ridge), at most n.

    The top ``rank`` singular values come from :func:`randla.rsvd`; the rest contribute at most
    tail^2 / ridge, tail^2 = ||A||_F^2 - sum of the top sigma_i^2.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.diag([1.0, 1.0, 1e-3, 1e-3]) @ np.eye(4)
    >>> round(statistical_dimension(A, 1e-2, rng=0), 3)
    1.98
    """
    op = as_operator(A)
    m, n = op.shape
    ridge = _check_ridge(ridge)
    if ridge == 0:
        return float(n)
    k = min(rank, m, n)
    s = np.asarray(rsvd(A, k, oversample=min(10, min(m, n) - k), power_iters=1,
                               rng=rng).S, dtype=np.float64)
    fro = op.fro_norm()
    if fro is None:  # Gaussian probes: E ||A^H g||^2 = ||A||_F^2
        G = np.random.default_rng(rng).standard_normal((m, 16))
        fro = float(np.linalg.norm(op.rmatmat(G.astype(op.dtype))) / 4.0)
    tail = max(fro**2 - float(np.sum(s**2)), 0.0) if k < n else 0.0
    return float(min(n, np.sum(s**2 / (s**2 + ridge)) + tail / ridge))


class SketchPreconditioner:
    """Right preconditioner P from the sketch SA, with M = P^-H P^-1 = (SA)^H SA + ridge I.

    Built from one Householder QR of [SA, Sb], which also yields the sketch-and-solve solution.
    Full rank and no ridge: P = R^-1 (triangular solves). Otherwise the SVD R = U diag(s) V^H
    gives P = V diag(1/sqrt(s^2 + ridge)) (plus 1/sqrt(ridge) on the complement of range(V)
    when d < n), truncated to the numerical rank when ridge = 0 (minimum-norm solutions).

    With ``cholesky=True`` (no ridge, d >= n) R comes from CholeskyQR instead: the Cholesky
    factor of the Gram matrix (SA)^H SA, half the flops of Householder QR and one SYRK. Its
    error makes R^-H (SA)^H SA R^-1 differ from I by about u cond(SA)^2 (measured 1e3 times
    below u cond_1(R)^2), harmless to a preconditioner while u cond_1(R)^2 <= 1; beyond that,
    or when Cholesky fails, Householder QR runs as above.
    """

    def __init__(self, SA, Sb, ridge, cholesky=False):
        d, n = SA.shape
        self.n, self.ridge = n, ridge
        if cholesky and ridge == 0 and d >= n and self._cholesky(SA, Sb):
            return
        F = sla.qr(np.hstack([SA, Sb]), mode="r", check_finite=False)[0]
        p = min(d, n)
        R, z = F[:p, :n], F[:p, n:]
        self.fro = float(np.linalg.norm(R))
        eps = np.finfo(real_dtype(R.dtype)).eps
        self.R = None
        if ridge == 0 and p == n:
            rcond = sla.lapack.get_lapack_funcs("trcon", (R,))(R, norm="1")[0]
            if rcond > n * eps:
                self.R = R
                self.sketch_solution = self.apply(z)
                self.rank = n
                self._svd = None
                self.cond = 1.0 / rcond   # of the sketch, within a small factor of A's
                return
        U, s, Vh = sla.svd(R, full_matrices=False, check_finite=False)
        if ridge == 0:
            keep = s > max(d, n) * eps * s[0] if s.size and s[0] > 0 else np.zeros(s.size, bool)
            U, s, Vh = U[:, keep], s[keep], Vh[keep]
        self.rank = s.size
        self._svd = (s, Vh.conj().T)
        self.cond = (math.sqrt((s[0] ** 2 + ridge) / (s[-1] ** 2 + ridge))
                     if s.size and s[-1] ** 2 + ridge > 0 else 1.0)
        self.scale = 1.0 / np.sqrt(s**2 + ridge)
        # on the complement of range(V) (d < n with ridge): M = ridge I there
        self.comp = 1.0 / math.sqrt(ridge) if (ridge > 0 and s.size < n) else 0.0
        self.sketch_solution = self._svd[1] @ ((s / (s**2 + ridge))[:, None] * (U.conj().T @ z))

    def _cholesky(self, SA, Sb):
        """R from CholeskyQR of SA (see the class notes); False when it is not good enough."""
        try:
            R = sla.cholesky(_gram(SA), lower=False, check_finite=False)
        except (np.linalg.LinAlgError, ValueError):
            return False
        if not np.all(np.isfinite(R)):
            return False
        rcond = sla.lapack.get_lapack_funcs("trcon", (R,))(R, norm="1")[0]
        if not rcond > 0 or np.finfo(real_dtype(R.dtype)).eps > rcond * rcond:
            return False
        self.R, self.rank, self._svd = R, self.n, None
        self.fro = float(np.linalg.norm(R))
        self.cond = 1.0 / rcond
        z = sla.solve_triangular(R, SA.conj().T @ Sb, trans="C", check_finite=False)
        self.sketch_solution = self.apply(z)
        return True

    @property
    def square(self):
        """True when P maps n-vectors to n-vectors (False: P is n x rank, rank < n)."""
        return self.R is not None or self.comp > 0 or self.rank == self.n

    @property
    def inner_dim(self):
        return self.n if self.R is not None or self.comp > 0 else self.rank

    @property
    def sigma_max(self):
        if self.R is not None:
            return float(np.linalg.norm(self.R, 2)) if self.n <= 64 else self._power_norm()
        return float(math.sqrt(self._svd[0][0] ** 2 + self.ridge)) if self.rank else 0.0

    def _power_norm(self, iters=20):
        v = np.ones((self.n, 1), dtype=self.R.dtype)
        for _ in range(iters):
            v = self.R.conj().T @ (self.R @ v)
            v /= np.linalg.norm(v)
        return float(np.linalg.norm(self.R @ v))

    def apply(self, Z):
        """P Z."""
        if self.R is not None:
            return sla.solve_triangular(self.R, Z, check_finite=False)
        s, V = self._svd
        if self.comp:
            C = V.conj().T @ Z
            return V @ ((self.scale - self.comp)[:, None] * C) + self.comp * Z
        return V @ (self.scale[:, None] * Z)

    def rapply(self, Y):
        """P^H Y."""
        if self.R is not None:
            return sla.solve_triangular(self.R, Y, trans="C", check_finite=False)
        s, V = self._svd
        if self.comp:
            C = V.conj().T @ Y
            return V @ ((self.scale - self.comp)[:, None] * C) + self.comp * Y
        return self.scale[:, None] * (V.conj().T @ Y)

    def solve_gram(self, G):
        """M^{-1} G = P P^H G."""
        return self.apply(self.rapply(G))

    def m_norm(self, X):
        """||M^{1/2} X|| per column (the A-norm of X, up to the sketch's distortion)."""
        if self.R is not None:
            return np.linalg.norm(self.R @ X, axis=0)
        s, V = self._svd
        C = V.conj().T @ X
        sq = np.linalg.norm(C / self.scale[:, None], axis=0) ** 2
        if self.ridge > 0:
            sq = sq + self.ridge * np.maximum(np.linalg.norm(X, axis=0) ** 2
                                              - np.linalg.norm(C, axis=0) ** 2, 0)
        return np.sqrt(sq)

    def backward_error(self, g, r, x, fro=None):
        """Karlson-Walden estimate ||(M + mu^2 I)^{-1/2} g|| / ||x|| / ||A||_F per column, with
        g = A^H r - ridge x and mu = ||[r; sqrt(ridge) x]|| / ||x||.

        Exact (for M) from the SVD of R when it is at hand or cheap (n <= 256). Otherwise the
        upper estimate min(||R^-H g||, ||g|| / mu): each term bounds the sum
        sum_i c_i^2 / (sigma_i^2 + mu^2), and the smaller is within sqrt(2) of it when mu lies
        outside [sigma_min, sigma_max]; it avoids an O(n^3) SVD that would cost as much as
        the solve."""
        fro = fro or self.fro
        if self._svd is None and self.n <= _EXACT_KW_MAX_N:
            _, s, Vh = sla.svd(self.R, full_matrices=False, check_finite=False)
            self._svd = (s, Vh.conj().T)
        if self._svd is not None:
            s, V = self._svd
            return _kw_from_singular_values(s, V, g, r, x, self.ridge, fro)
        xn = np.linalg.norm(x, axis=0)
        mu = np.linalg.norm(r, axis=0) / np.where(xn > 0, xn, 1.0)
        w = np.linalg.norm(sla.solve_triangular(self.R, g, trans="C", check_finite=False), axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            est = np.minimum(w, np.where(mu > 0, np.linalg.norm(g, axis=0) / mu, np.inf))
        return np.where(xn > 0, est / np.where(xn > 0, xn, 1.0), 0.0) / max(fro, 1e-300)


#: Largest n for which the backward error estimate pays for an exact SVD of R.
_EXACT_KW_MAX_N = 256


def _kw_from_singular_values(s, V, g, r, x, ridge, fro):
    """The Karlson-Walden estimate from the singular values s and right singular vectors V."""
    xn = np.linalg.norm(x, axis=0)
    rn = np.sqrt(np.linalg.norm(r, axis=0) ** 2 + ridge * xn**2)
    fro = float(np.sqrt(np.sum(s**2))) if fro is None else fro
    out = np.zeros(x.shape[1])
    for j in range(x.shape[1]):
        if xn[j] == 0:
            out[j] = np.linalg.norm(g[:, j]) / max(rn[j], np.finfo(float).tiny) / max(fro, 1e-300)
            continue
        mu2 = (rn[j] / xn[j]) ** 2
        c = V.conj().T @ g[:, j]
        # the part of g outside range(V) (only when V is truncated or the sketch has d < n)
        rest = np.linalg.norm(g[:, j] - V @ c) ** 2 if V.shape[1] < V.shape[0] else 0.0
        val = math.sqrt(np.sum(np.abs(c) ** 2 / (s**2 + ridge + mu2)) + rest / (ridge + mu2))
        out[j] = val / xn[j] / max(fro, 1e-300)
    return out


def _sap(op, b, x, pre, ridge, tol, maxiter):
    """Sketch-and-precondition with iterative refinement: each round solves the correction
    problem min ||A P z - r|| (augmented by the ridge rows) with LSQR from z = 0."""
    m, n = op.shape
    q = pre.inner_dim
    sqrt_ridge = math.sqrt(ridge)
    dtype = x.dtype
    rows = m + n if ridge > 0 else m

    def matvec(z):
        y = pre.apply(z.reshape(q, 1))
        out = op.matmat(y)
        return np.vstack([out, sqrt_ridge * y]).ravel() if ridge > 0 else out.ravel()

    def rmatvec(v):
        v = v.reshape(rows, 1)
        g = op.rmatmat(v[:m])
        if ridge > 0:
            g = g + sqrt_ridge * v[m:]
        return pre.rapply(g).ravel()

    AP = spla.LinearOperator((rows, q), matvec=matvec, rmatvec=rmatvec, dtype=dtype)
    if tol is None:
        tol = 4 * np.finfo(real_dtype(dtype)).eps
    iter_lim = maxiter or _default_maxiter(tol, 0.5)
    total = 0
    x = x.copy()
    for _ in range(_SAP_ROUNDS):
        R = b - op.matmat(x)
        if ridge > 0:
            R = np.vstack([R, -sqrt_ridge * x])
        for j in range(x.shape[1]):
            if not np.any(R[:, j]):
                continue
            z, _, it = spla.lsqr(AP, R[:, j], atol=tol, btol=tol, iter_lim=iter_lim)[:3]
            x[:, j] += pre.apply(z.reshape(q, 1).astype(dtype, copy=False))[:, 0]
            total += it
    return x, total


#: Iterations without halving the step that mean it has reached rounding level (the forward
#: error stays put from there on). Forward error / Householder QR's over 150 draws at each of
#: cond 1e4, 1e7, 1e10 (4000 x 50, residual 1e-12): 3 iterations, up to 3.2; 4, up to 2.3; 6,
#: up to 1.3 (the floor itself scatters 0.8-3x QR's); medians 0.21-0.23 for all three. With 2,
#: a pause of the momentum was taken for the floor (up to 7966x). 4 is two passes fewer than 6.
_STALL = 4


def _iterative_sketching(op, b, x, pre, ridge, tol, maxiter, d_eff, d):
    """Heavy-ball iteration x+ = x + alpha M^{-1} g + beta (x - x_prev), g = A^H(b - Ax) - ridge x,
    with alpha = (1 - r)^2, beta = r, r = d_eff/d: the optimal parameters for a Gaussian sketch,
    whose preconditioned spectrum fills [(1 - sqrt r)^2, (1 + sqrt r)^2] (Epperly 2024).

    Returns (x, iterations, R, G), with R = b - A x and G = A^H R when the iteration ended at
    rounding level (then x is the iterate of the last pass, whose residual is at hand: the
    step that pass computed is rounding noise), else R = G = None. It does not stop on a small
    backward error: backward stability bounds the forward error only by ~u cond(A), and
    stopping there left 3-55x Householder QR's forward error on tiny-residual problems (cond
    1e4-1e10), where running to the stall gives 0.05-1.7x."""
    ratio = min(max(pre.rank if ridge == 0 else d_eff, 1) / d, 0.9)
    alpha, beta = (1 - ratio) ** 2, ratio
    eps = np.finfo(real_dtype(x.dtype)).eps
    maxiter = maxiter or _default_maxiter(tol or eps, math.sqrt(ratio))
    tol = 0.0 if tol is None else tol
    smax = pre.sigma_max
    rounding = max(math.sqrt(eps), 100 * eps * pre.cond)
    x_prev = x.copy()
    best = np.full(x.shape[1], np.inf)
    stall = np.zeros(x.shape[1], int)
    r_step = np.zeros_like(x)
    it = 0
    for it in range(1, maxiter + 1):  # noqa: B007 (the count is returned)
        R, G = residual_and_gradient(op, b, x)
        if ridge > 0:
            G -= ridge * x
        W = pre.rapply(G)
        step = alpha * pre.apply(W) + beta * (x - x_prev)
        x_prev, x = x, x + step
        if pre.R is not None:
            # R step = alpha R^-H G + beta R step_prev: the M-norm of the step without a
            # product with R (an O(n^2) BLAS call that threads badly on a busy machine)
            r_step = alpha * W + beta * r_step
            size = np.linalg.norm(r_step, axis=0)
        else:
            size = pre.m_norm(step)
        scale = smax * np.linalg.norm(x, axis=0) + np.linalg.norm(R, axis=0)
        # rounding makes the step stagnate a little above tol: stop when it stops shrinking,
        # once it is down to rounding level, ~u cond(A) (momentum can hold it still for a
        # while earlier: one draw in a few hundred stopped at 2e-8 relative error)
        improved = size < 0.5 * best
        best = np.where(improved, size, best)
        stall = np.where(improved, 0, stall + 1)
        stalled = (stall >= _STALL) & (size <= rounding * scale)
        if np.all(stalled):
            return x_prev, it - 1, R, G
        if np.all((size <= tol * scale) | stalled):
            break
    return x, it, None, None


#: Rows per block of the fused residual/gradient pass (a block of A stays in cache).
_FUSED_BLOCK_BYTES = 1 << 20
#: One right-hand side of float64 data goes to the Numba kernel of :mod:`._fused` (one call,
#: four rows per sweep) rather than to BLAS calls on row blocks.
_FUSED_KERNEL = True


def residual_and_gradient(op, b, x):
    """R = b - A x and G = A^H R. For a dense C-ordered A this is one pass over memory: each
    block of rows serves both products while it is in cache (about 1.5x faster than two
    passes on a memory-bound machine). R is formed explicitly, never as A^H b - A^H A x,
    which is what keeps the iteration forward stable."""
    A = getattr(op, "A", None)
    if type(op) is not DenseOperator or not A.flags.c_contiguous or A.shape[0] < 4096:
        R = b - op.matmat(x)
        return R, op.rmatmat(R)
    if _FUSED_KERNEL and A.dtype == np.float64 and b.shape[1] == 1 and b.dtype == np.float64:
        r, g = _fused.residual_and_gradient_1(A, b[:, 0], x[:, 0])
        return r[:, None], g[:, None]
    rows = rows_within(_FUSED_BLOCK_BYTES, A.shape[1] * A.itemsize, minimum=16)
    R = np.empty_like(b)
    G = np.zeros((A.shape[1], b.shape[1]), dtype=np.result_type(A, b))
    for i in range(0, A.shape[0], rows):
        Ai = A[i:i + rows]
        Ri = R[i:i + rows]
        np.subtract(b[i:i + rows], Ai @ x, out=Ri)
        G += (Ai.conj().T if op.is_complex else Ai.T) @ Ri
    return R, G


def _default_maxiter(tol, rate):
    # three times the iterations the rate predicts: the iterations stop by themselves once the
    # step reaches rounding level, and one draw in a few hundred converged 2x slower than
    # predicted (171 iterations against 88 allowed, stopping at 2e-8 relative error)
    return int(math.ceil(6 * math.log(tol) / math.log(max(rate, 1e-3)))) + 20
