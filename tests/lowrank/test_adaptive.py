"""The adaptive default of rsvd: accuracy-controlled power iterations with dynamic shifts,
mixed precision, the passes it reports and the bound the planner gives."""
import dask.array as da
import numpy as np
import pytest

import randla
from randla.lowrank import MAX_ADAPTIVE_ITERS, RSVDInfo, plan_rsvd
from randla.operators import as_operator
from randla.testing import matrix_with_spectrum, spectral_error


def _spectrum(kind, n):
    i = np.arange(n, dtype=float)
    return {"exp": np.exp(-i / 8), "sqrt": (1 + i) ** -0.5, "fast": 0.7 ** i}[kind]


@pytest.mark.parametrize("kind", ["exp", "sqrt", "fast"])
def test_default_reaches_the_requested_accuracy(rng, kind):
    m, n, k = 600, 200, 20
    s = _spectrum(kind, n)
    A = matrix_with_spectrum(m, n, s, rng=rng)
    res = randla.rsvd(A, k, rng=rng)
    info = res.info
    assert isinstance(info, RSVDInfo) and info.converged and info.passes <= 2 * MAX_ADAPTIVE_ITERS + 2
    assert info.power_iters == (info.passes - 2) / 2
    # the tolerance means what it says: sigma_1..sigma_k within ~power_tol sigma_(k+1)
    assert np.max(np.abs(res.S - s[:k])) <= 2 * randla.lowrank.DEFAULT_POWER_TOL * s[k]
    # power_tol is the excess of the spectral error over sigma_(k+1) aimed at
    assert spectral_error(A, *res) <= (1 + randla.lowrank.DEFAULT_POWER_TOL) * s[k]
    # a fixed count of seven iterations (scikit-learn's default) is not more accurate by much
    ref = randla.rsvd(A, k, power_iters=7, rng=rng)
    assert spectral_error(A, *res) <= 1.01 * spectral_error(A, *ref)


def test_fewer_passes_on_fast_decay_more_on_slow(rng):
    m, n, k = 600, 200, 20
    fast = randla.rsvd(matrix_with_spectrum(m, n, _spectrum("fast", n), rng=rng), k, rng=rng)
    slow = randla.rsvd(matrix_with_spectrum(m, n, _spectrum("sqrt", n), rng=rng), k, rng=rng)
    assert fast.info.passes <= 4 < 6 < slow.info.passes


def test_fast_convergence_stops_at_twice_the_tolerance():
    # e^(-i/8), k = 20, l = 30: convergence ratio ~0.3 per product, where the spectral error's
    # excess is far below the change of the estimates: the loop stops on a change of up to
    # 2 tol (one iteration, 4 passes); waiting for a change below tol took 5 passes in half
    # of these draws, for an excess that was 0 to 4 digits either way
    s = _spectrum("exp", 200)
    for seed in range(6):
        A = matrix_with_spectrum(600, 200, s, rng=seed)
        res = randla.rsvd(A, 20, rng=seed)
        assert res.info.passes == 4 and res.info.converged
        assert spectral_error(A, *res) <= (1 + randla.lowrank.DEFAULT_POWER_TOL) * s[20]


def test_estimate_scales_the_change_by_the_convergence_ratio():
    from randla.lowrank.adaptive import estimate, rate
    k, prev, u = 3, np.array([4.0, 3.0, 2.0, 1.0, 0.5]), 2.0 ** -52
    for tail, alpha in [(0.1, 0.0), (0.9, 0.0), (1.3, 0.5)]:   # r small, near 1, shifted
        s = np.array([4.0, 3.0, 2.02, 1.0, tail])
        r = rate(s, k, alpha)
        x = r / (1 - r)
        est = estimate(prev, s, k, alpha, u)
        assert est.excess == pytest.approx(0.02 * max(min(x ** 3, max(1, x)), 0.5))
        assert est.reference == 1.0 and est.floor == pytest.approx(100 * u * 4.0)
    # the fast branch: ratio 0.1 / 2.02 gives the floor c / 2, a slow one at least c
    assert estimate(prev, np.array([4.0, 3.0, 2.02, 1.0, 0.1]), k, 0.0, u).excess == pytest.approx(0.01)
    assert estimate(prev, np.array([4.0, 3.0, 2.02, 1.0, 1.9]), k, 0.0, u).excess > 0.02
    # scale-free: the same estimates in any unit give the same verdict
    for scale in (1e-170, 1e155):
        a, b = estimate(prev * scale, np.array([4.0, 3.0, 2.02, 1.0, 0.1]) * scale, k, 0.0, u), \
            estimate(prev, np.array([4.0, 3.0, 2.02, 1.0, 0.1]), k, 0.0, u)
        assert a.excess / a.reference == pytest.approx(b.excess / b.reference)


def test_rounding_floor_ends_the_loop_on_exact_low_rank():
    # t_(k+1) and the changes at the rounding level: met through the floor, not through tol
    from randla.lowrank.adaptive import estimate, met
    u = 2.0 ** -52
    prev = np.array([1.0, 0.5, 3e-16, 2e-16, 1e-16])
    t = np.array([1.0, 0.5, 5e-16, 1e-16, 2e-16])
    est = estimate(prev, t, 3, 0.0, u)
    assert met(est, 0.01) and est.reference == pytest.approx(100 * u)
    # the same changes above the floor are not convergence
    assert not met(estimate(prev * [1, 1, 1e6, 1e6, 1e6], t * [1, 1, 1e6, 1e6, 1e6], 3, 0.0, u), 0.01)
    # singular values: relative to each one, down to the floor
    sv_prev = np.array([1.0, 0.5, 0.2, 0.1])
    assert met(estimate(sv_prev, sv_prev * (1 + 1e-4), 2, 0.0, u, sv_tol=1e-3), 10, 1e-3)
    assert not met(estimate(sv_prev, sv_prev * (1 + 1e-2), 2, 0.0, u, sv_tol=1e-3), 10, 1e-3)


def test_last_product_allowed_is_in_full_precision(rng):
    # an iteration that runs to its cap still ends on a float64 product
    from randla.lowrank.adaptive import Estimate, _Products
    A = rng.standard_normal((40, 30))
    prod = _Products(as_operator(A), as_operator(A.astype(np.float32)), max_passes=6)
    s, unconverged = np.linspace(3, 1, 10), Estimate(np.inf, 1.0, 1e-5, np.inf)
    for _ in range(4):
        assert prod.low
        prod(np.eye(30, 10), adjoint=False)
        prod.update_precision(s, 5, unconverged, tol=0.01, r=0.9)
    assert prod.passes == 4 and prod.low          # the 5th product may still be float32,
    prod(np.eye(30, 10), adjoint=False)
    prod.update_precision(s, 5, unconverged, tol=0.01, r=0.9)
    assert not prod.low                           # the 6th and last is not
    assert prod.float32_passes == 5


def test_power_tol_trades_passes_for_accuracy(rng):
    s = _spectrum("sqrt", 200)
    A = matrix_with_spectrum(600, 200, s, rng=rng)
    loose, tight = (randla.rsvd(A, 20, power_tol=t, rng=3) for t in (0.1, 1e-3))
    assert loose.info.passes < tight.info.passes
    assert np.max(np.abs(tight.S - s[:20])) <= 2e-3 * s[20]
    assert np.max(np.abs(tight.S - s[:20])) < np.max(np.abs(loose.S - s[:20]))


def test_fixed_count_is_kept_and_reported(rng):
    A = matrix_with_spectrum(300, 100, _spectrum("exp", 100), rng=rng)
    for q in (0, 1, 3):
        info = randla.rsvd(A, 10, power_iters=q, rng=rng).info
        assert (info.power_iters, info.passes, info.converged) == (q, 2 * q + 2, None)
    # unpacking and tuple semantics are those of a 3-tuple
    res = randla.rsvd(A, 10, rng=rng)
    U, S, Vh = res
    assert len(res) == 3 and tuple(res) == (U, S, Vh)
    assert res._fields == ("U", "S", "Vh")


def test_dynamic_shift_stays_below_half_sigma_l_squared(rng):
    s = _spectrum("sqrt", 200)
    A = matrix_with_spectrum(600, 200, s, rng=rng)
    info = randla.rsvd(A, 20, oversample=10, rng=rng).info
    # alpha <= sigma_l^2 / 2 keeps the wanted eigenvalues of A A^H - alpha I on top
    assert 0 < info.shift <= s[29] ** 2 / 2 * (1 + 1e-12)


@pytest.mark.parametrize("decades", [3, 5, 8])
def test_mixed_precision_is_safe_on_wide_spectra(rng, decades):
    # sigma_1 / sigma_(k+1) = 10^decades: float32 products can resolve the first, not the last
    k, n = 15, 150
    s = np.concatenate([np.logspace(0, -decades, k + 1), 10.0 ** -decades * 0.9 ** np.arange(1, n - k)])
    A = matrix_with_spectrum(500, n, s, rng=rng)
    mixed = randla.rsvd(A, k, mixed_precision=True, rng=1)
    plain = randla.rsvd(A, k, mixed_precision=False, rng=1)
    assert plain.info.float32_passes == 0 and mixed.info.float32_passes >= 1
    for res in (mixed, plain):
        assert res.U.dtype == np.float64 and res.info.converged
        assert np.max(np.abs(res.S - s[:k])) <= 2 * randla.lowrank.DEFAULT_POWER_TOL * s[k]
        assert spectral_error(A, *res) <= 1.02 * s[k]
        np.testing.assert_allclose(res.U.T @ res.U, np.eye(k), atol=1e-12)
    # the last products are in float64: the leading singular values to float64 accuracy
    np.testing.assert_allclose(mixed.S[:3], s[:3], rtol=1e-10)


def test_mixed_precision_uses_float32_when_the_spread_allows(rng):
    s = _spectrum("exp", 200)
    A = matrix_with_spectrum(600, 200, s, rng=rng)
    res = randla.rsvd(A, 20, rng=rng)     # "auto": dense float64 in memory
    assert 0 < res.info.float32_passes < res.info.passes
    assert randla.rsvd(A.astype(np.float32), 20, rng=rng).info.float32_passes == 0


def test_out_of_core_adaptive_reads_are_bounded_and_counted(rng):
    s = _spectrum("sqrt", 120)
    A = matrix_with_spectrum(800, 120, s, rng=rng)
    op = as_operator(da.from_array(A, chunks=(200, 120)))
    plan = plan_rsvd(op)
    assert plan.adaptive and plan.path == "fused_power" and plan.reads == MAX_ADAPTIVE_ITERS + 1
    res = randla.rsvd(op, 10, rng=rng)
    assert op.passes == res.info.passes <= plan.reads and res.info.converged
    assert spectral_error(A, *res) <= 1.02 * s[10]
    assert np.max(np.abs(res.S - s[:10])) <= 2 * randla.lowrank.DEFAULT_POWER_TOL * s[10]


def test_adaptive_arguments_are_checked():
    A = np.random.default_rng(0).standard_normal((50, 30))
    with pytest.raises(ValueError, match="power_tol"):
        randla.rsvd(A, 3, power_iters=2, power_tol=0.1)
    with pytest.raises(ValueError, match="power_tol"):
        randla.rsvd(A, 3, method="krylov", power_tol=0.1)
    for bad in (0, -1.0, np.inf):
        with pytest.raises(ValueError, match="power_tol"):
            randla.rsvd(A, 3, power_tol=bad)
    with pytest.raises(TypeError, match="power_tol"):
        randla.rsvd(A, 3, power_tol="small")
    with pytest.raises(ValueError, match="mixed_precision"):
        randla.rsvd(A, 3, power_iters=2, mixed_precision=True)
    with pytest.raises(TypeError, match="mixed_precision"):
        randla.rsvd(A, 3, mixed_precision="yes")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tolerance_holds_on_a_flat_spectrum(seed):
    # sigma_i = i^(-1/4): a small change per product is far from convergence; the loop must
    # extrapolate the changes to come (measured: max |S - s| / sigma_(k+1) <= 0.93 tol
    # with the extrapolation, 1.3-1.9 tol without)
    s = (1 + np.arange(200, dtype=float)) ** -0.25
    A = matrix_with_spectrum(600, 200, s, rng=seed)
    res = randla.rsvd(A, 20, power_tol=0.01, rng=seed)
    assert res.info.converged
    assert np.max(np.abs(res.S - s[:20])) <= 1.2 * 0.01 * s[20]


def test_info_survives_the_dask_result(rng):
    A = matrix_with_spectrum(400, 60, _spectrum("exp", 60), rng=rng)
    X = da.from_array(A, chunks=(100, 60))
    lazy, eager = randla.rsvd(X, 5, rng=1), randla.rsvd(X, 5, rng=1, compute=True)
    assert isinstance(lazy.U, da.Array) and lazy.info.converged and eager.info.converged
    assert lazy.info.passes == eager.info.passes + 1     # evaluating the lazy U is a read


def test_dynamic_shifts_save_passes_on_slow_spectra():
    # measured: 76 products in all with the shifts; more than 80 without or misapplied
    total = 0
    for p in (-0.5, -0.25):
        s = (1 + np.arange(200.0)) ** p
        for seed in range(4):
            A = matrix_with_spectrum(600, 200, s, rng=seed)
            total += randla.rsvd(A, 20, mixed_precision=False, rng=seed).info.passes
    assert total <= 80


def test_auto_mixed_precision_only_on_dense_input(rng):
    # float32 sparse products are no faster (index-bound): "auto" keeps sparse input in float64
    import scipy.sparse as sp
    A = sp.random(600, 300, density=0.05, format="csr", random_state=np.random.default_rng(1))
    auto = randla.rsvd(A, 5, rng=0)
    forced = randla.rsvd(A, 5, mixed_precision=True, rng=0)
    assert auto.info.float32_passes == 0 and forced.info.float32_passes > 0
    dense = randla.rsvd(A.toarray(), 5, rng=0)
    assert dense.info.float32_passes > 0


def test_unconverged_loop_stops_at_its_cap(rng):
    # sigma_k = sigma_(k+1) = ...: no tolerance is met; the loop makes the products it may
    s = np.maximum(0.9 ** np.arange(100), 0.3)
    A = matrix_with_spectrum(300, 100, s, rng=rng)
    with pytest.warns(randla.AccuracyWarning, match="did not reach power_tol=1e-12"):
        res = randla.rsvd(A, 10, power_tol=1e-12, method="power", rng=rng)
    assert res.info.passes == 2 * MAX_ADAPTIVE_ITERS + 2 and not res.info.converged
    assert spectral_error(A, *res) <= 1.001 * s[10]


# -- mixed precision out of core: reads on single-precision panels ---------------------------
def _steep(decades, k=20, n=300):
    """sigma_1 / sigma_(k+1) = 10^decades, then a slow tail."""
    return np.concatenate([np.logspace(0, -decades, k + 1),
                           10.0 ** -decades * np.logspace(0, -1, n - k - 1)])


@pytest.mark.parametrize("decades", [1, 3, 6, 8])
def test_out_of_core_mixed_reads_are_as_accurate_as_full_precision(decades):
    # a float32 read resolves eigenvalues of A^H A down to u32 sigma_1^2: on a steep spectrum
    # it is made up by one more read in float64, else it stands for a float64 read
    s = _steep(decades)
    A = matrix_with_spectrum(2000, 300, s, rng=decades)
    errs, infos = {}, {}
    for mixed in (False, True):
        op = as_operator(da.from_array(A, chunks=(250, 300)))
        res = randla.rsvd(op, 20, power_iters=2, mixed_precision=mixed, rng=0, compute=True)
        errs[mixed], infos[mixed] = spectral_error(A, *res) / s[20], res.info
        assert op.passes == res.info.passes
    # 3 reads, and one more for B when A X is too ill-conditioned to solve it from them
    assert infos[False].float32_passes == 0 and infos[False].passes in (3, 4)
    made_up = int(decades > 1)
    assert infos[True].float32_passes == 2 - made_up
    assert infos[True].passes == infos[False].passes + made_up
    assert errs[True] - 1 <= 1.2 * (errs[False] - 1) + 1e-6


@pytest.mark.parametrize("decades", [1.3, 1.45, 1.6])
def test_out_of_core_mixed_reads_near_the_spread_limit(rng, decades):
    # sigma_1 / sigma_(k+1) around 30, where float32 reads stop being kept: kept or made up,
    # the result is as good as in float64
    s = _steep(decades)
    A = matrix_with_spectrum(2000, 300, s, rng=rng)
    X = da.from_array(A, chunks=(250, 300))
    errs = [spectral_error(A, *randla.rsvd(X, 20, power_iters=2, mixed_precision=mixed, rng=1,
                                            compute=True)) / s[20] - 1 for mixed in (False, True)]
    assert errs[1] <= 1.2 * errs[0] + 1e-6


def test_out_of_core_adaptive_default_reads_float32_first(rng):
    s = _spectrum("exp", 150)
    A = matrix_with_spectrum(1500, 150, s, rng=rng)
    X = da.from_array(A, chunks=(300, 150))
    mixed = randla.rsvd(X, 15, rng=1, compute=True)
    plain = randla.rsvd(X, 15, mixed_precision=False, rng=1, compute=True)
    assert 0 < mixed.info.float32_passes < mixed.info.passes and plain.info.float32_passes == 0
    for res in (mixed, plain):
        assert res.info.converged and spectral_error(A, *res) <= 1.02 * s[15]
    # the loop ends on float64 reads: the leading singular values to float64 accuracy
    np.testing.assert_allclose(mixed.S[:3], s[:3], rtol=1e-10)


@pytest.mark.parametrize("scale", [1e40, 1e-42, 1e155, 1e-170])
@pytest.mark.parametrize("chunked", [False, True])
def test_mixed_precision_outside_float32_range(rng, scale, chunked):
    # in memory the float32 copy is of A times a power of two that brings it into float32's
    # range: the same products as at scale 1. Out of core a panel out of float32's range
    # overflows or loses its digits when rounded: that read is redone in float64 (not
    # reported as NaN in A)
    s = _spectrum("exp", 100)
    A0 = matrix_with_spectrum(600, 100, s, rng=rng)
    A = A0 * scale
    X = da.from_array(A, chunks=(150, 100)) if chunked else A
    res = randla.rsvd(X, 10, mixed_precision=True, rng=1, compute=True)
    plain = randla.rsvd(X, 10, mixed_precision=False, rng=1, compute=True)
    assert res.info.converged
    if chunked:
        assert res.info.float32_passes == 0
        assert res.info.passes == plain.info.passes + 1   # the first read, again in float64
        np.testing.assert_allclose(res.S, plain.S, rtol=1e-12)
    else:
        unscaled = randla.rsvd(A0, 10, mixed_precision=True, rng=1).info
        assert res.info.float32_passes == unscaled.float32_passes > 0
        assert res.info.passes == unscaled.passes
    assert np.max(np.abs(res.S / scale - s[:10])) <= 2 * randla.lowrank.DEFAULT_POWER_TOL * s[10]


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_single_precision_read_rounds_every_column_chunk(rng, scheduler):
    # each (thread, column of chunks) has its own buffer: a shared one would mix the chunks
    import dask
    A = rng.standard_normal((20000, 300))
    op = as_operator(da.from_array(A, chunks=(250, 100)))
    X = rng.standard_normal((300, 7))
    with dask.config.set(scheduler=scheduler, num_workers=2):
        C = op.gram_matmat(X, single=True)
    assert C.dtype == np.float64 and op.passes == 1     # panels summed in float64
    exact = A.T @ (A @ X)
    assert np.max(np.abs(C - exact)) <= 1e-5 * np.max(np.abs(exact))


def test_a_product_out_of_float32_range_is_redone_and_reported(rng):
    # the product that overflowed in float32 is made again in float64, counted as a pass but
    # not as an iteration, and the loop knows it was a float64 one
    from randla.lowrank.adaptive import _Products
    A = rng.standard_normal((300, 40))
    op = as_operator(A)
    op32 = as_operator(np.full(A.shape, np.inf, np.float32), check_finite_values=False)
    prod = _Products(op, op32, 10)
    X = rng.standard_normal((300, 5))
    np.testing.assert_allclose(prod(X, adjoint=True), A.T @ X, rtol=1e-12)
    assert not prod.low and not prod.last_single
    assert (prod.passes, prod.redone, prod.float32_passes) == (2, 1, 0)


@pytest.mark.parametrize("rank", [150, 5])
def test_out_of_core_reads_are_counted_with_a_lazy_u(rng, monkeypatch, rank):
    # a lazy U costs one more read, when it is evaluated, and the count includes it; when
    # A X is rank deficient U is computed in memory instead, and there is no such read
    from randla.operators import chunked
    ops, init = [], chunked.DaskOperator.__init__
    monkeypatch.setattr(chunked.DaskOperator, "__init__",
                        lambda self, *a, **kw: (init(self, *a, **kw), ops.append(self))[0])
    s = _steep(1, k=10, n=150)
    s[rank:] = 0
    A = matrix_with_spectrum(2000, 150, s, rng=rng)
    res = randla.rsvd(da.from_array(A, chunks=(250, 150)), 10, power_iters=2, rng=0)
    lazy = rank > 10    # (a U computed in memory comes back as a dask array too)
    assert ops[-1].passes == res.info.passes - int(lazy)
    assert res.info.passes == (4 if lazy else 5)    # 2 + 1 (+ 1 for U, or 2 for Q and B)


def test_out_of_core_mixed_precision_arguments_are_checked(rng):
    X = da.from_array(rng.standard_normal((300, 40)), chunks=(100, 40))
    with pytest.raises(ValueError, match="passes"):
        randla.rsvd(X, 3, passes=3, mixed_precision=True)
    with pytest.raises(ValueError, match="uncentered"):
        randla.rsvd(X, 3, power_iters=2, center=True, mixed_precision=True)
    assert randla.rsvd(X, 3, power_iters=2, rng=0, compute=True).info.float32_passes == 0


@pytest.mark.parametrize("decades", [1, 8])
def test_mixed_precision_costs_few_products(rng, decades):
    # float32 products are kept while the spread allows, and left at once when it does not
    # (measured, 3 draws each: in memory 4 of 4 products and at most 2 more than float64;
    # out of core 5 reads with 3 in float32, and 1 more read than float64 at 10^8)
    k, n = 15, 150
    s = np.concatenate([np.logspace(0, -decades, k + 1),
                        10.0 ** -decades * 0.9 ** np.arange(1, n - k)])
    A = matrix_with_spectrum(500, n, s, rng=rng)
    X = da.from_array(A, chunks=(100, n))
    runs = {(where, mixed): randla.rsvd(B, k, mixed_precision=mixed, rng=1, compute=True).info
            for where, B in (("memory", A), ("disk", X)) for mixed in (True, False)}
    assert runs["memory", True].passes <= runs["memory", False].passes + 2
    assert runs["disk", True].passes <= runs["disk", False].passes + 1
    if decades == 1:     # float32 almost throughout (the switch to float64 is predicted from
        # the convergence ratio: one product early in about 1 draw in 20)
        assert runs["memory", True].float32_passes >= runs["memory", True].passes - 2
        assert runs["disk", True].float32_passes >= runs["disk", True].passes - 2
    else:                # left after the first product that shows the spread
        assert runs["memory", True].float32_passes <= 2
        assert runs["disk", True].float32_passes == 1
