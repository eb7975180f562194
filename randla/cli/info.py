"""``randla info``: what this installation runs on; ``randla info OUT.npz``: how a result of
``randla svd`` was made (its metadata: version, seed, rank, passes, error bound, input)."""
from __future__ import annotations

import json
import os
import platform
import sys


def add_arguments(parser):
    parser.add_argument("file", nargs="?", default=None,
                        help="an output of randla svd: print the metadata it records")
    parser.add_argument("--json", action="store_true", help="print the metadata as JSON")
    return parser


def read_metadata(path) -> dict:
    """The metadata ``randla svd`` stored in ``path``, with the shapes of its arrays under
    ``"arrays"``. Raises ValueError for a file that is not such an output."""
    import zipfile

    import numpy as np
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {name: list(f[name].shape) for name in f.files if name != "metadata"}
            if "metadata" not in f.files:
                raise ValueError(f"{path} has no randla metadata (arrays: "
                                 f"{', '.join(arrays) or 'none'}); was it written by randla svd?")
            meta = json.loads(str(f["metadata"]))
    except (OSError, EOFError, zipfile.BadZipFile, json.JSONDecodeError, KeyError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{path} is not an output of randla svd: {e}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: its metadata is not a record")
    return meta | {"arrays": arrays}


def _flatten(record, prefix=""):
    for key, value in record.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


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
    if args.file is None:
        for key, value in collect().items():
            print(f"{key:>24}: {value}")
        return 0
    try:
        meta = read_metadata(args.file)
    except (OSError, ValueError) as e:
        text = f"{e.filename}: {e.strerror}" if isinstance(e, OSError) and e.strerror else e
        print(f"randla info: error: {text}", file=sys.stderr)
        return 2
    meta["input_now"] = input_status(meta)
    if args.json:
        print(json.dumps(meta, indent=2))
        return 0
    for key, value in _flatten(meta):
        print(f"{key:>24}: {value}")
    return 0


def input_status(meta) -> str:
    """Whether the input the metadata names is still the file the result was computed from:
    "unchanged" or "changed" (its size and the SHA-256 of its whole content), or "missing".
    An output written before whole-file checksums recorded only its first 64 KiB's: a change
    there shows as "changed", else the status says that the rest was not checked."""
    from .svd import fingerprint, header_fingerprint
    record = meta.get("input") or {}
    source = record.get("path")
    if not source or not os.path.exists(source):
        return "missing"
    if "sha256" not in record:
        now = header_fingerprint(source)
        if any(now[key] != record.get(key) for key in ("bytes", "header_sha256")):
            return "changed"
        return ("size and first 64 KiB unchanged (an older output: the rest of the input "
                "was not checksummed)")
    if os.path.isfile(source) and os.path.getsize(source) != record.get("bytes"):
        return "changed"   # no need to read it
    now = fingerprint(source, progress=True)
    same = all(now[key] == record.get(key) for key in ("bytes", "sha256"))
    return "unchanged" if same else "changed"
