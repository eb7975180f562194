"""rsvd against numpy.linalg.svd on matrices with known spectra, within the
Halko-Martinsson-Tropp (HMT 2011) bounds, over several fresh seeds."""
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import randla
from randla.sketch import Gaussian


# -- helpers (also imported by the other test_lowrank_* files) -------------------------------
def orthonormal(rng, m, r, complex_=False):
    X = rng.standard_normal((m, r))
    if complex_:
        X = X + 1j * rng.standard_normal((m, r))
    return np.linalg.qr(X)[0]


def with_spectrum(rng, m, n, s, complex_=False, dtype=None):
    """A = U diag(s) V^H with Haar-distributed U and V (len(s) <= min(m, n))."""
    r = len(s)
    A = (orthonormal(rng, m, r, complex_) * s) @ orthonormal(rng, n, r, complex_).conj().T
    return A if dtype is None else A.astype(dtype)


def hmt_tail_bound(s, k, p, q):
    """HMT Thm 10.8 (failure probability <= 3 p^-p), through Thm 9.2 for q power iterations,
    plus sigma_(k+1) for truncating the rank-(k+p) approximation to rank k."""
    s = np.concatenate([np.asarray(s, float), np.zeros(k + 1)])
    e = 2 * q + 1
    inner = ((1 + 6 * np.sqrt((k + p) * p * np.log(p))) * s[k] ** e
             + 3 * np.sqrt(k + p) * np.sqrt(np.sum(s[k:] ** (2 * e))))
    return inner ** (1 / e) + s[k]


def hmt_expected_bound(s, k, p, q):
    """HMT Cor. 10.10: expected error of the rank-(k+p) range finder, plus sigma_(k+1)."""
    s = np.concatenate([np.asarray(s, float), np.zeros(k + 1)])
    e = 2 * q + 1
    inner = ((1 + np.sqrt(k / (p - 1))) * s[k] ** e
             + np.e * np.sqrt(k + p) / p * np.sqrt(np.sum(s[k:] ** (2 * e))))
    return inner ** (1 / e) + s[k]


def spectral_error(A, U, S, Vh):
    A = A.toarray() if sp.issparse(A) else np.asarray(A)
    return np.linalg.norm(A - (U * S) @ Vh, 2)


def check_factors(res, m, n, k, dtype, atol):
    U, S, Vh = res
    assert U.shape == (m, k) and S.shape == (k,) and Vh.shape == (k, n)
    assert U.dtype == dtype and Vh.dtype == dtype
    assert S.dtype == np.finfo(dtype).dtype
    assert np.all(np.diff(S) <= atol * max(1, S[0])), "singular values must be descending"
    np.testing.assert_allclose(U.conj().T @ U, np.eye(k), atol=atol)
    np.testing.assert_allclose(Vh @ Vh.conj().T, np.eye(k), atol=atol)


SPECTRA = {
    "fast": lambda r: 0.6 ** np.arange(r),
    "slow": lambda r: 1.0 / np.sqrt(1.0 + np.arange(r)),
    "flat": lambda r: np.ones(r),
    "poly": lambda r: 1.0 / (1.0 + np.arange(r)),
}


# -- accuracy --------------------------------------------------------------------------------
@pytest.mark.parametrize("spectrum", list(SPECTRA))
@pytest.mark.parametrize("q", [0, 2])
def test_rsvd_within_hmt_bounds(rng, spectrum, q):
    m, n, k, p = 260, 120, 12, 10
    s = SPECTRA[spectrum](n)
    errors = []
    for _ in range(3):
        A = with_spectrum(rng, m, n, s)
        res = randla.rsvd(A, k, power_iters=q, rng=rng)
        check_factors(res, m, n, k, np.float64, 1e-10)
        err = spectral_error(A, *res)
        assert s[k] * (1 - 1e-10) <= err <= hmt_tail_bound(s, k, p, q)
        # A - Q B_k never exceeds ||A|| when U, S, Vh belong together: on the flat spectrum,
        # where every rank-k error is exactly sigma_1, this is the check that can fail
        assert err <= s[0] * (1 + 1e-10)
        # Rayleigh-Ritz values never exceed the true ones (interlacing)
        assert np.all(res.S <= s[:k] * (1 + 1e-10))
        errors.append(err)
    # the mean over seeds stays under the expectation bound (honest slack: x1.5)
    assert np.mean(errors) <= 1.5 * hmt_expected_bound(s, k, p, q)


@pytest.mark.parametrize("spectrum", ["slow", "poly"])
def test_two_power_iterations_are_near_optimal(rng, spectrum):
    # HMT's bounds are too loose to see power iterations (q = 0 stays inside q = 2's bound),
    # so hold q = 2 to what it achieves: over 150 draws at most 1.058 sigma_(k+1) (slow) and
    # 1.0013 (poly), median 1.0014 / 1.00001, where q = 0 gives ~1.5
    m, n, k = 260, 120, 12
    s = SPECTRA[spectrum](n)
    errs = [spectral_error(A, *randla.rsvd(A, k, power_iters=2, oversample=10, rng=rng))
            for A in (with_spectrum(rng, m, n, s) for _ in range(3))]
    assert max(errs) <= 1.15 * s[k]


def test_power_iterations_pay_on_slow_decay(rng):
    s = SPECTRA["poly"](150)
    A = with_spectrum(rng, 300, 150, s)
    e0 = spectral_error(A, *randla.rsvd(A, 15, power_iters=0, rng=rng))
    e2 = spectral_error(A, *randla.rsvd(A, 15, rng=rng))  # the default: 2 iterations
    assert e2 < e0
    assert e2 <= 1.02 * s[15]


def test_singular_values_match_lapack_on_fast_decay(rng):
    s = SPECTRA["fast"](100)
    A = with_spectrum(rng, 300, 100, s)
    res = randla.rsvd(A, 10, rng=rng)
    np.testing.assert_allclose(res.S, np.linalg.svd(A, compute_uv=False)[:10], rtol=1e-8)
    assert spectral_error(A, *res) <= 1.001 * s[10]


@pytest.mark.parametrize("normalizer", ["auto", "qr", "lu", "cholqr", "none"])
def test_every_normalizer_is_accurate(rng, normalizer):
    s = SPECTRA["poly"](120)
    A = with_spectrum(rng, 250, 120, s)
    res = randla.rsvd(A, 10, normalizer=normalizer, power_iters=3, rng=rng)
    check_factors(res, 250, 120, 10, np.float64, 1e-10)
    assert spectral_error(A, *res) <= 1.02 * s[10]


def test_stable_normalizers_survive_many_iterations(rng):
    # sigma_1 / sigma_ell = 0.5^-30 ~ 1e9: unnormalized powers lose everything past sigma_1
    s = 0.5 ** np.arange(80)
    A = with_spectrum(rng, 200, 80, s)
    for normalizer in ("auto", "lu", "qr", "cholqr"):
        res = randla.rsvd(A, 20, power_iters=6, normalizer=normalizer, rng=rng)
        np.testing.assert_allclose(res.S, s[:20], rtol=1e-6)


def test_krylov_beats_power_on_slow_decay(rng):
    s = SPECTRA["poly"](200)
    A = with_spectrum(rng, 400, 200, s)
    err_k = [spectral_error(A, *randla.rsvd(A, 20, method="krylov", power_iters=2, rng=rng))
             for _ in range(3)]
    err_p = [spectral_error(A, *randla.rsvd(A, 20, power_iters=0, rng=rng)) for _ in range(3)]
    assert max(err_k) <= 1.005 * s[20]
    assert np.mean(err_k) < np.mean(err_p)


def test_krylov_factors_and_depth_cap(rng):
    s = SPECTRA["slow"](40)
    A = with_spectrum(rng, 90, 40, s)
    res = randla.rsvd(A, 5, method="krylov", power_iters=10, rng=rng)  # depth capped: 15*4 > 40
    check_factors(res, 90, 40, 5, np.float64, 1e-10)
    assert spectral_error(A, *res) <= hmt_tail_bound(s, 5, 10, 0)


def test_exactly_low_rank_is_recovered(rng):
    s = np.array([3.0, 2.0, 1.5, 1.0, 0.5, 0.25, 0.1, 0.05])
    A = with_spectrum(rng, 120, 70, s)
    for method in ("power", "krylov"):
        res = randla.rsvd(A, 8, method=method, rng=rng)
        np.testing.assert_allclose(res.S, s, rtol=1e-10)
        assert spectral_error(A, *res) <= 1e-12 * s[0]


def test_rank_deficient_returns_orthonormal_factors(rng):
    s = np.array([4.0, 2.0, 1.0])
    A = with_spectrum(rng, 100, 60, s)
    for method in ("power", "krylov"):
        res = randla.rsvd(A, 8, method=method, rng=rng)
        check_factors(res, 100, 60, 8, np.float64, 1e-10)
        np.testing.assert_allclose(res.S[:3], s, rtol=1e-10)
        assert np.all(res.S[3:] <= 1e-12)
        # Krylov's later blocks are rounding noise here; its basis is accepted at
        # 100 eps max(m, n) orthogonality, which left errors up to 4e-12 s_1 in 1500 seeds.
        assert spectral_error(A, *res) <= 2e-11 * s[0]


def test_zero_matrix():
    for method in ("power", "krylov"):
        res = randla.rsvd(np.zeros((50, 30)), 4, method=method, rng=0)
        check_factors(res, 50, 30, 4, np.float64, 1e-12)
        assert np.all(res.S == 0)
    assert randla.rsvd(np.zeros((50, 30)), tol=0.1, rng=0).S.shape == (0,)


def test_complex_input(rng):
    s = 0.8 ** np.arange(60)
    A = with_spectrum(rng, 150, 60, s, complex_=True)
    for method in ("power", "krylov"):
        res = randla.rsvd(A, 8, method=method, power_iters=2, rng=rng)
        check_factors(res, 150, 60, 8, np.complex128, 1e-10)
        np.testing.assert_allclose(res.S, s[:8], rtol=1e-7)
        assert spectral_error(A, *res) <= 1.01 * s[8]


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_single_precision_stays_single(rng, dtype):
    s = 0.8 ** np.arange(80)
    A = with_spectrum(rng, 200, 80, s, complex_=dtype == np.complex64, dtype=dtype)
    for method in ("power", "krylov"):
        res = randla.rsvd(A, 10, method=method, power_iters=2, rng=rng)
        check_factors(res, 200, 80, 10, np.dtype(dtype), 1e-5)
        np.testing.assert_allclose(res.S, s[:10], rtol=1e-4)
        assert spectral_error(A.astype(np.complex128), *res) <= 1.01 * s[10] + 1e-5
    res = randla.rsvd(A, tol=0.1, rng=rng)
    assert res.U.dtype == dtype and res.S.dtype == np.float32 and res.Vh.dtype == dtype


def test_sparse_and_linear_operator_match_dense(rng):
    A = sp.random(400, 150, density=0.05, random_state=int(rng.integers(2**31)), format="csr")
    dense = A.toarray()
    s = np.linalg.svd(dense, compute_uv=False)
    for X in (A, A.tocsc(), spla.aslinearoperator(A)):
        res = randla.rsvd(X, 10, power_iters=4, rng=rng)
        check_factors(res, 400, 150, 10, np.float64, 1e-10)
        err = spectral_error(dense, *res)
        assert err <= hmt_tail_bound(s, 10, 10, 4)
        # B = Q^T A: sigma_i(B) <= sigma_i(A) <= sqrt(sigma_i(B)^2 + ||A - Q B||^2), and the
        # error of the rank-10 truncation bounds ||A - Q B|| (a fixed rtol failed 1 in 300)
        assert np.all(res.S <= s[:10] * (1 + 1e-10))
        assert np.all(s[:10] ** 2 <= (res.S ** 2 + err ** 2) * (1 + 1e-8))
    # same seed, same sketch: the sparse and dense paths agree
    r1, r2 = randla.rsvd(A, 5, power_iters=2, rng=3), randla.rsvd(dense, 5, power_iters=2, rng=3)
    np.testing.assert_allclose(r1.S, r2.S, rtol=1e-10)


@pytest.mark.parametrize("shape", [(300, 80), (80, 300), (100, 100)])
def test_wide_and_tall(rng, shape):
    m, n = shape
    s = 0.7 ** np.arange(min(shape))
    A = with_spectrum(rng, m, n, s)
    for kw in ({}, {"method": "krylov"}, {"tol": 1e-3}):
        res = randla.rsvd(A, None if "tol" in kw else 10, rng=rng, **kw)
        k = len(res.S)
        check_factors(res, m, n, k, np.float64, 1e-10)
        np.testing.assert_allclose(res.S[:5], s[:5], rtol=1e-8)
    # a sketch given for the long side of a wide matrix is used as given
    S = Gaussian(15, n, rng=1)
    res = randla.rsvd(A, 5, sketch=S)
    np.testing.assert_allclose(res.S, s[:5], rtol=1e-8)


def test_signs_are_deterministic(rng):
    s = 0.7 ** np.arange(50)
    A = with_spectrum(rng, 120, 50, s)
    a = randla.rsvd(A, 6, power_iters=2, rng=1)
    b = randla.rsvd(A, 6, power_iters=2, rng=2)
    np.testing.assert_allclose(a.U, b.U, atol=1e-7)
    np.testing.assert_allclose(a.Vh, b.Vh, atol=1e-7)
    # same convention as rsvd applied to LAPACK's vectors: largest entry of each u_i positive
    U = np.linalg.svd(A)[0][:, :6]
    U = U * np.sign(U[np.argmax(np.abs(U), axis=0), np.arange(6)])
    np.testing.assert_allclose(a.U, U, atol=1e-7)
    for col in a.U.T:
        assert col[np.argmax(np.abs(col))] > 0
    # the transposed path (wide input) follows the same rule on U
    c = randla.rsvd(A.T, 6, rng=1)
    for col in c.U.T:
        assert col[np.argmax(np.abs(col))] > 0


def test_complex_signs_make_the_largest_entry_real_positive(rng):
    A = with_spectrum(rng, 80, 40, 0.7 ** np.arange(40), complex_=True)
    U = randla.rsvd(A, 5, rng=rng).U
    top = U[np.argmax(np.abs(U), axis=0), np.arange(5)]
    np.testing.assert_allclose(top.imag, 0, atol=1e-12)
    assert np.all(top.real > 0)


def test_same_seed_same_result(rng):
    A = with_spectrum(rng, 100, 60, 0.9 ** np.arange(60))
    a, b = randla.rsvd(A, 5, rng=7), randla.rsvd(A, 5, rng=7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


# -- fixed accuracy --------------------------------------------------------------------------
def _optimal_rank(s, tol):
    """Smallest r with sqrt(sum_{j>=r} s_j^2) <= tol ||s|| (Eckart-Young)."""
    tail = np.sqrt(np.append(np.cumsum((s ** 2)[::-1])[::-1], 0.0))
    return int(np.nonzero(tail <= tol * np.linalg.norm(s))[0][0])


@pytest.mark.parametrize("tol", [0.3, 0.05, 1e-3])
def test_fixed_accuracy_meets_tol_at_near_minimal_rank(rng, tol):
    s = 0.9 ** np.arange(150)
    A = with_spectrum(rng, 300, 150, s)
    res = randla.rsvd(A, tol=tol, rng=rng)
    r = len(res.S)
    check_factors(res, 300, 150, r, np.float64, 1e-10)
    assert np.linalg.norm(A - (res.U * res.S) @ res.Vh) <= tol * np.linalg.norm(A) * (1 + 1e-8)
    r_opt = _optimal_rank(s, tol)
    assert r_opt <= r <= r_opt + 2


def test_fixed_accuracy_sparse_and_operator(rng):
    A = sp.random(300, 200, density=0.05, random_state=int(rng.integers(2**31)), format="csr")
    s = np.linalg.svd(A.toarray(), compute_uv=False)
    for X in (A, spla.aslinearoperator(A)):  # the operator's ||A||_F comes from products
        res = randla.rsvd(X, tol=0.5, power_iters=3, rng=rng)
        err = np.linalg.norm(A.toarray() - (res.U * res.S) @ res.Vh)
        assert err <= 0.5 * np.linalg.norm(s) * (1 + 1e-8)
        assert len(res.S) <= _optimal_rank(s, 0.5) + 4


def test_fixed_accuracy_caps(rng):
    s = 0.95 ** np.arange(100)
    A = with_spectrum(rng, 200, 100, s)
    with pytest.warns(UserWarning, match="not reached"):
        res = randla.rsvd(A, tol=1e-6, max_rank=20, rng=rng)
    assert len(res.S) == 20
    np.testing.assert_allclose(res.S, s[:20], rtol=1e-2)
    with pytest.warns(UserWarning, match="not reached"):
        assert len(randla.rsvd(A, 7, tol=1e-6, rng=rng).S) == 7  # k caps the rank too
    assert _optimal_rank(s, 0.5) <= len(randla.rsvd(A, 50, tol=0.5, rng=rng).S) <= 20


# -- centering -------------------------------------------------------------------------------
def test_center_matches_explicit_centering(rng):
    s = 0.8 ** np.arange(40)
    A = with_spectrum(rng, 200, 40, s) + rng.standard_normal(40) * 5  # large column means
    Ac = A - A.mean(axis=0)
    sc = np.linalg.svd(Ac, compute_uv=False)
    for X in (A, sp.csr_matrix(A), spla.aslinearoperator(A), A.T.copy().T):
        res = randla.rsvd(X, 6, center=True, power_iters=2, rng=rng)
        np.testing.assert_allclose(res.S, sc[:6], rtol=1e-8)
        assert spectral_error(Ac, *res) <= 1.01 * sc[6]
    ref = randla.rsvd(Ac, 6, rng=5)
    got = randla.rsvd(A, 6, center=True, rng=5)
    np.testing.assert_allclose(np.abs(got.U.T @ ref.U), np.eye(6), atol=1e-6)
    res = randla.rsvd(A, tol=0.1, center=True, rng=rng)
    assert np.linalg.norm(Ac - (res.U * res.S) @ res.Vh) <= 0.1 * np.linalg.norm(Ac) * (1 + 1e-8)


def test_center_sparse_pca_wide_and_complex(rng):
    A = sp.random(60, 300, density=0.1, random_state=int(rng.integers(2**31)), format="csr")
    Ac = A.toarray() - A.toarray().mean(axis=0)
    sc = np.linalg.svd(Ac, compute_uv=False)
    res = randla.rsvd(A, 5, center=True, power_iters=2, rng=11)
    assert spectral_error(Ac, *res) <= hmt_tail_bound(sc, 5, 10, 2)
    # same sketch: the implicit and the explicit centering give the same factors
    ref = randla.rsvd(Ac, 5, power_iters=2, rng=11)
    np.testing.assert_allclose(res.S, ref.S, rtol=1e-10)
    np.testing.assert_allclose(res.U, ref.U, atol=1e-8)
    B = with_spectrum(rng, 80, 30, 0.7 ** np.arange(30), complex_=True) + (1 + 2j)
    Bc = B - B.mean(axis=0)
    res = randla.rsvd(B, 4, center=True, power_iters=2, rng=rng)
    np.testing.assert_allclose(res.S, np.linalg.svd(Bc, compute_uv=False)[:4], rtol=1e-8)


def test_default_oversampling_grows_with_k_and_follows_an_explicit_sketch(rng):
    from randla.lowrank import default_oversample
    from randla.sketch import make
    assert [default_oversample(k) for k in (1, 50, 100, 500)] == [10, 10, 20, 100]
    A = with_spectrum(rng, 200, 60, 0.8 ** np.arange(60))
    S = make("gaussian", 7, 60, rng=1)          # k = 3 plus 4 oversampling columns
    got = randla.rsvd(A, 3, sketch=S, power_iters=3)
    ref = randla.rsvd(A, 3, oversample=4, sketch=make("gaussian", 7, 60, rng=1), power_iters=3)
    np.testing.assert_array_equal(got.S, ref.S)
    np.testing.assert_allclose(got.S, 0.8 ** np.arange(3), rtol=1e-3)


@pytest.mark.parametrize("power_iters", [2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_single_precision_keeps_small_singular_values_through_power_iterations(rng, dtype,
                                                                                power_iters):
    """A block whose Gram matrix is singular in float32 gets a shifted CholeskyQR pass; one
    pass left the directions below the shift tiny and the next products lost them (0.94
    relative error in sigma_20 at three iterations, singular values spread over 1e3)."""
    s = np.logspace(0, -3, 30)
    for _ in range(10):   # without the second pass, 40% of draws failed at three iterations
        A = with_spectrum(rng, 2000, 300, s, complex_=np.dtype(dtype).kind == "c").astype(dtype)
        res = randla.rsvd(A, 20, power_iters=power_iters, rng=rng)
        np.testing.assert_allclose(res.S, s[:20], rtol=2e-5)
