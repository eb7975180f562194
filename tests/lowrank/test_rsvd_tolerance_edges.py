"""Fixed-accuracy rsvd at the edges where it used to miss its tolerance silently: duplicate
sparse entries, centering with large means, extreme scales, NaN from an operator, and
tolerances below what the energy criterion can resolve."""
import warnings

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import randla


def _rel(A, r):
    A = A.toarray() if sp.issparse(A) else np.asarray(A)
    return np.linalg.norm(A - (r.U * r.S) @ r.Vh) / np.linalg.norm(A)


def _low_rank(rng, m=300, n=200, r=40):
    return rng.standard_normal((m, r)) @ np.diag(0.8 ** np.arange(r)) @ rng.standard_normal((r, n))


def test_csr_with_duplicate_entries_meets_tol(rng):
    D = _low_rank(rng)
    rows, cols = np.nonzero(D)
    halves = np.concatenate([D[rows, cols] / 2, D[rows, cols] / 2])
    order = np.argsort(np.concatenate([rows, rows]), kind="stable")
    r2, c2 = np.concatenate([rows, rows])[order], np.concatenate([cols, cols])[order]
    A = sp.csr_matrix((halves[order], c2, np.searchsorted(r2, np.arange(D.shape[0] + 1))),
                      shape=D.shape)
    assert not A.has_canonical_format
    np.testing.assert_allclose(A.toarray(), D)
    r = randla.rsvd(A, tol=1e-3, rng=0)
    assert _rel(D, r) <= 1e-3
    assert A.nnz == 2 * len(rows)  # the user's matrix is left as it was


@pytest.mark.parametrize("dtype, mean", [(np.float32, 1.0), (np.float64, 1e4)])
@pytest.mark.parametrize("kind", ["dense", "sparse", "linop"])
def test_centered_tolerance_with_large_means(rng, dtype, mean, kind):
    X = (_low_rank(rng, 1500, 100, 30) * 1e-3 + mean).astype(dtype)
    data = {"dense": X, "sparse": sp.csr_matrix(X), "linop": spla.aslinearoperator(X)}[kind]
    r = randla.rsvd(data, tol=1e-2, center=True, rng=0)
    Xc = X.astype(np.float64) - X.astype(np.float64).mean(axis=0)
    err = np.linalg.norm(Xc - (r.U * r.S) @ r.Vh) / np.linalg.norm(Xc)
    assert err <= 1e-2 * (1.05 if dtype == np.float32 else 1.0)
    # and not by returning everything: the optimal rank for 1e-2 is far below full
    s = np.linalg.svd(Xc, compute_uv=False)
    best = int(np.argmax(np.sqrt(np.cumsum((s ** 2)[::-1])[::-1]) <= 1e-2 * np.linalg.norm(s)))
    assert len(r.S) <= best + 3


@pytest.mark.parametrize("scale", [1e200, 1e-170])
def test_extreme_scales(rng, scale):
    D = _low_rank(rng)
    r = randla.rsvd(D * scale, tol=1e-3, rng=0)
    assert 1 <= len(r.S) < 40
    assert _rel(D, type(r)(r.U, r.S / scale, r.Vh)) <= 1e-3


def test_operator_producing_nan_is_an_error():
    L = spla.LinearOperator((50, 40), matvec=lambda x: np.full(50, np.nan),
                            rmatvec=lambda y: np.full(40, np.nan), dtype=float)
    with pytest.raises(ValueError, match="NaN or Inf"):
        randla.rsvd(L, tol=0.1)


@pytest.mark.parametrize("kind", ["dense", "complex_linop"])
def test_tolerance_below_sqrt_eps_is_measured(kind):
    H = sla.hilbert(300)
    A = H if kind == "dense" else spla.aslinearoperator(H + 1j * H[::-1])
    dense = H if kind == "dense" else H + 1j * H[::-1]
    with warnings.catch_warnings():
        warnings.simplefilter("error", randla.AccuracyWarning)
        r = randla.rsvd(A, tol=1e-12, rng=0)
    assert _rel(dense, r) <= 1e-12
    assert len(r.S) < 40   # the singular values of the Hilbert matrix fall fast


def test_unreachable_tolerance_warns_with_accuracy_warning(rng):
    A = rng.standard_normal((80, 60))       # flat spectrum: rank 5 cannot reach 1e-3
    with pytest.warns(randla.AccuracyWarning, match="not reached"):
        r = randla.rsvd(A, 5, tol=1e-3, rng=0)
    assert len(r.S) == 5
