"""The door names what is wrong with an input, and accepts what is right in an unusual form."""
import numpy as np
import pytest
import scipy.sparse.linalg as spla

import randla


def test_linear_operator_without_rmatvec_is_named(rng):
    A = rng.standard_normal((60, 40))
    L = spla.LinearOperator((60, 40), matvec=lambda x: A @ x, dtype=float)
    for call in (lambda: randla.rsvd(L, 3), lambda: randla.lstsq(L, np.ones(60)),
                 lambda: randla.estimate_error(L, *np.linalg.svd(A, full_matrices=False))):
        with pytest.raises(ValueError, match="without rmatvec"):
            call()


@pytest.mark.parametrize("dtype", [">f8", ">f4", ">c16"])
def test_big_endian_data_is_accepted(rng, dtype):
    A = rng.standard_normal((50, 30))
    A = (A + 1j * rng.standard_normal(A.shape)) if dtype.endswith("16") else A
    native = A.astype(np.dtype(dtype).newbyteorder("="))
    got = randla.rsvd(A.astype(dtype), 4, rng=0)
    want = randla.rsvd(native, 4, rng=0)
    assert got.U.dtype == native.dtype and got.U.dtype.isnative
    np.testing.assert_array_equal(got.S, want.S)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_np_matrix_is_an_array(rng):
    A = rng.standard_normal((80, 30))
    for center in (False, True):
        got = randla.rsvd(np.matrix(A), 3, center=center, rng=0)
        want = randla.rsvd(A, 3, center=center, rng=0)
        assert type(got.U) is np.ndarray
        np.testing.assert_array_equal(got.S, want.S)


def test_sketchy_svd_blames_a_for_nan(rng):
    A = rng.standard_normal((40, 30))
    A[3, 3] = np.nan
    with pytest.raises(ValueError, match="^A contains NaN"):
        randla.sketchy_svd(A, 3)


def test_kernel_matrix_points_and_bandwidth(rng):
    with pytest.raises(ValueError, match="at least one point"):
        randla.KernelMatrix(np.empty((0, 3)))
    with pytest.raises(ValueError, match="at least one point"):
        randla.KernelMatrix(np.empty((4, 0)))
    with pytest.raises(ValueError, match="bandwidth=1e-300 is too small"):
        randla.KernelMatrix(rng.standard_normal((10, 3)), bandwidth=1e-300)
    K = randla.KernelMatrix(rng.standard_normal((10, 3)), bandwidth=1e-3)  # tiny but finite
    np.testing.assert_allclose(K.to_dense(), np.eye(10), atol=1e-12)


def test_masked_arrays_are_used_when_nothing_is_masked_and_refused_otherwise(rng):
    from randla.operators import as_operator
    A = rng.standard_normal((60, 25))
    X = rng.standard_normal((25, 3))
    for mask in (np.ma.nomask, np.zeros(A.shape, bool)):
        M = np.ma.masked_array(A, mask=mask)
        np.testing.assert_array_equal(randla.rsvd(M, 4, rng=1).S, randla.rsvd(A, 4, rng=1).S)
        np.testing.assert_allclose(as_operator(M).matmat(X), A @ X, rtol=1e-12)
    A[rng.integers(60), rng.integers(25)] = np.nan
    M = np.ma.masked_invalid(A)          # the usual way a masked array is made
    for call in (lambda: randla.rsvd(M, 4), lambda: as_operator(M),
                 lambda: randla.lstsq(M, np.ones(60))):
        with pytest.raises(TypeError, match=r"^A is a masked array with 1 masked entries: "
                                            r"masked arrays are not supported; fill them"):
            call()
