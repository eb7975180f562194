"""PureSVD (Cremonesi, Koren & Turrin 2010): top-N recommendation from a truncated SVD of the
rating matrix with missing entries read as zeros.

The score of item i for user u is ``r_u V V^T e_i``, r_u the user's rating row and V the top-k
right singular vectors: a projection of the user's ratings on the dominant item space. It
predicts which items a user rates (and rates highly) rather than the rating itself, and is a
strong top-N baseline. A new user is folded in with the same formula, without refitting.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._validation import check_positive_int
from ..lowrank import rsvd
from ._fitted import check_fitted
from ._topn import BATCH_BYTES, top_n
from .ratings import as_rating_matrix, as_rows
from .store import RatingStore, RatingStoreOperator


class PureSVD:
    """PureSVD top-N recommender on a randomized truncated SVD.

    Parameters
    ----------
    k : int
        Rank (50 is the paper's choice for MovieLens), less than the numbers of users and of
        items: at ``k = min(n_users, n_items)`` the item space V is every user's ratings'
        space, ``r_u V V^T = r_u``, and every unseen item's score is rounding noise.
    oversample, power_iters, sketch :
        Passed to :func:`randla.rsvd` (any sketch name, a factory or a Sketcher of shape
        ``(k + oversample, n_items)`` for a users >= items matrix).
    rng : None, int or numpy.random.Generator

    Attributes
    ----------
    item_factors_ : ndarray (n_items, k)
        V, the right singular vectors.
    user_factors_ : ndarray (n_users, k)
        R V (rows added by :meth:`fold_in`).
    singular_values_ : ndarray (k,)
    seen_ : scipy.sparse.csr_matrix or RatingStore
        The ratings the model was fit on (and folded-in rows): excluded from recommendations.
        A model fit on a :class:`~randla.recommend.RatingStore` keeps the store (read a
        batch of users at a time by :meth:`recommend`) and its folded-in rows apart.

    Examples
    --------
    >>> from randla.recommend import PureSVD, synthetic_ratings
    >>> R = synthetic_ratings(300, 200, 6000, rng=0)
    >>> model = PureSVD(10, rng=0).fit(R)
    >>> model.recommend([0, 1], n=5).shape
    (2, 5)
    >>> new = model.fold_in(R.matrix[:1])        # a new user who rated as user 0 did
    >>> bool((model.recommend(new, n=5) == model.recommend([0], n=5)).all())
    True
    """

    def __init__(self, k=50, *, oversample=None, power_iters=None, sketch="gaussian",
                 rng=None):
        self.k = check_positive_int(k, "k")
        self.oversample = oversample
        self.power_iters = power_iters
        self.sketch = sketch
        self.rng = rng

    def fit(self, R):
        """Fit on a Ratings or a users x items sparse matrix (absent = not rated), or on a
        :class:`~randla.recommend.RatingStore` on disk (or its operator, to choose the
        block size): the store is streamed by row blocks, one read per power iteration plus
        two (see :meth:`RatingStore.operator <randla.recommend.RatingStore.operator>`)."""
        if isinstance(R, (RatingStore, RatingStoreOperator)):
            return self._fit_store(R.operator() if isinstance(R, RatingStore) else R)
        M = as_rating_matrix(R)
        k = _check_k(self.k, M.shape)
        _, s, Vh = rsvd(M, k, oversample=self.oversample, power_iters=self.power_iters,
                        sketch=self.sketch, rng=self.rng)
        self.item_factors_ = np.ascontiguousarray(Vh.T)
        # R V rather than U diag(s): the same formula as fold_in, so a folded-in copy of a
        # training user is scored exactly as that user.
        self.user_factors_ = np.asarray(M @ self.item_factors_)
        self.singular_values_ = s
        self.seen_ = M
        self._folded = None
        return self

    def _fit_store(self, op):
        k = _check_k(self.k, op.shape)
        _, s, Vh = rsvd(op, k, oversample=self.oversample, power_iters=self.power_iters,
                        sketch=self.sketch, rng=self.rng)
        V = np.ascontiguousarray(Vh.T)
        dtype = op.A.dtype     # products in float64; factors in the stored precision
        self.user_factors_ = op.matmat(V).astype(dtype, copy=False)   # one more read
        self.item_factors_ = V.astype(dtype, copy=False)
        self.singular_values_ = s.astype(dtype, copy=False)
        self.seen_ = op.A
        self._folded = None   # rows added by fold_in, after the store's
        return self

    def _seen_rows(self, rows):
        """Seen items of the users ``rows`` (a batch), one CSR row each, for a store."""
        base = self.seen_.shape[0]
        inside = rows < base
        if self._folded is None or inside.all():
            return self.seen_.rows(rows)
        parts = sp.vstack([self.seen_.rows(rows[inside]), self._folded[rows[~inside] - base]],
                          format="csr")
        order = np.concatenate([np.flatnonzero(inside), np.flatnonzero(~inside)])
        return parts[np.argsort(order, kind="stable")]

    @property
    def n_users(self) -> int:
        check_fitted(self, "n_users")
        return self.user_factors_.shape[0]

    @property
    def n_items(self) -> int:
        check_fitted(self, "n_items")
        return self.item_factors_.shape[0]

    def _users(self, users):
        if users is None:
            return np.arange(self.n_users)
        users = np.atleast_1d(np.asarray(users))
        if users.dtype.kind not in "iu" or users.ndim != 1:
            raise TypeError("user_indices must be a 1-D array of integer row indices")
        if users.size and (users.min() < 0 or users.max() >= self.n_users):
            raise ValueError(f"user_indices must be in [0, {self.n_users}), got "
                             f"[{users.min()}, {users.max()}]")
        return users

    def scores(self, user_indices):
        """Dense scores (len(users), n_items): ``r_u V V^T``."""
        check_fitted(self, "scores")
        users = self._users(user_indices)
        return self.user_factors_[users] @ self.item_factors_.T

    def recommend(self, user_indices=None, n=10, exclude_seen=True, *,
                  batch_bytes=BATCH_BYTES):
        """The n best items of each user, best first: an int array (len(users), n).

        Users are scored in batches of ``batch_bytes`` of scores, so every user of a large
        matrix can be served in bounded memory. ``user_indices=None`` means all users. With
        ``exclude_seen`` the user's rated items are skipped; -1 fills places left when fewer
        than n items remain (n larger than the number of items included).
        """
        check_fitted(self, "recommend")
        n = check_positive_int(n, "n")
        users = self._users(user_indices)
        seen = self._seen_rows if isinstance(self.seen_, RatingStore) else self.seen_
        return top_n(self.user_factors_, self.item_factors_, users, n,
                     seen=seen if exclude_seen else None, batch_bytes=batch_bytes)

    def fold_in(self, rows):
        """Add new users from their rating rows (sparse or dense, n_items columns) without
        refitting; returns their user indices, usable in :meth:`recommend`.

        A new user's factor is ``r V`` with the fitted V. When the fit's item space already
        holds the new users' tastes this equals a refit's scores.
        """
        check_fitted(self, "fold_in")
        rows = as_rows(rows, self.n_items, self.item_factors_.dtype)
        start = self.n_users
        self.user_factors_ = np.vstack([self.user_factors_,
                                        np.asarray(rows @ self.item_factors_)])
        if isinstance(self.seen_, RatingStore):
            self._folded = rows if self._folded is None else sp.vstack([self._folded, rows],
                                                                       format="csr")
        else:
            self.seen_ = sp.vstack([self.seen_, rows], format="csr")
        return np.arange(start, self.n_users)


def _check_k(k, shape):
    """k < min(n_users, n_items): at the minimum PureSVD projects on every user's ratings."""
    m, n = shape
    if k >= min(m, n):
        raise ValueError(f"k must be < min(n_users, n_items) = {min(m, n)} for PureSVD, got "
                         f"{k}: at k = {min(m, n)} the scores r_u V V^T are the user's own "
                         f"ratings and every unseen item scores 0 (rounding noise)")
    return k
