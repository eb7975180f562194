"""PureSVD and the batched top-N kernel against dense numpy references."""
import numpy as np
import pytest
import scipy.sparse as sp

from randla.recommend import PureSVD, Ratings, synthetic_ratings
from randla.recommend._topn import top_n


def dense_top(scores, n, seen=None):
    """Reference top-n: stable sort by (-score, index), seen items removed, -1 padding."""
    S = np.array(scores, dtype=float)
    if seen is not None:
        S[seen.toarray() != 0] = -np.inf
    out = np.full((S.shape[0], n), -1)
    for r, row in enumerate(S):
        order = [j for j in np.lexsort((np.arange(len(row)), -row)) if row[j] > -np.inf][:n]
        out[r, :len(order)] = order
    return out


@pytest.mark.parametrize("batch_bytes", [1, 200, 1 << 20])
def test_top_n_matches_sorting(batch_bytes):
    rng = np.random.default_rng(0)
    # small integers: exact scores with many ties (the smaller index comes first)
    P, Q = rng.integers(-2, 3, (37, 4)).astype(float), rng.integers(-2, 3, (23, 4)).astype(float)
    off = rng.integers(-1, 2, 23).astype(float)
    seen = sp.random(37, 23, density=0.3, random_state=0, format="csr")
    users = rng.permutation(37)[:20]
    got = top_n(P, Q, users, 6, offset=off, seen=seen, batch_bytes=batch_bytes)
    np.testing.assert_array_equal(got, dense_top((P @ Q.T + off)[users], 6, seen[users]))
    got = top_n(P, Q, users, 6, batch_bytes=batch_bytes)
    np.testing.assert_array_equal(got, dense_top((P @ Q.T)[users], 6))


def test_top_n_pads_with_minus_one():
    P, Q = np.ones((1, 1)), np.arange(5.0)[:, None]
    seen = sp.csr_matrix(np.array([[1, 0, 1, 1, 0]]))
    np.testing.assert_array_equal(top_n(P, Q, [0], 4, seen=seen), [[4, 1, -1, -1]])


def low_rank_ratings(m, n, r, seed):
    rng = np.random.default_rng(seed)
    return rng.random((m, r)) @ rng.random((r, n))


def test_scores_and_recommend_match_dense_svd():
    R = synthetic_ratings(200, 120, 4000, rng=1)
    model = PureSVD(8, rng=0).fit(R)
    D = R.matrix.toarray()
    V = model.item_factors_
    np.testing.assert_allclose(V.T @ V, np.eye(8), atol=1e-10)
    np.testing.assert_allclose(model.scores([3, 7]), D[[3, 7]] @ V @ V.T, atol=1e-10)
    # V spans the top right singular space when the spectrum has a gap after k
    G = low_rank_ratings(90, 60, 8, seed=1)
    G = G + 1e-3 * np.random.default_rng(2).random((90, 60))
    Vg = PureSVD(8, rng=0).fit(sp.csr_matrix(G)).item_factors_
    Vd = np.linalg.svd(G)[2][:8].T
    np.testing.assert_allclose(Vg @ Vg.T, Vd @ Vd.T, atol=1e-6)
    recs = model.recommend(np.arange(200), n=10, batch_bytes=5000)
    np.testing.assert_array_equal(recs, dense_top(model.scores(None), 10, R.matrix))
    incl = model.recommend([0], n=10, exclude_seen=False)
    np.testing.assert_array_equal(incl, dense_top(model.scores([0]), 10))


def test_fold_in_equals_refit_when_the_user_is_in_the_item_space():
    A = low_rank_ratings(60, 40, 5, seed=2)
    c = np.random.default_rng(3).random(60)
    new = c @ A                          # a combination of existing users: same row space
    model = PureSVD(5, rng=0).fit(sp.csr_matrix(A))
    idx = model.fold_in(new)
    refit = PureSVD(5, rng=0).fit(sp.csr_matrix(np.vstack([A, new])))
    np.testing.assert_array_equal(idx, [60])
    np.testing.assert_allclose(model.scores(idx), refit.scores([60]), rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(model.recommend(idx, n=5), refit.recommend([60], n=5))


def test_fold_in_close_to_refit_on_ratings():
    R = synthetic_ratings(400, 200, 12_000, rng=4)
    M = R.matrix
    model = PureSVD(10, rng=0).fit(M[:-20])
    idx = model.fold_in(M[-20:])
    refit = PureSVD(10, rng=0).fit(M)
    a = model.recommend(idx, n=10)
    b = refit.recommend(np.arange(380, 400), n=10)
    overlap = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a, b)])
    assert overlap > 0.8
    assert model.seen_.shape == (400, 200)


@pytest.mark.parametrize("sketch", ["sparse_sign", "rademacher"])
def test_sketch_pass_through(sketch):
    G = low_rank_ratings(300, 150, 10, seed=5) + 1e-4 * np.random.default_rng(5).random((300, 150))
    a = PureSVD(10, sketch=sketch, rng=0).fit(sp.csr_matrix(G))
    np.testing.assert_allclose(a.singular_values_, np.linalg.svd(G)[1][:10], rtol=1e-6)


def test_float32_stays_float32_and_validation():
    R = synthetic_ratings(100, 60, 1500, dtype=np.float32, rng=6)
    model = PureSVD(5, rng=0).fit(R)
    assert model.item_factors_.dtype == np.float32 and model.scores([0]).dtype == np.float32
    with pytest.raises(ValueError, match="user_indices"):
        model.recommend([100])
    with pytest.raises(ValueError, match="columns"):
        model.fold_in(np.ones(59))
    with pytest.raises(TypeError, match="Ratings or a scipy.sparse"):
        PureSVD(5).fit(np.ones((10, 10)))
    with pytest.raises(ValueError, match="k must be <"):
        PureSVD(70).fit(R)


def test_k_must_be_less_than_users_and_items(tmp_path):
    # at k = min(m, n) V V^T keeps every user's ratings: unseen items score rounding noise
    rng = np.random.default_rng()
    m, n = (int(x) for x in rng.integers(8, 20, 2))
    D = rng.random((m, n)) * (rng.random((m, n)) < 0.5)
    D[np.arange(min(m, n)), np.arange(min(m, n))] = 1.0     # full rank
    R = sp.csr_matrix(D)
    from randla.recommend import save_ratings
    store = save_ratings(Ratings(R), tmp_path / "s")
    for data in (R, store):
        for k in (min(m, n), min(m, n) + 1, 10**5):
            with pytest.raises(ValueError, match=rf"k must be < min\(n_users, n_items\) = "
                                                 rf"{min(m, n)}"):
                PureSVD(k, rng=0).fit(data)
        assert PureSVD(min(m, n) - 1, rng=0).fit(data).item_factors_.shape == (n, min(m, n) - 1)


def test_recommend_pads_n_beyond_the_items():
    rng = np.random.default_rng()
    R = sp.csr_matrix(rng.random((12, 6)) * (rng.random((12, 6)) < 0.4))
    model = PureSVD(3, rng=0).fit(R)
    for exclude in (True, False):
        got = model.recommend(None, n=9, exclude_seen=exclude)
        assert got.shape == (12, 9)
        np.testing.assert_array_equal(got, dense_top(model.scores(None), 9,
                                                     R if exclude else None))
    assert np.all(got[:, 6:] == -1)


def test_not_fitted_and_bad_rows_are_clear_errors():
    from randla.recommend import NotFittedError
    model = PureSVD(3)
    for call, what in ((lambda: model.recommend([0]), "recommend"),
                       (lambda: model.scores([0]), "scores"),
                       (lambda: model.fold_in(np.ones(4)), "fold_in"),
                       (lambda: model.n_users, "n_users")):
        with pytest.raises(NotFittedError, match=rf"call PureSVD\.fit\(ratings\) before {what}"):
            call()
    assert issubclass(NotFittedError, ValueError) and not hasattr(model, "n_items")
    model.fit(synthetic_ratings(30, 20, 200, rng=0))
    with pytest.raises(ValueError, match=r"1-D.*or users x items \(2-D\), got shape \(2, 2, 20\)"):
        model.fold_in(np.ones((2, 2, 20)))
    assert model.n_users == 30       # nothing added
