"""Dask scheduling helpers shared by every chunked computation (no randla imports).

dask is imported inside the functions: it is a dependency, but ``import randla`` should not pay
for it until a chunked matrix is used.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np
import scipy.sparse as sp


def compute(*objs):
    """Compute delayed objects. A scheduler the user chose (``dask.config.set(scheduler=...)``,
    or a ``distributed.Client``, which sets it) is respected. Otherwise the synchronous
    scheduler runs one chunk at a time with multi-threaded BLAS inside: on a few cores this beats
    dask's thread pool, which oversubscribes the cores with BLAS threads, and it keeps at most
    one chunk in memory. The synchronous scheduler is passed as a function, not by name: a
    name makes dask import ``distributed`` to look for a client (0.23 s per process)."""
    import dask
    from dask.local import get_sync
    scheduler = None if dask.config.get("scheduler", None) is not None else get_sync
    return dask.compute(*objs, scheduler=scheduler)


def sum_in_order(parts, combine=None):
    """Combine delayed parts (by default: sum them) one after the other, as a chain. Memory
    stays at one partial result, and dask runs a chain's parts in order, where it runs the
    parts of a tree reduction in an arbitrary order: in order, a file reader can read the next
    row panel ahead while the current one is multiplied (see :mod:`randla.io.direct`).
    The chain is one graph layer: linking delayed calls would merge graphs quadratically."""
    from dask.base import tokenize
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph
    combine = add if combine is None else combine
    parts = list(parts)
    if len(parts) == 1:
        return parts[0]
    name = "sum-in-order-" + tokenize(combine, *(p.key for p in parts))
    layer = {(name, 1): (combine, parts[0].key, parts[1].key)}
    for i in range(2, len(parts)):
        layer[(name, i)] = (combine, (name, i - 1), parts[i].key)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=parts)
    return Delayed((name, len(parts) - 1), graph, layer=name)


def add(*xs):
    """The sum of arrays (or numbers), into a copy of the first."""
    out = xs[0].copy() if isinstance(xs[0], np.ndarray) else xs[0]
    for x in xs[1:]:
        out += x
    return out


def offsets(chunks):
    """Start offsets of consecutive chunks, with the total at the end."""
    return np.concatenate([[0], np.cumsum(chunks)]).astype(int)


def dense(blk):
    """A chunk as a dense ndarray (sparse chunks of a dask array are densified per chunk)."""
    return np.asarray(blk.toarray() if sp.issparse(blk) else blk)


def conj_t(a):
    """Conjugate transpose, free for real data."""
    return a.conj().T if np.iscomplexobj(a) else a.T


_blas_lock = threading.Lock()
_blas_limit = {"depth": 0, "limiter": None, "controller": None}


@contextlib.contextmanager
def one_blas_thread():
    """BLAS limited to one thread. The limit is process-wide: tasks running at the same time
    share one limiter, and the last to leave restores the threads. The BLAS libraries are
    looked up once (a lookup per call would cost more than the small calls it wraps)."""
    with _blas_lock:
        if _blas_limit["depth"] == 0:
            if _blas_limit["controller"] is None:
                from threadpoolctl import ThreadpoolController
                _blas_limit["controller"] = ThreadpoolController().select(user_api="blas")
            _blas_limit["limiter"] = _blas_limit["controller"].limit(limits=1)
        _blas_limit["depth"] += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_limit["depth"] -= 1
            if _blas_limit["depth"] == 0:
                _blas_limit["limiter"].restore_original_limits()
