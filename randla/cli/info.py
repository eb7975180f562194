"""``randla info``: what this installation runs on; ``randla info OUT.npz``: how a result of
``randla svd`` was made (its metadata: version, seed, rank, passes, error bound, input);
``randla info MATRIX``: the shape, dtype and size of a matrix file ``randla svd`` reads."""
from __future__ import annotations

import json
import os
import platform
import sys
import zipfile
import zlib


def add_arguments(parser):
    parser.add_argument("file", nargs="?", default=None,
                        help="an output of randla svd: print the metadata it records; or a "
                             "matrix file (.npy, .zarr, .h5, .npz, .mtx): its shape and dtype")
    parser.add_argument("--json", action="store_true", help="print the record as JSON")
    return parser


#: What reading a damaged archive raises (besides OSError).
_ARCHIVE_ERRORS = (ValueError, EOFError, SyntaxError, KeyError, zipfile.BadZipFile, zlib.error,
                   NotImplementedError, json.JSONDecodeError, UnicodeDecodeError)


def describe(path) -> dict:
    """The record ``randla info PATH`` prints: an output's metadata (see :func:`read_metadata`)
    and whether its input changed, or what a matrix file holds (see :func:`describe_matrix`).
    Raises OSError for a missing or unreadable file, ValueError for anything else."""
    from ..io import check_input_file, split_dataset
    file, _ = split_dataset(path)
    check_input_file(file)
    if file.lower().endswith(".npz"):
        names = _members(file)
        if "metadata.npy" in names:
            meta = read_metadata(file)
            return meta | {"input_now": input_status(meta)}
        if not {"format.npy", "shape.npy", "data.npy"} <= names:
            arrays = ", ".join(sorted(n.removesuffix(".npy") for n in names)) or "none"
            raise ValueError(f"{file} has no randla metadata and holds no scipy.sparse matrix "
                             f"(arrays: {arrays}); was it written by randla svd?")
    return describe_matrix(path)


def _members(path) -> set:
    """The names in an .npz archive; ValueError naming the file if it is not one."""
    if not zipfile.is_zipfile(path):   # np.load would speak of pickled data
        raise ValueError(f"{path} is not a valid .npz file (not a zip archive, or one cut "
                         f"short)")
    try:
        with zipfile.ZipFile(path) as zf:
            return set(zf.namelist())
    except (OSError, *_ARCHIVE_ERRORS) as e:
        raise ValueError(f"{path} is not a valid .npz file: {e}") from None


def read_metadata(path) -> dict:
    """The metadata ``randla svd`` stored in ``path``, with the shapes of its arrays under
    ``"arrays"`` (read from their headers: nothing else is loaded). Raises ValueError for a
    file that is not such an output."""
    import numpy as np

    from ..io.files import read_npy_header
    try:
        with zipfile.ZipFile(path) as zf:
            arrays = {}
            for name in zf.namelist():
                with zf.open(name) as f:
                    arrays[name.removesuffix(".npy")] = list(read_npy_header(f)[0])
            if "metadata" not in arrays:
                names = ", ".join(a for a in arrays) or "none"
                raise ValueError(f"{path} has no randla metadata (arrays: {names}); was it "
                                 f"written by randla svd?")
            del arrays["metadata"]
            with zf.open("metadata.npy") as f:
                meta = json.loads(str(np.lib.format.read_array(f, allow_pickle=False)))
    except (OSError, *_ARCHIVE_ERRORS) as e:
        if isinstance(e, ValueError) and str(e).startswith(str(path)):
            raise
        raise ValueError(f"{path} is not a valid output of randla svd: {e}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: its metadata is not a record")
    return meta | {"arrays": arrays}


def describe_matrix(path) -> dict:
    """What a matrix file holds, from its header (nothing is loaded): format, shape, dtype,
    size on disk, and the entries stored by a sparse format. Raises ValueError (TypeError for
    non-numeric data) with :func:`randla.io.open_matrix`'s reasons."""
    from ..io import DENSE_SUFFIXES, SPARSE_SUFFIXES, check_input_file, open_matrix, sparse_header, split_dataset
    file, dataset = split_dataset(path)
    check_input_file(file)
    suffix = os.path.splitext(file.rstrip("/"))[1].lower()
    if suffix not in DENSE_SUFFIXES + SPARSE_SUFFIXES:
        raise ValueError(f"{file} is neither an output of randla svd (.npz) nor a matrix file "
                         f"({', '.join(DENSE_SUFFIXES + SPARSE_SUFFIXES)})")
    record = {"file": os.path.abspath(file), "format": suffix.lstrip(".")}
    if dataset is not None:
        record["dataset"] = dataset
    if suffix in SPARSE_SUFFIXES and dataset is None:
        head = sparse_header(file)
        shape, dtype, extra = head.shape, head.dtype, {"stored_entries": head.nnz}
    else:
        A = open_matrix(file, dataset)
        shape, dtype, extra = A.shape, A.dtype, {}
    from .svd import _files_of
    size = sum(os.path.getsize(full) for _, full in _files_of(file))
    return record | {"shape": list(shape), "dtype": str(dtype), **extra, "bytes": size}


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
    from .args import error_message
    try:
        meta = describe(args.file)
    except BrokenPipeError:
        raise
    except (OSError, ValueError, TypeError) as e:
        print(f"randla info: error: {error_message(e)}", file=sys.stderr)
        return 2
    if args.json:
        from .svd import strict_json
        print(strict_json(meta, indent=2))   # also for outputs written with Infinity
        return 0
    for key, value in _flatten(meta):
        print(f"{key:>24}: {value}")
    return 0


def input_status(meta) -> str:
    """Whether the input the metadata names is still the file the result was computed from:
    "unchanged" or "changed" (its size and the SHA-256 of its whole content), or "missing"
    (also when the metadata names no input).
    An output written before whole-file checksums recorded only its first 64 KiB's: a change
    there shows as "changed", else the status says that the rest was not checked."""
    from .svd import fingerprint, header_fingerprint
    record = meta.get("input")
    source = record.get("path") if isinstance(record, dict) else None
    if not isinstance(source, str) or not os.path.exists(source):
        return "missing"
    if not (os.path.isfile(source) or os.path.isdir(source)):
        return "changed (now a pipe or a device)"   # reading it could wait forever
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
