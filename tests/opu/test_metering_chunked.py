"""Metering of optical products made from S's blocks: dask arrays (in dask's worker threads,
also from a thread pool that does not pass the context on), LinearOperators, and rsvd of a dask
array (SW-11: 0 frames were recorded)."""
import warnings
from concurrent.futures import ThreadPoolExecutor

import dask
import dask.array as da
import numpy as np
import pytest
import scipy.sparse.linalg as spla

import randla
from opu import OpticalSketch, metering


def _seed(rng):
    return int(rng.integers(0, 2**62))


@pytest.mark.parametrize("scheduler", ["sync", "threads", "plain-pool"])
def test_sketch_of_a_dask_array_is_metered_once(scheduler, rng):
    n, p, d = 300, 7, 12
    A = rng.standard_normal((n, p))
    S = OpticalSketch(d, n, seed=_seed(rng))
    dA = da.from_array(A, chunks=(int(rng.integers(40, 120)), int(rng.integers(2, 5))))
    with ThreadPoolExecutor(2) as pool:
        # a plain pool does not pass the context on: the meters captured at S @ dA count
        config = ({"scheduler": "threads", "pool": pool} if scheduler == "plain-pool"
                  else {"scheduler": scheduler})
        with dask.config.set(config), metering() as m:
            Y = (S @ dA).compute()
            Z = (dA.T @ S.T).compute()
    np.testing.assert_allclose(Y, S.to_dense() @ A, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(Z, Y.T, rtol=1e-10, atol=1e-10)
    assert m.frames == m.modelled_frames == 2 * S.frames_for(batch=p)
    assert m.calls == 2 * len(dA.chunks[1]) * S.n_blocks


def test_a_lazy_sketch_counts_where_and_when_it_is_computed(rng):
    A = rng.standard_normal((200, 4))
    S = OpticalSketch(8, 200, seed=_seed(rng))
    with dask.config.set(scheduler="threads"):
        with metering() as built:
            Y = S @ da.from_array(A, chunks=(50, 2))
        assert built.frames == 0         # nothing computed yet
        Y.compute()                     # after the block: not counted in it
        assert built.frames == 0
        with metering() as m:
            Y.compute()
        assert m.frames == S.frames_for(batch=4)


def test_sketch_of_a_linear_operator_is_metered(rng):
    A = rng.standard_normal((150, 5))
    S = OpticalSketch(8, 150, seed=_seed(rng))
    with metering() as m:
        Y = S @ spla.aslinearoperator(A)
        Z = spla.aslinearoperator(A.T) @ np.eye(150) @ S.T
    np.testing.assert_allclose(Y, S.to_dense() @ A, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(Z, Y.T, rtol=1e-10, atol=1e-10)
    assert m.frames == 2 * S.frames_for(batch=5)


def test_rsvd_of_a_dask_array_meters_what_rsvd_in_memory_does(rng):
    A = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 200))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", randla.AccuracyWarning)
        with metering() as mem:
            randla.rsvd(A, 4, sketch="optical", rng=0)
        for scheduler in ("sync", "threads"):
            with dask.config.set(scheduler=scheduler), metering() as m:
                randla.rsvd(da.from_array(A, chunks=(70, 90)), 4, sketch="optical", rng=0)
            assert mem.frames > 0 and m.frames == mem.frames
