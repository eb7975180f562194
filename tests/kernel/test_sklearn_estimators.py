"""scikit-learn compatibility and accuracy of NystromFeatures and KernelRidge."""
import numpy as np
import pytest
from sklearn.kernel_ridge import KernelRidge as ExactKRR
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from randla import KernelMatrix, KernelRidge, NystromFeatures


@parametrize_with_checks([NystromFeatures(n_components=20, random_state=0),
                          KernelRidge(n_components=40, random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _regression(rng, n=600, p=3):
    X = rng.standard_normal((n, p))
    y = np.sin(X @ rng.standard_normal(p)) + 0.1 * rng.standard_normal(n)
    return X, y


@pytest.mark.parametrize("solver", ["pcg", "nystrom"])
def test_krr_matches_exact_kernel_ridge(rng, solver):
    X, y = _regression(rng)
    Xt = rng.standard_normal((100, 3))
    bandwidth, alpha = 1.3, 0.05
    exact = ExactKRR(alpha=alpha, kernel="rbf", gamma=1 / (2 * bandwidth**2)).fit(X, y)
    # solver="nystrom" with every point a landmark is exact kernel ridge regression.
    model = KernelRidge(alpha=alpha, bandwidth=bandwidth, solver=solver, n_components=len(X),
                        random_state=int(rng.integers(1000))).fit(X, y)
    ref = exact.predict(Xt)
    # The landmark factorization drops pivots whose residual is below sqrt(eps) (rounding level
    # for the features), so solver="nystrom" is exact only to about that level over alpha:
    # over 40 draws the error was at most 7.7e-5 (median 1.3e-5), and one CI draw hit 1.3e-4.
    tol = 1e-6 if solver == "pcg" else 3e-4
    assert np.max(np.abs(model.predict(Xt) - ref)) <= tol * np.max(np.abs(ref))


def test_krr_multi_output_and_float32(rng):
    X, y = _regression(rng, n=300)
    Y = np.column_stack([y, -2 * y])
    model = KernelRidge(alpha=0.1, bandwidth=1.0, solver="pcg").fit(X, Y)
    P = model.predict(X[:10])
    np.testing.assert_allclose(P[:, 1], -2 * P[:, 0], rtol=1e-6, atol=1e-8)
    m32 = KernelRidge(alpha=0.1, bandwidth=1.0, n_components=50, random_state=0)
    assert m32.fit(X.astype(np.float32), y.astype(np.float32)).predict(X[:5]).dtype == np.float32


@pytest.mark.parametrize("landmarks", ["rpcholesky", "uniform", "rls"])
def test_features_approximate_kernel(rng, landmarks):
    X = rng.standard_normal((400, 2))
    K = KernelMatrix(X, "rbf", bandwidth=1.5).to_dense()
    feats = NystromFeatures(60, bandwidth=1.5, landmarks=landmarks,
                            random_state=int(rng.integers(1000))).fit(X)
    Z = feats.transform(X)
    # Column Nystrom leaves a PSD residual (pivots at rounding level are dropped, so the landmark
    # factor stays well conditioned), and its trace is the nuclear-norm error.
    resid = K - Z @ Z.T
    assert np.min(np.linalg.eigvalsh(resid)) > -1e-9
    # 60 landmarks: RPCholesky reaches ~1e-4 of the trace, uniform sampling up to ~2e-3.
    assert np.trace(resid) < (1e-3 if landmarks == "rpcholesky" else 1e-2) * np.trace(K)
    # New points use the same feature map: z(x) . z(y) ~ k(x, y).
    Xn = rng.standard_normal((50, 2))
    Kn = KernelMatrix(np.vstack([Xn, X]), "rbf", bandwidth=1.5).to_dense()[:50, 50:]
    assert np.linalg.norm(feats.transform(Xn) @ Z.T - Kn) < 1e-2 * np.linalg.norm(Kn)


def test_in_pipeline_and_bad_parameters(rng):
    X = rng.standard_normal((200, 3))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.standard_normal(200)
    pipe = make_pipeline(StandardScaler(), KernelRidge(alpha=0.1, n_components=50, random_state=0))
    assert pipe.fit(X, y).score(X, y) > 0.8
    with pytest.raises(ValueError, match="alpha"):
        KernelRidge(alpha=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="solver"):
        KernelRidge(solver="cholesky").fit(X, y)
    with pytest.raises(ValueError, match="landmarks"):
        NystromFeatures(landmarks="kmeans").fit(X)
    with pytest.raises(ValueError, match="n_components"):
        NystromFeatures(n_components=0).fit(X)
    with pytest.warns(UserWarning, match="n_components"):
        NystromFeatures(n_components=500).fit(X)
