"""Tests that kill mutants of randla/lowrank/qb.py and range_finder.py (tools/mutate.py) which
the other tests let survive: the block sizes and stopping rule of randQB_EI, the Krylov basis'
width, basis extension, the Frobenius norm through products, and the one-read B."""
import importlib

import dask.array as da
import numpy as np
import pytest
from counted_operator import CountedOperator

import randla
from randla.operators import as_operator
from randla.testing import matrix_with_spectrum

qbm = importlib.import_module("randla.lowrank.qb")   # the module (randla.lowrank.qb is qb())


def _orthonormal(Q, atol=1e-10):
    np.testing.assert_allclose(Q.conj().T @ Q, np.eye(Q.shape[1]), atol=atol)


_Counted = CountedOperator


def _two_level(rng, m=200, n=100):
    """20 singular values 1, then 60 at 0.04: the tail beyond 16 columns holds 20% of the
    energy, beyond 32 about 0.4%."""
    s = np.concatenate([np.ones(20), np.full(60, 0.04)])
    return matrix_with_spectrum(m, n, s, rng=rng), s


def _optimal_tail(s, w):
    return np.sum(s[w:] ** 2) / np.sum(s ** 2)


def _flat_tail(rng, m=200, n=100):
    """10 singular values 1, then 70 at 0.06: a flat tail, so a basis of w >= 10 columns that
    holds the top 10 leaves the energy of 80 - w of the 0.06's, whichever they are."""
    s = np.concatenate([np.ones(10), np.full(70, 0.06)])
    return matrix_with_spectrum(m, n, s, rng=rng), s


@pytest.mark.parametrize(("problem", "tol"), [(_two_level, 0.1), (_flat_tail, 0.1)])
def test_fixed_accuracy_blocks_double_from_16(rng, problem, tol):
    """randQB_EI's basis grows 16, 32, 64, ... columns and stops at the first width whose
    residual energy is within tol^2; the tracked energy is the measured one, and no product
    beyond the blocks' (and the norm's identity blocks) is made when tol^2 is resolvable."""
    A, s = problem(rng)
    q = 1
    widths = [16, 32, 64, 100]
    first = next(i for i, w in enumerate(widths) if _optimal_tail(s, w) <= tol ** 2)
    # the problems keep clear of the boundary, so that the randomized basis decides alike
    assert _optimal_tail(s, widths[first]) <= 0.8 * tol ** 2
    assert first == 0 or _optimal_tail(s, widths[first - 1]) >= 1.5 * tol ** 2
    counted = _Counted(A)
    Q, B, energy, total = qbm.qb_to_tolerance(as_operator(counted), tol, 100, q, "auto",
                                              "gaussian", rng)
    assert Q.shape[1] == widths[first] and B.shape == (widths[first], 100)
    assert counted.count == 1 + (first + 1) * (2 * q + 2)   # n = 100 <= 256: one identity block
    assert total == pytest.approx(np.linalg.norm(A), rel=1e-12)
    measured = np.linalg.norm(A - Q @ B) ** 2 / np.linalg.norm(A) ** 2
    assert energy == pytest.approx(measured, rel=1e-6, abs=1e-12)
    assert energy <= tol ** 2
    _orthonormal(Q)
    np.testing.assert_allclose(B, Q.T @ A, atol=1e-12)


def test_fixed_accuracy_first_block_suffices_for_low_rank(rng):
    A = matrix_with_spectrum(120, 90, np.linspace(2, 1, 5), rng=rng)
    Q, B, energy, _ = qbm.qb_to_tolerance(as_operator(A), 0.01, 90, 0, "auto", "gaussian", rng)
    assert Q.shape[1] == 16 and energy <= 1e-4


def test_fixed_accuracy_respects_the_basis_cap(rng):
    A, _ = _two_level(rng)
    Q, B, energy, _ = qbm.qb_to_tolerance(as_operator(A), 1e-3, 20, 1, "auto", "gaussian", rng)
    assert Q.shape[1] == 20 and B.shape[0] == 20 and energy > 1e-6
    _orthonormal(Q)


def test_fixed_accuracy_below_the_floor_measures_the_residual(rng):
    """tol^2 below the tracked energy's rounding: the residual energy is measured through
    products, and it is the squared relative residual."""
    s = np.concatenate([np.linspace(3, 1, 10), np.full(40, 1e-8)])
    A = matrix_with_spectrum(150, 60, s, rng=rng)
    Q, B, energy, total = qbm.qb_to_tolerance(as_operator(A), 1e-9, 16, 1, "auto", "gaussian",
                                              rng)
    measured = np.linalg.norm(A - Q @ B) ** 2 / np.linalg.norm(A) ** 2
    assert Q.shape[1] == 16
    assert energy == pytest.approx(measured, rel=1e-3, abs=0)


def test_fixed_accuracy_of_zero_is_rank_zero(rng):
    res = randla.rsvd(np.zeros((30, 20)), tol=0.1, rng=rng)
    assert res.S.shape == (0,) and res.U.shape == (30, 0) and res.Vh.shape == (0, 20)


@pytest.mark.parametrize("shape", [(300, 600), (600, 300), (270, 700)])
def test_operator_fro_norm_through_identity_blocks(rng, shape):
    """Without a known norm, ||A||_F from products with identity blocks of 256 columns on the
    shorter side: every column counted once."""
    A = rng.standard_normal(shape)
    counted = _Counted(A)
    assert qbm.operator_fro_norm(as_operator(counted)) == pytest.approx(np.linalg.norm(A),
                                                                         rel=1e-12)
    assert counted.count == -(-min(shape) // 256)


def test_extend_basis(rng):
    P = np.linalg.qr(rng.standard_normal((50, 1)))[0]
    for p in (P, np.linalg.qr(rng.standard_normal((50, 4)))[0]):
        W = rng.standard_normal((50, 3))
        Q = qbm.extend_basis(W, p)
        _orthonormal(np.hstack([p, Q]))
        # span: [P, Q] holds W
        R = np.hstack([p, Q])
        np.testing.assert_allclose(R @ (R.T @ W), W, atol=1e-10)
    # W inside range(P) (up to rounding): new directions orthogonal to P all the same
    P = np.linalg.qr(rng.standard_normal((50, 6)))[0]
    W = P @ rng.standard_normal((6, 3)) + 1e-17 * rng.standard_normal((50, 3))
    _orthonormal(np.hstack([P, qbm.extend_basis(W, P)]))
    # W of no new direction (zero), or of fewer than its columns (repeated): still orthonormal
    # columns orthogonal to P (Householder completes the basis)
    for W in (np.zeros((50, 3)), np.repeat(rng.standard_normal((50, 1)), 3, axis=1)):
        _orthonormal(np.hstack([P, qbm.extend_basis(W, P)]))
    # W wider than the space left by P (a Krylov block that fills the space): the directions
    # left, no more
    P = np.linalg.qr(rng.standard_normal((20, 17)))[0]
    Q = qbm.extend_basis(rng.standard_normal((20, 5)), P)
    assert Q.shape == (20, 3)
    _orthonormal(np.hstack([P, Q]))
    # no P (or one of no columns): an orthonormal basis of W
    for p in (None, P[:, :0]):
        Q = qbm.extend_basis(W, p)
        _orthonormal(Q)
        np.testing.assert_allclose(Q @ (Q.T @ W), W, atol=1e-10)


def test_krylov_qb_width_is_capped(rng):
    """Block Krylov: Q is l (q + 1) wide, capped at min(m, n)."""
    A = matrix_with_spectrum(100, 60, 0.8 ** np.arange(60), rng=rng)
    for q, width in ((2, 30), (10, 60)):
        Q, B = randla.qb(A, 10, power_iters=q, method="krylov", rng=rng)
        assert Q.shape == (100, width) and B.shape == (width, 60)
        _orthonormal(Q)
        np.testing.assert_allclose(B, Q.T @ A, atol=1e-12)
    np.testing.assert_allclose(Q @ B, A, atol=1e-10)


def test_well_conditioned_threshold():
    """cond(R) <= u^(-1/3) (about 1.7e5 in float64, 2e2 in float32)."""
    for dtype in (np.float64, np.float32):
        limit = np.finfo(dtype).eps ** (-1 / 3)
        assert qbm.well_conditioned(np.eye(3, dtype=dtype))
        assert qbm.well_conditioned(np.diag([1, 1 / (0.5 * limit)]).astype(dtype))
        assert not qbm.well_conditioned(np.diag([1, 1 / (2 * limit)]).astype(dtype))


def test_unscale(rng):
    B = rng.standard_normal((3, 4))
    for e in (0, 5, -7):
        np.testing.assert_array_equal(qbm.unscale(B, e), B * 2.0 ** -e)


@pytest.mark.parametrize("scale", [1e-4, 1.0, 1e4])
@pytest.mark.parametrize("s", [[3.0, 2.0, 1.0], [3.0]])
def test_single_pass_out_of_core_of_rank_deficient_input(rng, scale, s):
    """One read of an A of rank 3 (or 1) < k: A X is numerically rank-deficient, the
    directions below sqrt(u) ||A X|| are dropped (relative to the largest, whatever the scale
    of A), the rest completed with zero singular values."""
    s = np.array(s)
    r = len(s)
    A = matrix_with_spectrum(200, 50, s, rng=rng) * scale
    res = randla.rsvd(da.from_array(A, chunks=(50, 50)), 6, passes=1, compute=True, rng=rng)
    np.testing.assert_allclose(res.S[:r] / scale, s, rtol=1e-8)
    assert np.all(res.S[r:] <= 1e-6 * scale)
    np.testing.assert_allclose((res.U * res.S) @ res.Vh, A, atol=1e-8 * scale)
    _orthonormal(res.U)


class _ComplexGaussian(randla.sketch.Sketcher):
    """A complex Gaussian sketch (a user's Sketcher: none of the registered ones is complex)."""

    kind = "complex_gaussian_test"
    is_complex = True

    def _block(self, start, stop, dtype):
        gen = np.random.default_rng(self.seed)
        S = gen.standard_normal((self.d, self.n)) + 1j * gen.standard_normal((self.d, self.n))
        return S[:, start:stop].astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("complex_sketch", [False, True])
def test_range_finder_without_power_iterations_spans_a_low_rank_range(rng, dtype, complex_sketch):
    """Q Q^H A = A for A of rank <= l with no power iteration: Y = A S^T itself must span A's
    range (real A gets a real Q from a complex sketch: its real part is a sketch too)."""
    B, C = rng.standard_normal((80, 6)), rng.standard_normal((6, 40))
    if dtype == np.complex128:
        B, C = B + 1j * rng.standard_normal((80, 6)), C + 1j * rng.standard_normal((6, 40))
    A = B @ C                                   # rank 6
    sketch = _ComplexGaussian(8, 40, rng=rng) if complex_sketch else "gaussian"
    Q = randla.range_finder(A, 8, power_iters=0, sketch=sketch, rng=rng)
    assert Q.dtype == dtype
    np.testing.assert_allclose(Q @ (Q.conj().T @ A), A, atol=1e-10)


def test_out_of_core_real_data_with_a_complex_sketch_stays_real(rng):
    A = matrix_with_spectrum(120, 40, 0.7 ** np.arange(40), rng=rng)
    res = randla.rsvd(da.from_array(A, chunks=(40, 40)), 4, oversample=6, power_iters=2,
                      sketch=_ComplexGaussian(10, 40, rng=rng), compute=True, rng=rng)
    assert res.U.dtype == res.Vh.dtype == np.float64
    np.testing.assert_allclose(res.S, 0.7 ** np.arange(4), rtol=1e-4)


def test_sketch_as_wide_as_the_matrix_is_allowed(rng):
    """l = min(m, n) is the largest size: Q spans all of A's range."""
    A = rng.standard_normal((30, 20))
    Q = randla.range_finder(A, 20, rng=rng)
    _orthonormal(Q)
    np.testing.assert_allclose(Q @ (Q.T @ A), A, atol=1e-10)
    Q, B = randla.qb(A.T, 20, rng=rng)
    np.testing.assert_allclose(Q @ B, A.T, atol=1e-10)
    with pytest.raises(ValueError, match="l must be <= min"):
        randla.range_finder(A, 21, rng=rng)


def test_complex_sketch_of_complex_data_is_kept_whole(rng):
    """Only real data drops the imaginary part of a complex sketch: complex data is sketched
    by S itself, on either side."""
    rf = importlib.import_module("randla.lowrank.range_finder")
    A = rng.standard_normal((30, 20)) + 1j * rng.standard_normal((30, 20))
    S = _ComplexGaussian(5, 20, rng=rng)
    Sd = S.to_dense(np.complex128)
    op = as_operator(A)
    np.testing.assert_allclose(rf.sketch_columns(op, S), Sd.T, atol=1e-14)
    np.testing.assert_allclose(rf.sketch_range(op, S), A @ Sd.T, atol=1e-12)
    real = as_operator(A.real)
    np.testing.assert_allclose(rf.sketch_columns(real, S), Sd.real.T, atol=1e-14)
    np.testing.assert_allclose(rf.sketch_range(real, S), A.real @ Sd.real.T, atol=1e-12)


def test_fixed_accuracy_is_scale_free(rng):
    """The rank found for tol is that of A, whether ||A||_F is above or below 1."""
    A = matrix_with_spectrum(100, 60, 0.85 ** np.arange(60), rng=rng) * 4.0
    assert np.linalg.norm(A) > 1 and np.linalg.norm(A * 2.0 ** -20) < 1
    seed = int(rng.integers(1 << 32))
    ref = randla.rsvd(A, tol=0.05, rng=seed)
    small = randla.rsvd(A * 2.0 ** -20, tol=0.05, rng=seed)
    assert len(small.S) == len(ref.S) >= 10
    np.testing.assert_allclose(small.S * 2.0 ** 20, ref.S, rtol=1e-10)
