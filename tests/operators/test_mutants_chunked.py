"""Tests that kill mutants of randla/operators/chunked.py (tools/mutate.py) which the other
tests let survive: every product of a DaskOperator against numpy on uneven chunks in both
directions (several row panels and column chunks), real and complex, at extreme scales, and
the single-precision reads."""
import dask.array as da
import numpy as np
import pytest

import randla.sketch
from randla.operators import DaskOperator

SHAPE, CHUNKS = (37, 23), (10, 7)     # 4 row panels, 4 column chunks, the last ones short


def _matrix(rng, dtype, shape=SHAPE):
    A = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        A = A + 1j * rng.standard_normal(shape)
    return A.astype(dtype)


def _op(A):
    return DaskOperator(da.from_array(A, chunks=CHUNKS))


def _gram(A, X):
    return A.conj().T @ (A @ X)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_products_match_numpy(rng, dtype):
    A = _matrix(rng, dtype)
    op = _op(A)
    X, Y = _matrix(rng, dtype, (23, 3)), _matrix(rng, dtype, (37, 2))
    tol = dict(rtol=1e-12, atol=1e-12 * np.abs(A).max() ** 2 * 40)
    np.testing.assert_allclose(op.matmat(X), A @ X, **tol)
    np.testing.assert_allclose(op.rmatmat(Y), A.conj().T @ Y, **tol)
    np.testing.assert_allclose(op.gram_matmat(X), _gram(A, X), **tol)
    C, AX = op.gram_and_product(X)
    np.testing.assert_allclose(C, _gram(A, X), **tol)
    np.testing.assert_allclose(AX, A @ X, **tol)
    (C, e), R = op.gram_qr(X)
    np.testing.assert_allclose(np.ldexp(1.0, -e) * C, _gram(A, X), **tol)
    np.testing.assert_allclose(R.conj().T @ R, (A @ X).conj().T @ (A @ X), **tol)
    assert np.allclose(R, np.triu(R))
    np.testing.assert_allclose(op.column_means(), A.mean(axis=0), **tol)
    assert op.fro_norm() == pytest.approx(np.linalg.norm(A), rel=1e-12)
    mu = A.mean(axis=0)
    assert op.deviation_norm(mu) == pytest.approx(np.linalg.norm(A - mu), rel=1e-12)
    assert op.passes == 8


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_sketches_match_dense_sketch(rng, dtype):
    A = _matrix(rng, dtype)
    op = _op(A)
    Sr = randla.sketch.resolve("gaussian", 5, A.shape[1], rng=rng)
    Sl = randla.sketch.resolve("gaussian", 4, A.shape[0], rng=rng)
    np.testing.assert_allclose(op.sketch_right(Sr), A @ Sr.to_dense(Sr.dtype_for(A.dtype)).T,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.sketch_left(Sl), Sl.to_dense(Sl.dtype_for(A.dtype)) @ A,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("scale", [1e-160, 1e160])
def test_scaled_gram_keeps_digits_at_extreme_scales(rng, dtype, scale):
    """C 2^-e = A^H A X with C near A's scale: A^H A X itself would under- or overflow. Row
    panels of different sizes of entries give different exponents, which the sum reconciles."""
    B = _matrix(rng, dtype)
    B[:10] *= 2.0 ** 30              # the first panel dominates: the exponents differ
    X = _matrix(rng, dtype, (23, 3))
    op = _op(B * scale)
    p = -int(np.round(np.log2(scale)))          # B * scale * 2^p is near B
    for (C, e) in (op.gram_matmat_scaled(X), op.gram_and_product_scaled(X)[0],
                   op.gram_qr(X)[0]):
        # C 2^-e = scale^2 B^H B X: C 2^(2p - e) = B^H B X, up to the rounding of B * scale
        ref = _gram(B * scale * 2.0 ** p, X)
        got = np.ldexp(C.real, 2 * p - e) + (1j * np.ldexp(C.imag, 2 * p - e) if C.dtype.kind == "c" else 0)
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())
        ratio = np.abs(C).max() / (scale * np.abs(B).max())
        assert 2.0 ** -20 < ratio < 2.0 ** 20      # near A's scale, not its square
    assert op.passes == 3


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_single_gram_rounds_panels_and_sums_in_double(rng, dtype):
    A = _matrix(rng, dtype)
    X = _matrix(rng, dtype, (23, 3))
    op = _op(A)
    assert op.single_gram and op.fused_gram
    C, e = op.gram_matmat_scaled(X, single=True)
    assert C.dtype == dtype and op.passes == 1
    ref = _gram(A, X)
    got = np.ldexp(1.0, -e) * C
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())
    assert np.abs(got - ref).max() > 0           # single precision: not exact
    # a second read reuses the rounding buffers: the same result
    C2, e2 = op.gram_matmat_scaled(X, single=True)
    assert e2 == e and np.array_equal(C2, C)


def test_single_gram_out_of_float32_range_is_nan_without_warnings(rng):
    """A beyond float32's range overflows in the rounding: the result says so (NaN), and no
    floating-point warning reaches the caller (warnings are errors in the suite)."""
    A = _matrix(rng, np.float64) * 1e200
    C, _ = _op(A).gram_matmat_scaled(np.ones((23, 2)), single=True)
    assert np.isnan(C).all()


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_single_precision_input_is_neither_fused_nor_single_read(dtype):
    op = _op(np.ones((37, 23), dtype))
    assert not op.fused_gram and not op.single_gram


def test_integer_input_is_held_as_float64(rng):
    A = rng.integers(-5, 5, SHAPE)
    op = _op(A)
    assert op.dtype == np.float64 and op.A.dtype == np.float64
    np.testing.assert_allclose(op.matmat(np.eye(23)), A)


def test_non_2d_and_nonfinite_input_are_refused(rng):
    with pytest.raises(ValueError, match="2-D"):
        DaskOperator(da.ones((3, 4, 5)))
    A = _matrix(rng, np.float64)
    A[12, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        _op(A).matmat(np.ones((23, 1)))


class _Recording(randla.sketch.Sketcher):
    """A Gaussian sketch that records the batches its product hook is asked for (as the
    optical sketch meters its frames)."""

    kind = "recording_test"

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.batches = []

    def _block(self, start, stop, dtype):
        return np.random.default_rng(self.seed).standard_normal((self.d, self.n))[:, start:stop].astype(dtype)

    def product_hook(self, batch, complex_data=False):
        return lambda: self.batches.append((batch, complex_data))


def test_sketch_products_meter_their_batch(rng):
    """A S^T sketches m rows, S A n columns: the hook hears the number of vectors sketched."""
    A = _matrix(rng, np.float64)
    op = _op(A)
    Sr, Sl = _Recording(5, 23, rng=rng), _Recording(4, 37, rng=rng)
    np.testing.assert_allclose(op.sketch_right(Sr), A @ Sr.to_dense().T, atol=1e-12)
    np.testing.assert_allclose(op.sketch_left(Sl), Sl.to_dense() @ A, atol=1e-12)
    assert Sr.batches == [(37, False)] and Sl.batches == [(23, False)]
