"""Tests that kill mutants of randla/lowrank/adaptive.py and krylov.py (tools/mutate.py) which
the other tests let survive: the counts rsvd reports against the products it makes, the rules
of the adaptive loop against the formulas of their docstrings, the dynamic shift, and the
out-of-core loop's invariance to the exponents of its scaled reads."""
import warnings

import dask.array as da
import numpy as np
import pytest
import scipy.sparse.linalg as spla

import randla
from randla.lowrank import adaptive
from randla.operators import DaskOperator, as_operator
from randla.testing import matrix_with_spectrum


class _Counted:
    """A as a LinearOperator that counts its products with A and A^H."""

    def __init__(self, A):
        self.count = 0

        def product(f):
            def run(X):
                self.count += 1
                return f(X)
            return run
        self.op = spla.LinearOperator(A.shape, matvec=product(lambda x: A @ x),
                                      rmatvec=product(lambda y: A.conj().T @ y),
                                      matmat=product(lambda X: A @ X),
                                      rmatmat=product(lambda Y: A.conj().T @ Y), dtype=A.dtype)


def _spectrum(kind, n=60):
    i = np.arange(n, dtype=float)
    return {"fast": 0.7 ** i, "slow": (1 + i) ** -0.5, "flat": (1 + i) ** -0.05}[kind]


@pytest.mark.parametrize(("kind", "method", "branch"), [("fast", "auto", "power"),
                                                        ("slow", "power", "power"),
                                                        ("flat", "auto", "krylov"),
                                                        ("flat", "power", "power")])
def test_reported_passes_are_the_products_made(rng, kind, method, branch):
    """info.passes is the number of products with A or A^H, and info.power_iters follows from
    it: (passes - 2) / 2 for the power iteration, the Krylov depth (passes - 3) / 2 (two
    products per step after the sketch and the first A^H Q, one for U) for block Krylov."""
    A = matrix_with_spectrum(200, 80, _spectrum(kind), rng=rng)
    counted = _Counted(A)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", randla.AccuracyWarning)   # flat "power": may not meet tol
        res = randla.rsvd(counted.op, 5, method=method, rng=rng)
    info = res.info
    assert info.method == branch
    assert info.passes == counted.count
    if branch == "power":
        assert info.power_iters == (counted.count - 2) / 2
    else:
        assert info.power_iters == (counted.count - 3) / 2 >= 1
    # and the result is right: Ritz values below the singular values, and (when converged)
    # within the default's bound E^2 / (2 s_i), E = (1 + power_tol) sigma_(k+1)
    sig = _spectrum(kind)
    assert np.all(res.S <= sig[:5] * (1 + 1e-10))
    if info.converged:
        assert np.all(sig[:5] - res.S <= (1.01 * sig[5]) ** 2 / (2 * res.S) + 1e-12)


def test_default_power_tol_is_one_percent(rng):
    """power_tol=None is 0.01 (documented): the same run as power_tol=0.01, and a converged
    run's estimated excess (info.change) is within it. On these spectra the change shrinks
    by less than 10x per product, so a looser default would stop earlier on some draws."""
    for p in (0.5, 0.3, 0.2, 0.5, 0.3, 0.2):
        A = matrix_with_spectrum(300, 100, (1 + np.arange(100.0)) ** -p, rng=rng)
        seed = int(rng.integers(1 << 32))
        default = randla.rsvd(A, 10, method="power", rng=seed).info
        explicit = randla.rsvd(A, 10, method="power", power_tol=0.01, rng=seed).info
        assert default == explicit
        assert default.converged and 0 < default.change <= 0.01
    info = randla.rsvd(A, 10, method="power", power_tol=0.05, rng=seed).info
    assert info.converged and 0 < info.change <= 0.05


def test_unreachable_power_tol_warns_and_says_not_converged(rng):
    A = matrix_with_spectrum(200, 80, _spectrum("flat", 80), rng=rng)
    with pytest.warns(randla.AccuracyWarning, match="did not reach"):
        info = randla.rsvd(A, 5, method="power", power_tol=1e-6, rng=rng).info
    assert info.converged is False and info.change > 1e-6


def test_method_power_never_turns_to_krylov(rng):
    A = matrix_with_spectrum(200, 80, _spectrum("flat", 80), rng=rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", randla.AccuracyWarning)
        info = randla.rsvd(A, 5, method="power", rng=rng).info
    assert info.method == "power"
    assert randla.rsvd(A, 5, rng=rng).info.method == "krylov"


def test_shift_is_half_the_smallest_squared_ritz_value(rng):
    """On an A of exact rank l (the sketch size), the first products find its singular values
    exactly; the shift is then sigma_l^2 / 2."""
    k, l = 4, 14
    s = np.linspace(1.0, 0.7, l) * 3.0
    A = matrix_with_spectrum(120, 50, s, rng=rng)
    res = randla.rsvd(A, k, oversample=l - k, method="power", mixed_precision=False, rng=rng)
    assert res.info.shift == pytest.approx(s[-1] ** 2 / 2, rel=1e-8)
    np.testing.assert_allclose(res.S, s[:k], rtol=1e-10)


# -- the loop's rules, against the formulas of their docstrings ------------------------------
def _sorted(rng, n):
    return np.sort(rng.uniform(0.01, 1.0, n))[::-1]


def test_extrapolation_formula(rng):
    for r in np.concatenate([rng.uniform(0.01, 0.95, 20), [0.3, 0.5, 0.6]]):
        x = r / (1 - r)
        assert adaptive.extrapolation(r) == pytest.approx(max(min(x ** 3, max(1.0, x)), 0.5))


def test_rate_formula(rng):
    for _ in range(20):
        t = _sorted(rng, 8)
        k = int(rng.integers(1, 8))
        alpha = rng.uniform(0, t[-1] ** 2)
        ref = np.sqrt(max(t[-1] ** 2 - alpha, alpha) / (t[k - 1] ** 2 - alpha))
        assert adaptive.rate(t, k, alpha) == pytest.approx(min(ref, 0.95))
    t = _sorted(rng, 5)
    assert adaptive.rate(t, 5, 0.0) == 0.95                 # no estimate beyond the k-th
    assert adaptive.rate(np.array([1.0, 0.5]), 1, 1.0) == 0.95   # a shift at t_k^2
    assert adaptive.rate(np.array([1.0, 0.0, 0.0]), 2, 0.0) == 0.95


def test_wanted_counts_estimates_above_floor(rng):
    t = _sorted(rng, 10)
    for k in (1, 3, 10):
        floor = float(rng.uniform(0, 1))
        assert adaptive.wanted(t, k, floor) == max(1, int(np.sum(t[:k] > floor)))
    assert adaptive.wanted(t, 1, 2.0) == 1


def test_estimate_formula(rng):
    u = 1e-4                      # a floor NOISE_FLOOR u t_1 = 0.01 t_1: some estimates below it
    for sv_tol in (None, 0.1):
        t = np.concatenate([_sorted(rng, 6), [0.003, 0.002]])
        prev = t * (1 - rng.uniform(0, 0.05, t.size))
        k, alpha = 7, t[-1] ** 2 / 2
        est = adaptive.estimate(prev, t, k, alpha, u, sv_tol)
        floor = 100 * u * t[0]
        kw = max(1, int(np.sum(t[:k] > floor)))
        d = np.abs(t[:kw] - prev[:kw])
        g = adaptive.extrapolation(adaptive.rate(t, kw, alpha))
        assert est.floor == pytest.approx(floor)
        assert est.reference == pytest.approx(max(t[k], floor))
        assert est.excess == pytest.approx(d.max() * g)
        if sv_tol is None:
            assert est.sv_excess == np.inf
        else:
            assert est.sv_excess == pytest.approx(np.max(d * g / np.maximum(t[:kw], floor / sv_tol)))
    # no estimate beyond the k-th: the reference is the floor
    assert adaptive.estimate(prev[:7], t[:7], 7, 0.0, u).reference == pytest.approx(floor)
    assert adaptive.estimate(None, t, 3, 0.0, u).excess == np.inf


def test_met(rng):
    est = adaptive.Estimate(excess=0.02, reference=1.0, floor=0.001, sv_excess=0.3)
    assert adaptive.met(est, 0.03) and not adaptive.met(est, 0.01)
    assert adaptive.met(est, 0.03, sv_tol=0.5) and not adaptive.met(est, 0.03, sv_tol=0.2)
    assert adaptive.met(est._replace(floor=0.05), 0.01)


def test_single_floor_and_result_ok(rng):
    s = _sorted(rng, 6)
    u32 = float(np.finfo(np.float32).eps)
    assert adaptive.single_floor(s, 3) == pytest.approx(u32 * s[0] / s[3])
    assert adaptive.single_floor(s, 6) == pytest.approx(u32 * s[0] / s[5])
    assert adaptive.single_floor(np.array([1.0, 0.0]), 1) == np.inf
    Z = rng.standard_normal((5, 3))
    assert adaptive.single_result_ok(Z)
    assert adaptive.single_result_ok(Z / np.abs(Z).max() * 2.0 ** -99)
    assert not adaptive.single_result_ok(Z / np.abs(Z).max() * 2.0 ** -101)
    assert not adaptive.single_result_ok(np.full((2, 2), np.inf))


def test_predicted_rate_uses_the_next_shift(rng):
    loop = adaptive._Loop(3, 0.01, None)
    s = _sorted(rng, 8) * 7.0
    t, _ = loop.judge(s, 1e-16, False)
    alpha = t[-1] ** 2 / 2
    ref = np.sqrt(max(t[-1] ** 2 - alpha, alpha) / (t[2] ** 2 - alpha))
    assert loop.predicted_rate(t) == pytest.approx(min(ref, 0.95))


# -- out of core ------------------------------------------------------------------------------
class _Reexponented:
    """An operator whose scaled reads C 2^-e say the same A^H A X with another exponent per read
    (a valid answer: e is a choice of the operator)."""

    def __init__(self, op, rng):
        self._op, self._rng = op, rng

    def __getattr__(self, name):
        return getattr(self._op, name)

    def gram_matmat_scaled(self, X, single=False):
        C, e = self._op.gram_matmat_scaled(X, single)
        f = int(self._rng.integers(-6, 7))
        return np.ldexp(C, f), e + f


def test_out_of_core_loop_is_invariant_to_read_exponents(rng):
    A = matrix_with_spectrum(150, 60, _spectrum("slow"), rng=rng)
    S = randla.sketch.resolve("gaussian", 12, 60, rng=rng)
    op = DaskOperator(da.from_array(A, chunks=(40, 60)))
    X1, reads1, loop1 = adaptive.adaptive_power_right(op, S, 5, 1e-3, 8, "auto")
    X2, reads2, loop2 = adaptive.adaptive_power_right(_Reexponented(op, rng), S, 5, 1e-3, 8, "auto")
    assert reads1.reads == reads2.reads == reads1.products
    np.testing.assert_allclose(np.abs(X2.T @ X1), np.eye(12), atol=1e-8)
    assert loop1.shift() == pytest.approx(loop2.shift(), rel=1e-10)


def test_reads_count_and_zero_spread(rng):
    A = rng.standard_normal((50, 20))
    op = DaskOperator(da.from_array(A, chunks=(20, 20)))
    reads = adaptive._Reads(op, True)
    C, e, low = reads(np.eye(20)[:, :3])
    assert (reads.reads, reads.products, reads.float32_reads, low) == (1, 1, 1, True)
    assert reads.keep_single(C, 2, 0.5)
    assert not reads.keep_single(np.zeros((20, 3)), 2, 0.5)   # no warning on a zero C


def test_mixed_fixed_count_out_of_core_reads_in_float32(rng):
    """A narrow spectrum: every one of the q reads in float32, and one more for B."""
    s = np.linspace(1.0, 0.5, 40)
    A = matrix_with_spectrum(200, 40, s, rng=rng)
    res = randla.rsvd(da.from_array(A, chunks=(50, 40)), 5, power_iters=3,
                      mixed_precision=True, compute=True, rng=rng)
    assert (res.info.power_iters, res.info.float32_passes, res.info.passes) == (3, 3, 4)
    np.testing.assert_allclose(res.S, s[:5], rtol=0.05)


def test_zero_matrix_out_of_core(rng):
    res = randla.rsvd(da.zeros((60, 30), chunks=(20, 30)), 3, compute=True, rng=rng)
    np.testing.assert_array_equal(res.S, np.zeros(3))


def test_krylov_budget_and_depth_reported(rng):
    """Block Krylov within a budget of 9 products: each step two, one for U, so 4 steps; the
    depth is the number of steps."""
    A = matrix_with_spectrum(200, 80, _spectrum("flat", 80), rng=rng)
    counted = _Counted(A)
    op = as_operator(counted.op)
    P = np.linalg.qr(rng.standard_normal((80, 8)))[0]
    loop = adaptive._Loop(4, 1e-12, None)
    loop.relative(np.array([1.0]))
    U, s, Vh, depth, passes, done = adaptive.krylov_svd(op, P, 4, loop, 9)
    assert passes == counted.count == 9 and depth == 4 and not done   # the whole budget
    # G = V^H A^H A V squares the singular values: the rounding floor is sqrt(NOISE_FLOOR u) t_1
    floor = np.sqrt(adaptive.NOISE_FLOOR * np.finfo(np.float64).eps) * loop.prev[0]
    assert loop.est.floor == pytest.approx(floor, rel=1e-12)
    np.testing.assert_allclose(s, _spectrum("flat", 80)[:4], rtol=1e-2)


@pytest.mark.parametrize("scale", [1e-170, 1e170])
def test_krylov_branch_at_extreme_scales(rng, scale):
    """The Krylov branch scales its products by the first candidate's sigma_1: A^H A V of
    A * 1e-170 would underflow, of A * 1e170 overflow."""
    s = _spectrum("flat", 80)
    A = matrix_with_spectrum(200, 80, s, rng=rng) * scale
    res = randla.rsvd(A, 5, rng=rng)
    assert res.info.method == "krylov" and res.info.converged
    np.testing.assert_allclose(res.S / scale, s[:5], rtol=1e-2)


def test_out_of_core_last_read_allowed_is_in_full_precision(rng):
    """A slow spectrum, narrow enough for float32 reads at power_tol=1e-4, that the loop
    does not meet within its reads: every read but the last in float32, the last in full
    precision, and one more for B."""
    A = matrix_with_spectrum(300, 80, (1 + np.arange(80.0)) ** -0.1, rng=rng)
    op = DaskOperator(da.from_array(A, chunks=(100, 80)))
    with pytest.warns(randla.AccuracyWarning, match="did not reach"):
        info = randla.rsvd(op, 5, power_tol=1e-4, rng=rng).info
    assert info.power_iters == adaptive.MAX_ADAPTIVE_ITERS
    assert info.float32_passes == info.power_iters - 1
    assert info.passes == op.passes == info.power_iters + 1
