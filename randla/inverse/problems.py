"""Test problems for regularization, after P. C. Hansen's Regularization Tools, generated in code.

Each 1-D problem discretizes a first-kind integral equation int K(s, t) x(t) dt = g(s) and
returns ``(A, b, x_true)`` with ``b = A @ x_true`` exactly: noise is the caller's to add. The
quadrature differs from Hansen's in places (noted per problem) but the kernels, domains and
exact solutions are his, and so are the properties that make them useful: how fast the singular
values decay and whether the discrete Picard condition holds.

:func:`deblur` is a 2-D problem: a Gaussian blur, matrix-free, on a generated phantom.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse.linalg as spla

from .._validation import check_positive_int, check_random_state

__all__ = ["shaw", "deriv2", "phillips", "heat", "gravity", "baart", "foxgood", "deblur",
           "KroneckerOperator", "DeblurProblem", "phantom"]


def _midpoints(lo, hi, n):
    h = (hi - lo) / n
    return lo + (np.arange(n) + 0.5) * h, h


def _gauss_cells(lo, hi, n, order=8):
    """Gauss-Legendre nodes and weights on each of n equal cells of [lo, hi]: shape (n, order)."""
    z, w = np.polynomial.legendre.leggauss(order)
    h = (hi - lo) / n
    left = lo + np.arange(n)[:, None] * h
    return left + (z + 1) * h / 2, np.broadcast_to(w * h / 2, (n, order))


def _check_n(n, even=False):
    n = check_positive_int(n, "n", minimum=2)
    if even and n % 2:
        raise ValueError(f"n must be even for this problem, got {n}")
    return n


def shaw(n=256):
    """Shaw's 1-D image restoration problem (severely ill-posed, symmetric A).

    K(s, t) = (cos s + cos t)^2 (sin u / u)^2, u = pi (sin s + sin t), on [-pi/2, pi/2]^2;
    x(t) = 2 exp(-6 (t - 0.8)^2) + exp(-2 (t + 0.5)^2). Midpoint quadrature, as Hansen's.

    Examples
    --------
    >>> from randla.inverse.problems import shaw
    >>> A, b, x = shaw(64)
    >>> A.shape, bool(abs(b - A @ x).max() == 0)
    ((64, 64), True)
    """
    n = _check_n(n)
    t, h = _midpoints(-np.pi / 2, np.pi / 2, n)
    c = np.cos(t)[:, None] + np.cos(t)[None, :]
    u = np.pi * (np.sin(t)[:, None] + np.sin(t)[None, :])
    A = h * c**2 * np.sinc(u / np.pi) ** 2  # np.sinc(x) = sin(pi x)/(pi x)
    x = 2 * np.exp(-6 * (t - 0.8) ** 2) + np.exp(-2 * (t + 0.5) ** 2)
    return A, A @ x, x


def deriv2(n=256):
    """Second derivative: the Green's function of -u'' = f on [0, 1] with u(0) = u(1) = 0.

    K(s, t) = s (t - 1) for s < t and t (s - 1) otherwise; x(t) = t, g(s) = (s^3 - s) / 6.
    Galerkin with orthonormal box functions (entries integrated exactly), so the singular values
    approximate the operator's, 1 / (pi k)^2. ``x_true`` holds the Galerkin coefficients
    sqrt(h) * x(t_j) of x at the cell midpoints.
    """
    n = _check_n(n)
    mid, h = _midpoints(0.0, 1.0, n)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    # off the diagonal K separates: (1/h) * int s ds * int (t - 1) dt = h mid_lo (mid_hi - 1)
    A = h * mid[lo] * (mid[hi] - 1)
    a = np.arange(n) * h  # left ends of the cells; the diagonal integral done by hand
    diag = (a - 1) * a * h + (a - 1) * h**2 / 3 + 2 * a * h**2 / 3 + h**3 / 4
    A[np.arange(n), np.arange(n)] = diag
    x = np.sqrt(h) * mid
    return A, A @ x, x


def phillips(n=256):
    """Phillips' problem: K(s, t) = phi(s - t), phi(u) = 1 + cos(pi u / 3) for abs(u) < 3, on
    [-6, 6]; x = phi. Collocation at cell midpoints with the cell integrals of phi done exactly
    (Hansen uses Galerkin); A is a symmetric Toeplitz matrix, mildly ill-posed."""
    n = _check_n(n)
    s, h = _midpoints(-6.0, 6.0, n)

    def Phi(u):  # int_{-3}^{u} phi
        c = np.clip(u, -3.0, 3.0)
        return c + 3.0 + 3.0 / np.pi * np.sin(np.pi * c / 3.0)

    diff = s[:, None] - s[None, :]
    A = Phi(diff + h / 2) - Phi(diff - h / 2)
    x = np.where(np.abs(s) < 3, 1 + np.cos(np.pi * s / 3), 0.0)
    return A, A @ x, x


def heat(n=256, kappa=1.0):
    """Inverse heat equation (Carasso): a Volterra equation with K(s, t) = k(s - t),
    k(u) = u^(-3/2) / (2 kappa sqrt(pi)) exp(-1 / (4 kappa^2 u)), on [0, 1]. Midpoint rule, so A
    is lower-triangular Toeplitz. kappa = 1 is ill-conditioned, kappa = 5 well-conditioned.
    x is Hansen's: a smooth bump on [0, 0.15] decaying exponentially, zero on [1/2, 1]."""
    n = _check_n(n, even=True)
    if not kappa > 0:
        raise ValueError(f"kappa must be > 0, got {kappa}")
    t, h = _midpoints(0.0, 1.0, n)
    k = h * t**-1.5 / (2 * kappa * np.sqrt(np.pi)) * np.exp(-1 / (4 * kappa**2 * t))
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    A = np.where(i >= j, k[np.abs(i - j)], 0.0)
    u = 20.0 * np.arange(1, n + 1) / n  # time in Hansen's units, on the first half only
    x = np.where(u < 2, 0.75 * u**2 / 4,
                 np.where(u < 3, 0.75 + (u - 2) * (3 - u), 0.75 * np.exp(-2 * (u - 3))))
    x[n // 2:] = 0.0
    return A, A @ x, x


def gravity(n=256, depth=0.25):
    """1-D gravity surveying: the vertical field at depth ``depth`` of a mass distribution
    x(t) = sin(pi t) + 0.5 sin(2 pi t) on [0, 1]; K(s, t) = d (d^2 + (s - t)^2)^(-3/2).
    Midpoint rule, as Hansen's; symmetric Toeplitz A, severely ill-posed (more so as depth
    grows)."""
    n = _check_n(n)
    if not depth > 0:
        raise ValueError(f"depth must be > 0, got {depth}")
    t, h = _midpoints(0.0, 1.0, n)
    A = h * depth / (depth**2 + (t[:, None] - t[None, :]) ** 2) ** 1.5
    x = np.sin(np.pi * t) + 0.5 * np.sin(2 * np.pi * t)
    return A, A @ x, x


def baart(n=256):
    """Baart's problem: K(s, t) = exp(s cos t), s in [0, pi/2], t in [0, pi]; x(t) = sin t,
    g(s) = 2 sinh(s) / s. Collocation at midpoints in s with 8-point Gauss-Legendre on each
    t-cell (Hansen uses Galerkin); severely ill-posed."""
    n = _check_n(n)
    s, _ = _midpoints(0.0, np.pi / 2, n)
    tq, wq = _gauss_cells(0.0, np.pi, n)
    A = np.einsum("jq,ijq->ij", wq, np.exp(s[:, None, None] * np.cos(tq)[None]))
    t, _ = _midpoints(0.0, np.pi, n)
    x = np.sin(t)
    return A, A @ x, x


def foxgood(n=256):
    """Fox and Goodwin's problem: K(s, t) = sqrt(s^2 + t^2) on [0, 1]^2, x(t) = t,
    g(s) = ((1 + s^2)^(3/2) - s^3) / 3. Midpoint rule, as Hansen's; the data satisfy the
    Picard condition barely (severely ill-posed)."""
    n = _check_n(n)
    t, h = _midpoints(0.0, 1.0, n)
    A = h * np.sqrt(t[:, None] ** 2 + t[None, :] ** 2)
    return A, A @ t, t.copy()


# -- deblurring ---------------------------------------------------------------------------------
class KroneckerOperator(spla.LinearOperator):
    """A = A1 kron A2 acting on row-major vectorized images: A vec(X) = vec(A1 X A2^T).

    The factors are kept (``.factors``) so that algorithms may use the structure: the SVD of A
    is the Kronecker product of the factors' SVDs.
    """

    def __init__(self, A1, A2):
        self.factors = (np.asarray(A1), np.asarray(A2))
        (p1, q1), (p2, q2) = self.factors[0].shape, self.factors[1].shape
        self.in_shape, self.out_shape = (q1, q2), (p1, p2)
        super().__init__(np.result_type(*self.factors), (p1 * p2, q1 * q2))

    def _apply(self, F1, F2, X, shape_in):
        k = X.shape[1]
        X = X.T.reshape(k, *shape_in)
        Y = (F1 @ X) @ F2.T  # broadcast over the k images
        return Y.reshape(k, -1).T

    def _matmat(self, X):
        return self._apply(*self.factors, X, self.in_shape)

    def _rmatmat(self, Y):
        F1, F2 = (F.conj().T for F in self.factors)
        return self._apply(F1, F2, Y, self.out_shape)

    def _matvec(self, x):
        return self._matmat(x.reshape(-1, 1)).ravel()

    def _rmatvec(self, y):
        return self._rmatmat(y.reshape(-1, 1)).ravel()

    def _adjoint(self):
        return KroneckerOperator(*(F.conj().T for F in self.factors))


def gaussian_blur_matrix(n, sigma, band=None):
    """1-D Gaussian blur with zero boundary conditions: a symmetric banded Toeplitz matrix whose
    rows (away from the edges) sum to one."""
    n = _check_n(n)
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    band = int(np.ceil(4 * sigma)) if band is None else check_positive_int(band, "band")
    offsets = np.arange(-band, band + 1)
    kernel = np.exp(-offsets**2 / (2 * sigma**2))
    kernel /= kernel.sum()
    i = np.arange(n)
    T = np.zeros((n, n))
    for off, w in zip(offsets, kernel):
        j = i + off
        ok = (j >= 0) & (j < n)
        T[i[ok], j[ok]] = w
    return T


def phantom(n=128):
    """A Shepp-Logan-like head phantom on an n x n grid, values in [0, 1] (generated: no data
    files)."""
    n = _check_n(n)
    # (intensity, a, b, x0, y0, angle in degrees): the modified Shepp-Logan ellipses
    ellipses = [(1.0, .69, .92, 0, 0, 0), (-.8, .6624, .874, 0, -.0184, 0),
                (-.2, .11, .31, .22, 0, -18), (-.2, .16, .41, -.22, 0, 18),
                (.1, .21, .25, 0, .35, 0), (.1, .046, .046, 0, .1, 0),
                (.1, .046, .046, 0, -.1, 0), (.1, .046, .023, -.08, -.605, 0),
                (.1, .023, .023, 0, -.606, 0), (.1, .023, .046, .06, -.605, 0)]
    y, x = np.mgrid[1:-1:n * 1j, -1:1:n * 1j]
    img = np.zeros((n, n))
    for val, a, b, x0, y0, ang in ellipses:
        th = np.deg2rad(ang)
        xr = (x - x0) * np.cos(th) + (y - y0) * np.sin(th)
        yr = -(x - x0) * np.sin(th) + (y - y0) * np.cos(th)
        img[(xr / a) ** 2 + (yr / b) ** 2 <= 1] += val
    return np.clip(img, 0, 1)


class DeblurProblem(NamedTuple):
    """A deblurring problem: ``b = A @ x_true + e`` with ``||e|| = noise_level``."""

    A: KroneckerOperator
    b: np.ndarray
    x_true: np.ndarray
    noise_level: float
    image_shape: tuple


def deblur(n=128, *, sigma=2.0, noise=0.01, rng=None):
    """Image deblurring: a separable Gaussian blur (zero boundary) of an n x n phantom.

    A is an (n^2 x n^2) :class:`KroneckerOperator`, T kron T with T the 1-D blur, applied
    matrix-free as T X T^T. Gaussian noise with ||e|| = noise * ||A x_true|| is added.

    Parameters
    ----------
    n : int
        Image side.
    sigma : float
        Blur width in pixels.
    noise : float >= 0
        Relative noise level.
    rng : None, int or numpy.random.Generator

    Examples
    --------
    >>> import numpy as np
    >>> from randla.inverse.problems import deblur
    >>> prob = deblur(32, rng=0)
    >>> prob.A.shape, bool(np.isclose(np.linalg.norm(prob.b - prob.A @ prob.x_true),
    ...                               prob.noise_level))
    ((1024, 1024), True)
    """
    n = _check_n(n)
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    T = gaussian_blur_matrix(n, sigma)
    A = KroneckerOperator(T, T)
    x = phantom(n).ravel()
    b_exact = A @ x
    e = check_random_state(rng).standard_normal(b_exact.shape)
    e *= noise * np.linalg.norm(b_exact) / max(np.linalg.norm(e), 1e-300)
    return DeblurProblem(A, b_exact + e, x, float(np.linalg.norm(e)), (n, n))
