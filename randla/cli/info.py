"""``randla info``: what this installation runs on."""
from __future__ import annotations

import os
import platform


def add_arguments(parser):
    return parser


def collect() -> dict:
    """Versions, BLAS libraries, thread counts and the Numba threading layer."""
    import numba
    import numpy
    import scipy

    import randla

    info = {
        "randla": randla.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
        "numba threads": numba.config.NUMBA_NUM_THREADS,
    }
    try:
        import dask
        info["dask"] = dask.__version__
    except ImportError:
        info["dask"] = "not installed"
    try:
        from threadpoolctl import threadpool_info
        for pool in threadpool_info():
            key = f"{pool['user_api']} ({pool['internal_api']})"
            info[key] = (f"{pool.get('version')} {pool.get('architecture', '')} "
                         f"threads={pool['num_threads']}")
    except ImportError:
        info["blas"] = "install threadpoolctl to see BLAS details"
    try:
        import numpy as np

        @numba.njit(parallel=True)
        def _touch(x):
            for i in numba.prange(x.size):
                x[i] += 1.0
        _touch(np.zeros(4))
        info["numba threading layer"] = numba.threading_layer()
    except Exception as exc:  # the layer is only known once a parallel kernel ran
        info["numba threading layer"] = f"unknown ({exc})"
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"):
        if var in os.environ:
            info[var] = os.environ[var]
    return info


def run(args):
    for key, value in collect().items():
        print(f"{key:>24}: {value}")
    return 0
