"""Soft-impute (Mazumder, Hastie & Tibshirani 2010) with user and item biases: rating
prediction by nuclear-norm regularized matrix completion on randomized SVDs.

A rating is modelled as ``mu + b_u + c_i + z_ui``: biases fitted on the observed entries
(regularized means, alternated), Z the soft-impute solution of
``min 1/2 ||P_Omega(X - Z)||_F^2 + lambda ||Z||_*`` on the residuals X, with rank at most k.
Each step takes the top-k SVD of ``P_Omega(X - Z) + Z``, a sparse-plus-low-rank operator that
is never formed, and shrinks its singular values by lambda. The first SVD is a randomized
SVD (any ``sketch=``); later ones start from the previous right factors (a warm-started
subspace iteration), which is what makes an iteration cost two sparse products.
"""
from __future__ import annotations

import contextlib
import warnings

import numpy as np
import scipy.sparse as sp

from .._dask import one_blas_thread
from .._linalg import cholqr, qr_factor, small_svd
from .._validation import check_positive_int, check_random_state, check_rank, check_real, check_unit_interval
from ..exceptions import AccuracyWarning
from ..lowrank import rsvd
from ._fitted import check_fitted
from ._operators import SoftImputeOperator, observed_values
from ._topn import BATCH_BYTES, top_n
from .ratings import as_rating_matrix, as_rows

#: Shrinkages tried by ``shrinkage=None``, as fractions of the largest singular value of the
#: residual matrix: a geometric path from heavy to light shrinkage (0.74 to 0.02), stopped at
#: the first rise of the held-out error.
SHRINKAGE_PATH = tuple(0.74 ** np.arange(1, 14))
_BIAS_SWEEPS = 10
#: Dense blocks up to this many entries are multiplied with one BLAS thread.
_ONE_THREAD_ELEMENTS = 1 << 20


class SoftImpute:
    """Rating prediction by soft-impute with biases.

    Parameters
    ----------
    k : int
        Largest rank of the low-rank term.
    shrinkage : float, optional
        lambda, the soft threshold on singular values (in rating units). None: chosen on an
        internal random hold-out of ``validation_size`` of the ratings along the path
        :data:`SHRINKAGE_PATH` (warm-started, each value to a tolerance ten times ``tol``,
        at most 1e-3 unless ``tol`` is larger; stopped at the first rise of the held-out
        error), then the model is refit on all ratings from the best value's factors, with
        that value times ``sqrt(1 / (1 - validation_size))`` (the noise's spectral norm grows
        as the square root of the number of ratings).
    max_iter : int
        Soft-impute iterations (per shrinkage value on the path).
    tol : float
        Stop when ``||Z_new - Z_old||_F^2 / ||Z_old||_F^2 < tol``.
    bias_reg : float
        Regularization of the biases: ``b_u = sum(r - mu - c_i) / (bias_reg + n_u)`` and the
        same for items.
    power_iters : int
        Power iterations of each warm-started SVD (0: one product with the operator and one
        with its transpose per iteration: the start, the previous step's subspace, is
        already close).
    oversample : int
        Extra columns of the subspace (10), carried from step to step.
    sketch : str, Sketcher or callable
        Of the first randomized SVD (passed to :func:`randla.rsvd`).
    validation_size : float
        Fraction held out when ``shrinkage=None``.
    clip : bool
        Clip predictions to the range of the training ratings.
    rng : None, int or numpy.random.Generator

    Attributes
    ----------
    global_mean_, user_bias_, item_bias_ :
        mu, b (n_users,), c (n_items,).
    user_factors_ : ndarray (n_users, k)
        U diag(d).
    item_factors_ : ndarray (n_items, k)
        V.
    singular_values_ : ndarray (k,)
        d, after shrinkage (zeros beyond the effective rank).
    shrinkage_ : float
    n_iter_ : int
    validation_path_ : list of (shrinkage, RMSE) pairs, when ``shrinkage=None``.

    Examples
    --------
    >>> from randla.recommend import SoftImpute, synthetic_ratings, metrics
    >>> train, test = synthetic_ratings(400, 300, 20_000, rng=0).split(0.2, rng=0)
    >>> model = SoftImpute(20, rng=0).fit(train)
    >>> rows, cols, r = test.triplets()
    >>> metrics.rmse(r, model.predict(rows, cols)) < 0.95
    True
    """

    def __init__(self, k=50, *, shrinkage=None, max_iter=100, tol=1e-4, bias_reg=10.0,
                 power_iters=0, oversample=10, sketch="gaussian", validation_size=0.1,
                 clip=True, rng=None):
        self.k = check_positive_int(k, "k")
        self.shrinkage = None if shrinkage is None else check_real(shrinkage, "shrinkage")
        self.max_iter = check_positive_int(max_iter, "max_iter")
        self.tol = check_unit_interval(tol, "tol")
        self.bias_reg = check_real(bias_reg, "bias_reg")
        self.power_iters = check_positive_int(power_iters, "power_iters", minimum=0)
        self.oversample = check_positive_int(oversample, "oversample", minimum=0)
        self.sketch = sketch
        self.validation_size = check_unit_interval(validation_size, "validation_size")
        self.clip = bool(clip)
        self.rng = rng

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, R):
        """Fit on a Ratings or a users x items sparse matrix (absent = not rated)."""
        M = as_rating_matrix(R)
        k = check_rank(self.k, "k", *M.shape)
        if self.shrinkage is None and M.nnz < 2:
            raise ValueError(f"SoftImpute with shrinkage=None holds out ratings to choose the "
                             f"shrinkage and needs at least 2, got {M.nnz}: pass shrinkage=")
        rng = check_random_state(self.rng)
        with _blas_threads(M.shape, k + self.oversample):
            return self._fit(M, k, rng)

    def _fit(self, M, k, rng):
        warm = None
        if self.shrinkage is None:
            lam, warm, self.validation_path_ = self._choose_shrinkage(M, k, rng)
        else:
            lam, self.validation_path_ = self.shrinkage, []
        mu, bu, bi = _biases(M, self.bias_reg)
        X = _residual(M, mu, bu, bi)
        if warm is None:
            warm = _cold_start(X, k, self.oversample, self.sketch, rng)
        (U, d, V, _), self.n_iter_ = self._soft_impute(X, lam, warm, rng)
        self.shrinkage_ = float(lam)
        self.global_mean_, self.user_bias_, self.item_bias_ = mu, bu, bi
        self.user_factors_ = np.ascontiguousarray(U * d)
        self.item_factors_ = np.ascontiguousarray(V)
        self.singular_values_ = d
        self.seen_ = M
        self.rating_range_ = (float(M.data.min()), float(M.data.max())) if M.nnz else (0., 0.)
        return self

    def _choose_shrinkage(self, M, k, rng):
        """lambda with the least RMSE on a random hold-out, along a decreasing path."""
        hold = np.zeros(M.nnz, dtype=bool)   # at least one rating held out, one kept
        n_hold = min(max(1, int(round(self.validation_size * M.nnz))), M.nnz - 1)
        hold[rng.permutation(M.nnz)[:n_hold]] = True
        train, valid = _subset(M, ~hold), _subset(M, hold)
        mu, bu, bi = _biases(train, self.bias_reg)
        X = _residual(train, mu, bu, bi)
        vrows = np.repeat(np.arange(M.shape[0]), np.diff(valid.indptr))
        base = mu + bu[vrows] + bi[valid.indices]
        lo, hi = float(train.data.min()), float(train.data.max())
        state = _cold_start(X, k, self.oversample, self.sketch, rng)
        top = float(state[1][0]) if len(state[1]) else 1.0
        path, best = [], (np.inf, None, None)
        for frac in SHRINKAGE_PATH:
            lam = frac * top
            state, _ = self._soft_impute(X, lam, state, rng, warn=False,
                                          tol=_path_tol(self.tol))
            U, d, V, _ = state
            pred = base + observed_values(valid, U * d, V)
            err = float(np.sqrt(np.mean((valid.data - np.clip(pred, lo, hi)) ** 2)))
            path.append((lam, err))
            if err < best[0]:
                best = (err, lam, state)
            else:
                break
        # the refit sees 1 / (1 - validation_size) times the ratings: the noise's spectral
        # norm, which lambda must exceed, grows as the square root of that
        return best[1] * np.sqrt(M.nnz / max(train.nnz, 1)), best[2], path

    def _soft_impute(self, X, lam, start, rng, warn=True, tol=None):
        """Soft-impute iterations on the residual matrix X (CSR) from the factors ``start``;
        returns the final factors and the iteration count."""
        tol = self.tol if tol is None else tol
        U, d, V, basis = start
        # a cold start's singular values are not shrunk yet: that is soft-impute's first step
        d = (d if _is_shrunk(start) else np.maximum(d - lam, 0)).astype(X.dtype)
        if basis is None:
            basis = _with_random_columns(V, self.oversample, rng)
        converged = False
        for it in range(1, self.max_iter + 1):  # noqa: B007 (the count is returned)
            U_new, s, V_new, basis = _warm_svd(SoftImputeOperator(X, U, d, V), basis, len(d),
                                               self.power_iters)
            d_new = np.maximum(s - lam, 0).astype(X.dtype)
            change = _relative_change(U, d, V, U_new, d_new, V_new)
            U, d, V = U_new, d_new, V_new
            if change < tol:
                converged = True
                break
        if warn and not converged:
            warnings.warn(f"SoftImpute stopped after max_iter={self.max_iter} iterations with "
                          f"relative change {change:.2e} > tol={tol:g}", AccuracyWarning,
                          stacklevel=3)
        return _Factors(U, d, V, basis), it

    # -- using the model ----------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        check_fitted(self, "n_users")
        return self.user_factors_.shape[0]

    @property
    def n_items(self) -> int:
        check_fitted(self, "n_items")
        return self.item_factors_.shape[0]

    def predict(self, user_indices, item_indices):
        """Predicted ratings of the (user, item) index pairs (arrays of one shape)."""
        check_fitted(self, "predict")
        u = np.asarray(user_indices)
        i = np.asarray(item_indices)
        if u.shape != i.shape:
            raise ValueError(f"user_indices and item_indices must have one shape, got "
                             f"{u.shape} and {i.shape}")
        _check_index(u, self.n_users, "user_indices"), _check_index(i, self.n_items,
                                                                    "item_indices")
        u, i = u.ravel(), i.ravel()
        z = np.empty(u.size, dtype=self.item_factors_.dtype)
        step = 1 << 18
        for s in range(0, u.size, step):   # chunks: no (n_pairs, k) temporaries
            z[s:s + step] = np.einsum("ij,ij->i", self.user_factors_[u[s:s + step]],
                                      self.item_factors_[i[s:s + step]])
        pred = self.global_mean_ + self.user_bias_[u] + self.item_bias_[i] + z
        if self.clip:
            pred = np.clip(pred, *self.rating_range_)
        return pred.reshape(np.shape(user_indices))

    def recommend(self, user_indices=None, n=10, exclude_seen=True, *,
                  batch_bytes=BATCH_BYTES):
        """The n items of highest predicted rating for each user (int array (len(users), n),
        best first; -1 fills places left when fewer than n items remain). Batched as
        :meth:`PureSVD.recommend`."""
        check_fitted(self, "recommend")
        n = check_positive_int(n, "n")
        users = np.arange(self.n_users) if user_indices is None else np.atleast_1d(
            np.asarray(user_indices))
        _check_index(users, self.n_users, "user_indices")
        # the user's mean and bias do not change the order: item bias plus the factor term
        return top_n(self.user_factors_, self.item_factors_, users, n, offset=self.item_bias_,
                     seen=self.seen_ if exclude_seen else None, batch_bytes=batch_bytes)

    def fold_in(self, rows):
        """Add new users from their rating rows (sparse or dense, n_items columns) without
        refitting; returns their user indices.

        A new user's bias is the regularized mean of its residuals after the item biases,
        and its factor the ridge solution ``a = argmin ||x - B_J a||^2 + lambda ||a||^2``
        with ``B = V diag(d)^(1/2)`` (the factorized form of the nuclear norm problem), which
        is what a user's row satisfies at the soft-impute solution.
        """
        check_fitted(self, "fold_in")
        rows = as_rows(rows, self.n_items, self.item_factors_.dtype)
        B = self.item_factors_ * np.sqrt(self.singular_values_)
        k = B.shape[1]
        bias = np.empty(rows.shape[0])
        P = np.zeros((rows.shape[0], k), dtype=self.item_factors_.dtype)
        for r in range(rows.shape[0]):
            J = rows.indices[rows.indptr[r]:rows.indptr[r + 1]]
            x = rows.data[rows.indptr[r]:rows.indptr[r + 1]] - self.global_mean_ \
                - self.item_bias_[J]
            bias[r] = x.sum() / (self.bias_reg + len(J))
            BJ = np.vstack([B[J], np.sqrt(self.shrinkage_) * np.eye(k)])
            a = np.linalg.lstsq(BJ, np.r_[x - bias[r], np.zeros(k)], rcond=None)[0]
            P[r] = a * np.sqrt(self.singular_values_)
        start = self.n_users
        self.user_factors_ = np.vstack([self.user_factors_, P])
        self.user_bias_ = np.r_[self.user_bias_, bias]
        self.seen_ = sp.vstack([self.seen_, rows], format="csr")
        return np.arange(start, self.n_users)


# -- pieces ---------------------------------------------------------------------------------
def _path_tol(tol):
    """The tolerance on the shrinkage path: ten times ``tol``, at most 1e-3 unless ``tol`` is
    looser. The path only ranks shrinkages by held-out error: on the benchmark's synthetic
    100k- and 1M-sized sets 1e-3 chose the lambda that 1e-4 chose, in 60 and 62 steps instead
    of 94 and 101 (path and refit, measured with the earlier path from sigma_1 stopped at two
    rises); 3e-3 chose a smaller one on the 1M-sized set (RMSE 0.8366, not 0.8322)."""
    return min(10 * tol, max(tol, 1e-3))


def _blas_threads(shape, width):
    """One BLAS thread while the dense blocks (max(m, n) x width) are small: their products
    take tens of microseconds, less than waking BLAS threads. Measured on the loaded 2-core
    machine, the earlier code's 100k-sized fit: 49.9 s with the default threads, 0.78 s with
    one BLAS and one Numba thread."""
    if max(shape) * width <= _ONE_THREAD_ELEMENTS:
        return one_blas_thread()
    return contextlib.nullcontext()


def _biases(M, reg, sweeps=_BIAS_SWEEPS):
    """mu, user and item biases: alternating regularized means of the residuals (ALS on
    ``sum (r - mu - b_u - c_i)^2 + reg (|b|^2 + |c|^2)``). A sweep is two sparse products
    with the pattern of M."""
    m, n = M.shape
    r = M.data.astype(np.float64)
    mu = float(r.mean()) if len(r) else 0.0
    pattern = sp.csr_matrix((np.ones(M.nnz), M.indices, M.indptr), shape=M.shape)
    n_u = np.diff(M.indptr)
    n_i = np.bincount(M.indices, minlength=n)
    row_sum = sp.csr_matrix((r, M.indices, M.indptr), shape=M.shape) @ np.ones(n)
    col_sum = np.bincount(M.indices, r, minlength=n)
    bu, bi = np.zeros(m), np.zeros(n)
    for _ in range(sweeps):
        bu = (row_sum - mu * n_u - pattern @ bi) / (reg + n_u)
        bi = (col_sum - mu * n_i - pattern.T @ bu) / (reg + n_i)
    # users last, from the final item biases: the formula fold_in applies to a new user
    bu = (row_sum - mu * n_u - pattern @ bi) / (reg + n_u)
    return mu, bu, bi


def _residual(M, mu, bu, bi):
    rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
    return _with_data(M, (M.data - mu - bu[rows] - bi[M.indices]).astype(M.dtype))


def _with_data(M, data):
    """A CSR matrix with M's pattern (shared, not copied) and other values."""
    return sp.csr_matrix((data, M.indices, M.indptr), shape=M.shape)


def _subset(M, keep):
    rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
    S = sp.csr_matrix((M.data[keep], (rows[keep], M.indices[keep])), shape=M.shape)
    S.sort_indices()
    return S


class _Factors(tuple):
    """U (m x k), d (k,), V (n x k) and the n x l orthonormal basis that starts the next
    subspace iteration (None: V plus random columns)."""

    def __new__(cls, U, d, V, basis=None):
        return super().__new__(cls, (U, d, V, basis))


class _Unshrunk(_Factors):
    """Factors whose singular values are not yet soft-thresholded."""


def _is_shrunk(start):
    return not isinstance(start, _Unshrunk)


def _cold_start(X, k, oversample, sketch, rng):
    """Top-k SVD of the residual matrix by rsvd: U, s (not shrunk yet), V."""
    U, s, Vh = rsvd(X, k, oversample=min(oversample, min(X.shape) - k) or None,
                    sketch=sketch, rng=rng)
    return _Unshrunk(U, s, np.ascontiguousarray(Vh.T))


def _with_random_columns(V, oversample, rng):
    n, k = V.shape
    extra = min(oversample, n - k)
    if extra <= 0:
        return V
    return np.hstack([V, rng.standard_normal((n, extra)).astype(V.dtype)])


def _warm_svd(op, basis, k, power_iters):
    """Top-k SVD of op by subspace iteration from the n x l block ``basis``; returns U, s, V
    (k columns) and the l right singular vectors of the iteration's approximation, the basis
    of the next call (its extra columns keep converging across calls instead of restarting
    from random)."""
    X = basis
    for _ in range(power_iters):
        X = cholqr(op.rmatmat(cholqr(op.matmat(X), orthonormal=False)), orthonormal=False)
    Q = cholqr(op.matmat(X))
    W, R = qr_factor(op.rmatmat(Q))                # A^T Q = W R, so A ~ Q R^T W^T
    Zr, s, Wrh = small_svd(R.T)                    # R^T = Zr diag(s) Wrh
    U = Q @ Zr[:, :k]
    V_all = W @ Wrh.T
    return U, s[:k], np.ascontiguousarray(V_all[:, :k]), V_all


def _relative_change(U0, d0, V0, U1, d1, V1):
    """||Z1 - Z0||_F^2 / ||Z0||_F^2 for Z = U diag(d) V^T (orthonormal U, V), by k x k
    products."""
    old = float(d0 @ d0)
    new = float(d1 @ d1)
    cross = float(np.sum((d0[:, None] * (U0.T @ U1)) * ((V0.T @ V1) * d1[None, :])))
    change = max(old + new - 2 * cross, 0.0)
    if old > 0:
        return change / old            # Python floats: beyond the range gives inf, no warning
    return 0.0 if change == 0 else float("inf")


def _check_index(idx, size, name):
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integer indices, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise ValueError(f"{name} must be in [0, {size}), got [{idx.min()}, {idx.max()}]")
