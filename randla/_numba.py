"""Numba as randla's kernels use it (no randla imports). The cache folder is settled earlier,
by :mod:`randla._numba_cache` when ``randla`` is imported.

Thread safety: Numba's "workqueue" threading layer aborts the process when two Python threads
run parallel kernels at once. :func:`parallel_section` serializes the kernel calls while the
layer in use is not known to be thread safe (OpenMP and TBB are).
"""
from __future__ import annotations

import contextlib
import threading

import numba

_SAFE_LAYERS = ("omp", "tbb")
_lock = threading.RLock()


@contextlib.contextmanager
def parallel_section():
    """Run parallel kernels one Python thread at a time unless the threading layer is safe."""
    try:
        safe = numba.threading_layer() in _SAFE_LAYERS
    except ValueError:  # no parallel kernel has run yet: the layer is not chosen
        safe = False
    if safe:
        yield
        return
    with _lock:
        yield


def parallel_njit(**options):
    """``numba.njit(parallel=True, cache=True, **options)`` for a kernel called from Python;
    each call runs inside :func:`parallel_section`. The compiled dispatcher stays reachable as
    ``.kernel``."""
    def decorate(func):
        kernel = numba.njit(parallel=True, cache=True, **options)(func)

        def call(*args):
            with parallel_section():
                return kernel(*args)

        call.__name__, call.__doc__, call.__wrapped__ = func.__name__, func.__doc__, func
        call.kernel = kernel
        return call
    return decorate
