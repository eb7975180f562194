"""MovieLens-like synthetic ratings: popularity skew, user activity skew, taste-driven choices,
ratings from biases plus a low-rank term plus noise, rounded to stars. For tests, docs and
benchmarks (the library downloads no data)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._validation import check_positive_int, check_random_state
from .ratings import Ratings

# Item popularity ~ (popularity rank + I0)^-2 with I0 = _I0_FRACTION * n_items: at MovieLens
# 25M's size (162,541 x 59,047, 25 M ratings) the most drawn item gets ~98 k draws and the
# median item ~7 (the real data: 81 k and ~6).
_I0_FRACTION = 0.0043
_POP_EXPONENT = 2.0


def synthetic_ratings(n_users, n_items, n_ratings, *, rank=10, n_groups=20, half_stars=False,
                      dtype=np.float64, rng=None) -> Ratings:
    """Synthetic MovieLens-like ratings.

    Users belong to ``n_groups`` taste groups; a user's items are drawn from the item
    popularity (a power law as steep as MovieLens') reweighted by the group's taste, so which
    items a user rates carries signal, as in real data. User activity is log-normal with at
    least 20 ratings when ``n_ratings >= 20 n_users`` (as MovieLens guarantees). A rating is
    ``user bias + item bias (higher for popular items) + p_u . q_i + noise`` shifted to a mean
    of 3.55 and rounded to whole stars 1..5 (or half stars 0.5..5); noise (0.75) and rounding
    put the best reachable RMSE near 0.8.

    Parameters
    ----------
    n_users, n_items, n_ratings : int
        ``n_ratings`` is reached unless heavy users run out of items (then a few are missing).
    rank : int
        Rank of the taste term.
    n_groups : int
    half_stars : bool
    dtype : float dtype of the ratings
    rng : None, int or numpy.random.Generator

    Examples
    --------
    >>> from randla.recommend import synthetic_ratings
    >>> R = synthetic_ratings(500, 300, 10_000, rng=0)
    >>> R.shape, R.nnz
    ((500, 300), 10000)
    >>> sorted(set(R.matrix.data)) == [1.0, 2.0, 3.0, 4.0, 5.0]
    True
    """
    n_users, n_items = check_positive_int(n_users, "n_users"), check_positive_int(n_items,
                                                                                   "n_items")
    n_ratings = check_positive_int(n_ratings, "n_ratings")
    rank, n_groups = check_positive_int(rank, "rank"), check_positive_int(n_groups, "n_groups")
    rng = check_random_state(rng)
    pop = rng.permutation((np.arange(n_items) + 1 + _I0_FRACTION * n_items) ** -_POP_EXPONENT)
    group = rng.integers(0, n_groups, n_users)
    G = rng.standard_normal((n_groups, rank)) / np.sqrt(rank)
    Q = rng.standard_normal((n_items, rank))
    P = G[group] + 0.5 * rng.standard_normal((n_users, rank)) / np.sqrt(rank)
    counts = _activity(n_users, n_items, n_ratings, rng)
    rows, cols = _draw_pairs(counts, group, _taste_weights(pop, G, Q), n_items, rng)
    values = _values(rows, cols, P, Q, pop, half_stars, rng)
    M = _csr(rows, cols, values.astype(dtype), (n_users, n_items))
    return Ratings(M)


def _activity(n_users, n_items, n_ratings, rng):
    """Ratings per user: 20 + log-normal (MovieLens 25M: median 71, mean 153), scaled to sum
    to n_ratings, at most n_items // 2 (dropping below 20 only when n_ratings is small)."""
    a = np.exp(rng.normal(np.log(50.0), 1.24, n_users))
    floor = min(20.0, n_ratings / n_users)
    extra = a * max(n_ratings - floor * n_users, 0) / a.sum()
    c = np.minimum(np.floor(floor + extra), max(n_items // 2, 1)).astype(np.int64)
    cap = max(n_items // 2, 1)
    for _ in range(20):   # hand out what rounding and the cap left, at random
        short = n_ratings - c.sum()
        room = np.flatnonzero(c < cap)
        if short <= 0 or not len(room):
            break
        np.add.at(c, rng.choice(room, size=short), 1)
        np.minimum(c, cap, out=c)
    return c


def _taste_weights(pop, G, Q):
    """Item choice distribution of each group: popularity times exp(taste), as a CDF."""
    w = pop[None, :] * np.exp(1.5 * (G @ Q.T) / np.sqrt((G ** 2).sum(1).mean()))
    cdf = np.cumsum(w, axis=1)
    return cdf / cdf[:, -1:]


def _draw_pairs(counts, group, cdf, n_items, rng, rounds=8):
    """Distinct (user, item) pairs, counts[u] for user u, items drawn from the group's CDF.
    Duplicates are dropped and the missing pairs drawn again, with more draws each round (a
    heavy user exhausts the popular items); the last rounds draw uniformly."""
    want = counts.copy()
    keys = np.zeros(0, np.int64)     # user * n_items + item, sorted and distinct
    for rnd in range(rounds):
        if want.sum() == 0:
            break
        u = np.repeat(np.arange(len(counts)), (want * 1.2 * 2 ** rnd + 2).astype(np.int64)
                      * (want > 0))
        if rnd >= rounds - 2:
            i = rng.integers(0, n_items, len(u))
        else:
            i = np.empty(len(u), np.int64)
            order = np.argsort(group[u], kind="stable")   # draws of one group together
            bounds = np.searchsorted(group[u][order], np.arange(cdf.shape[0] + 1))
            for g in range(cdf.shape[0]):
                sel = order[bounds[g]:bounds[g + 1]]
                i[sel] = np.minimum(np.searchsorted(cdf[g], rng.random(len(sel))), n_items - 1)
        keys = _sorted_unique(np.concatenate([keys, u * n_items + i]))
        want = np.maximum(counts - np.bincount(keys // n_items, minlength=len(counts)), 0)
    return _truncate(keys // n_items, keys % n_items, counts, rng)


def _sorted_unique(a):
    a = np.sort(a)
    return a[np.r_[True, a[1:] != a[:-1]]] if len(a) else a


def _truncate(u, i, counts, rng):
    """At most counts[u] pairs of each user u (a random subset), sorted by user."""
    order = np.argsort((u << 32) | rng.integers(0, 1 << 32, len(u)))   # random within user
    u, i = u[order], i[order]
    start = np.searchsorted(u, np.arange(len(counts)))
    keep = np.arange(len(u)) - start[u] < counts[u]
    return u[keep], i[keep]


def _values(rows, cols, P, Q, pop, half_stars, rng):
    n_users, n_items = P.shape[0], Q.shape[0]
    logpop = np.log(pop)
    item_bias = 0.35 * rng.standard_normal(n_items) + 0.2 * (logpop - logpop.mean()) / logpop.std()
    user_bias = 0.35 * rng.standard_normal(n_users)
    z = np.empty(len(rows))
    step = 1 << 20
    for s in range(0, len(rows), step):   # p_u . q_i in chunks: no (n_ratings, rank) array
        r, c = rows[s:s + step], cols[s:s + step]
        z[s:s + step] = np.einsum("ij,ij->i", P[r], Q[c])
    z = user_bias[rows] + item_bias[cols] + 0.6 * z / max(z.std(), 1e-12)
    # the mean of MovieLens ratings (choices follow taste, so the raw mean runs high)
    z += 3.55 - z.mean() + 0.75 * rng.standard_normal(len(z))
    if half_stars:
        return np.clip(np.round(z * 2) / 2, 0.5, 5.0)
    return np.clip(np.round(z), 1.0, 5.0)


def _csr(rows, cols, values, shape):
    M = sp.csr_matrix((values, (rows, cols)), shape=shape)
    M.sort_indices()
    return M
