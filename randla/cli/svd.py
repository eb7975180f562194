"""``randla svd``: randomized SVD of a matrix file, out of core.

    randla svd INPUT --rank K [--tol T] [--passes N] [--memory-limit 2GB] [--sketch NAME]
               [--seed S] [--dataset PATH] -o OUT.npz

Writes ``U``, ``s`` and ``Vh`` to OUT.npz atomically: a temporary file in the same directory,
renamed when complete, so an interrupted or failed run leaves nothing behind.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import time

import numpy as np

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}


def parse_bytes(text: str) -> int:
    """'2GB' -> 2_000_000_000, '64MiB' -> 67108864, '1000' -> 1000."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    if not match or match[2].lower() not in _UNITS:
        raise ValueError(f"--memory-limit must be a size such as 512MB or 2GiB, got {text!r}")
    return int(float(match[1]) * _UNITS[match[2].lower()])


def add_arguments(p):
    p.add_argument("input", help="matrix file: .npy, .zarr, .h5/.hdf5 (FILE.h5:/dataset), "
                                 ".npz (scipy.sparse), .mtx")
    p.add_argument("-o", "--output", required=True, help="output .npz with arrays U, s, Vh")
    p.add_argument("-k", "--rank", type=int, required=True,
                   help="rank (with --tol: the largest rank)")
    p.add_argument("--tol", type=float, default=None,
                   help="smallest rank with ||A - U diag(s) Vh||_F <= TOL ||A||_F")
    p.add_argument("--passes", type=int, default=None,
                   help="passes over the matrix: 1 = single pass; N >= 2 = N - 2 power "
                        "iterations, the last pass writing U (N - 1 for a wide matrix); "
                        "default: 2 power iterations")
    p.add_argument("--memory-limit", default="1GB",
                   help="working memory to stay within (default 1GB); sets the row-panel size")
    p.add_argument("--sketch", default="gaussian", help="sketch name (see randla.sketch.available())")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: fresh entropy)")
    p.add_argument("--dataset", default=None, help="dataset inside an .h5/.zarr input")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def run(args) -> int:
    try:
        return _run(args)
    except (OSError, ValueError, TypeError, MemoryError) as e:
        print(f"randla svd: error: {e}", file=sys.stderr)
        return 2


def _run(args) -> int:
    from ..io import open_matrix
    limit = parse_bytes(args.memory_limit)
    _check_output(args.output)
    A = open_matrix(args.input, args.dataset)
    m, n = A.shape
    if hasattr(A, "chunks"):  # reopen with row panels sized to the budget
        single = A.dtype.kind in "fc" and np.finfo(A.dtype).eps > 1e-10  # no fused passes
        u_in_memory = args.tol is not None or args.passes == 1 or m < n or single
        A = open_matrix(args.input, args.dataset,
                        panel_bytes=_panel_bytes(A, args.rank, limit, u_in_memory))
    start = time.perf_counter()
    with _progress(args.quiet):
        U, s, Vh, passes = decompose(A, args.rank, tol=args.tol, passes=args.passes,
                                     sketch=args.sketch, seed=args.seed)
    save_npz_atomic(args.output, quiet=args.quiet, U=U, s=s, Vh=Vh)
    if not args.quiet:
        print(f"randla svd: {m} x {n} {A.dtype}, rank {len(s)}, {passes} pass(es) over the "
              f"input, {time.perf_counter() - start:.2f} s -> {args.output}", file=sys.stderr)
    return 0


def decompose(A, k, *, tol=None, passes=None, sketch="gaussian", seed=None):
    """``(U, s, Vh, passes over A)`` with the method ``passes`` asks for. For a chunked A,
    U may be a lazy dask array ``A @ W``, whose evaluation is the last pass counted."""
    from dask.callbacks import Callback

    import randla
    if passes is not None and passes < 1:
        raise ValueError(f"--passes must be >= 1, got {passes}")
    if passes == 1 and tol is not None:
        raise ValueError("--tol needs several passes (it measures ||A||_F); drop --passes 1")
    if not hasattr(A, "chunks"):      # sparse input, in memory
        return (*randla.rsvd(A, k, sketch=sketch, rng=seed, passes=passes, tol=tol), None)
    count = [0]                       # each pass over A is one dask computation
    with Callback(start=lambda dsk: count.__setitem__(0, count[0] + 1)):
        U, s, Vh = randla.rsvd(A, k, sketch=sketch, rng=seed, passes=passes, tol=tol)
    lazy = A.name in getattr(getattr(U, "dask", None), "layers", ())
    return U, s, Vh, count[0] + lazy


def _panel_bytes(A, k, limit, u_in_memory=True):
    """Row-panel size within the budget. The factors and their QR workspace take about
    3 (m + n) (k + 10) words, or 3 n (k + 10) when U is left lazy and written panel by panel;
    a quarter of the rest goes to a panel: the read-ahead of a file larger than memory holds
    up to three, and their products are small. The single-pass sketches are wider (about 3k)
    but the same order."""
    m, n = A.shape
    need = 3 * ((m if u_in_memory else 0) + n) * (k + 10) * np.dtype(A.dtype).itemsize
    if need > 2 * limit // 3:
        raise ValueError(f"--memory-limit {limit} bytes is too small for rank {k} on a {m} x {n} "
                         f"matrix: the factors alone need about {need} bytes; allow at least "
                         f"{3 * need // 2}")
    return max(1 << 20, (limit - need) // 4)


def _check_output(path):
    if not path.endswith(".npz"):
        raise ValueError(f"output must end in .npz, got {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"output folder does not exist: {folder}")


def save_npz_atomic(path, *, quiet=True, **arrays):
    """Write an .npz (as np.savez) to a temporary file beside ``path``, then rename it over
    ``path``. A dask array is evaluated and written one row block at a time."""
    import zipfile
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".randla-", suffix=".npz.part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                for name, value in arrays.items():
                    with zf.open(f"{name}.npy", "w", force_zip64=True) as out:
                        if hasattr(value, "blocks"):
                            _write_row_blocks(out, value, name, quiet)
                        else:
                            np.lib.format.write_array(out, np.asanyarray(value),
                                                      allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _write_row_blocks(out, X, name, quiet):
    """X (a dask array) as .npy, computing its row blocks in order: a lazy U = A @ W reads the
    input once more, panel after panel, and never holds more than one block."""
    from tqdm import tqdm

    from .._dask import compute
    fmt = np.lib.format
    fmt.write_array_header_1_0(out, {"descr": fmt.dtype_to_descr(X.dtype),
                                     "fortran_order": False, "shape": X.shape})
    for i in tqdm(range(X.numblocks[0]), desc=f"writing {name}", unit="block", file=sys.stderr,
                  delay=1.0, leave=False, disable=quiet):
        out.write(np.ascontiguousarray(compute(X.blocks[i])[0]).data)


class _progress:
    """A tqdm bar on stderr per pass over the input, shown only once a pass takes > 1 s."""

    def __init__(self, quiet):
        self.quiet = quiet

    def __enter__(self):
        if self.quiet:
            return self
        from dask.callbacks import Callback
        from tqdm import tqdm
        state = {"bar": None, "n": 0}

        def start(dsk):
            state["n"] += 1
            state["bar"] = tqdm(total=len(dsk), desc=f"pass {state['n']}", unit="task",
                                file=sys.stderr, delay=1.0, leave=False)

        def posttask(key, result, dsk, st, worker_id):
            state["bar"].update(1)

        def finish(dsk, st, errored):
            state["bar"].close()

        self.cb = Callback(start=start, posttask=posttask, finish=finish)
        self.cb.__enter__()
        return self

    def __exit__(self, *exc):
        if not self.quiet:
            self.cb.__exit__(*exc)
        return False
