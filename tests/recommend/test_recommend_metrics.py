"""Metrics against hand-computed values and a plain-Python recomputation."""
import math

import numpy as np
import pytest
import scipy.sparse as sp

from randla.recommend import metrics

# 4 users x 6 items of held-out ratings; relevant (>= 4): u0 {0, 2, 5}, u1 {3}, u2 none, u3 {1, 4}
TEST = sp.csr_matrix(np.array([[5, 0, 4, 0, 0, 4.5],
                               [0, 3, 0, 4, 0, 0],
                               [2, 0, 0, 0, 3, 0],
                               [0, 5, 0, 0, 4, 1.0]]))
RECS = np.array([[2, 1, 0, -1],
                 [0, 1, 5, 3],
                 [4, 0, 1, 2],
                 [3, 4, 1, 0]])


def test_rmse_mae_by_hand():
    assert metrics.rmse([3, 4, 5], [2, 4, 7]) == pytest.approx(math.sqrt(5 / 3))
    assert metrics.mae([3, 4, 5], [2, 4, 7]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one length"):
        metrics.rmse([1, 2], [1])


def test_precision_recall_ndcg_at_3_by_hand():
    # u0: top3 = 2, 1, 0 -> hits 1, 0, 1;  u1: 0, 1, 5 -> none;  u3: 3, 4, 1 -> 0, 1, 1
    assert metrics.precision_at_k(RECS, TEST, 3) == pytest.approx((2 / 3 + 0 + 2 / 3) / 3)
    assert metrics.recall_at_k(RECS, TEST, 3) == pytest.approx((2 / 3 + 0 + 2 / 2) / 3)
    l2, l3, l4 = 1 / math.log2(2), 1 / math.log2(3), 1 / math.log2(4)
    ndcg0 = (l2 + l4) / (l2 + l3 + l4)
    ndcg3 = (l3 + l4) / (l2 + l3)
    assert metrics.ndcg_at_k(RECS, TEST, 3) == pytest.approx((ndcg0 + 0 + ndcg3) / 3)
    # k = 2: u0 has 3 relevant items, its ideal list has only 2; u3's top 2 = 3, 4 -> 0, 1
    assert metrics.ndcg_at_k(RECS, TEST, 2) == pytest.approx((1 / (l2 + l3) + 0 + l3 / (l2 + l3))
                                                             / 3)


def test_padding_threshold_none_and_users():
    # k = 4: u0's -1 is a miss; with threshold None every held-out item is relevant
    assert metrics.precision_at_k(RECS, TEST, 4) == pytest.approx((2 / 4 + 1 / 4 + 2 / 4) / 3)
    # threshold None: u0 {0,2,5}, u1 {1,3}, u2 {0,4}, u3 {1,4,5}; top 2
    p = metrics.precision_at_k(RECS, TEST, 2, threshold=None)
    assert p == pytest.approx((1 / 2 + 1 / 2 + 2 / 2 + 1 / 2) / 4)
    # rows of recs for users 3 and 1 only
    p = metrics.precision_at_k(RECS[[3, 1]], TEST, 2, users=[3, 1])
    assert p == pytest.approx((1 / 2 + 0) / 2)


def reference(recs, test, k, threshold):
    D = test.toarray()
    out = {"p": [], "r": [], "n": []}
    for u in range(D.shape[0]):
        rel = {j for j in range(D.shape[1]) if test[u, j] != 0 and D[u, j] >= threshold}
        if not rel:
            continue
        top = list(recs[u, :k])
        hits = [1.0 if j in rel else 0.0 for j in top]
        out["p"].append(sum(hits) / k)
        out["r"].append(sum(hits) / len(rel))
        dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
        idcg = sum(1 / math.log2(i + 2) for i in range(min(k, len(rel))))
        out["n"].append(dcg / idcg)
    return {key: float(np.mean(v)) for key, v in out.items()}


def test_against_plain_python_on_random_data():
    rng = np.random.default_rng(3)
    test = sp.random(50, 40, density=0.15, random_state=3, format="csr")
    test.data = rng.integers(1, 6, test.nnz).astype(float)
    recs = np.argsort(rng.random((50, 40)), axis=1)[:, :10]
    ref = reference(recs, test, 7, 4)
    assert metrics.precision_at_k(recs, test, 7) == pytest.approx(ref["p"])
    assert metrics.recall_at_k(recs, test, 7) == pytest.approx(ref["r"])
    assert metrics.ndcg_at_k(recs, test, 7) == pytest.approx(ref["n"])


def test_validation():
    with pytest.raises(ValueError, match="at least k"):
        metrics.precision_at_k(RECS, TEST, 5)
    with pytest.raises(ValueError, match="users="):
        metrics.precision_at_k(RECS[:2], TEST, 2)
    with pytest.raises(TypeError, match="test"):
        metrics.precision_at_k(RECS, TEST.toarray(), 2)
    empty = sp.csr_matrix((4, 6))
    assert math.isnan(metrics.precision_at_k(RECS, empty, 2))


class _Fixed:
    """A model that predicts 3 and recommends RECS."""

    def predict(self, users, items):
        return np.full(len(users), 3.0)

    def recommend(self, users, n=10, exclude_seen=True):
        return RECS[users, :n]


def test_evaluate():
    ev = metrics.evaluate(_Fixed(), TEST, k=3)
    d = TEST.data
    assert ev.rmse == pytest.approx(np.sqrt(np.mean((d - 3) ** 2)))
    assert ev.mae == pytest.approx(np.mean(np.abs(d - 3)))
    assert ev.precision == pytest.approx(metrics.precision_at_k(RECS, TEST, 3))
    assert ev.ndcg == pytest.approx(metrics.ndcg_at_k(RECS, TEST, 3))


def test_recall_divides_by_all_relevant_items_even_beyond_k():
    # many relevant items per user, few recommended: recall = hits / n_relevant (as the
    # docstring defines it), not hits / min(n_relevant, k)
    rng = np.random.default_rng()
    test = sp.random(40, 30, density=0.6, random_state=rng, format="csr")
    test.data = rng.integers(1, 6, test.nnz).astype(float)
    recs = np.argsort(rng.random((40, 30)), axis=1)[:, :5]
    for k in (1, 2, 5):
        ref = reference(recs, test, k, 4)
        assert metrics.recall_at_k(recs, test, k) == pytest.approx(ref["r"])
        assert metrics.precision_at_k(recs, test, k) == pytest.approx(ref["p"])
        assert metrics.ndcg_at_k(recs, test, k) == pytest.approx(ref["n"])


def _brute_force_precision(model, test, k, exclude):
    D = test.toarray()
    users = [u for u in range(D.shape[0]) if np.any(D[u] >= 4)]
    recs = model.recommend(users, n=k, exclude_seen=exclude)
    return np.mean([np.sum([j >= 0 and D[u, j] >= 4 for j in row]) / k
                    for u, row in zip(users, recs)])


def test_evaluate_passes_exclude_seen_and_handles_k_beyond_the_items():
    from randla.recommend import PureSVD, synthetic_ratings
    R = synthetic_ratings(60, 8, 300, rng=np.random.default_rng())
    model = PureSVD(3, rng=0).fit(R)
    # evaluated on its own training ratings: every relevant item is seen, so excluding
    # the seen items leaves no hit and keeping them finds some
    assert metrics.evaluate(model, R, k=3).precision == 0
    kept = metrics.evaluate(model, R, k=3, exclude_seen=False)
    assert kept.precision > 0
    assert kept.precision == pytest.approx(_brute_force_precision(model, R.matrix, 3, False))
    ev = metrics.evaluate(model, R, k=10, exclude_seen=False)     # 10 > 8 items: -1 padded
    assert ev.k == 10
    assert ev.precision == pytest.approx(_brute_force_precision(model, R.matrix, 10, False))


def test_k_defaults_to_10():
    rng = np.random.default_rng()
    test = sp.random(30, 40, density=0.5, random_state=rng, format="csr")
    test.data = rng.integers(1, 6, test.nnz).astype(float)
    recs = np.argsort(rng.random((30, 40)), axis=1)[:, :20]
    for f in (metrics.precision_at_k, metrics.recall_at_k, metrics.ndcg_at_k):
        assert f(recs, test) == pytest.approx(reference(recs, test, 10, 4)[f.__name__[0]])

    class First20:
        def recommend(self, users, n=10, exclude_seen=True):
            return recs[users, :n]
    ev = metrics.evaluate(First20(), test)
    assert ev.k == 10 and ev.precision == pytest.approx(reference(recs, test, 10, 4)["p"])
