"""Every software sketch: determinism, any chunking, moments, subspace embedding at the sizes the
docs recommend, the SparseSign kernels against NumPy, SRTT against its definition, dtypes."""
import numba
import numpy as np
import pytest
import scipy.fft
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from randla.sketch import SRTT, SparseSign, make
from randla.sketch.sparse_sign import sparse_sign_pattern

KINDS = [("gaussian", {}), ("rademacher", {}), ("sparse_sign", {}), ("sparse_sign", {"zeta": 1}),
         ("sparse_sign", {"zeta": 3}), ("srtt", {})]
IDS = ["gaussian", "rademacher", "sparse8", "countsketch", "sparse3", "srtt"]


@pytest.mark.parametrize("kind, kw", KINDS, ids=IDS)
def test_deterministic_from_seed(kind, kw):
    a = make(kind, 13, 257, rng=2024, **kw).to_dense()
    assert np.array_equal(a, make(kind, 13, 257, rng=2024, **kw).to_dense())
    assert not np.array_equal(a, make(kind, 13, 257, rng=2025, **kw).to_dense())


@settings(max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(0, 300), max_size=5), seed=st.integers(0, 2**62),
       case=st.sampled_from(range(len(KINDS))), d=st.integers(1, 30))
def test_any_chunking_gives_the_same_sketch(cuts, seed, case, d):
    kind, kw = KINDS[case]
    S = make(kind, d, 300, rng=seed, **kw)
    whole = S.to_dense()
    edges = sorted({0, 300, *cuts})
    blocks = [S[:, i:j] for i, j in zip(edges[:-1], edges[1:])]
    pieces = np.hstack([b.toarray() if sp.issparse(b) else b for b in blocks])
    assert np.array_equal(pieces, whole)


@pytest.mark.parametrize("kind, kw", KINDS, ids=IDS)
def test_first_and_second_moments(kind, kw):
    """Over many seeds, E[S] = 0 and E[S^T S] = I, entry by entry (6 standard errors)."""
    d, n, draws = 5, 7, 600
    seeds = np.random.default_rng().integers(0, 2**62, draws)
    Ss = np.array([make(kind, d, n, rng=int(s), **kw).to_dense() for s in seeds])
    mean = Ss.mean(axis=0)
    gram = np.einsum("sij,sik->sjk", Ss, Ss)
    se_mean = Ss.std(axis=0).max() / np.sqrt(draws)
    se_gram = gram.std(axis=0).max() / np.sqrt(draws)
    assert np.abs(mean).max() < 6 * se_mean + 1e-12
    assert np.abs(gram.mean(axis=0) - np.eye(n)).max() < 6 * se_gram + 1e-12


# recommended sizes of the docs: d = 4r for Gaussian/Rademacher, 2 r ln r for SparseSign/SRTT
EMBED = [("gaussian", {}, 4.0), ("rademacher", {}, 4.0), ("sparse_sign", {}, None),
         ("srtt", {}, None)]


@pytest.mark.parametrize("kind, kw, factor", EMBED, ids=[e[0] for e in EMBED])
@pytest.mark.parametrize("coherent", [False, True])
def test_subspace_embedding_distortion(kind, kw, factor, coherent, rng):
    """Singular values of S Q for an orthonormal Q (n x r) lie in 1 +- eps with
    eps = sqrt(r/d) (Marchenko-Pastur edge, the Gaussian limit) plus honest slack."""
    n, r = 3000, 30
    d = int(factor * r) if factor else int(np.ceil(2 * r * np.log(r)))
    if coherent:  # the hard case for sparse sketches: coordinate vectors
        Q = np.eye(n)[:, rng.choice(n, r, replace=False)]
    else:
        Q = np.linalg.qr(rng.standard_normal((n, r)))[0]
    S = make(kind, d, n, rng=rng, **kw)
    s = np.linalg.svd(S @ Q, compute_uv=False)
    eps = np.sqrt(r / d) + 0.15
    assert 1 - eps < s[-1] and s[0] < 1 + eps


# -- SparseSign ----------------------------------------------------------------------------
def test_sparse_sign_structure(rng):
    S = SparseSign(40, 5000, zeta=6, rng=rng)
    B = S[:, :]
    assert sp.isspmatrix_csc(B) and B.dtype == np.float64
    assert np.all(B.getnnz(axis=0) == 6)
    assert np.allclose(np.abs(B.data), 1 / np.sqrt(6))
    rows, signs = sparse_sign_pattern(S.seed, 40, 6, 0, 5000)
    assert np.all(np.diff(rows, axis=1) > 0)  # distinct rows, sorted
    counts = np.bincount(rows.ravel(), minlength=40)
    assert abs(counts - 750).max() < 6 * np.sqrt(750)  # rows uniform
    assert abs(signs.sum()) < 6 * np.sqrt(signs.size)  # signs balanced
    # zeta larger than d: every row, value 1/sqrt(d), so that E S^T S = I still holds
    T = SparseSign(4, 50, zeta=8, rng=1).to_dense()
    assert np.allclose(np.abs(T), 0.5)


def reference_sparse_sign(S, X):
    """B @ X by NumPy from the pattern (a plain dense B)."""
    rows, signs = sparse_sign_pattern(S.seed, S.d, S.zeta, 0, S.n)
    B = np.zeros((S.d, S.n))
    np.put_along_axis(B.T, rows.astype(np.int64), signs.astype(np.float64), axis=1)
    return (B @ X) * S.scale


@pytest.mark.parametrize("layout", ["C", "F", "csr", "csc", "strided", "narrow"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_sparse_sign_kernels_match_numpy(layout, dtype, rng):
    n, p, d = 2000, 37 if layout != "narrow" else 3, 25
    X = rng.standard_normal((n, p))
    if dtype == np.complex128:
        X = X + 1j * rng.standard_normal((n, p))
    X = X.astype(dtype)
    if layout in ("csr", "csc"):
        X[rng.random((n, p)) < 0.9] = 0
    S = SparseSign(d, n, zeta=5, rng=rng)
    ref = reference_sparse_sign(S, X.astype(np.complex128 if np.iscomplexobj(X) else np.float64))
    arg = {"C": X, "F": np.asfortranarray(X), "csr": sp.csr_matrix(X), "csc": sp.csc_matrix(X),
           "strided": X[:, ::2], "narrow": X}[layout]
    if layout == "strided":
        ref = ref[:, ::2]
    Y = S @ arg
    assert Y.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(Y, ref, rtol=tol, atol=tol * np.abs(ref).max())


def test_sparse_sign_apply_right_and_threads(rng):
    n = 3000
    S = SparseSign(30, n, rng=rng)
    X = rng.standard_normal((50, n))
    Xs = sp.random(70, n, density=0.01, random_state=1, format="csr")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = [X @ S.T, S.apply_right(Xs), S @ X.T.copy(), S @ X[:3].T.copy()]
    finally:
        numba.set_num_threads(before)
    many = [X @ S.T, S.apply_right(Xs), S @ X.T.copy(), S @ X[:3].T.copy()]
    for a, b in zip(one, many):
        assert np.array_equal(a, b)
    np.testing.assert_allclose(one[0], reference_sparse_sign(S, X.T).T, atol=1e-12)
    np.testing.assert_allclose(one[1], reference_sparse_sign(S, Xs.T.toarray()).T, atol=1e-12)


# -- SRTT ------------------------------------------------------------------------------------
def test_srtt_is_its_definition(rng):
    n, d = 600, 45
    S = SRTT(d, n, rng=rng)
    D = np.where(S.signs > 0, 1.0, -1.0)
    F = scipy.fft.dct(np.eye(n), axis=0, norm="ortho")  # the DCT-II matrix, column by column
    ref = np.sqrt(n / d) * (F * D)[S.rows]
    assert len(np.unique(S.rows)) == d
    np.testing.assert_allclose(S.to_dense(), ref, atol=1e-13)
    X = rng.standard_normal((n, 4))
    np.testing.assert_allclose(S @ X, ref @ X, atol=1e-12)
    np.testing.assert_allclose(S @ sp.csr_matrix(X), ref @ X, atol=1e-12)
    # d = n is an orthogonal matrix
    Q = SRTT(64, 64, rng=rng).to_dense()
    np.testing.assert_allclose(Q.T @ Q, np.eye(64), atol=1e-13)
    assert not SRTT.block_addressable


# -- all kinds: dtypes, complex, bad input -------------------------------------------------
@pytest.mark.parametrize("kind, kw", KINDS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.complex64, np.complex128])
def test_dtypes_are_kept(kind, kw, dtype, rng):
    n = 400
    X = (rng.standard_normal((n, 3)) + (1j if np.dtype(dtype).kind == "c" else 0)).astype(dtype)
    S = make(kind, 20, n, rng=5, **kw)
    Y = S @ X
    assert Y.dtype == dtype
    ref = S.to_dense(np.float64) @ X.astype(np.complex128)
    tol = 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-12
    np.testing.assert_allclose(Y, ref, rtol=tol, atol=tol * np.abs(ref).max())
    assert (X.T @ S.T).dtype == dtype


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="zeta must be >= 1"):
        SparseSign(5, 10, zeta=0)
    with pytest.raises(TypeError, match="zeta must be an int"):
        SparseSign(5, 10, zeta=2.5)
    with pytest.raises(ValueError, match="d must be <= n"):
        SRTT(11, 10)
    with pytest.raises(ValueError, match="100 rows"):
        SparseSign(5, 100) @ np.ones((99, 2))
    with pytest.raises(ValueError, match="100 rows"):
        SRTT(5, 100) @ sp.csr_matrix((99, 2))
    with pytest.raises(TypeError, match="X must have a numeric dtype"):
        SRTT(5, 100) @ np.array([["a"]] * 100)
    with pytest.raises(ValueError, match="outside"):
        SparseSign(5, 100).block(90, 101)
    assert make("sparse_sign", 3, 10, rng=1, zeta=2) == SparseSign(3, 10, zeta=2, rng=1)
    assert make("sparse_sign", 3, 10, rng=1, zeta=2) != make("sparse_sign", 3, 10, rng=1, zeta=3)
