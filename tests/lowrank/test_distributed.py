"""The same calls on a dask.distributed LocalCluster of two worker processes."""
import os
import signal
import threading
import time

import dask
import dask.array as da
import numpy as np
import pytest

import randla
from randla.io import open_matrix
from randla.operators import DaskOperator

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with dask.config.set({"distributed.scheduler.allowed-failures": 5}):
        cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                           dashboard_address=None, memory_limit="1GiB")
        with distributed.Client(cluster) as c:
            yield c
        cluster.close()


def _matrix(rng, m=400, n=60):
    s = 0.7 ** np.arange(40)
    U = np.linalg.qr(rng.standard_normal((m, 40)))[0]
    V = np.linalg.qr(rng.standard_normal((n, 40)))[0]
    return (U * s) @ V.T, s


def test_rsvd_and_sketchy_svd_on_a_cluster_equal_local(rng, client, tmp_path):
    A, s = _matrix(rng)
    np.save(tmp_path / "a.npy", A)
    X = open_matrix(tmp_path / "a.npy", panel_bytes=60 * 8 * 50)  # readers travel to workers
    got = randla.rsvd(X, 5, rng=3)
    with dask.config.set(scheduler="synchronous"):
        local = randla.rsvd(X, 5, rng=3)
    np.testing.assert_allclose(got.S, s[:5], rtol=1e-8)
    np.testing.assert_allclose(got.U, local.U, atol=1e-10)
    one = randla.sketchy_svd(da.from_array(A, chunks=(64, 30)), 5, rng=4)
    np.testing.assert_allclose(one.S, randla.sketchy_svd(A, 5, rng=4).S, rtol=1e-10)
    assert len(client.run(os.getpid)) == 2


def _slow_rows(block, delay=0.04):
    time.sleep(delay)
    return block


def test_result_unchanged_when_a_worker_is_killed_mid_computation(rng, client):
    A, s = _matrix(rng, m=1200)
    # 40 slow chunks per pass: long enough to kill a worker while tasks are running
    X = da.from_array(A, chunks=(30, 60)).map_blocks(_slow_rows, dtype=A.dtype)
    ref = DaskOperator(da.from_array(A, chunks=(30, 60))).gram_matmat(np.eye(60, 8))
    victim = sorted(client.scheduler_info()["workers"])[0]
    pid = client.run(os.getpid, workers=[victim])[victim]
    killer = threading.Timer(0.5, os.kill, (pid, signal.SIGKILL))
    killer.start()
    try:
        op = DaskOperator(X)
        got = op.gram_matmat(np.eye(60, 8))
    finally:
        killer.cancel()
    assert not _alive(pid), "the worker was not killed during the computation"
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    client.wait_for_workers(2, timeout=30)  # the nanny restarts it


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/status") as f:  # a zombie is dead too
        return "zombie" not in f.read()
