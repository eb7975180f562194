"""reigh against numpy.linalg.eigh; estimate_error's bound and estimate against the true
spectral error; orthonormalization of ill-conditioned blocks."""
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from test_rsvd import orthonormal, spectral_error, with_spectrum

import randla
from randla._linalg import cholqr, householder, orthonormalize


def hermitian(rng, n, w, complex_=False):
    Q = orthonormal(rng, n, len(w), complex_)
    A = (Q * w) @ Q.conj().T
    return (A + A.conj().T) / 2


def top_by_magnitude(w, k):
    return np.sort(w[np.argsort(-np.abs(w))[:k]])


@pytest.mark.parametrize("complex_", [False, True])
def test_reigh_matches_eigh_on_indefinite(rng, complex_):
    w = 0.8 ** np.arange(100) * np.where(np.arange(100) % 3 == 1, -1, 1)
    A = hermitian(rng, 100, w, complex_)
    res = randla.reigh(A, 8, rng=rng)
    ref = np.linalg.eigh(A)[0]
    np.testing.assert_allclose(res.eigenvalues, top_by_magnitude(ref, 8), rtol=1e-8)
    assert np.all(np.diff(res.eigenvalues) >= 0)  # ascending, as numpy.linalg.eigh
    V = res.eigenvectors
    np.testing.assert_allclose(V.conj().T @ V, np.eye(8), atol=1e-10)
    # residual of the k-th pair ~ |w_(k+p+1)| (w_(k+p+1) / w_k)^(2q+1) ~ 1e-6 here
    np.testing.assert_allclose(A @ V, V * res.eigenvalues, atol=5e-5)
    top = V[np.argmax(np.abs(V), axis=0), np.arange(8)]
    np.testing.assert_allclose(top.imag, 0, atol=1e-12)
    assert np.all(top.real > 0)


def test_reigh_sparse_operator_float32(rng):
    w = np.concatenate([[5.0, 4.0, 3.0, 2.5, 2.0], 0.1 * rng.random(195)])
    A = hermitian(rng, 200, w)
    for X in (sp.csr_matrix(A), spla.aslinearoperator(A)):
        res = randla.reigh(X, 5, rng=rng)
        np.testing.assert_allclose(res.eigenvalues, np.sort(w[:5]), rtol=1e-8)
    res = randla.reigh(A.astype(np.float32), 5, rng=rng)
    assert res.eigenvalues.dtype == np.float32 and res.eigenvectors.dtype == np.float32
    np.testing.assert_allclose(res.eigenvalues, np.sort(w[:5]), rtol=1e-4)


def test_reigh_rejects_non_hermitian_and_bad_k(rng):
    with pytest.raises(ValueError, match="Hermitian"):
        randla.reigh(rng.standard_normal((30, 30)), 3)
    with pytest.raises(ValueError, match="square"):
        randla.reigh(rng.standard_normal((30, 20)), 3)
    with pytest.raises(ValueError, match="k must be"):
        randla.reigh(np.eye(10), 11)
    with pytest.raises(ValueError, match="k must be"):
        randla.reigh(np.eye(10), 0)


# -- estimate_error --------------------------------------------------------------------------
@pytest.mark.parametrize("decay", [0.5, 0.9, 0.98])
def test_error_bound_holds_and_is_not_loose(rng, decay):
    s = decay ** np.arange(120)
    for _ in range(3):
        A = with_spectrum(rng, 250, 120, s)
        U, S, Vh = randla.rsvd(A, 10, power_iters=0, rng=rng)
        E = A - (U * S) @ Vh
        true, fro = np.linalg.norm(E, 2), np.linalg.norm(E)
        est = randla.estimate_error(A, U, S, Vh, rng=rng)
        assert est.probability == 1 - 1e-10
        assert true <= est.bound  # fails with probability <= 1e-10
        # max_i ||E w_i|| <= 4 ||E||_F but for a chi-square tail of probability ~1e-4
        assert est.bound <= 10 * np.sqrt(2 / np.pi) * 4 * fro
        assert 0.95 * true <= est.estimate <= true * (1 + 1e-8)


def test_error_estimate_complex_sparse_and_probes(rng):
    A = with_spectrum(rng, 120, 80, 0.9 ** np.arange(80), complex_=True)
    U, S, Vh = randla.rsvd(A, 5, power_iters=0, rng=rng)
    true = spectral_error(A, U, S, Vh)
    est = randla.estimate_error(A, U, S, Vh, n_probes=3, n_iter=0, rng=rng)
    assert est.probability == pytest.approx(0.999)
    assert est.estimate <= true * (1 + 1e-8) <= est.bound
    B = sp.random(200, 100, density=0.05, random_state=int(rng.integers(2**31)), format="csr")
    U, S, Vh = randla.rsvd(B, 5, rng=rng)
    est = randla.estimate_error(B, U, S, Vh, rng=rng)
    assert est.estimate <= spectral_error(B, U, S, Vh) * (1 + 1e-8) <= est.bound


def test_error_estimate_validates_shapes():
    A = np.ones((20, 10))
    with pytest.raises(ValueError, match="shapes"):
        randla.estimate_error(A, np.ones((20, 2)), np.ones(3), np.ones((3, 10)))
    with pytest.raises(ValueError, match="n_probes"):
        randla.estimate_error(A, np.ones((20, 2)), np.ones(2), np.ones((2, 10)), n_probes=0)


# -- orthonormalization ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128, np.complex64])
@pytest.mark.parametrize("cond", [1e1, 1e6, 1e12])
def test_cholqr_orthonormal_on_ill_conditioned_blocks(rng, dtype, cond):
    cplx = np.dtype(dtype).kind == "c"
    Y = with_spectrum(rng, 400, 30, np.logspace(0, -np.log10(cond), 30), complex_=cplx)
    Y = Y.astype(dtype)
    eps = np.finfo(dtype).eps
    Q = cholqr(Y)
    assert Q.dtype == dtype and Q.shape == Y.shape
    np.testing.assert_allclose(Q.conj().T @ Q, np.eye(30), atol=200 * eps)
    # range(Q) contains range(Y): Y = Q (Q^H Y) up to rounding relative to ||Y||
    resid = np.linalg.norm(Y - Q @ (Q.conj().T @ Y)) / np.linalg.norm(Y)
    assert resid <= 1e3 * eps


def test_normalizers_span_the_input(rng):
    Y = rng.standard_normal((300, 20)) @ np.diag(np.logspace(0, -3, 20))
    for name in ("qr", "cholqr", "auto", "lu", "none"):
        B = orthonormalize(Y.copy(), name)
        resid = Y - B @ np.linalg.lstsq(B, Y, rcond=None)[0]
        assert np.linalg.norm(resid) <= 1e-10 * np.linalg.norm(Y)
    Q = householder(np.zeros((10, 3)))
    np.testing.assert_allclose(Q.T @ Q, np.eye(3))
    with pytest.raises(ValueError, match="normalizer"):
        orthonormalize(Y, "gram-schmidt")


def test_cholqr_rank_deficient_falls_back_to_a_full_basis(rng):
    Y = rng.standard_normal((100, 3)) @ rng.standard_normal((3, 8))
    Q = cholqr(Y)
    np.testing.assert_allclose(Q.T @ Q, np.eye(8), atol=1e-12)
    assert np.linalg.norm(Y - Q @ (Q.T @ Y)) <= 1e-12 * np.linalg.norm(Y)


def test_hermitian_probe_is_relative_to_the_scale(rng):
    # the probe's threshold scales with ||A||: a 1e-6 relative asymmetry is refused whether A
    # is tiny or huge, and an exactly symmetric A is accepted at either scale
    G = rng.standard_normal((60, 60))
    S = G + G.T
    for scale in (1e-3, 1e3):
        randla.reigh(scale * S, 3, rng=0)
        with pytest.raises(ValueError, match="Hermitian"):
            randla.reigh(scale * (S + 1e-6 * np.linalg.norm(S) * np.triu(np.ones((60, 60)), 1) / 60),
                         3, rng=0)
