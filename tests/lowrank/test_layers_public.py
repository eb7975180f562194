"""The public layers of rsvd: range_finder -> qb -> rsvd, and the planner that picks the path."""
import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp

import randla
from randla.lowrank import MAX_ADAPTIVE_ITERS, plan_rsvd
from randla.operators import as_operator
from randla.testing import matrix_with_spectrum


def _decaying(rng, m=300, n=120, rate=0.8):
    return matrix_with_spectrum(m, n, rate ** np.arange(n), rng=int(rng.integers(1 << 30)))


@pytest.mark.parametrize("q", [0, 1, 3])
def test_range_finder_meets_the_hmt_bound(rng, q):
    # E||A - Q Q^T A||_2 <= (1 + sqrt(k/(p-1)) + e sqrt(k+p) sqrt(n-k)/p)^(1/(2q+1)) sigma_{k+1}
    # (Halko, Martinsson & Tropp 2011, Cor. 10.10); the mean over draws must respect it and
    # power iterations must bring the error down to it
    A, (k, p) = _decaying(rng), (10, 5)
    s = 0.8 ** np.arange(120)
    factor = (1 + np.sqrt(k / (p - 1)) + np.e * np.sqrt(k + p) * np.sqrt(120 - k) / p)
    errs = []
    for _ in range(8):
        Q = randla.range_finder(A, k + p, power_iters=q, rng=int(rng.integers(1 << 30)))
        np.testing.assert_allclose(Q.T @ Q, np.eye(k + p), atol=1e-12)
        errs.append(np.linalg.norm(A - Q @ (Q.T @ A), 2))
    assert np.mean(errs) <= factor ** (1 / (2 * q + 1)) * s[k]
    assert min(errs) >= s[k + p] * (1 - 1e-10)  # no basis of k + p columns beats sigma_{k+p+1}


def test_power_iterations_improve_the_range(rng):
    A = _decaying(rng, rate=0.95)
    seeds = rng.integers(1 << 30, size=6)
    err = {q: np.median([np.linalg.norm(A - (Q := randla.range_finder(A, 12, power_iters=q, rng=int(s)))
                                        @ (Q.T @ A), 2) for s in seeds]) for q in (0, 2)}
    assert err[2] < 0.9 * err[0]


@pytest.mark.parametrize("method", ["power", "krylov"])
def test_qb_is_q_times_qh_a(rng, method):
    A = _decaying(rng)
    Q, B = randla.qb(A, 15, method=method, power_iters=1, rng=1)
    width = 15 * 2 if method == "krylov" else 15
    assert Q.shape == (300, width) and B.shape == (width, 120)
    np.testing.assert_allclose(B, Q.T @ A, atol=1e-12)
    np.testing.assert_allclose(Q.T @ Q, np.eye(width), atol=1e-12)


def test_rsvd_is_built_from_qb(rng):
    # the same seed gives the same Q: rsvd's singular values are those of B from qb
    A = _decaying(rng)
    Q, B = randla.qb(A, 20, power_iters=2, rng=7)
    s = np.linalg.svd(B, compute_uv=False)[:10]
    np.testing.assert_allclose(randla.rsvd(A, 10, oversample=10, power_iters=2, rng=7).S, s,
                               rtol=1e-12)
    Q2 = randla.range_finder(A, 20, power_iters=2, rng=7)
    np.testing.assert_allclose(np.abs(Q2.T @ Q), np.eye(20), atol=1e-10)


def test_layers_keep_float32_and_refuse_bad_sizes(rng):
    A = _decaying(rng).astype(np.float32)
    assert randla.range_finder(A, 5, rng=0).dtype == np.float32
    assert randla.qb(A, 5, rng=0).B.dtype == np.float32
    with pytest.raises(ValueError, match="l must be <="):
        randla.range_finder(A, 121)
    with pytest.raises(TypeError, match="l must be an int"):
        randla.qb(A, 2.5)
    with pytest.raises(ValueError, match="method"):
        randla.qb(A, 5, method="lanczos")


def test_plan_picks_the_path_from_capabilities():
    rng = np.random.default_rng(0)
    dense = as_operator(rng.standard_normal((50, 30)))
    wide = as_operator(rng.standard_normal((30, 50)))
    chunked = as_operator(da.from_array(rng.standard_normal((50, 30)), chunks=(10, 30)))
    chunked32 = as_operator(da.from_array(rng.standard_normal((50, 30)).astype(np.float32),
                                          chunks=(10, 30)))
    # the default: adaptive iterations, at most MAX_ADAPTIVE_ITERS, reads an upper bound
    cap = MAX_ADAPTIVE_ITERS
    assert plan_rsvd(dense) == ("fixed_rank", cap, False, False, False, 2 * cap + 2, True)
    assert plan_rsvd(dense, power_iters=2) == ("fixed_rank", 2, False, False, False, 6, False)
    assert not plan_rsvd(dense, method="krylov").adaptive
    assert not plan_rsvd(dense, passes=6).adaptive
    assert plan_rsvd(wide).transpose and not plan_rsvd(dense).transpose
    assert plan_rsvd(dense, power_iters=1, method="krylov").reads == 4
    assert plan_rsvd(dense, tol=0.1).path == "fixed_accuracy"
    assert plan_rsvd(dense, passes=1).path == "single_pass"
    assert plan_rsvd(chunked).path == "fused_power" and plan_rsvd(chunked).reads == cap + 1
    assert plan_rsvd(chunked, power_iters=2).reads == 3
    assert plan_rsvd(chunked, lazy_ok=True).lazy_u and plan_rsvd(chunked, lazy_ok=True).reads == cap + 2
    assert not plan_rsvd(chunked, lazy_ok=True, center=True).lazy_u
    assert plan_rsvd(chunked, passes=5).power_iters == 4
    assert plan_rsvd(chunked32).path == "fixed_rank"     # no fused A^H A in single precision
    assert plan_rsvd(dense, passes=7).power_iters == 2
    with pytest.raises(ValueError, match="passes=1"):
        plan_rsvd(dense, passes=1, center=True)
    with pytest.raises(ValueError, match="too few"):
        plan_rsvd(dense, passes=2, center=True)


def test_plan_reads_match_the_passes_made(rng):
    # the plan's read count is what rsvd really reads: count passes on a chunked operator
    A = da.from_array(_decaying(rng), chunks=(60, 120))
    for kwargs in ({}, {"power_iters": 1}, {"center": True}, {"power_iters": 2, "center": True}):
        op = as_operator(A)
        plan = plan_rsvd(op, **kwargs)
        res = randla.rsvd(op, 5, rng=0, **kwargs)
        # adaptive: the plan bounds the reads, the result tells them
        assert op.passes == res.info.passes, kwargs
        assert op.passes == plan.reads if not plan.adaptive else op.passes <= plan.reads
    sparse = sp.random(80, 40, density=0.1, random_state=np.random.default_rng(2))
    assert plan_rsvd(as_operator(sparse), power_iters=2).reads == 6
    assert plan_rsvd(as_operator(sparse)).reads == 2 * MAX_ADAPTIVE_ITERS + 2


class _WideInput(randla.sketch.Gaussian):
    """A Gaussian sketch that, like the OPU, wants the long side; records the n it was made for."""

    long_side = True
    made_for = []

    def __init__(self, d, n, **kwargs):
        super().__init__(d, n, **kwargs)
        _WideInput.made_for.append(n)


@pytest.mark.parametrize("shape", [(400, 60), (60, 400)])
@pytest.mark.parametrize("tol", [None, 0.05])
def test_a_long_side_sketch_is_applied_along_the_larger_dimension(rng, shape, tol):
    A = rng.standard_normal(shape) * 0.7 ** np.arange(shape[1])
    _WideInput.made_for.clear()
    res = randla.rsvd(A, None if tol else 5, tol=tol, sketch=_WideInput, rng=0)
    assert set(_WideInput.made_for) == {max(shape)}
    ref = randla.rsvd(A, len(res.S), sketch="gaussian", rng=0)
    np.testing.assert_allclose(res.S, ref.S, rtol=0.05)
    # software sketches keep their side: along n after transposing a wide A
    assert plan_rsvd(as_operator(A)).transpose == (shape[0] < shape[1])
    assert plan_rsvd(as_operator(A), sketch=_WideInput).transpose == (shape[0] > shape[1])


def test_a_long_side_sketch_on_chunked_tall_data_leaves_the_fused_path(rng):
    A = da.from_array(rng.standard_normal((300, 40)), chunks=(100, 40))
    plan = plan_rsvd(as_operator(A), sketch=_WideInput)
    assert plan.path == "fixed_rank" and plan.transpose
