"""The transmission matrix H: statistics, block/tile invariance, products, bad input."""
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from opu import Medium
from opu.medium import STREAM_IMAG, STREAM_REAL
from randla.sketch import Gaussian
from randla.sketch import rng as krng


def _seed(rng):
    return int(rng.integers(0, 2**62))


def test_entry_statistics(rng):
    H = Medium(4000, 250, seed=_seed(rng)).block().astype(np.complex128)
    n = H.size
    re, im = H.real.ravel(), H.imag.ravel()
    p = np.abs(H.ravel()) ** 2
    tol = 5 / np.sqrt(n)  # 5 standard errors (all variances below are <= ~20)
    assert abs(re.mean()) < tol and abs(im.mean()) < tol
    assert abs(p.mean() - 1) < tol * 1.0                 # |h|^2 ~ Exp(1): variance 1
    assert abs((re**2).mean() - 0.5) < tol * 0.71        # var(re^2) = 2 (1/2)^2
    assert abs((im**2).mean() - 0.5) < tol * 0.71
    assert abs((re * im).mean()) < tol * 0.5             # independent parts
    assert abs((re**2 * im**2).mean() - 0.25) < tol * 0.8
    assert abs((re**4).mean() - 0.75) < tol * 2.5        # Gaussian kurtosis: E re^4 = 3/4
    assert abs((p**2).mean() - 2) < tol * 4.5            # E|h|^4 = 2 for circular Gaussian
    # neighbouring entries (same Philox word / next counter) are uncorrelated
    assert abs(np.mean(H[:-1].real * H[1:].real)) < tol
    assert abs(np.mean(H[:, :-1].imag * H[:, 1:].imag)) < tol


def test_same_seed_same_matrix_and_streams_apart_from_software_sketches():
    a = Medium(300, 40, seed=11).block()
    assert np.array_equal(a, Medium(300, 40, seed=11).block())
    assert not np.array_equal(a, Medium(300, 40, seed=12).block())
    g = Gaussian(40, 300, rng=11, complex=True).to_dense()
    assert np.abs(np.corrcoef(g.real.ravel(), a.real.ravel())[0, 1]) < 0.05


def test_block_is_the_philox_stream():
    # entry (i, j): real part stream 16, imaginary part stream 17, variance 1/2 each
    seed, rows, cols = 99, (3, 17), (1000, 1040)
    H = Medium(5000, 20, seed=seed).block(slice(*rows), slice(*cols), dtype=np.complex128)
    s = np.sqrt(0.5)
    ref = (krng.normal_block(seed, STREAM_REAL, rows, cols, np.float64, s)
           + 1j * krng.normal_block(seed, STREAM_IMAG, rows, cols, np.float64, s))
    assert np.array_equal(H, ref)


def test_far_corner_of_a_2_21_medium():
    n = 2**21
    M = Medium(n, n, seed=5)
    corner = M.block(slice(n - 3, n), slice(n - 5, n))
    assert corner.shape == (3, 5)
    assert np.array_equal(corner, M.block((n - 10, n), (n - 8, n))[7:, 3:])
    # a sparse input touching the last columns only generates the tiles it needs
    M2 = Medium(n, 32, seed=5)
    X = sp.csr_matrix(([1.0, -2.0], ([0, 0], [n - 1, n - 7])), shape=(1, n))
    ref = M2.block(slice(None), slice(n - 7, n), dtype=np.complex128) @ X[:, n - 7:].toarray().T
    np.testing.assert_allclose(M2.field(X, dtype=np.complex128)[0], ref[:, 0], rtol=1e-12)


@settings(max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(0, 700), max_size=5), rcuts=st.lists(st.integers(0, 37),
       max_size=3), seed=st.integers(0, 2**62))
def test_any_blocking_gives_the_same_matrix(cuts, rcuts, seed):
    M = Medium(700, 37, seed=seed)
    whole = M.block()
    ce, re = sorted({0, 700, *cuts}), sorted({0, 37, *rcuts})
    rebuilt = np.block([[M.block(slice(r0, r1), slice(c0, c1)) for c0, c1 in zip(ce, ce[1:])]
                        for r0, r1 in zip(re, re[1:])])
    assert np.array_equal(rebuilt, whole)


@settings(max_examples=8, deadline=None)
@given(tile=st.integers(2**16, 2**20), batch=st.integers(1, 9))
def test_field_is_tile_invariant(tile, batch):
    rng = np.random.default_rng(tile)
    X = rng.standard_normal((batch, 1500))
    ref = X @ Medium(1500, 60, seed=4).block(dtype=np.complex128).T
    Y = Medium(1500, 60, seed=4, tile_bytes=tile).field(X)
    np.testing.assert_allclose(Y, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


def test_large_batches_are_sliced_within_the_budget(rng):
    X = rng.standard_normal((300, 400)).astype(np.float32)
    M = Medium(400, 60, seed=_seed(rng), tile_bytes=2**16)  # 34 rows of products per slice
    ref = X.astype(np.float64) @ M.block(dtype=np.complex128).T
    np.testing.assert_allclose(M.field(X), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("kind", ["uint8", "bool", "float32", "float64", "complex64",
                                  "complex128", "sparse", "sparse_complex"])
def test_field_matches_float64_reference(kind, rng):
    n_in, n_out = 2500, 60
    M = Medium(n_in, n_out, seed=_seed(rng), tile_bytes=2**18)
    if kind in ("uint8", "bool"):
        X = (rng.random((6, n_in)) < 0.5).astype(kind)
    elif kind.startswith("sparse"):
        X = sp.random(6, n_in, density=0.02, random_state=rng, format="csr")
        if kind == "sparse_complex":
            X = X + 1j * sp.random(6, n_in, density=0.02, random_state=rng, format="csr")
    else:
        X = rng.standard_normal((6, n_in)).astype(kind)
        if kind.startswith("complex"):
            X = X + 1j * rng.standard_normal((6, n_in))
    Xd = X.toarray() if sp.issparse(X) else X
    ref = Xd.astype(np.complex128) @ M.block(dtype=np.complex128).T
    Y = M.field(X)
    single = Xd.dtype not in (np.float64, np.complex128)
    assert Y.dtype == (np.complex64 if single else np.complex128)
    tol = 1e-5 if single else 1e-12
    np.testing.assert_allclose(Y, ref, rtol=tol, atol=tol * np.abs(ref).max())
    # a vector gives a vector; a region of interest is a slice of the outputs
    np.testing.assert_allclose(M.field(Xd[2]), Y[2], rtol=tol, atol=tol * np.abs(ref).max())
    np.testing.assert_allclose(M.field(X, out_rows=slice(20, 50)), Y[:, 20:50],
                               rtol=tol, atol=tol * np.abs(ref).max())


def test_macro_pixels_sum_columns(rng):
    M = Medium(3000, 50, seed=_seed(rng), tile_bytes=2**16)
    H = M.block(dtype=np.complex128)
    col0, group, k = 123, 9, 250
    Heff = H[:, col0:col0 + group * k].reshape(50, k, group).sum(axis=2)
    X = (rng.random((4, k)) < 0.5).astype(np.uint8)
    np.testing.assert_allclose(M.field(X, col0=col0, group=group), X @ Heff.T, rtol=1e-5,
                               atol=1e-4)
    np.testing.assert_allclose(M.macro_t(col0, k, group), Heff.T, rtol=1e-5, atol=1e-5)


def test_bad_inputs_are_rejected():
    M = Medium(100, 10, seed=0)
    with pytest.raises(ValueError, match="shape"):
        M.field(np.ones((2, 99)))
    with pytest.raises(TypeError, match="float16"):
        M.field(np.ones((2, 100), np.float16))
    with pytest.raises(TypeError, match="X must be"):
        M.field(np.array([["a"] * 100]))
    with pytest.raises(ValueError, match="NaN"):
        M.field(np.full((1, 100), np.nan))
    with pytest.raises(ValueError, match="outside"):
        M.block(slice(0, 11), slice(None))
    with pytest.raises(TypeError, match="slice"):
        M.block(slice(0, 10, 2), slice(None))
    with pytest.raises(TypeError, match="complex64 or complex128"):
        M.block(dtype=np.float32)
    with pytest.raises(ValueError, match="n_in"):
        Medium(0, 10)
    with pytest.raises(ValueError, match="2\\*\\*32"):
        Medium(2**32, 10)
    with pytest.raises(TypeError, match="n_out"):
        Medium(10, 2.5)
    with pytest.raises(ValueError, match="pixels"):
        M.field(np.ones((1, 30)), col0=0, group=4)
