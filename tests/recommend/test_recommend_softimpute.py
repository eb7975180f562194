"""SoftImpute against a dense soft-impute with full SVDs, its operator against dense products,
fold-in against the fit and a refit."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import randla.recommend._operators as operators
from randla.exceptions import AccuracyWarning
from randla.recommend import Ratings, SoftImpute, metrics, softimpute, synthetic_ratings
from randla.recommend._operators import SoftImputeOperator, SparsePlusLowRank, observed_values
from randla.recommend.softimpute import _warm_svd


def dense_biases(D, mask, reg, sweeps=10):
    mu = D[mask].mean()
    bu, bi = np.zeros(D.shape[0]), np.zeros(D.shape[1])
    for _ in range(sweeps):
        bu = np.where(mask, D - mu - bi[None, :], 0).sum(1) / (reg + mask.sum(1))
        bi = np.where(mask, D - mu - bu[:, None], 0).sum(0) / (reg + mask.sum(0))
    bu = np.where(mask, D - mu - bi[None, :], 0).sum(1) / (reg + mask.sum(1))
    return mu, bu, bi


def dense_soft_impute(X, mask, lam, k, iters=3000):
    """Mazumder et al. (2010) algorithm 1 with exact SVDs, rank capped at k."""
    Z = np.zeros_like(X)
    for _ in range(iters):
        U, s, Vh = np.linalg.svd(np.where(mask, X, Z), full_matrices=False)
        Z_new = (U[:, :k] * np.maximum(s[:k] - lam, 0)) @ Vh[:k]
        if np.linalg.norm(Z_new - Z) <= 1e-13 * max(np.linalg.norm(Z), 1):
            return Z_new
        Z = Z_new
    return Z


def small_problem(seed=0, m=60, n=40, density=0.5):
    rng = np.random.default_rng(seed)
    D = np.clip(np.rint(3 + rng.standard_normal((m, 3)) @ rng.standard_normal((3, n))
                        + 0.3 * rng.standard_normal((m, n))), 1, 5)
    mask = rng.random((m, n)) < density
    return sp.csr_matrix(np.where(mask, D, 0)), D, mask


def test_operator_matches_dense_products():
    rng = np.random.default_rng(1)
    S = sp.random(50, 30, density=0.2, random_state=1, format="csr")
    U, V, d = rng.standard_normal((50, 4)), rng.standard_normal((30, 4)), rng.random(4)
    op = SparsePlusLowRank(S, U, d, V)
    dense = S.toarray() + (U * d) @ V.T
    X, Y = rng.standard_normal((30, 3)), rng.standard_normal((50, 3))
    np.testing.assert_allclose(op.matmat(X), dense @ X)
    np.testing.assert_allclose(op.rmatmat(Y), dense.T @ Y)
    vals = observed_values(S, U * d, V)
    np.testing.assert_allclose(vals, ((U * d) @ V.T)[S.nonzero()])
    assert op.shape == (50, 30) and op.dtype == np.float64


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_soft_impute_operator_matches_dense_products(monkeypatch, dtype, parallel):
    """P_Omega(X - Z) + Z against the dense matrix, either product first, the serial and the
    parallel kernels."""
    monkeypatch.setattr(operators, "PARALLEL_NNZ", 0 if parallel else 1 << 60)
    rng = np.random.default_rng(2)
    X = sp.random(40, 25, density=0.3, random_state=2, format="csr", dtype=dtype)
    U, V, d = rng.standard_normal((40, 3)), rng.standard_normal((25, 3)), rng.random(3)
    Z = (U * d) @ V.T
    dense = np.where(X.toarray() != 0, X.toarray() - Z, 0) + Z
    W, Y = rng.standard_normal((25, 4)), rng.standard_normal((40, 5))
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    for first in ("matmat", "rmatmat"):
        op = SoftImputeOperator(X, U.astype(dtype), d, V.astype(dtype))
        for name in (first, {"matmat": "rmatmat", "rmatmat": "matmat"}[first]) * 2:
            got = getattr(op, name)(W if name == "matmat" else Y)
            ref = dense @ W if name == "matmat" else dense.T @ Y
            assert got.dtype == dtype
            np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * np.abs(ref).max())
    empty = SoftImputeOperator(X, np.zeros((40, 0), dtype), np.zeros(0), np.zeros((25, 0), dtype))
    np.testing.assert_allclose(empty.matmat(W), X.toarray() @ W, rtol=rtol, atol=rtol)


def test_warm_svd_is_a_subspace_iteration_that_carries_its_basis():
    """From the previous step's basis, each call is one step of subspace iteration: the top-k
    triplets it returns converge to the SVD's, and the basis it hands on spans the top
    right singular subspace (its first k columns are V)."""
    rng = np.random.default_rng(3)
    m, n, k, l = 80, 60, 4, 10
    Uo, _ = np.linalg.qr(rng.standard_normal((m, n)))
    Vo, _ = np.linalg.qr(rng.standard_normal((n, n)))
    sv = 0.8 ** np.arange(n)                      # a gap at every index
    op = SparsePlusLowRank(sp.csr_matrix((Uo * sv) @ Vo.T))
    basis = np.linalg.qr(rng.standard_normal((n, l)))[0]
    errors = []
    for _ in range(30):
        U, s, V, basis = _warm_svd(op, basis, k, 0)
        errors.append(np.max(np.abs(s - sv[:k]) / sv[:k]))
        np.testing.assert_allclose(basis[:, :k], V)
        np.testing.assert_allclose(basis.T @ basis, np.eye(l), atol=1e-12)
    assert errors[-1] < 1e-10 < errors[0]
    np.testing.assert_allclose(np.abs(np.sum(U * Uo[:, :k], 0)), 1, atol=1e-8)
    # the extra columns converged too: the basis spans the top-l right singular vectors
    np.testing.assert_allclose(np.linalg.svd(Vo[:, :l].T @ basis)[1], 1, atol=1e-6)


class _NoRandom:
    def __getattr__(self, name):
        raise AssertionError(f"drew random numbers ({name})")


def test_a_warm_start_carries_its_subspace():
    """Restarting from converged factors (as the path hands them on) converges at once and
    draws no random numbers: the subspace is carried, not redrawn."""
    M, D, mask = small_problem(seed=9)
    model = SoftImpute(6, shrinkage=4.0, tol=1e-12, max_iter=5000, rng=0)
    X = softimpute._residual(M, *softimpute._biases(M, 10.0))
    cold = softimpute._cold_start(X, 6, 10, "gaussian", np.random.default_rng(0))
    state, n_cold = model._soft_impute(X, 4.0, cold, np.random.default_rng(0))
    again, n_warm = model._soft_impute(X, 4.0, state, _NoRandom())
    assert n_cold > 20 and n_warm == 1
    np.testing.assert_allclose(again[1], state[1], rtol=1e-4)


@pytest.mark.parametrize("power_iters", [0, 1])
def test_fixed_shrinkage_matches_dense_soft_impute(power_iters):
    M, D, mask = small_problem()
    lam = 4.0
    model = SoftImpute(8, shrinkage=lam, tol=1e-15, max_iter=5000, power_iters=power_iters,
                       clip=False, rng=0).fit(M)
    mu, bu, bi = dense_biases(D, mask, 10.0)
    X = D - mu - bu[:, None] - bi[None, :]
    Z = dense_soft_impute(X, mask, lam, 8)
    assert np.linalg.matrix_rank(Z, tol=1e-8) == 6     # the cap is not active: unique solution
    rows, cols = np.indices(D.shape).reshape(2, -1)
    pred = model.predict(rows, cols).reshape(D.shape)
    # soft-impute converges linearly, slowly near the threshold: both sides stop within ~1e-6
    np.testing.assert_allclose(pred, mu + bu[:, None] + bi[None, :] + Z, atol=1e-5)
    np.testing.assert_allclose(model.user_bias_, bu, atol=1e-12)
    np.testing.assert_allclose(model.item_bias_, bi, atol=1e-12)


def test_chosen_shrinkage_beats_biases_and_is_on_the_path():
    R = synthetic_ratings(600, 300, 30_000, rng=2)
    train, test = R.split(0.2, rng=0)
    model = SoftImpute(10, rng=0).fit(train)
    lams, errs = zip(*model.validation_path_)
    # the refit has 1 / 0.9 times the hold-out fit's ratings: lambda grows by its square root
    nnz = train.nnz
    ratio = nnz / (nnz - round(0.1 * nnz))
    assert model.shrinkage_ == pytest.approx(lams[int(np.argmin(errs))] * np.sqrt(ratio),
                                             rel=1e-12)
    assert np.argmin(errs) == len(errs) - 2         # the path stops at the first rise
    rows, cols, r = test.triplets()
    err = metrics.rmse(r, model.predict(rows, cols))
    base = SoftImpute(10, shrinkage=1e9, rng=0).fit(train)     # everything shrunk: biases only
    assert np.all(base.singular_values_ == 0)
    assert err < metrics.rmse(r, base.predict(rows, cols)) - 0.005
    pred = model.predict(rows, cols)
    assert pred.min() >= train.matrix.data.min() and pred.max() <= train.matrix.data.max()


def test_fold_in_reproduces_a_training_user_and_is_close_to_a_refit():
    M, D, mask = small_problem(seed=3, m=80, n=50, density=0.6)
    model = SoftImpute(6, shrinkage=6.0, tol=1e-10, max_iter=2000, rng=0).fit(M)
    u = 5
    idx = model.fold_in(M[u])
    assert model.user_bias_[idx[0]] == pytest.approx(model.user_bias_[u], abs=1e-8)
    # to the fit's own convergence: 4e-6 relative on the clean-clone run, where atol=1e-5 on
    # entries of ~3.4 failed by 1.4e-5
    np.testing.assert_allclose(model.user_factors_[idx[0]], model.user_factors_[u], rtol=1e-4,
                               atol=1e-6)
    # a new user: fit without the last user, fold it in, compare with the fit that has it
    part = SoftImpute(6, shrinkage=6.0, tol=1e-10, max_iter=2000, rng=0).fit(M[:-1])
    new = part.fold_in(M[-1])
    cols = np.arange(50)
    a = part.predict(np.full(50, new[0]), cols)
    b = model.predict(np.full(50, 79), cols)
    assert np.max(np.abs(a - b)) < 0.15 and np.mean(np.abs(a - b)) < 0.05


def test_recommend_orders_by_predicted_rating():
    R = synthetic_ratings(200, 100, 5000, rng=4)
    model = SoftImpute(8, shrinkage=5.0, clip=False, rng=0).fit(R)
    recs = model.recommend([0, 1, 2], n=5)
    for row, u in zip(recs, [0, 1, 2]):
        pred = model.predict(np.full(100, u), np.arange(100))
        pred[R.matrix[u].indices] = -np.inf
        np.testing.assert_array_equal(row, np.argsort(-pred, kind="stable")[:5])


def test_sketch_and_float32_and_warning():
    R = synthetic_ratings(150, 80, 3000, dtype=np.float32, rng=5)
    # shrinkage large enough for a solution of rank < k: unique, whatever the first sketch
    model = SoftImpute(8, shrinkage=11.0, tol=1e-8, sketch="sparse_sign", rng=0).fit(R)
    assert model.item_factors_.dtype == np.float32
    ref = SoftImpute(8, shrinkage=11.0, tol=1e-8, rng=1).fit(R)
    assert 0 < np.sum(ref.singular_values_ > 0) < 8
    np.testing.assert_allclose(model.singular_values_, ref.singular_values_, rtol=1e-3,
                               atol=1e-3)
    with pytest.warns(AccuracyWarning, match="max_iter=1"):
        SoftImpute(5, shrinkage=1.0, max_iter=1, rng=0).fit(R)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccuracyWarning)
        SoftImpute(5, shrinkage=3.0, rng=0).fit(R)


def test_validation():
    with pytest.raises(ValueError, match="shrinkage"):
        SoftImpute(5, shrinkage=-1.0)
    with pytest.raises(ValueError, match="tol"):
        SoftImpute(5, tol=0)
    R = synthetic_ratings(50, 30, 500, rng=6)
    model = SoftImpute(3, shrinkage=1.0, rng=0).fit(R)
    with pytest.raises(ValueError, match="item_indices"):
        model.predict([0], [30])
    with pytest.raises(ValueError, match="one shape"):
        model.predict([0, 1], [0])


def test_same_seed_same_model_and_evaluate():
    R = synthetic_ratings(300, 150, 8000, rng=7)
    train, test = R.split(0.2, by="user", rng=0)
    a, b = SoftImpute(6, rng=3).fit(train), SoftImpute(6, rng=3).fit(train)
    assert a.shrinkage_ == b.shrinkage_
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    ev = metrics.evaluate(a, test, k=5)
    rows, cols, r = test.triplets()
    assert ev.rmse == pytest.approx(metrics.rmse(r, a.predict(rows, cols)))
    assert 0 < ev.precision <= 1 and 0 < ev.ndcg <= 1 and ev.k == 5


def test_users_and_items_without_ratings():
    M, D, mask = small_problem(seed=8)
    M = M.tolil()
    M[0, :] = 0
    M[-1, :] = 0                      # first and last users rate nothing
    M[:, -1] = 0                      # nor is the last item rated
    M = M.tocsr()
    M.eliminate_zeros()
    model = SoftImpute(4, shrinkage=5.0, rng=0).fit(M)
    assert model.user_bias_[0] == model.user_bias_[-1] == 0 and model.item_bias_[-1] == 0
    pred = model.predict(np.array([0, 59]), np.array([39, 0]))
    assert np.all(np.isfinite(pred))
    tr, te = Ratings(M).split(0.3, by="user", rng=0)
    np.testing.assert_allclose((tr.matrix + te.matrix).toarray(), M.toarray())


def test_one_rating_and_a_hold_out_of_all_but_one():
    rng = np.random.default_rng()
    r = float(rng.integers(1, 6))
    one = sp.csr_matrix(([r], ([int(rng.integers(5))], [int(rng.integers(4))])), shape=(5, 4))
    with pytest.raises(ValueError, match="at least 2, got 1: pass shrinkage="):
        SoftImpute(1, rng=0).fit(one)
    with pytest.raises(ValueError, match="at least 2, got 0"):
        SoftImpute(1, rng=0).fit(sp.csr_matrix((5, 4)))
    model = SoftImpute(1, shrinkage=0.5, rng=0).fit(one)   # mean and no bias: r everywhere
    np.testing.assert_allclose(model.predict(np.arange(5), np.arange(5) % 4), r)
    # a hold-out that rounds to every rating keeps one for training
    few = sp.csr_matrix(rng.integers(1, 6, (4, 4)) * np.eye(4)[:, rng.permutation(4)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AccuracyWarning)
        model = SoftImpute(1, validation_size=0.9, rng=0).fit(few)
    assert np.all(np.isfinite(model.predict(np.arange(4), np.arange(4))))


def test_not_fitted_recommend_beyond_the_items_and_3d_rows():
    from randla.recommend import NotFittedError
    model = SoftImpute(2, shrinkage=1.0, rng=0)
    for call, what in ((lambda: model.predict([0], [0]), "predict"),
                       (lambda: model.recommend([0]), "recommend"),
                       (lambda: model.fold_in(np.ones(4)), "fold_in")):
        with pytest.raises(NotFittedError, match=rf"SoftImpute\.fit\(ratings\) before {what}"):
            call()
    R = synthetic_ratings(40, 7, 150, rng=np.random.default_rng())
    model.fit(R)
    recs = model.recommend(None, n=10)
    assert recs.shape == (40, 10) and np.all(recs[:, 7:] == -1)
    np.testing.assert_array_equal(recs[:, :3], model.recommend(None, n=3))
    with pytest.raises(ValueError, match=r"got shape \(1, 2, 7\)"):
        model.fold_in(np.ones((1, 2, 7)))


def test_relative_change_from_a_tiny_or_zero_start():
    # from an all-but-zero fit the relative change is huge or infinite, never a warning
    from randla.recommend.softimpute import _relative_change
    U = np.eye(4, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _relative_change(U, np.array([1e-200]), U, U, np.array([1e10]), U) > 1e300
        assert _relative_change(U, np.array([0.0]), U, U, np.array([1.0]), U) == np.inf
        assert _relative_change(U, np.array([0.0]), U, U, np.array([0.0]), U) == 0.0
        assert _relative_change(U, np.array([2.0]), U, U, np.array([1.0]), U) == 0.25
