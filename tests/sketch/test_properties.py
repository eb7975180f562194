"""Property-based tests (hypothesis) of the Sketcher and operator contracts over every kind."""
import dask.array as da
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import randla
from randla.testing import check_operator

SOFTWARE = [k for k in randla.sketch.available() if k != "optical"]
PROFILE = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROFILE
@given(kind=st.sampled_from(SOFTWARE), d=st.integers(1, 24), extra=st.integers(0, 400),
       seed=st.integers(0, 2**62), cuts=st.lists(st.integers(0, 424), max_size=5))
def test_any_chunking_gives_the_same_sketch(kind, d, extra, seed, cuts):
    n = d + extra  # an SRTT keeps d of its n coordinates
    S = randla.sketch.make(kind, d, n, rng=seed)
    whole = S.to_dense()
    assert whole.shape == (d, n)
    edges = sorted({0, n, *(c for c in cuts if c <= n)})
    blocks = [S[:, i:j] for i, j in zip(edges[:-1], edges[1:])]
    pieces = np.hstack([b.toarray() if sp.issparse(b) else np.asarray(b) for b in blocks])
    np.testing.assert_array_equal(pieces, whole)
    np.testing.assert_array_equal(randla.sketch.make(kind, d, n, rng=seed).to_dense(), whole)


@PROFILE
@given(kind=st.sampled_from(SOFTWARE), d=st.integers(1, 16), extra=st.integers(0, 300),
       p=st.integers(1, 4), seed=st.integers(0, 2**31), single=st.booleans())
def test_products_agree_with_the_dense_sketch(kind, d, extra, p, seed, single):
    n = d + extra
    S = randla.sketch.make(kind, d, n, rng=seed)
    X = np.random.default_rng(seed).standard_normal((n, p)).astype(np.float32 if single else float)
    ref = S.to_dense(S.dtype_for(X.dtype)) @ X
    tol = 1e-4 if single else 1e-11
    Y = S @ X
    assert Y.dtype == X.dtype
    np.testing.assert_allclose(Y, ref, rtol=tol, atol=tol * (np.abs(ref).max() + 1))
    np.testing.assert_allclose(X.T @ S.T, ref.T, rtol=tol, atol=tol * (np.abs(ref).max() + 1))


@PROFILE
@given(m=st.integers(1, 40), n=st.integers(1, 40), seed=st.integers(0, 2**31),
       kind=st.sampled_from(["dense", "csr", "csc", "linop", "dask"]),
       dtype=st.sampled_from([np.float64, np.float32, np.complex128]))
def test_every_operator_kind_keeps_the_contract(m, n, seed, kind, dtype):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n))
    if np.dtype(dtype).kind == "c":
        A = A + 1j * rng.standard_normal((m, n))
    A = A.astype(dtype)
    A[rng.random((m, n)) < 0.3] = 0
    data = {"dense": A, "csr": sp.csr_matrix(A), "csc": sp.csc_matrix(A),
            "linop": spla.aslinearoperator(A),
            "dask": da.from_array(A, chunks=(max(1, m // 3), max(1, n // 2)))}[kind]
    check_operator(data, A, rng=rng)


@PROFILE
@given(kind=st.sampled_from(SOFTWARE), d=st.integers(1, 12), extra=st.integers(0, 300),
       seed=st.integers(0, 2**31), nnz=st.integers(0, 4))
def test_vectors_and_nearly_empty_sparse_input(kind, d, extra, seed, nnz):
    # a 1-D x gives a 1-D result; sparse data with one or two entries per tile is not skipped
    n = d + extra
    S = randla.sketch.make(kind, d, n, rng=seed)
    dense = S.to_dense()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    y = S @ x
    assert y.shape == (d,)
    np.testing.assert_allclose(y, dense @ x, rtol=1e-11, atol=1e-11 * (np.abs(dense @ x).max() + 1))
    rows = rng.integers(0, n, nnz)
    X = sp.csr_matrix((rng.standard_normal(nnz), (rows, rng.integers(0, 2, nnz))), shape=(n, 2))
    np.testing.assert_allclose(S @ X, dense @ X.toarray(), rtol=1e-11, atol=1e-11)
