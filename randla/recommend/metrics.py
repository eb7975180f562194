"""Accuracy of rating predictions (RMSE, MAE) and of top-N lists (precision, recall, NDCG at k).

Top-N metrics compare each user's list with the items of that user held out in a test matrix
whose rating is at least ``threshold`` (the relevant items; all held-out items when
``threshold=None``), and average over the users that have at least one relevant item.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .._validation import check_positive_int, check_real

#: Memory for the dense relevance rows of one batch of users, in bytes (booleans).
_BATCH_BYTES = 32 * 2**20


def rmse(y_true, y_pred) -> float:
    """Root mean squared error.

    >>> rmse([1, 2, 3], [1, 2, 5])
    1.1547...
    """
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error.

    >>> mae([1, 2, 3], [1, 2, 5])
    0.666...
    """
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def _pair(y_true, y_pred):
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape or t.size == 0:
        raise ValueError(f"y_true and y_pred must be non-empty and of one length, got {t.size} "
                         f"and {p.size}")
    return t, p


def precision_at_k(recs, test, k=10, *, threshold=4.0, users=None) -> float:
    """Mean over users of (relevant items among the first k recommended) / k.

    Parameters
    ----------
    recs : int array (n_rows, >= k)
        Recommended item indices, best first; -1 marks an empty place.
    test : Ratings or scipy.sparse matrix (users x items)
        Held-out ratings.
    k : int
    threshold : float or None
        A held-out rating >= threshold is relevant; None: every held-out item is.
    users : int array (n_rows,), optional
        The test row of each row of ``recs``; default: row i is user i (then ``recs`` has a
        row for every user of ``test``).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> test = sp.csr_matrix(np.array([[5., 0, 4, 0], [0, 3, 0, 0]]))
    >>> precision_at_k(np.array([[0, 1], [1, 0]]), test, k=2)   # user 1 has no relevant item
    0.5
    """
    hits, n_rel, _ = _hits(recs, test, k, threshold, users)
    return float(np.mean(hits.sum(axis=1) / k)) if len(n_rel) else float("nan")


def recall_at_k(recs, test, k=10, *, threshold=4.0, users=None) -> float:
    """Mean over users of (relevant items among the first k) / (relevant items); parameters as
    :func:`precision_at_k`.

    >>> import numpy as np, scipy.sparse as sp
    >>> test = sp.csr_matrix(np.array([[5., 0, 4, 0], [0, 3, 0, 0]]))
    >>> recall_at_k(np.array([[0, 1], [1, 0]]), test, k=2)
    0.5
    """
    hits, n_rel, _ = _hits(recs, test, k, threshold, users)
    return float(np.mean(hits.sum(axis=1) / n_rel)) if len(n_rel) else float("nan")


def ndcg_at_k(recs, test, k=10, *, threshold=4.0, users=None) -> float:
    """Mean over users of DCG / ideal DCG at k with binary gains: DCG = sum over relevant items
    at ranks i = 1..k of 1 / log2(i + 1); the ideal list puts min(k, relevant) relevant items
    first. Parameters as :func:`precision_at_k`.

    >>> import numpy as np, scipy.sparse as sp
    >>> test = sp.csr_matrix(np.array([[5., 0, 4, 0]]))
    >>> ndcg_at_k(np.array([[1, 0]]), test, k=2)     # (1/log2 3) / (1 + 1/log2 3)
    0.3868...
    """
    hits, n_rel, _ = _hits(recs, test, k, threshold, users)
    if not len(n_rel):
        return float("nan")
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits @ discount
    ideal = np.cumsum(discount)[np.minimum(n_rel, k) - 1]
    return float(np.mean(dcg / ideal))


def _hits(recs, test, k, threshold, users):
    """(hits (u x k) booleans, relevant counts (u,), row indices) for the users of ``recs``
    that have a relevant held-out item."""
    k = check_positive_int(k, "k")
    M = getattr(test, "matrix", test)
    if not sp.issparse(M):
        raise TypeError(f"test must be a Ratings or a scipy.sparse matrix, got "
                        f"{type(test).__name__}")
    M = sp.csr_matrix(M)
    recs = np.asarray(recs)
    if recs.ndim != 2 or recs.shape[1] < k or recs.dtype.kind not in "iu":
        raise ValueError(f"recs must be a 2-D integer array with at least k={k} columns, got "
                         f"shape {recs.shape} and dtype {recs.dtype}")
    if users is None:
        if recs.shape[0] != M.shape[0]:
            raise ValueError(f"recs has {recs.shape[0]} rows but test has {M.shape[0]} users; "
                             "pass users= to say which user each row is")
        users = np.arange(M.shape[0])
    users = np.asarray(users, dtype=np.int64)
    if users.shape != (recs.shape[0],):
        raise ValueError(f"users must have one entry per row of recs, got shape {users.shape}")
    M = _relevant(M, threshold)
    n_rel_all = np.diff(M.indptr)[users]
    keep = n_rel_all > 0
    users, recs = users[keep], recs[keep, :k]
    hits = np.zeros(recs.shape, dtype=bool)
    step = max(1, _BATCH_BYTES // max(M.shape[1], 1))
    for s in range(0, len(users), step):
        rel = M[users[s:s + step]].toarray() != 0        # the batch's relevant items, dense
        r = recs[s:s + step]
        valid = (r >= 0) & (r < M.shape[1])
        hits[s:s + step] = valid & rel[np.arange(len(r))[:, None], np.where(valid, r, 0)]
    return hits.astype(np.float64), n_rel_all[keep], users


def _relevant(M, threshold):
    """The stored entries >= threshold (all stored entries for None) as ones."""
    R = sp.csr_matrix(M, copy=True)
    if threshold is None:
        R.data = np.ones_like(R.data)
    else:
        threshold = check_real(threshold, "threshold", low=-np.inf)
        R.data = (R.data >= threshold).astype(R.data.dtype)
    R.eliminate_zeros()
    return R


class Evaluation(NamedTuple):
    """Accuracy of a model on held-out ratings (NaN where the model cannot say)."""

    rmse: float
    mae: float
    precision: float
    recall: float
    ndcg: float
    k: int


def evaluate(model, test, *, k=10, threshold=4.0, exclude_seen=True) -> Evaluation:
    """RMSE and MAE of ``model.predict`` on the held-out ratings (NaN for a model without
    ``predict``, such as PureSVD) and precision, recall and NDCG at k of ``model.recommend``
    for every user with a relevant held-out item.

    ``test`` is a Ratings or sparse matrix with the model's users and items (as from
    :meth:`Ratings.split`).
    """
    M = sp.csr_matrix(getattr(test, "matrix", test))
    rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
    err = (float("nan"),) * 2
    if hasattr(model, "predict"):
        pred = model.predict(rows, M.indices)
        err = (rmse(M.data, pred), mae(M.data, pred))
    rel = _relevant(M, threshold)
    users = np.flatnonzero(np.diff(rel.indptr) > 0)
    recs = model.recommend(users, n=k, exclude_seen=exclude_seen)
    kw = dict(threshold=threshold, users=users)
    return Evaluation(*err, precision_at_k(recs, M, k, **kw), recall_at_k(recs, M, k, **kw),
                      ndcg_at_k(recs, M, k, **kw), k)
