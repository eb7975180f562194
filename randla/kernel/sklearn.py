"""scikit-learn compatible kernel estimators built on RPCholesky, Nystrom and Nystrom PCG.

- :class:`NystromFeatures`: a transformer like ``sklearn.kernel_approximation.Nystroem`` whose
  landmarks are chosen by RPCholesky (default), uniformly or by ridge leverage scores.
- :class:`KernelRidge`: kernel ridge regression, either restricted to Nystrom features (scales
  to 10^5-10^6 points: O(N m) kernel entries, O(N m^2) flops) or exact, solved by Nystrom PCG
  on the implicit kernel matrix.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np
import scipy.linalg as sla

try:
    from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # an optional dependency: say which extra brings it
    raise ImportError("randla's scikit-learn estimators (NystromFeatures, KernelRidge) need "
                      "scikit-learn >= 1.6: pip install 'randla[sklearn]'") from exc

from .._budget import PANEL_BYTES, rows_within
from .functions import KernelMatrix
from .nystrom import nystrom_pcg
from .rpcholesky import column_nystrom, rpcholesky

_LANDMARKS = ("rpcholesky", "uniform", "rls")


class _KernelParams:
    """Kernel hyper-parameters shared by the estimators."""

    def _kernel_matrix(self, X):
        bandwidth = self.bandwidth
        if bandwidth is None:  # the scale of sklearn's default gamma = 1 / n_features
            bandwidth = np.sqrt(X.shape[1] / 2.0)
        return KernelMatrix(X, self.kernel, bandwidth=bandwidth, nu=self.nu, degree=self.degree,
                            coef0=self.coef0)


def _generator(random_state):
    """A numpy Generator from None, an int, a RandomState or a Generator."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(check_random_state(random_state).randint(0, 2**31 - 1))


def _landmark_factor(K, m, method, rls_reg, rng):
    """The column Nystrom factor K ~ F F^T on m landmarks chosen by ``method``."""
    n = K.shape[0]
    if method == "rpcholesky":
        return rpcholesky(K, m, rng=rng)
    if method == "uniform":
        return column_nystrom(K, rng.choice(n, size=m, replace=False))
    # Ridge leverage scores l_i = [K (K + lam I)^{-1}]_ii, estimated from a uniform Nystrom
    # approximation K ~ F F^T plus the part of the diagonal it misses.
    diag = K.diagonal().astype(np.float64)
    lam = rls_reg * max(diag.mean(), np.finfo(float).tiny)
    F = column_nystrom(K, rng.choice(n, size=m, replace=False)).F.astype(np.float64)
    core = sla.cho_factor(F.T @ F + lam * np.eye(F.shape[1]))
    scores = np.einsum("ij,ji->i", F, sla.cho_solve(core, F.T))
    scores += np.maximum(diag - np.einsum("ij,ij->i", F, F), 0.0) / lam
    p = np.maximum(scores, 0.0)
    p = p / p.sum() if p.sum() > 0 else None
    return column_nystrom(K, rng.choice(n, size=m, replace=False, p=p))


class NystromFeatures(_KernelParams, TransformerMixin, BaseEstimator):
    """Nystrom feature map z(x) with z(x) . z(y) ~ k(x, y), from m landmark points.

    Like ``sklearn.kernel_approximation.Nystroem``, but the landmarks are chosen by randomly
    pivoted Cholesky by default, which covers small clusters that uniform sampling misses.

    Parameters
    ----------
    n_components : int
        Number of landmarks m (capped at n_samples with a warning; fewer when the kernel matrix
        has numerically smaller rank).
    kernel : {"rbf", "laplace", "matern", "polynomial", "optical"}
    bandwidth : float or None
        Length scale (see :mod:`randla.kernels`); None uses sqrt(n_features / 2), the scale of
        scikit-learn's default ``gamma = 1 / n_features``.
    nu, degree, coef0
        Matern smoothness and polynomial parameters.
    landmarks : {"rpcholesky", "uniform", "rls"}
        How landmarks are chosen: RPCholesky pivots, uniformly at random, or by approximate
        ridge leverage scores (regularization ``rls_reg`` times the mean diagonal).
    rls_reg : float
    random_state : None, int or numpy.random.Generator

    Attributes
    ----------
    component_indices_ : ndarray of int
        Training rows used as landmarks.
    components_ : ndarray, shape (m, n_features)
        The landmarks.
    normalization_ : ndarray, shape (m, m)
        T = L^{-T}, L the Cholesky factor of the landmark kernel matrix W = K[S, S] (in the
        order of selection), so that z(x) = k(x, landmarks) T and z z^T = k(x, S) W^{-1} k(S, y).

    Examples
    --------
    >>> import numpy as np
    >>> from randla import NystromFeatures, KernelMatrix
    >>> X = np.random.default_rng(0).standard_normal((500, 3))
    >>> Z = NystromFeatures(n_components=100, bandwidth=2.0, random_state=0).fit_transform(X)
    >>> K = KernelMatrix(X, "rbf", bandwidth=2.0).to_dense()
    >>> bool(np.linalg.norm(Z @ Z.T - K) < 1e-3 * np.linalg.norm(K))
    True
    """

    def __init__(self, n_components=100, *, kernel="rbf", bandwidth=None, nu=1.5, degree=2,
                 coef0=1.0, landmarks="rpcholesky", rls_reg=1e-3, random_state=None):
        self.n_components = n_components
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.nu = nu
        self.degree = degree
        self.coef0 = coef0
        self.landmarks = landmarks
        self.rls_reg = rls_reg
        self.random_state = random_state

    def _check_hyper(self):
        if isinstance(self.n_components, bool) or not isinstance(self.n_components,
                                                                 numbers.Integral) \
                or self.n_components < 1:
            raise ValueError(f"n_components must be a positive int, got {self.n_components!r}")
        if self.landmarks not in _LANDMARKS:
            raise ValueError(f"landmarks must be one of {_LANDMARKS}, got {self.landmarks!r}")
        if not isinstance(self.rls_reg, numbers.Real) or not self.rls_reg > 0:
            raise ValueError(f"rls_reg must be a positive number, got {self.rls_reg!r}")

    def fit(self, X, y=None):
        """Choose the landmarks among the rows of X and the normalization T."""
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """Fit, and return the training features (the factor F itself: no extra kernel work)."""
        return self._fit(X)

    def _fit(self, X):
        """Fit and return the training features F (n_samples x m), K ~ F F^T."""
        self._check_hyper()
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        n = X.shape[0]
        m = self.n_components
        if m > n:
            warnings.warn(f"n_components={m} > n_samples={n}: using n_components={n}",
                          stacklevel=2)
            m = n
        K = self._kernel_matrix(X)
        res = _landmark_factor(K, m, self.landmarks, self.rls_reg, _generator(self.random_state))
        # Column Nystrom: F = K[:, S] T with F[S] lower triangular (the Cholesky factor of
        # K[S, S] in pivot order), so T = F[S]^{-T} maps k(x, landmarks) to features.
        idx = res.pivots
        self.component_indices_ = idx
        self.components_ = X[idx]
        eye = np.eye(len(idx), dtype=res.F.dtype)
        self.normalization_ = sla.solve_triangular(res.F[idx], eye, lower=True,
                                                   check_finite=False).T
        self._bandwidth = K.params["bandwidth"]
        return res.F

    def _landmark_kernel(self):
        return KernelMatrix(self.components_, self.kernel, bandwidth=self._bandwidth, nu=self.nu,
                            degree=self.degree, coef0=self.coef0)

    def transform(self, X):
        """Features z(X), shape (n_samples, r), with z(X) z(Y)^T ~ k(X, Y)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self._landmark_kernel().cross(X.astype(self.components_.dtype, copy=False)) \
            @ self.normalization_.astype(self.components_.dtype, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class KernelRidge(_KernelParams, RegressorMixin, BaseEstimator):
    """Kernel ridge regression that scales: min_f sum_i (f(x_i) - y_i)^2 + alpha ||f||_H^2.

    Parameters
    ----------
    alpha : float
        Ridge regularization, > 0 (as in ``sklearn.kernel_ridge.KernelRidge``).
    kernel, bandwidth, nu, degree, coef0
        See :class:`NystromFeatures`.
    solver : {"nystrom", "pcg"}
        - "nystrom" (default): the exact minimizer over the span of ``n_components`` landmark
          functions k(., x_j) chosen by ``landmarks`` (RPCholesky by default): ridge regression
          on Nystrom features, O(N m^2) work.
        - "pcg": exact kernel ridge regression, (K + alpha I) c = y solved by
          :func:`randla.nystrom_pcg` on the implicit kernel matrix; O(N^2) kernel entries per
          iteration, with few iterations.
    n_components : int
        Number of landmarks for solver="nystrom" (at most n_samples).
    landmarks : {"rpcholesky", "uniform", "rls"}
    tol : float
        Relative residual of the PCG solve.
    maxiter : int or None
        PCG iterations (default 10 n).
    random_state : None, int or numpy.random.Generator

    Examples
    --------
    >>> import numpy as np
    >>> from randla import KernelRidge
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-3, 3, (2000, 1)); y = np.sin(X[:, 0]) + 0.1 * rng.standard_normal(2000)
    >>> model = KernelRidge(alpha=1e-2, bandwidth=0.5, n_components=50, random_state=0).fit(X, y)
    >>> bool(np.abs(model.predict([[1.0]])[0] - np.sin(1.0)) < 0.05)
    True
    """

    def __init__(self, alpha=1.0, *, kernel="rbf", bandwidth=None, nu=1.5, degree=2, coef0=1.0,
                 solver="nystrom", n_components=1000, landmarks="rpcholesky", tol=1e-8,
                 maxiter=None, random_state=None):
        self.alpha = alpha
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.nu = nu
        self.degree = degree
        self.coef0 = coef0
        self.solver = solver
        self.n_components = n_components
        self.landmarks = landmarks
        self.tol = tol
        self.maxiter = maxiter
        self.random_state = random_state

    def fit(self, X, y):
        """Fit on X (n_samples, n_features) and y (n_samples,) or (n_samples, n_targets)."""
        if not isinstance(self.alpha, numbers.Real) or not self.alpha > 0:
            raise ValueError(f"alpha must be a positive number, got {self.alpha!r}")
        if self.solver not in ("nystrom", "pcg"):
            raise ValueError(f"solver must be 'nystrom' or 'pcg', got {self.solver!r}")
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], multi_output=True,
                             y_numeric=True)
        Y = y.reshape(y.shape[0], -1).astype(X.dtype, copy=False)
        if self.solver == "nystrom":
            self._fit_nystrom(X, Y)
        else:
            self._fit_pcg(X, Y)
        self._y_ndim = y.ndim
        return self

    def _fit_nystrom(self, X, Y):
        m = min(self.n_components, X.shape[0]) if isinstance(self.n_components, numbers.Integral) \
            else self.n_components
        self.features_ = NystromFeatures(m, kernel=self.kernel, bandwidth=self.bandwidth,
                                         nu=self.nu, degree=self.degree, coef0=self.coef0,
                                         landmarks=self.landmarks, random_state=self.random_state)
        Z = self.features_.fit_transform(X)
        # Ridge on the features; T is folded into the coefficients so that prediction is one
        # kernel block times a vector.
        G = Z.T @ Z
        G[np.diag_indices_from(G)] += self.alpha
        w = sla.cho_solve(sla.cho_factor(G, check_finite=False), Z.T @ Y, check_finite=False)
        self.landmarks_ = self.features_.components_
        self.dual_coef_ = self.features_.normalization_.astype(X.dtype) @ w
        self._bandwidth = self.features_._bandwidth

    def _fit_pcg(self, X, Y):
        K = self._kernel_matrix(X)
        seed = int(_generator(self.random_state).integers(0, 2**31 - 1))
        coefs, self.n_iter_ = [], []
        for j in range(Y.shape[1]):
            res = nystrom_pcg(K, Y[:, j], float(self.alpha), tol=self.tol, maxiter=self.maxiter,
                              rng=seed)
            coefs.append(res.x)
            self.n_iter_.append(res.iterations)
        self.landmarks_ = X
        self.dual_coef_ = np.stack(coefs, axis=1).astype(X.dtype, copy=False)
        self._bandwidth = K.params["bandwidth"]

    def predict(self, X):
        """Predictions f(X) = k(X, landmarks) @ ``dual_coef_``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        K = KernelMatrix(self.landmarks_, self.kernel, bandwidth=self._bandwidth, nu=self.nu,
                         degree=self.degree, coef0=self.coef0)
        X = X.astype(self.landmarks_.dtype, copy=False)
        step = rows_within(PANEL_BYTES, 8 * self.landmarks_.shape[0])
        out = np.vstack([K.cross(X[i:i + step]) @ self.dual_coef_
                         for i in range(0, X.shape[0], step)]) if X.shape[0] else \
            np.empty((0, self.dual_coef_.shape[1]), dtype=self.dual_coef_.dtype)
        return out[:, 0] if self._y_ndim == 1 else out

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination R^2 of the predictions on X against y."""
        return super().score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
