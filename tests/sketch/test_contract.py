"""The Sketcher contract on the dense sketches: determinism, block addressability, moments."""
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from hypothesis import given, settings
from hypothesis import strategies as st

import randla
from randla.sketch import Gaussian, make

DENSE_KINDS = ["gaussian", "rademacher"]


@pytest.mark.parametrize("kind", DENSE_KINDS)
def test_same_seed_same_sketch(kind):
    a = make(kind, 17, 301, rng=12345).to_dense()
    b = make(kind, 17, 301, rng=12345).to_dense()
    c = make(kind, 17, 301, rng=12346).to_dense()
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 500), max_size=6), seed=st.integers(0, 2**62),
       kind=st.sampled_from(DENSE_KINDS), d=st.integers(1, 40))
def test_any_chunking_gives_the_same_sketch(cuts, seed, kind, d):
    S = make(kind, d, 500, rng=seed)
    whole = S.to_dense()
    edges = sorted({0, 500, *cuts})
    pieces = np.hstack([S[:, i:j] for i, j in zip(edges[:-1], edges[1:])])
    assert np.array_equal(pieces, whole)


def test_rows_are_a_prefix_free_function_of_the_counter():
    # Different d must still give valid, independent-looking columns; block rows of a taller
    # sketch equal the sketch generated with those rows (the counter includes the row).
    from randla.sketch import rng as krng
    full = krng.normal_block(7, 0, (0, 13), (5, 40))
    part = krng.normal_block(7, 0, (3, 11), (5, 40))
    assert np.array_equal(full[3:11], part)


@pytest.mark.parametrize("kind", DENSE_KINDS)
def test_moments(kind):
    d, n = 64, 4000
    S = make(kind, d, n, rng=np.random.default_rng()).to_dense()
    # E S = 0 and E S^T S = I (entries of variance 1/d)
    assert abs(S.mean()) < 5 / np.sqrt(d * n) / np.sqrt(d)
    var = (S**2).mean() * d
    assert abs(var - 1) < 5 * np.sqrt(2 / (d * n))


def test_complex_gaussian_moments():
    d, n = 32, 5000
    S = Gaussian(d, n, complex=True, rng=np.random.default_rng()).to_dense()
    assert S.dtype == np.complex128
    assert abs(np.mean(np.abs(S) ** 2) * d - 1) < 0.03
    assert abs(np.mean(S.real**2) - np.mean(S.imag**2)) * d < 0.03
    assert abs(np.mean(S.real * S.imag)) * d < 0.03


@pytest.mark.parametrize("kind", DENSE_KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
def test_apply_dense_sparse_operator_agree(kind, dtype, rng):
    n, p, d = 700, 5, 30
    X = rng.standard_normal((n, p)).astype(dtype)
    if np.dtype(dtype).kind == "c":
        X = X + 1j * rng.standard_normal((n, p))
    S = make(kind, d, n, rng=3)
    ref = S.to_dense(S.dtype_for(X.dtype)) @ X
    Y = S @ X
    assert Y.dtype == np.result_type(X.dtype, S.dtype_for(X.dtype))
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(Y, ref, rtol=tol, atol=tol * np.abs(ref).max())
    np.testing.assert_allclose(S @ sp.csr_matrix(X), ref, rtol=tol, atol=tol * np.abs(ref).max())
    np.testing.assert_allclose(S @ spla.aslinearoperator(X), ref, rtol=tol,
                               atol=tol * np.abs(ref).max())
    np.testing.assert_allclose(X.T @ S.T, ref.T, rtol=tol, atol=tol * np.abs(ref).max())


def test_float32_stays_float32():
    S = Gaussian(10, 100, rng=0)
    assert (S @ np.ones((100, 2), np.float32)).dtype == np.float32


def test_bad_input_is_named():
    S = Gaussian(10, 100, rng=0)
    with pytest.raises(ValueError, match="100 rows"):
        S @ np.ones((99, 2))
    with pytest.raises(ValueError, match="unknown sketch"):
        make("nope", 3, 10)
    with pytest.raises(ValueError, match="d must be"):
        Gaussian(0, 10)
    with pytest.raises(TypeError, match="X must have a numeric dtype"):
        S @ np.array([["a"] * 2] * 100)
    with pytest.raises(IndexError):
        S[3]
    with pytest.raises(ValueError, match="rng"):
        Gaussian(3, 10, rng=-1)
    assert set(DENSE_KINDS) <= set(randla.sketch.available())


@pytest.mark.parametrize("kind", DENSE_KINDS + ["sparse_sign", "srtt"])
@pytest.mark.parametrize("order", ["C", "F", "complex"])
def test_apply_block_is_the_product_with_a_column_block(kind, order, rng):
    S = randla.sketch.make(kind, 17, 900, rng=int(rng.integers(1 << 30)))
    X = rng.standard_normal((250, 6))
    X = X + 1j * rng.standard_normal(X.shape) if order == "complex" else np.asarray(X, order=order)
    start = int(rng.integers(0, 650))
    want = S.to_dense() @ np.vstack([np.zeros((start, 6)), X, np.zeros((650 - start, 6))])
    got = S.apply_block(X, start)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())
    with pytest.raises(ValueError, match="outside"):
        S.apply_block(X, 700)
