"""Every estimator is scale invariant: A times 1e200, 1e160, 1e-170 or 1e-200 gives the
unscaled estimate and error times the scale (norms and variances of the products squared
entries of 1e200, NaN or Inf; or underflowed at 1e-200, a wrong estimate), with no warning
(the suite turns RuntimeWarnings into errors)."""
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import randla.trace as rt

SCALES = [1e200, 1e160, 1e-170, 1e-200]

TRACE = {
    "hutchinson": lambda A, r: rt.hutchinson(A, 30, rng=r),
    "hutchinson-tol": lambda A, r: rt.hutchinson(A, tol=0.02, rng=r),
    "hutchpp": lambda A, r: rt.hutchpp(A, 30, rng=r),
    "na_hutchpp": lambda A, r: rt.na_hutchpp(A, 30, rng=r),
    "nystrompp": lambda A, r: rt.nystrompp(A, 30, rng=r),
    "xtrace": lambda A, r: rt.xtrace(A, 30, rng=r),
    "xtrace-tol": lambda A, r: rt.xtrace(A, tol=1e-2, rng=r),
    "xnystrace": lambda A, r: rt.xnystrace(A, 20, rng=r),
}
DIAG = {
    "xdiag": lambda A, r: rt.xdiag(A, 30, symmetric=True, rng=r),
    "xdiag-tol": lambda A, r: rt.xdiag(A, tol=0.1, symmetric=True, rng=r),
    "diag_hutchinson": lambda A, r: rt.diag_hutchinson(A, 30, rng=r),
}


def _psd(rng, n=60):
    U = np.linalg.qr(rng.standard_normal((n, n)))[0]
    return (U * (0.8 ** np.arange(n) + rng.uniform(0.01, 0.1))) @ U.T


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", sorted(TRACE))
def test_trace_estimators_are_scale_invariant(name, scale, rng):
    A, seed = _psd(rng), int(rng.integers(2**32))
    want, got = TRACE[name](A, seed), TRACE[name](A * scale, seed)
    assert got.matvecs == want.matvecs
    np.testing.assert_allclose(float(got), float(want) * scale, rtol=1e-10)
    np.testing.assert_allclose(got.error, want.error * scale, rtol=1e-6)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", sorted(DIAG))
def test_diagonal_estimators_are_scale_invariant(name, scale, rng):
    A, seed = _psd(rng), int(rng.integers(2**32))
    want, got = DIAG[name](A, seed), DIAG[name](A * scale, seed)
    assert got.matvecs == want.matvecs
    np.testing.assert_allclose(got.estimate, want.estimate * scale, rtol=1e-9,
                               atol=1e-12 * scale * np.abs(want.estimate).max())
    np.testing.assert_allclose(got.error, want.error * scale, rtol=1e-6)


@pytest.mark.parametrize("scale", [2.0**70, 2.0**-70])
def test_float32_and_operators_at_extreme_scales(scale, rng):
    """float32 squares overflow from 2^64; a power-of-two scale makes the results exact."""
    A = _psd(rng).astype(np.float32)
    seed = int(rng.integers(2**32))
    want = rt.xtrace(A, 30, rng=seed)
    As = (A * np.float32(scale))
    for form in (As, spla.aslinearoperator(As), sp.csr_matrix(As)):
        got = rt.xtrace(form, 30, rng=seed)
        np.testing.assert_allclose(float(got), float(want) * scale, rtol=1e-5)
    got = rt.xnystrace(lambda x: As @ x, 20, n=As.shape[0], rng=seed)
    np.testing.assert_allclose(float(got), float(rt.xnystrace(A, 20, rng=seed)) * scale, rtol=1e-5)


@pytest.mark.parametrize("scale", [1e200, 1e-200])
@pytest.mark.parametrize("reorth", ["full", "partial", "none"])
@pytest.mark.parametrize("sparse", [False, True])
def test_slq_at_extreme_scales(scale, reorth, sparse, rng):
    """Lanczos runs on A / scale and the Ritz values are scaled back: log det(sA) =
    n log s + log det A and tr((sA)^-1) = tr(A^-1) / s. The CSR kernels read A directly."""
    n = 50
    A = sp.diags([-1.0, 2.5 + rng.uniform(), -1.0], [-1, 0, 1], shape=(n, n)).tocsr()
    if not sparse:
        A = A.toarray()
    seed = int(rng.integers(2**32))
    kw = dict(degree=10, reorth=reorth, rng=seed)
    want, got = rt.logdet(A, 60, **kw), rt.logdet(A * scale, 60, **kw)
    np.testing.assert_allclose(float(got), float(want) + n * np.log(scale), rtol=1e-12)
    np.testing.assert_allclose(got.error, want.error, rtol=1e-6)
    inv, inv_s = rt.slq(A, "inv", 60, **kw), rt.slq(A * scale, "inv", 60, **kw)
    np.testing.assert_allclose(float(inv_s), float(inv) / scale, rtol=1e-10)
