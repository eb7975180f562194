"""OpticalSketch: the Sketcher contract, rsvd as accurate as with a Gaussian sketch, the device
mode's documented accuracy, optical random features."""
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from hypothesis import given, settings
from hypothesis import strategies as st

import randla
from opu import OpticalSketch, features, kernel
from opu.medium import Medium
from randla.sketch import make


def _seed(rng):
    return int(rng.integers(0, 2**62))


def test_registry_resolves_optical():
    S = make("optical", 12, 300, rng=4)
    assert isinstance(S, OpticalSketch) and S.shape == (12, 300)
    assert S == make("optical", 12, 300, rng=4)
    assert np.array_equal(S.to_dense(), make("optical", 12, 300, rng=4).to_dense())
    assert not np.array_equal(S.to_dense(), make("optical", 12, 300, rng=5).to_dense())


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(0, 400), max_size=5), seed=st.integers(0, 2**62),
       cplx=st.booleans())
def test_any_chunking_gives_the_same_sketch(cuts, seed, cplx):
    S = OpticalSketch(9, 400, rng=seed, complex=cplx)
    whole = S.to_dense()
    edges = sorted({0, 400, *cuts})
    assert np.array_equal(np.hstack([S[:, i:j] for i, j in zip(edges, edges[1:])]), whole)


def test_ideal_sketch_is_the_anchor_projection(rng):
    """Real S = sqrt(2/d) Re(exp(-i arg(M r)) H[:, :n]); complex S = H[:, :n] / sqrt(d)."""
    d, n, seed = 20, 500, _seed(rng)
    S = OpticalSketch(d, n, rng=seed)
    H = Medium(n + S.n_anchor, d, seed=seed).block(dtype=np.complex128)
    c = H[:, n:].sum(axis=1)
    ref = np.sqrt(2 / d) * (np.exp(-1j * np.angle(c))[:, None] * H[:, :n]).real
    np.testing.assert_allclose(S.to_dense(), ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(OpticalSketch(d, n, rng=seed, complex=True).to_dense(),
                               H[:, :n] / np.sqrt(d), rtol=1e-12)


@pytest.mark.parametrize("cplx", [False, True])
def test_moments(cplx, rng):
    d, n = 40, 5000
    S = OpticalSketch(d, n, rng=_seed(rng), complex=cplx).to_dense()
    p = np.abs(S) ** 2 * d
    assert abs(p.mean() - 1) < 5 * np.sqrt((1 if cplx else 2) / S.size)
    assert abs(S.real.mean()) < 5 / np.sqrt(S.size * d)


@pytest.mark.parametrize("cplx", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
def test_apply_agrees_with_dense(cplx, dtype, rng):
    n, p, d = 600, 4, 15
    X = rng.standard_normal((n, p)).astype(dtype)
    if np.dtype(dtype).kind == "c":
        X = X + 1j * rng.standard_normal((n, p))
    S = OpticalSketch(d, n, rng=_seed(rng), complex=cplx)
    ref = S.to_dense(S.dtype_for(X.dtype)) @ X
    Y = S @ X
    assert Y.dtype == np.result_type(X.dtype, S.dtype_for(X.dtype))
    tol = 1e-4 if dtype == np.float32 else 1e-10
    kw = dict(rtol=tol, atol=tol * np.abs(ref).max())
    np.testing.assert_allclose(Y, ref, **kw)
    np.testing.assert_allclose(S @ sp.csr_matrix(X), ref, **kw)
    np.testing.assert_allclose(S @ spla.aslinearoperator(X), ref, **kw)
    np.testing.assert_allclose(X.T @ S.T, ref.T, **kw)
    np.testing.assert_allclose(S @ X[:, 0], ref[:, 0], **kw)


def _low_rank_plus_noise(rng, m, n, k):
    s = np.concatenate([np.geomspace(10, 1, k), np.full(min(m, n) - k, 0.3)])
    U = np.linalg.qr(rng.standard_normal((m, len(s))))[0]
    V = np.linalg.qr(rng.standard_normal((n, len(s))))[0]
    return (U * s) @ V.T, s


def test_rsvd_optical_as_accurate_as_gaussian(rng):
    """Frobenius error over the optimal one, over 8 sketch seeds: the optical sketch has the
    Gaussian sketch's distribution, so the mean ratios agree within their standard errors."""
    A, s = _low_rank_plus_noise(rng, 120, 400, 8)
    best = np.sqrt((s[8:] ** 2).sum())
    errs = {"optical": [], "gaussian": []}
    for seed in range(8):
        for kind in errs:
            U, S, Vh = randla.rsvd(A, 8, oversample=4, power_iters=0, sketch=kind, rng=seed)
            errs[kind].append(np.linalg.norm(A - (U * S) @ Vh) / best)
    opt, gau = np.array(errs["optical"]), np.array(errs["gaussian"])
    spread = np.sqrt((opt.var() + gau.var()) / 8)
    assert abs(opt.mean() - gau.mean()) < 4 * spread + 0.02 * gau.mean()
    assert opt.max() < 2.5  # oversampling 4: within a small factor of optimal every time


def test_rsvd_on_a_wide_sparse_matrix(rng):
    m, n = 50, 100_000
    V = sp.random(n, 3, density=0.01, random_state=rng, format="csc")
    A = sp.csr_matrix(rng.standard_normal((m, 3)) * [100, 30, 10]) @ V.T
    A = (A + 0.01 * sp.random(m, n, density=2e-4, random_state=rng)).tocsr()
    U, S, Vh = randla.rsvd(A, 3, sketch="optical", rng=1)
    ref = np.sort(spla.svds(A, 3, return_singular_vectors=False))[::-1]
    np.testing.assert_allclose(S, ref, rtol=1e-6)


def test_device_mode_degrades_as_documented(rng):
    """Device mode = ideal projections (masked rows zeroed) + camera error of a few percent at
    8 bits; fewer bits, more error."""
    d, n = 200, 800
    X = rng.standard_normal((n, 5))
    seed = _seed(rng)
    ideal = OpticalSketch(d, n, rng=seed) @ X
    errs = {}
    for bits in (2, 8):
        S = OpticalSketch(d, n, seed=seed, mode="device", n_bits=bits, rng=_seed(rng))
        Y = S @ X
        assert Y.shape == (d, 5) and S.opu.stats.frames > 0
        nominal = S.to_dense() @ X
        np.testing.assert_allclose(nominal, ideal * S.mask[:, None], rtol=1e-9, atol=1e-9)
        errs[bits] = np.linalg.norm(Y - nominal) / np.linalg.norm(nominal)
    assert 0.01 < errs[8] < 0.15 and errs[2] > errs[8]


def test_rsvd_with_the_device(rng):
    A, s = _low_rank_plus_noise(rng, 60, 300, 4)
    S = OpticalSketch(14, 300, seed=3, mode="device", rng=4, shot_noise=True)
    U, sv, Vh = randla.rsvd(A, 4, oversample=10, power_iters=1, sketch=S)
    np.testing.assert_allclose(sv, s[:4], rtol=0.05)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="mode"):
        OpticalSketch(5, 50, mode="hologram")
    with pytest.raises(ValueError, match="complex"):
        OpticalSketch(5, 50, mode="device", complex=True)
    with pytest.raises(TypeError, match="camera options"):
        OpticalSketch(5, 50, shot_noise=True)
    with pytest.raises(ValueError, match="columns"):
        OpticalSketch(5, 50).apply_right(np.ones((3, 49)))
    with pytest.raises(ValueError, match="50"):
        OpticalSketch(5, 50) @ np.ones((49, 2))


# -- optical random features ------------------------------------------------------------------
def test_features_are_intensities(rng):
    X = rng.standard_normal((3, 200))
    F = features(X, 300, rng=7)
    H = Medium(200, 300, seed=7).block(dtype=np.complex128)
    np.testing.assert_allclose(F, np.abs(X @ H.T) ** 2 / np.sqrt(300), rtol=1e-10)
    assert features(X.astype(np.float32), 10, rng=0).dtype == np.float32


def test_features_converge_to_the_kernel(rng):
    """Relative error of the Gram matrix falls like 1/sqrt(D)."""
    X = rng.standard_normal((6, 30)) / np.sqrt(30)
    K = kernel(X)
    def err(D, seed):
        F = features(X, D, rng=seed)
        return np.linalg.norm(F @ F.T - K) / np.linalg.norm(K)
    small = np.mean([err(250, s) for s in range(4)])
    large = np.mean([err(16000, s) for s in range(4)])
    # sqrt(16000 / 250) = 8: allow a factor 2 either way for the spread of 4 draws
    assert 4 < small / large < 16
    assert large < 0.05
