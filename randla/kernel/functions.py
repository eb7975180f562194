"""Kernel functions and the implicit kernel matrix :class:`KernelMatrix`.

Entries are evaluated block by block by parallel Numba kernels: the kernels smooth in the squared
distance or the inner product (rbf, polynomial, optical) start from one GEMM, the Laplace and
Matern kernels (which need the distance itself accurate near 0) from a direct loop over the
coordinate differences. The N x N matrix is never formed: products stream over row blocks, and
RPCholesky reads only the diagonal and the columns it pivots on.

Every kernel scales its inputs by ``1 / bandwidth``:

========================  =====================================================================
``"rbf"``                 exp(-||x - y||^2 / (2 bandwidth^2))
``"laplace"``             exp(-||x - y||_1 / bandwidth)
``"matern"``              Matern with ``nu`` in {0.5, 1.5, 2.5} and r = ||x - y|| / bandwidth:
                          exp(-r), (1 + sqrt3 r) exp(-sqrt3 r), (1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r)
``"polynomial"``          (x . y / bandwidth^2 + coef0)^degree
``"optical"``             (||x||^2 ||y||^2 + (x . y)^2) / bandwidth^4, the kernel of an OPU's
                          intensity features |Hx|^2 (LightOn)
========================  =====================================================================
"""
from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse.linalg as spla
from numba import njit, prange

from .._budget import PANEL_BYTES, rows_within
from .._numba import parallel_njit
from .._validation import check_finite

#: Memory one evaluated block of kernel entries may take, in bytes.
BLOCK_BYTES = PANEL_BYTES

# Integer codes of the kernels inside the Numba kernels.
_RBF, _LAPLACE, _MATERN12, _MATERN32, _MATERN52, _POLY, _OPTICAL = range(7)
_KERNELS = ("rbf", "laplace", "matern", "polynomial", "optical")
_MATERN_NU = {0.5: _MATERN12, 1.5: _MATERN32, 2.5: _MATERN52}
_SQRT3 = np.sqrt(3.0)
_SQRT5 = np.sqrt(5.0)


@njit(inline="always", cache=True)
def _radial(code, d2, r):
    """Kernel value from the squared distance d2 (and r, the distance or L1 distance)."""
    if code == _RBF:
        return np.exp(-0.5 * d2)
    if code == _LAPLACE or code == _MATERN12:
        return np.exp(-r)
    if code == _MATERN32:
        return (1.0 + _SQRT3 * r) * np.exp(-_SQRT3 * r)
    return (1.0 + _SQRT5 * r + (5.0 / 3.0) * d2) * np.exp(-_SQRT5 * r)


@parallel_njit()
def _finish_block(G, xx, yy, code, coef0, degree):
    """Turn G = X Y^T (inputs already scaled by 1/bandwidth) into kernel values, in place.
    Used for the kernels that are smooth in the squared distance or the inner product. One loop
    per kernel keeps the inner loops branch-free."""
    n, m = G.shape
    if code == _POLY:
        for i in prange(n):
            for j in range(m):
                G[i, j] = (G[i, j] + coef0) ** degree
    elif code == _OPTICAL:
        for i in prange(n):
            for j in range(m):
                G[i, j] = xx[i] * yy[j] + G[i, j] * G[i, j]
    else:
        for i in prange(n):
            for j in range(m):
                G[i, j] = _radial(code, max(xx[i] + yy[j] - 2.0 * G[i, j], 0.0), 0.0)


@parallel_njit()
def _distance_block(X, Y, code, out):
    """out[i, j] = kernel of the distance between X[i] and Y[j], computed from the differences
    (no cancellation: kernels with a kink at r = 0 need r itself accurate, not only r^2)."""
    n, m = out.shape
    p = X.shape[1]
    for i in prange(n):
        for j in range(m):
            s = 0.0
            if code == _LAPLACE:
                for t in range(p):
                    s += abs(X[i, t] - Y[j, t])
                out[i, j] = _radial(code, s * s, s)
            else:
                for t in range(p):
                    diff = X[i, t] - Y[j, t]
                    s += diff * diff
                out[i, j] = _radial(code, s, np.sqrt(s))


def _check_params(kernel, bandwidth, nu, degree, coef0):
    if kernel not in _KERNELS:
        raise ValueError(f"kernel must be one of {_KERNELS}, got {kernel!r}")
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, numbers.Real) \
            or not np.isfinite(bandwidth) or bandwidth <= 0:
        raise ValueError(f"bandwidth must be a positive finite number, got {bandwidth!r}")
    if kernel == "matern" and nu not in _MATERN_NU:
        raise ValueError(f"nu must be one of {sorted(_MATERN_NU)} for the matern kernel, got {nu!r}")
    if kernel == "polynomial":
        if isinstance(degree, bool) or not isinstance(degree, numbers.Integral) or degree < 1:
            raise ValueError(f"degree must be a positive int, got {degree!r}")
        if not isinstance(coef0, numbers.Real) or not np.isfinite(coef0):
            raise ValueError(f"coef0 must be a finite number, got {coef0!r}")


def _check_points(X, name, dtype=None):
    X = np.asarray(X)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of points (n_points, n_features), "
                         f"got shape {X.shape}")
    if min(X.shape) == 0:
        raise ValueError(f"{name} must hold at least one point with at least one feature, "
                         f"got shape {X.shape}")
    if X.dtype.kind == "c":
        raise TypeError(f"{name} must be real, got dtype {X.dtype}")
    if X.dtype.kind not in "fiub" or X.dtype == np.float16:
        raise TypeError(f"{name} must have a float32/float64 (or integer) dtype, got {X.dtype}")
    target = dtype or (X.dtype if X.dtype in (np.float32, np.float64) else np.float64)
    X = np.ascontiguousarray(X, dtype=target)
    check_finite(X, name)
    return X


def kernel_block(X, Y, kernel="rbf", *, bandwidth=1.0, nu=1.5, degree=2, coef0=1.0):
    """The kernel matrix ``K[i, j] = k(X[i], Y[j])`` between two point sets.

    Parameters
    ----------
    X : array, shape (n, p)
    Y : array, shape (m, p)
    kernel : {"rbf", "laplace", "matern", "polynomial", "optical"}
    bandwidth : float
        Length scale: every kernel sees ``x / bandwidth``.
    nu : {0.5, 1.5, 2.5}
        Smoothness of the Matern kernel.
    degree, coef0 : int, float
        Of the polynomial kernel.

    Returns
    -------
    ndarray, shape (n, m), in the dtype of X (float32 stays float32).

    Examples
    --------
    >>> import numpy as np
    >>> from randla.kernel import kernel_block
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> kernel_block(X, X, "rbf", bandwidth=1.0).round(4)
    array([[1.    , 0.6065],
           [0.6065, 1.    ]])
    """
    _check_params(kernel, bandwidth, nu, degree, coef0)
    X = _check_points(X, "X")
    Y = _check_points(Y, "Y", X.dtype)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must have the same number of features, got {X.shape[1]} "
                         f"and {Y.shape[1]}")
    return _evaluate(X / X.dtype.type(bandwidth), Y / X.dtype.type(bandwidth), kernel, nu,
                     degree, coef0)


def _evaluate(Xs, Ys, kernel, nu, degree, coef0, xx=None, yy=None):
    """Kernel block between already scaled point sets (no validation)."""
    if kernel in ("laplace", "matern"):
        out = np.empty((Xs.shape[0], Ys.shape[0]), dtype=Xs.dtype)
        _distance_block(Xs, Ys, _LAPLACE if kernel == "laplace" else _MATERN_NU[nu], out)
        return out
    code = {"rbf": _RBF, "polynomial": _POLY, "optical": _OPTICAL}[kernel]
    xx = np.einsum("ij,ij->i", Xs, Xs) if xx is None else xx
    yy = np.einsum("ij,ij->i", Ys, Ys) if yy is None else yy
    G = Xs @ Ys.T
    _finish_block(G, xx, yy, code, Xs.dtype.type(coef0), degree)
    return G


class KernelMatrix(spla.LinearOperator):
    """The implicit N x N kernel matrix of the points X, never formed whole.

    It gives its diagonal, any columns and any submatrix on demand, and products with blocks of
    vectors streamed over row blocks of at most :data:`BLOCK_BYTES`. It is a scipy
    LinearOperator (symmetric, real), so every randla algorithm and scipy's iterative solvers
    take it.

    Parameters
    ----------
    X : array, shape (N, p)
        The points (float32 stays float32; integers become float64).
    kernel : {"rbf", "laplace", "matern", "polynomial", "optical"}
    bandwidth, nu, degree, coef0
        Kernel parameters, see :func:`kernel_block`.

    Examples
    --------
    >>> import numpy as np, randla
    >>> X = np.random.default_rng(0).standard_normal((500, 3))
    >>> K = randla.KernelMatrix(X, "rbf", bandwidth=2.0)
    >>> v = np.ones(500)
    >>> np.allclose(K @ v, K.to_dense() @ v), K.diagonal()[:2]
    (True, array([1., 1.]))
    """

    def __init__(self, X, kernel="rbf", *, bandwidth=1.0, nu=1.5, degree=2, coef0=1.0):
        _check_params(kernel, bandwidth, nu, degree, coef0)
        self.X = _check_points(X, "X")
        self.kernel = kernel
        self.params = {"bandwidth": float(bandwidth), "nu": nu, "degree": int(degree),
                       "coef0": float(coef0)}
        self._Xs = self.X / self.X.dtype.type(bandwidth)
        with np.errstate(over="ignore"):
            self._sq = np.einsum("ij,ij->i", self._Xs, self._Xs)
        if not np.all(np.isfinite(self._sq)):
            raise ValueError(f"bandwidth={bandwidth!r} is too small for these points: "
                             "(||x|| / bandwidth)^2 overflows; rescale X or raise the bandwidth")
        n = self.X.shape[0]
        super().__init__(dtype=self.X.dtype, shape=(n, n))

    def __repr__(self):
        return (f"KernelMatrix(N={self.shape[0]}, kernel={self.kernel!r}, "
                f"bandwidth={self.params['bandwidth']}, dtype={self.dtype})")

    def _block(self, rows, cols):
        """K[rows][:, cols] for index arrays (or slices) rows and cols."""
        return _evaluate(self._Xs[rows], self._Xs[cols], self.kernel, self.params["nu"],
                         self.params["degree"], self.params["coef0"], self._sq[rows],
                         self._sq[cols])

    def diagonal(self):
        """The N diagonal entries, k(x_i, x_i)."""
        n = self.shape[0]
        if self.kernel in ("rbf", "laplace", "matern"):
            return np.ones(n, dtype=self.dtype)
        if self.kernel == "polynomial":
            return ((self._sq + self.params["coef0"]) ** self.params["degree"]).astype(self.dtype)
        return 2.0 * self._sq * self._sq

    def columns(self, idx):
        """The columns ``K[:, idx]`` as an (N, len(idx)) array."""
        idx = self._check_index(idx, "idx")
        return self._block(slice(None), idx)

    def submatrix(self, rows, cols):
        """``K[np.ix_(rows, cols)]`` evaluated on its own."""
        return self._block(self._check_index(rows, "rows"), self._check_index(cols, "cols"))

    def to_dense(self):
        """The whole N x N matrix (for small N and tests)."""
        return self._block(slice(None), slice(None))

    def _check_index(self, idx, name):
        idx = np.atleast_1d(np.asarray(idx))
        if idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise TypeError(f"{name} must be a 1-D array of integer indices, got {idx.dtype}")
        n = self.shape[0]
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"{name} has indices outside 0:{n}")
        return idx

    def _row_block_size(self):
        return rows_within(BLOCK_BYTES, self.dtype.itemsize * self.shape[0])

    def _matmat(self, V):
        V = np.asarray(V)
        n = self.shape[0]
        out = np.empty((n, V.shape[1]), dtype=np.result_type(self.dtype, V.dtype))
        step = self._row_block_size()
        for i in range(0, n, step):
            rows = slice(i, min(n, i + step))
            out[rows] = self._block(rows, slice(None)) @ V
        return out

    def _matvec(self, v):
        return self._matmat(np.asarray(v).reshape(-1, 1))[:, 0]

    def _rmatmat(self, V):
        return self._matmat(V)

    def _rmatvec(self, v):
        return self._matvec(v)

    def _adjoint(self):
        return self

    def _transpose(self):
        return self

    def cross(self, Y):
        """The kernel between new points Y (rows) and the points of this matrix: k(Y, X)."""
        Y = _check_points(Y, "Y", self.dtype)
        if Y.shape[1] != self.X.shape[1]:
            raise ValueError(f"Y must have {self.X.shape[1]} features, got {Y.shape[1]}")
        Ys = Y / self.dtype.type(self.params["bandwidth"])
        return _evaluate(Ys, self._Xs, self.kernel, self.params["nu"], self.params["degree"],
                         self.params["coef0"], None, self._sq)
