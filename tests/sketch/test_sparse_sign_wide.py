"""Sparse sign sketches wider than one generation pass (2^20 columns): every application path
against the dense matrix, so a wrong column offset in the multi-pass loop cannot hide."""
import numpy as np
import pytest
import scipy.sparse as sp

from randla.sketch import SparseSign
from randla.sketch.sparse_sign import _COLS_PER_PASS

N = _COLS_PER_PASS + 3001   # two passes, the second one short


@pytest.fixture(scope="module")
def wide():
    S = SparseSign(6, N, rng=11)
    return S, S.to_dense()


@pytest.mark.parametrize("order", ["C", "F"])
def test_dense_input_in_both_orders(wide, order, rng):
    S, dense = wide
    X = np.asarray(rng.standard_normal((N, 3)), order=order)
    np.testing.assert_allclose(S @ X, dense @ X, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(X.T @ S.T, (dense @ X).T, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_with_entries_in_both_passes(wide, fmt, rng):
    S, dense = wide
    rows = np.concatenate([rng.integers(0, _COLS_PER_PASS, 40), rng.integers(_COLS_PER_PASS, N, 40)])
    X = sp.coo_matrix((rng.standard_normal(80), (rows, rng.integers(0, 2, 80))), shape=(N, 2))
    X = X.asformat(fmt)
    np.testing.assert_allclose(S @ X, dense @ X.toarray(), rtol=1e-12, atol=1e-12)


def test_apply_block_past_the_first_pass(wide, rng):
    S, dense = wide
    start = _COLS_PER_PASS - 500        # straddles the pass boundary
    X = rng.standard_normal((2000, 2))
    np.testing.assert_allclose(S.apply_block(X, start), dense[:, start:start + 2000] @ X,
                               rtol=1e-12, atol=1e-12)
