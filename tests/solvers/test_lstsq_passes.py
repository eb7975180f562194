"""Passes over A that randla.lstsq saves on a dense A: the fused Numba kernel, the NaN/Inf check
and the scaling done through the sketch, no separate final pass, a bigger sketch for very tall A."""
import functools
import importlib
import warnings

import numpy as np
import pytest

import randla
from randla.operators import DenseOperator, as_operator
from randla.sketch.sparse_sign import sparse_sign_pattern
from randla.solvers import _fused
from randla.solvers._fused import residual_and_gradient_1

L = importlib.import_module("randla.solvers.lstsq")


def _problem(rng, m, n, cond=1e6, noise=1e-3):
    U = np.linalg.qr(rng.standard_normal((m, n)))[0]
    V = np.linalg.qr(rng.standard_normal((n, n)))[0]
    A = (U * np.logspace(0, -np.log10(cond), n)) @ V.T
    return A, A @ rng.standard_normal(n) + noise * rng.standard_normal(m)


@pytest.mark.parametrize("m", [6001, 4099])   # not a multiple of 4 nor of the 16 row ranges
def test_fused_kernel_matches_numpy(rng, m):
    n = 37
    A = rng.standard_normal((m, n))
    b, x = rng.standard_normal(m), rng.standard_normal(n)
    r, g = residual_and_gradient_1(A, b, x)
    r_ref = b - A @ x
    np.testing.assert_allclose(r, r_ref, rtol=0, atol=1e-13 * np.abs(r_ref).max())
    np.testing.assert_allclose(g, A.T @ r_ref, rtol=0, atol=1e-12 * np.abs(A.T @ r_ref).max())
    # through residual_and_gradient, which sends one float64 right-hand side to the kernel
    R, G = L.residual_and_gradient(as_operator(A), b[:, None], x[:, None])
    np.testing.assert_array_equal(R[:, 0], r)
    np.testing.assert_array_equal(G[:, 0], g)


def test_float32_keeps_the_blas_pass(rng):
    A = rng.standard_normal((5000, 30)).astype(np.float32)
    b, x = rng.standard_normal((5000, 1), np.float32), rng.standard_normal((30, 1), np.float32)
    R, G = L.residual_and_gradient(as_operator(A), b, x)
    assert R.dtype == G.dtype == np.float32
    R64 = b.astype(float) - A.astype(float) @ x.astype(float)
    np.testing.assert_allclose(R, R64, rtol=0, atol=1e-5 * np.abs(R64).max())


@pytest.mark.parametrize("method", ["auto", "iterative_sketching", "sap", "sketch_and_solve"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_a_sketched_dense_a_is_refused(rng, method, bad):
    m, n = (30000, 70) if method == "auto" else (5000, 20)
    A = rng.standard_normal((m, n))
    A[rng.integers(m), rng.integers(n)] = bad       # one entry: it still reaches SA
    with pytest.raises(ValueError, match="A contains NaN"):
        randla.lstsq(A, np.ones(m), method=method, rng=0)


def test_sketch_overflow_on_finite_a_scales_first(rng):
    # entries near the largest float: their sums in SA overflow though A is finite
    A0, b0 = _problem(rng, 5000, 20, cond=1e3)
    ref = np.linalg.lstsq(A0, b0, rcond=None)[0]
    amax = np.abs(A0).max()
    A, b = (A0 / amax) * 1.5e308, (b0 / amax) * 3e307   # the solution is ref / 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = randla.lstsq(A, b, method="iterative_sketching", rng=1)
    np.testing.assert_allclose(res.x, ref / 5, rtol=1e-10, atol=1e-12 * np.abs(ref).max())
    assert np.isfinite(res.backward_error) and res.backward_error < 1e-14


def test_dense_sketched_solve_makes_one_pass_per_iteration(rng, monkeypatch):
    """No pass for the NaN check, ||A||_F, the scaling nor the final residual: the passes are
    the sketch and one fused pass per iteration, the last one's residual reused."""
    A, b = _problem(rng, 6000, 40)
    calls = []
    real = L.residual_and_gradient
    monkeypatch.setattr(L, "residual_and_gradient", lambda *a: calls.append(1) or real(*a))

    def no_pass(*args):
        raise AssertionError("a pass over A")

    def check(x, name):
        assert name != "A", "a pass over A"

    monkeypatch.setattr(DenseOperator, "fro_norm", no_pass)
    monkeypatch.setattr(L, "check_finite", check)
    res = randla.lstsq(A, b, method="iterative_sketching", rng=2)
    assert len(calls) == res.iterations + 1   # the last pass's step is not taken
    ref = np.linalg.lstsq(A, b, rcond=None)[0]
    assert np.linalg.norm(res.x - ref) <= 1e-9 * np.linalg.norm(ref)
    assert abs(res.residual_norm - np.linalg.norm(b - A @ res.x)) <= 1e-13 * np.linalg.norm(b)
    # ||A||_F is estimated by ||SA||_F: the backward error is the exact one within a few %
    r = b - A @ res.x
    _, s, Vh = np.linalg.svd(A, full_matrices=False)
    mu = np.linalg.norm(r) / np.linalg.norm(res.x)
    exact = (np.sqrt(np.sum((Vh @ (A.T @ r)) ** 2 / (s**2 + mu**2)))
             / np.linalg.norm(res.x) / np.linalg.norm(A))
    assert res.backward_error == pytest.approx(exact, rel=0.3)


@pytest.mark.parametrize("m, n, factor", [(20000, 20, 32), (3000, 40, 16), (6000, 200, 8)])
def test_very_tall_a_takes_a_bigger_sketch(rng, m, n, factor):
    A, b = _problem(rng, m, n)
    res = randla.lstsq(A, b, method="iterative_sketching", rng=3)
    assert res.sketch_size == factor * n + 10
    ref = np.linalg.lstsq(A, b, rcond=None)[0]
    # the forward error bound of a backward stable solver, u kappa (1 + kappa ||r|| / ||A|| ||x||)
    # with kappa = 1e6 and ||A|| = 1 by construction (3e-9 to 1.5e-8 for these shapes): the
    # error measured at most 0.07 of it over 60 draws each, and half the iterations give 6-600
    # times it (a fixed 1e-9 failed on 5 of 151 draws at 20000 x 20)
    u, kappa = np.finfo(float).eps / 2, 1e6
    bound = u * kappa * (1 + kappa * np.linalg.norm(b - A @ ref) / np.linalg.norm(ref))
    assert np.linalg.norm(res.x - ref) <= bound * np.linalg.norm(ref)
    # other methods keep theirs
    assert randla.lstsq(A, b, method="sap", rng=3).sketch_size == 4 * n + 10


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m, n, d", [(3001, 37, 150), (2000, 300, 2410)])
def test_sparse_sign_kernel_equals_the_sketch(rng, monkeypatch, dtype, m, n, d):
    monkeypatch.setattr(_fused, "PATTERN_COLUMNS", 700)   # several pattern blocks
    A = rng.standard_normal((m, n)).astype(dtype)
    S = randla.sketch.make("sparse_sign", d, m, rng=4, zeta=4)
    Y = _fused.sparse_sign_apply(S, A, functools.partial(sparse_sign_pattern, S.seed, d, 4))
    ref = S @ A
    assert Y.dtype == ref.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(Y, ref, rtol=0, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("cond", [1e4, 1e10])
def test_forward_stability_through_the_kernels(rng, cond, forward_errors):
    """Tiny residual, m >= 4096 (the Numba sketch and residual kernels): the forward error
    stays within 10x Householder QR's (measured at most 0.7x over 40 draws, 6000 x 120)."""
    for _ in range(2):
        err, err_qr = forward_errors(rng, "iterative_sketching", cond, m=6000, n=60)
        assert err <= 10 * err_qr + 1e-15
