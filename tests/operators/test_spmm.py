"""SparseOperator's products with a dense block (Numba kernels in randla/operators/_spmm.py):
against pure-NumPy references that add the same terms in the same order, against the dense
product within rounding bounds, bit for bit across thread counts and ways of splitting the
work, and for every dtype, index type, layout and edge case the scipy route handled."""
import numba
import numpy as np
import pytest
import scipy.sparse as sp

from randla.operators import SparseOperator, _spmm, as_operator

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
TWO_THREADS = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2,
                                 reason="needs 2 Numba threads")


def _random_csr(rng, m, n, density, dtype, fmt="csr"):
    A = sp.random(m, n, density=density, format=fmt, random_state=rng)
    if np.dtype(dtype).kind == "c":
        A = A + 1j * sp.random(m, n, density=density, format=fmt, random_state=rng)
    return A.astype(dtype).asformat(fmt)


def _block(rng, rows, k, dtype):
    X = rng.standard_normal((rows, k))
    if np.dtype(dtype).kind == "c":
        X = X + 1j * rng.standard_normal((rows, k))
    return X.astype(dtype)


# -- pure-NumPy references: np.add.at adds the terms one after another in storage order -------
def ref_gather(indptr, indices, data, X, conj=False):
    """R @ X (conj(R) @ X) for R in CSR form: out[i] += data[p] X[indices[p]], p in order."""
    dtype = np.result_type(data.dtype, X.dtype)
    nnz = indptr[-1]
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    vals = data[:nnz].astype(dtype)
    vals = vals.conj() if conj else vals
    out = np.zeros((len(indptr) - 1, X.shape[1]), dtype)
    np.add.at(out, rows, vals[:, None] * X.astype(dtype)[indices[:nnz]])
    return out


def ref_scatter(indptr, indices, data, X, n_out, conj=False):
    """R^T @ X (R^H @ X) for R in CSR form: out[indices[p]] += data[p] X[row of p], p in order."""
    dtype = np.result_type(data.dtype, X.dtype)
    nnz = indptr[-1]
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    vals = data[:nnz].astype(dtype)
    vals = vals.conj() if conj else vals
    out = np.zeros((n_out, X.shape[1]), dtype)
    np.add.at(out, indices[:nnz], vals[:, None] * X.astype(dtype)[rows])
    return out


def _assert_matches_reference(got, ref):
    """Real sums: the same products added in the same order give the same bits. Complex
    products may be formed with fused multiply-adds by NumPy's SIMD loops: a few ulps."""
    assert got.dtype == ref.dtype and got.shape == ref.shape
    if got.dtype.kind == "c":
        eps = np.finfo(got.dtype).eps
        np.testing.assert_allclose(got, ref, rtol=0, atol=8 * eps * max(1.0, np.abs(ref).max()))
    else:
        np.testing.assert_array_equal(got, ref)


def _assert_close_to_dense(got, A, X, adjoint=False):
    """|got - exact| <= (terms + 1) eps sum_p |a_p x_p|, the bound of a sum of `terms`
    products each rounded once (with a factor 2 to spare), against the exact product in
    complex128 of the same (already rounded) inputs. Sums over stored entries, duplicates
    included, so cancelling duplicates do not tighten the bound."""
    S = (A.conj().T if adjoint else A).tocsr()     # rows of the product; duplicates kept
    Xc = X.astype(np.complex128)
    exact = S.toarray().astype(np.complex128) @ Xc
    bound = abs(S).toarray().astype(np.float64) @ np.abs(Xc)
    terms = max(1, int(np.diff(S.indptr).max(initial=0)))
    eps = np.finfo(got.dtype).eps
    assert np.all(np.abs(got - exact) <= (terms + 1) * eps * bound + 1e-300)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_match_numpy_reference(rng, dtype):
    A = _random_csr(rng, 300, 70, 0.08, dtype)
    X, Y = _block(rng, 70, 5, dtype), _block(rng, 300, 5, dtype)
    weights = _spmm.scatter_cumulative(A.indices, A.nnz, 70)
    for conj in (False, True):
        _assert_matches_reference(_spmm.gather(A.indptr, A.indices, A.data, X, conj),
                                  ref_gather(A.indptr, A.indices, A.data, X, conj))
        _assert_matches_reference(_spmm.scatter(A.indptr, A.indices, A.data, Y, 70, weights,
                                                conj),
                                  ref_scatter(A.indptr, A.indices, A.data, Y, 70, conj))


def test_scatter_and_gather_over_the_transpose_give_the_same_bits(rng, monkeypatch):
    """The scatter over R adds each output row's terms in the order of R's rows, which is the
    storage order of R^T as tocsc builds it; cutting the output into more parts changes
    nothing."""
    A = _random_csr(rng, 400, 60, 0.1, np.float64)
    Y = _block(rng, 400, 7, np.float64)
    T = A.tocsc()
    weights = _spmm.scatter_cumulative(A.indices, A.nnz, 60)
    gathered = _spmm.gather(T.indptr, T.indices, T.data, Y)
    np.testing.assert_array_equal(
        _spmm.scatter(A.indptr, A.indices, A.data, Y, 60, weights), gathered)
    monkeypatch.setattr(_spmm, "PART_BYTES", 64)   # about 8 output rows per part
    assert _spmm.scatter_parts(60, 7, 8) > 40
    np.testing.assert_array_equal(
        _spmm.scatter(A.indptr, A.indices, A.data, Y, 60, weights), gathered)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("shape", [(300, 60), (60, 300)])
def test_products_match_dense(rng, dtype, fmt, shape):
    """Both products for tall and wide A in both formats (each of the three kernel routes:
    gather over A's arrays, scatter over them, gather over the other orientation)."""
    m, n = shape
    A = _random_csr(rng, m, n, 0.1, dtype, fmt)
    op = as_operator(A)
    X, Y = _block(rng, n, 6, dtype), _block(rng, m, 6, dtype)
    AX, AHY = op.matmat(X), op.rmatmat(Y)
    assert AX.dtype == dtype and AHY.dtype == dtype
    assert AX.flags.c_contiguous and AHY.flags.c_contiguous
    _assert_close_to_dense(AX, A, X)
    _assert_close_to_dense(AHY, A, Y, adjoint=True)


@pytest.mark.parametrize("dtype_a", DTYPES)
@pytest.mark.parametrize("dtype_x", DTYPES + [np.int64, np.int16, np.bool_, np.float16])
def test_result_dtype_is_scipys(rng, dtype_a, dtype_x):
    """Mixed dtypes give what ``np.asarray(A @ X)`` gave: numpy's result type (float32 stays
    float32, float32 with int64 is float64)."""
    A = _random_csr(rng, 40, 30, 0.2, dtype_a)
    op = SparseOperator(A, dtype_a)
    X = (rng.standard_normal((30, 3)) * 3).astype(dtype_x)
    Y = (rng.standard_normal((40, 3)) * 3).astype(dtype_x)
    AX, AHY = op.matmat(X), op.rmatmat(Y)
    assert AX.dtype == np.asarray(A @ X).dtype
    assert AHY.dtype == np.asarray(A.T @ Y).dtype
    _assert_close_to_dense(AX, A, X)
    _assert_close_to_dense(AHY, A, Y, adjoint=True)


def test_int64_indices(rng):
    for fmt, shape in (("csr", (200, 40)), ("csr", (40, 200)), ("csc", (200, 40))):
        A = _random_csr(rng, *shape, 0.1, np.float64, fmt)
        A.indices, A.indptr = A.indices.astype(np.int64), A.indptr.astype(np.int64)
        op = as_operator(A)
        assert op.A.indices.dtype == np.int64
        X, Y = _block(rng, shape[1], 4, np.float64), _block(rng, shape[0], 4, np.float64)
        _assert_close_to_dense(op.matmat(X), A, X)
        _assert_close_to_dense(op.rmatmat(Y), A, Y, adjoint=True)


def test_layouts_of_the_block(rng):
    """F-ordered, strided and transposed blocks give the C-ordered block's exact result."""
    A = _random_csr(rng, 120, 50, 0.1, np.float64)
    op = as_operator(A)
    X = _block(rng, 50, 8, np.float64)
    expected = op.matmat(X)
    wide = np.repeat(X, 2, axis=1)
    for view in (np.asfortranarray(X), wide[:, ::2], np.ascontiguousarray(X.T).T):
        np.testing.assert_array_equal(op.matmat(view), expected)
    Y = _block(rng, 120, 8, np.float64)
    np.testing.assert_array_equal(op.rmatmat(np.asfortranarray(Y)), op.rmatmat(Y))


def test_vectors_and_single_columns(rng):
    A = _random_csr(rng, 90, 40, 0.1, np.complex128)
    op = as_operator(A)
    x, y = _block(rng, 40, 1, np.complex128), _block(rng, 90, 1, np.complex128)
    np.testing.assert_array_equal(op.matmat(x[:, 0]), op.matmat(x)[:, 0])
    assert op.matmat(x[:, 0]).shape == (90,) and op.rmatmat(y[:, 0]).shape == (40,)
    _assert_close_to_dense(op.matmat(x), A, x)
    _assert_close_to_dense(op.rmatmat(y), A, y, adjoint=True)


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0), (6, 4)])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_empty_matrices_and_blocks(shape, fmt):
    m, n = shape
    A = sp.csr_matrix((m, n)).asformat(fmt)     # no stored entries
    op = as_operator(A)
    for k in (0, 3):
        X = np.full((n, k), np.nan)            # no entry of A meets X: zeros, as scipy gives
        Y = np.ones((m, k), np.float32)
        AX, AHY = op.matmat(X), op.rmatmat(Y)
        assert AX.shape == (m, k) and AHY.shape == (n, k)
        assert AX.dtype == np.float64 and AHY.dtype == np.float64
        assert not AX.any() and not AHY.any()


@pytest.mark.parametrize("shape", [(200, 40), (40, 200)])
def test_duplicates_explicit_zeros_unsorted_indices(rng, shape):
    """Given straight to SparseOperator (as_operator would sum duplicates first): every
    stored entry counts, in storage order, as in scipy."""
    m, n = shape
    A = _random_csr(rng, m, n, 0.15, np.float64)
    rows = np.repeat(np.arange(m), np.diff(A.indptr))
    extra = rng.integers(0, A.nnz, size=A.nnz // 3)
    r = np.concatenate([rows, rows[extra], rng.integers(0, m, 5)])
    c = np.concatenate([A.indices, A.indices[extra], rng.integers(0, n, 5)])
    v = np.concatenate([A.data, rng.standard_normal(len(extra)), np.zeros(5)])
    order = np.lexsort((rng.random(len(r)), r))     # rows in order, shuffled within a row
    indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=m))])
    B = sp.csr_matrix((v[order], c[order], indptr), shape=(m, n))
    assert not B.has_canonical_format and B.nnz == len(r)
    op = SparseOperator(B, np.float64)
    X, Y = _block(rng, n, 5, np.float64), _block(rng, m, 5, np.float64)
    np.testing.assert_array_equal(op.matmat(X), ref_gather(B.indptr, B.indices, B.data, X))
    np.testing.assert_array_equal(op.rmatmat(Y),
                                  ref_scatter(B.indptr, B.indices, B.data, Y, n))
    _assert_close_to_dense(op.matmat(X), B, X)
    _assert_close_to_dense(op.rmatmat(Y), B, Y, adjoint=True)
    sorted_dups = B.copy()
    sorted_dups.has_sorted_indices = False
    sorted_dups.sort_indices()                      # sorted, duplicates kept: the scatter
    op = SparseOperator(sorted_dups, np.float64)
    _assert_close_to_dense(op.rmatmat(Y), B, Y, adjoint=True)


@TWO_THREADS
@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
@pytest.mark.parametrize("shape", [(3000, 200), (200, 3000)])
def test_same_bits_for_one_and_two_threads(rng, dtype, shape):
    m, n = shape
    A = _random_csr(rng, m, n, 0.02, dtype)
    X, Y = _block(rng, n, 9, dtype), _block(rng, m, 9, dtype)
    before = numba.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            op = as_operator(A)
            results.append((op.matmat(X), op.rmatmat(Y)))
    finally:
        numba.set_num_threads(before)
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


def test_other_orientation_built_once_and_only_when_needed(rng):
    wide = as_operator(_random_csr(rng, 30, 400, 0.05, np.float64))
    wide.matmat(_block(rng, 400, 3, np.float64))
    assert wide._flipped is None                        # A X reads A's own rows
    Y = _block(rng, 30, 3, np.float64)
    first = wide.rmatmat(Y)
    built = wide._flipped
    assert built is not None and built[0] is wide.A
    np.testing.assert_array_equal(wide.rmatmat(Y), first)
    assert wide._flipped is built                       # reused
    tall = as_operator(_random_csr(rng, 400, 30, 0.2, np.float64))   # rows of 6 entries
    tall.rmatmat(_block(rng, 400, 3, np.float64))
    assert tall._flipped is None                        # the scatter needs no copy of A


def test_replaced_matrix_is_not_served_from_the_cache(rng):
    op = as_operator(_random_csr(rng, 30, 400, 0.05, np.float64))
    Y = _block(rng, 30, 3, np.float64)
    op.rmatmat(Y)
    B = _random_csr(rng, 30, 400, 0.05, np.float64)
    op.A = B
    _assert_close_to_dense(op.rmatmat(Y), B, Y, adjoint=True)


def test_scipy_fallback_for_other_dtypes_and_formats(rng):
    A = _random_csr(rng, 20, 10, 0.3, np.float64)
    op = as_operator(A)
    X = rng.standard_normal((10, 2)).astype(np.longdouble)
    assert op.matmat(X).dtype == np.asarray(A @ X).dtype == np.longdouble
    with pytest.raises(TypeError):                      # scipy's error for object blocks
        op.matmat(X.astype(object))
    coo = SparseOperator(A.tocoo(), np.float64)
    Xd, Yd = rng.standard_normal((10, 2)), rng.standard_normal((20, 2))
    _assert_close_to_dense(coo.matmat(Xd), A, Xd)
    _assert_close_to_dense(coo.rmatmat(Yd), A, Yd, adjoint=True)


def test_wrong_number_of_rows_names_the_block(rng):
    op = as_operator(_random_csr(rng, 20, 10, 0.3, np.float64))
    with pytest.raises(ValueError, match="X must have 10 rows"):
        op.matmat(np.ones((11, 2)))
    with pytest.raises(ValueError, match="Y must have 20 rows"):
        op.rmatmat(np.ones((10, 2)))
