"""The zero matrix: every estimator gives 0 (tr exp(0) = n for SLQ) with error 0; XTrace and
XDiag returned NaN, the Nystrom estimators called A = 0 not positive semidefinite."""
import numpy as np
import pytest
import scipy.sparse as sp

import randla.trace as rt

TRACE = [rt.hutchinson, rt.hutchpp, rt.na_hutchpp, rt.nystrompp, rt.xtrace, rt.xnystrace]


@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("estimator", TRACE, ids=lambda f: f.__name__)
def test_trace_of_the_zero_matrix(estimator, adaptive, rng):
    n = int(rng.integers(10, 40))
    kw = {"tol": 0.1} if adaptive else {"m": 8}
    for A in (np.zeros((n, n)), sp.csr_matrix((n, n)), np.zeros((n, n), np.float32)):
        t = estimator(A, rng=rng, **kw)
        assert (float(t), t.error) == (0.0, 0.0)


@pytest.mark.parametrize("estimator", [rt.xdiag, rt.diag_hutchinson], ids=lambda f: f.__name__)
def test_diagonal_of_the_zero_matrix(estimator, rng):
    n = int(rng.integers(10, 40))
    d = estimator(np.zeros((n, n)), 8, rng=rng)
    np.testing.assert_array_equal(d.estimate, np.zeros(n))
    assert d.error == 0.0


def test_slq_of_the_zero_matrix(rng):
    n = int(rng.integers(10, 40))
    t = rt.slq(sp.csr_matrix((n, n)), "exp", 40, degree=10, rng=rng)
    assert float(t) == pytest.approx(n, rel=1e-12)
    with pytest.raises(ValueError, match="positive definite"):
        rt.logdet(np.zeros((n, n)), 40, degree=10, rng=rng)
