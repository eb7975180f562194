"""Tests that kill mutants of randla/lowrank/rsvd.py (tools/mutate.py) which the other tests let
survive: the passes rsvd reports against the products or reads it makes (budgets, centering,
the whole-matrix and single-pass paths), the plan, mixed precision's choices, validation, and
the dask result."""
import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
from counted_operator import CountedOperator

import randla
from randla.operators import DaskOperator, as_operator
from randla.testing import matrix_with_spectrum

_Counted = CountedOperator


def _matrix(rng, m=120, n=50):
    return matrix_with_spectrum(m, n, 0.8 ** np.arange(min(m, n)), rng=rng)


def _svals(A, k):
    return np.linalg.svd(A - 0, compute_uv=False)[:k]


@pytest.mark.parametrize(("center", "passes"), [(False, 2), (False, 5), (False, 8), (True, 5),
                                                (True, 8)])
@pytest.mark.parametrize("method", ["power", "krylov"])
def test_in_memory_budget_of_passes(rng, center, method, passes):
    """``passes`` in memory: every product counted, none beyond the budget, and at most one
    left unused (an iteration costs two)."""
    A = _matrix(rng, 160, 80)      # wide enough for the Krylov basis of depth 3 (3 + 1) * 14
    counted = _Counted(A)
    res = randla.rsvd(counted, 4, passes=passes, method=method, center=center, rng=rng)
    assert res.info.passes == counted.count
    assert passes - 1 <= counted.count <= passes
    assert res.info.power_iters == (passes - 2 - int(center)) // 2
    ref = A - A.mean(axis=0) if center else A
    np.testing.assert_allclose(res.S, _svals(ref, 4), rtol=0.05)


def test_too_few_passes_for_centering(rng):
    with pytest.raises(ValueError, match="passes=2 is too few"):
        randla.rsvd(_Counted(_matrix(rng)), 4, passes=2, center=True, rng=rng)


@pytest.mark.parametrize(("center", "passes"), [(False, 2), (False, 3), (False, 5), (True, 3),
                                                (True, 5)])
def test_out_of_core_budget_of_passes(rng, center, passes):
    """Out of core, power_iters is passes - 1 (two less with center: the column means, and
    B read on its own), and the reads made are the reads reported."""
    A = _matrix(rng)
    op = DaskOperator(da.from_array(A, chunks=(40, 50)))
    res = randla.rsvd(op, 4, passes=passes, center=center, rng=rng)
    assert res.info.power_iters == passes - 1 - 2 * int(center)
    assert res.info.passes == op.passes == passes


def test_fixed_count_reports_its_products(rng):
    A = _matrix(rng)
    counted = _Counted(A)
    res = randla.rsvd(counted, 4, power_iters=2, rng=rng)
    assert (res.info.power_iters, res.info.passes, counted.count) == (2, 6, 6)
    assert res.info.converged is None


def test_whole_matrix_path_reports_one_product(rng):
    """k + oversample >= min(m, n): A in one product, and LAPACK."""
    A = _matrix(rng, 60, 20)
    for kw in ({}, {"power_iters": 2}):
        counted = _Counted(A)
        res = randla.rsvd(counted, 15, rng=rng, **kw)
        assert (res.info.power_iters, res.info.passes, counted.count) == (0, 1, 1)
        assert res.info.converged is (True if not kw else None)
        np.testing.assert_allclose(res.S, _svals(A, 15), rtol=1e-12)
    # centered: the column means cost one more product. (The report says 3 where 2 are made;
    # it must at least not say fewer than made.)
    counted = _Counted(A)
    res = randla.rsvd(counted, 15, center=True, rng=rng)
    assert res.info.passes >= counted.count == 2
    np.testing.assert_allclose(res.S, _svals(A - A.mean(axis=0), 15), rtol=1e-12)


def test_single_pass_out_of_core_is_one_read(rng):
    A = _matrix(rng)
    op = DaskOperator(da.from_array(A, chunks=(40, 50)))
    res = randla.rsvd(op, 4, passes=1, rng=rng)
    assert (res.info.power_iters, res.info.passes, op.passes) == (0, 1, 1)


def test_out_of_core_default_reads_single_precision_panels(rng):
    """The adaptive default out of core rounds the panels of its early reads to float32 (a
    narrow spectrum allows it), and reports the reads it made."""
    A = matrix_with_spectrum(200, 40, np.linspace(1.0, 0.3, 40), rng=rng)
    op = DaskOperator(da.from_array(A, chunks=(50, 40)))
    res = randla.rsvd(op, 4, rng=rng)
    assert res.info.float32_passes >= 1 and res.info.converged
    assert res.info.passes == op.passes
    np.testing.assert_allclose(res.S, np.linspace(1.0, 0.3, 40)[:4], rtol=1e-2)


def test_single_precision_input_makes_no_float32_copy(rng):
    for dtype in (np.float32, np.complex64):
        A = _matrix(rng).astype(dtype)
        assert randla.rsvd(A, 4, mixed_precision=True, rng=rng).info.float32_passes == 0
    assert randla.rsvd(_matrix(rng), 4, rng=rng).info.float32_passes >= 1   # float64: yes


def test_sparse_mixed_precision_is_scale_free(rng):
    """A sparse A * 2^-200 gets the float32 copy A * 2^-200 * 2^j within float32's range: the
    same products and passes as A itself."""
    A = sp.random(150, 60, density=0.3, random_state=np.random.default_rng(rng.integers(1 << 32)),
                  format="csr") * 1.0
    seed = int(rng.integers(1 << 32))
    ref = randla.rsvd(A, 4, mixed_precision=True, rng=seed)
    small = randla.rsvd(A * 2.0 ** -200, 4, mixed_precision=True, rng=seed)
    assert ref.info.float32_passes >= 1
    assert small.info.float32_passes == ref.info.float32_passes
    assert small.info.passes == ref.info.passes
    np.testing.assert_allclose(small.S * 2.0 ** 200, ref.S, rtol=1e-10)


def test_unconverged_warning_points_at_the_caller(rng):
    A = matrix_with_spectrum(200, 80, (1 + np.arange(80.0)) ** -0.05, rng=rng)
    with pytest.warns(randla.AccuracyWarning, match="did not reach") as record:
        randla.rsvd(A, 5, method="power", power_tol=1e-6, rng=rng)
    assert record[0].filename == __file__


@pytest.mark.parametrize("bad", [0, 0.0, -1e-3, np.inf])
def test_nonpositive_power_tol_is_refused(rng, bad):
    with pytest.raises(ValueError, match="power_tol"):
        randla.rsvd(_matrix(rng), 3, power_tol=bad, rng=rng)


def test_plan_of_a_long_side_sketch(rng):
    """A sketch that wants A's larger dimension: a square chunked A keeps the fused reads, a
    tall one is decomposed through A^H one product at a time."""
    def factory(d, n, rng=None, dtype=np.float64):
        return randla.sketch.make("gaussian", d, n, rng=rng, dtype=dtype)
    factory.long_side = True
    square = as_operator(da.zeros((40, 40), chunks=(20, 40)))
    tall = as_operator(da.zeros((80, 40), chunks=(20, 40)))
    plan = randla.lowrank.plan_rsvd(square, sketch=factory)
    assert plan.path == "fused_power" and not plan.transpose
    plan = randla.lowrank.plan_rsvd(tall, sketch=factory)
    assert plan.path == "fixed_rank" and plan.transpose


def test_dask_result_of_a_wide_matrix_is_chunked_like_a(rng):
    A = _matrix(rng, 50, 120)
    res = randla.rsvd(da.from_array(A, chunks=(20, 60)), 4, rng=rng)
    assert isinstance(res.U, da.Array) and res.U.chunks == ((20, 20, 10), (4,))
    U = res.U.compute()
    np.testing.assert_allclose((U * res.S) @ res.Vh, A, atol=0.8 ** 4 * 1.01)
    np.testing.assert_allclose(res.S, _svals(A, 4), rtol=1e-6)
