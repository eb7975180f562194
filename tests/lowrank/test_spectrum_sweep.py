"""The adaptive default of rsvd over the spectra that break stopping rules: exact low rank
with k above, at and below the rank, noise floors, flat, slow and fast decay, repeated
singular values, complex, float32, sparse, extreme scales, k = 1 and k = min(m, n).

Each case asserts the documented contract, ||A - U S V^H||_2 <= (1 + tol) sigma_(k+1) +
NOISE_FLOOR u sigma_1, that the loop says it converged, and a bound on the passes."""
import numpy as np
import pytest
import scipy.sparse as sp

import randla
from randla.lowrank import DEFAULT_POWER_TOL, MAX_ADAPTIVE_ITERS
from randla.lowrank.adaptive import NOISE_FLOOR
from randla.testing import matrix_with_spectrum

M, N = 300, 120
MAX_PASSES = 2 * MAX_ADAPTIVE_ITERS + 2


def _rank(r, n=N):
    return np.concatenate([np.linspace(2, 1, r), np.zeros(n - r)])


def _floor(r, level, n=N):
    return np.concatenate([np.linspace(2, 1, r), level * np.ones(n - r)])


i = np.arange(N, dtype=float)
#: name -> (spectrum, k, most passes allowed)
CASES = {
    "rank 20, k 30": (_rank(20), 30, 4),
    "rank 20, k 20": (_rank(20), 20, 4),
    "rank 20, k 10": (_rank(20), 10, 4),
    "noise 1e-3": (_floor(15, 1e-3), 15, 4),
    "noise 1e-8": (_floor(15, 1e-8), 15, 4),
    "noise 1e-14": (_floor(15, 1e-14), 15, 4),
    "flat": ((1 + i) ** -0.1, 10, MAX_PASSES + 1),
    "slow": ((1 + i) ** -0.5, 10, MAX_PASSES),
    "fast": (0.6 ** i, 10, 4),
    "wide (1+i)^-5": ((1 + i) ** -5, 30, 8),
    "0.5^i": (0.5 ** i, 30, 6),
    "repeated at k": (np.concatenate([np.ones(12), 0.999 * np.ones(6), 0.5 * 0.9 ** i[:N - 18]]), 10, MAX_PASSES + 1),
    "k = 1": (0.9 ** i, 1, 8),
    "k = min(m, n)": (0.9 ** i, N, 1),
}


def _contract(A, res, s, k, u):
    """The spectral error and the contract's bound (sigma_(k+1) = 0 at k = min(m, n))."""
    dense = A.toarray() if sp.issparse(A) else A
    err = np.linalg.norm(dense - (res.U * res.S) @ res.Vh, 2)
    tail = s[k] if k < len(s) else 0.0
    return err, (1 + DEFAULT_POWER_TOL) * tail + NOISE_FLOOR * u * s[0]


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize(("dtype", "scale"), [(np.float64, 1.0), (np.float32, 1.0),
                                              (np.complex128, 1.0), (np.float64, 1e-150),
                                              (np.float64, 1e150), (np.complex128, 1e-150)])
def test_contract_passes_and_convergence(name, dtype, scale):
    s, k, most = CASES[name]
    A = matrix_with_spectrum(M, N, s, dtype=dtype, rng=list(CASES).index(name))
    A *= np.asarray(scale, dtype=np.finfo(dtype).dtype)
    s_true = np.linalg.svd(A.astype(np.complex128 if dtype == np.complex128 else np.float64) / scale, compute_uv=False)
    res = randla.rsvd(A, k, rng=1)
    u = float(np.finfo(dtype).eps)
    err, bound = _contract(A / scale, res._replace(S=res.S / scale), s_true, k, u)
    assert res.info.converged
    assert res.info.passes <= most
    assert err <= bound
    assert res.U.dtype == dtype and res.S.dtype == np.finfo(dtype).dtype


def test_cost_is_invariant_to_scale():
    s = (1 + i) ** -1.0
    A = matrix_with_spectrum(M, N, s, rng=3)
    base = randla.rsvd(A, 10, rng=1)
    for scale in (1e-170, 1e-150, 1e40, 1e155, 2.0 ** -560, 2.0 ** 510):
        res = randla.rsvd(A * scale, 10, rng=1)
        assert res.info.passes == base.info.passes
        assert res.info.float32_passes == base.info.float32_passes
        # a power of two scales exactly (the same arithmetic but for the order of a few
        # sums); else A * scale rounds anew
        exact = np.frexp(scale)[0] == 0.5
        np.testing.assert_allclose(res.S / scale, base.S, rtol=1e-13 if exact else 1e-6)


def test_sparse_flat_spectrum_converges():
    # a sparse matrix of random entries has a flat spectrum, where power iteration stalls
    A = sp.random(400, 3000, density=0.01, format="csr", random_state=np.random.default_rng(0))
    s = np.linalg.svd(A.toarray(), compute_uv=False)
    res = randla.rsvd(A, 10, rng=0)
    assert res.info.converged and res.info.method == "krylov"
    err, bound = _contract(A, res, s, 10, np.finfo(float).eps)
    assert err <= bound
    # a relative accuracy of the singular values, asked for
    tight = randla.rsvd(A, 10, sv_tol=1e-3, rng=0)
    assert tight.info.converged
    assert np.max(np.abs(tight.S - s[:10]) / s[:10]) <= 1e-3
    # the power method alone, at its cap, is less accurate than Krylov
    with pytest.warns(randla.AccuracyWarning):
        power = randla.rsvd(A, 10, method="power", sv_tol=1e-3, rng=0)
    assert np.max(np.abs(power.S - s[:10])) > np.max(np.abs(tight.S - s[:10]))


@pytest.mark.parametrize("k", [5, 20])
def test_sv_tol_gives_relative_singular_values(rng, k):
    s = 0.8 ** i
    A = matrix_with_spectrum(200, 50, s[:50], rng=rng)
    default = randla.rsvd(A, k if k < 50 else 5, rng=rng)
    for sv_tol in (1e-6, 1e-10):
        res = randla.rsvd(A, k, sv_tol=sv_tol, rng=rng)
        assert res.info.converged
        floor = NOISE_FLOOR * np.finfo(float).eps * s[0]
        rel = np.abs(res.S - s[:k]) / np.maximum(s[:k], floor / sv_tol)
        assert np.max(rel) <= sv_tol
    assert default.info.passes <= res.info.passes


def test_default_singular_value_bound(rng):
    # what the default guarantees for singular values: 0 <= sigma_i - s_i <= E^2 / (2 s_i),
    # E the contract's bound on the spectral error
    s = 0.8 ** i[:50]
    A = matrix_with_spectrum(200, 50, s, rng=rng)
    res = randla.rsvd(A, 5, rng=rng)
    E = (1 + DEFAULT_POWER_TOL) * s[5] + NOISE_FLOOR * np.finfo(float).eps * s[0]
    d = s[:5] - res.S
    assert np.all(d >= -1e-14) and np.all(d <= E ** 2 / (2 * res.S))


def test_oversample_zero_converges(rng):
    s = (1 + i) ** -1.0
    A = matrix_with_spectrum(M, N, s, rng=rng)
    res = randla.rsvd(A, 10, oversample=0, rng=rng)
    assert res.info.converged and res.info.passes < MAX_PASSES


def test_full_rank_k_is_float64_exact(rng):
    A = rng.standard_normal((200, 50))
    res = randla.rsvd(A, 50, rng=rng)
    assert np.linalg.norm(A - (res.U * res.S) @ res.Vh, 2) <= 1e-13 * np.linalg.norm(A, 2)
    np.testing.assert_allclose(res.S, np.linalg.svd(A, compute_uv=False), rtol=1e-13)
    assert res.info.passes == 1 and res.info.converged


@pytest.mark.parametrize("scale", [1e-160, 1e-170, 1e160, 1e200])
@pytest.mark.parametrize("kw", [{}, {"power_iters": 2}, {"passes": 1}, {"mixed_precision": False}])
def test_out_of_core_file_at_extreme_scales(tmp_path, scale, kw):
    # the fused reads A^H A X square A's scale: each panel is scaled as it goes, so that a
    # file of entries 1e-170 or 1e160 gives its singular values, not zeros or "NaN or Inf"
    from randla.io import open_matrix
    s = 0.8 ** np.arange(80)
    A = matrix_with_spectrum(1200, 80, s, rng=7) * scale
    np.save(tmp_path / "a.npy", A)
    res = randla.rsvd(open_matrix(str(tmp_path / "a.npy")), 8, rng=0, compute=True, **kw)
    rtol = 2e-2 if kw.get("passes") == 1 else 1e-10
    np.testing.assert_allclose(res.S / scale, s[:8], rtol=rtol)
    assert res.info.converged is not False


@pytest.mark.parametrize("scale", [1e300, 1e-280])
def test_error_estimate_at_extreme_scales(rng, scale):
    # the probes' norms are taken without squaring: a bound of 1e300-sized data is finite
    s = 0.7 ** np.arange(40)
    A = matrix_with_spectrum(200, 40, s, rng=rng)
    res = randla.rsvd(A, 5, power_iters=2, rng=rng)
    ref = randla.estimate_error(A, *res, rng=1)
    big = randla.estimate_error(A * scale, res.U, res.S * scale, res.Vh, rng=1)
    assert np.isfinite(big.bound) and big.bound > 0
    np.testing.assert_allclose(big.bound / scale, ref.bound, rtol=1e-10)
    np.testing.assert_allclose(big.estimate / scale, ref.estimate, rtol=1e-6)
