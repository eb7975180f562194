"""Bad input to rsvd: a clear ValueError/TypeError naming the parameter."""
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import randla
from randla.sketch import Gaussian

A = np.random.default_rng(0).standard_normal((30, 20))


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"k": 0}, ValueError, "k must be"),
    ({"k": -3}, ValueError, "k must be"),
    ({"k": 21}, ValueError, r"k must be <= min\(m, n\) = 20"),
    ({"k": 2.5}, TypeError, "k must be an int"),
    ({"k": True}, TypeError, "k must be an int"),
    ({"k": None}, ValueError, "give the rank k, the tolerance tol"),
    ({"k": 3, "oversample": -1}, ValueError, "oversample"),
    ({"k": 3, "power_iters": -1}, ValueError, "power_iters"),
    ({"k": 3, "power_iters": 1.0}, TypeError, "power_iters"),
    ({"k": 3, "normalizer": "householder"}, ValueError, "normalizer must be one of"),
    ({"k": 3, "method": "lanczos"}, ValueError, "method must be one of"),
    ({"k": 3, "sketch": "nope"}, ValueError, "unknown sketch 'nope'"),
    ({"k": 3, "sketch": 3}, TypeError, "sketch must be"),
    ({"k": 3, "sketch": Gaussian(2, 20, rng=0)}, ValueError, "sketch has shape"),  # < k rows
    ({"k": 3, "oversample": 5, "sketch": Gaussian(7, 20, rng=0)}, ValueError, "sketch has shape"),
    ({"k": 3, "rng": "seed"}, TypeError, "rng must be"),
    ({"tol": 0.0}, ValueError, r"tol must be in \(0, 1\)"),
    ({"tol": 1.5}, ValueError, r"tol must be in \(0, 1\)"),
    ({"tol": "small"}, TypeError, "tol must be a float"),
    ({"tol": 0.1, "max_rank": 0}, ValueError, "max_rank must be"),
    ({"tol": 0.1, "max_rank": 25}, ValueError, "max_rank must be"),
    ({"tol": 0.1, "sketch": Gaussian(13, 20, rng=0)}, ValueError, "with tol, sketch must be"),
])
def test_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        randla.rsvd(A, **kwargs)


@pytest.mark.parametrize("data, exc, match", [
    (np.full((5, 4), np.nan), ValueError, "NaN or Inf"),
    (np.array([[1.0, np.inf], [0, 1]]), ValueError, "NaN or Inf"),
    (sp.csr_matrix(np.array([[1.0, np.nan], [0, 1]])), ValueError, "NaN or Inf"),
    (np.array([["a", "b"], ["c", "d"]]), TypeError, "numeric dtype"),
    (np.ones((4, 4), dtype=object), TypeError, "numeric dtype"),
    (np.ones((4, 4), dtype=np.float16), TypeError, "float16"),
    (np.ones(5), ValueError, "must be 2-D"),
    (np.ones((3, 3, 3)), ValueError, "must be 2-D"),
    ("matrix", TypeError, "must be an array"),
])
def test_bad_matrices(data, exc, match):
    with pytest.raises(exc, match=match):
        randla.rsvd(data, 1)


def test_integer_input_is_promoted_to_float64():
    B = np.arange(12).reshape(4, 3)
    res = randla.rsvd(B, 2, rng=0)
    assert res.U.dtype == np.float64
    np.testing.assert_allclose(res.S, np.linalg.svd(B.astype(float), compute_uv=False)[:2])


def test_nan_from_a_linear_operator_is_reported():
    op = spla.LinearOperator((10, 8), matvec=lambda x: np.full(10, np.nan),
                             rmatvec=lambda y: np.full(8, np.nan), dtype=np.float64)
    with pytest.raises(ValueError, match="NaN or Inf"):
        randla.rsvd(op, 2, rng=0)


def test_estimate_error_names_the_factor_with_nan():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((30, 20))
    U, s, Vh = np.linalg.svd(A, full_matrices=False)
    for name, args in (("U", (U * np.nan, s, Vh)), ("s", (U, s * np.nan, Vh)),
                       ("Vh", (U, s, Vh * np.inf))):
        with pytest.raises(ValueError, match=f"^{name} contains NaN"):
            randla.estimate_error(A, *args, n_iter=0)
    L = spla.LinearOperator((30, 20), matvec=lambda x: np.full(30, np.nan),
                            rmatvec=lambda y: np.full(20, np.nan), dtype=float)
    with pytest.raises(ValueError, match="A produced NaN"):
        randla.estimate_error(L, U, s, Vh, n_iter=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("sketch", ["gaussian", "sparse_sign", "srtt"])
@pytest.mark.parametrize("mixed", [True, False])
def test_one_bad_entry_is_found_by_the_first_product(rng, bad, sketch, mixed):
    # the default path has no separate check of A: one NaN/Inf anywhere must still be named
    A = rng.standard_normal((300, 120))
    A[rng.integers(300), rng.integers(120)] = bad
    with pytest.raises(ValueError, match="^A contains NaN or Inf"):
        randla.rsvd(A, 5, sketch=sketch, mixed_precision=mixed, rng=0)
    with pytest.raises(ValueError, match="^A contains NaN or Inf"):
        randla.rsvd(A.T, 5, sketch=sketch, mixed_precision=mixed, rng=0)   # through A^H
