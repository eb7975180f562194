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
                   help="passes over the matrix: 1 = single pass, N >= 2 = N - 1 power "
                        "iterations; default: rsvd's default (3 passes)")
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
    from .io import open_matrix
    limit = parse_bytes(args.memory_limit)
    _check_output(args.output)
    A = open_matrix(args.input, args.dataset)
    m, n = A.shape
    if hasattr(A, "chunks"):  # reopen with row panels sized to the budget
        A = open_matrix(args.input, args.dataset, panel_bytes=_panel_bytes(A, args.rank, limit))
    start = time.perf_counter()
    with _progress(args.quiet):
        U, s, Vh, passes = decompose(A, args.rank, tol=args.tol, passes=args.passes,
                                     sketch=args.sketch, seed=args.seed)
    save_npz_atomic(args.output, U=U, s=s, Vh=Vh)
    if not args.quiet:
        print(f"randla svd: {m} x {n} {A.dtype}, rank {len(s)}, {passes} pass(es) over the "
              f"input, {time.perf_counter() - start:.2f} s -> {args.output}", file=sys.stderr)
    return 0


def decompose(A, k, *, tol=None, passes=None, sketch="gaussian", seed=None):
    """``(U, s, Vh, passes over A)`` with the method ``passes`` asks for."""
    import randla
    from .operators import as_operator
    from .streaming import DaskOperator
    op = as_operator(A, "INPUT")
    if passes is not None and passes < 1:
        raise ValueError(f"--passes must be >= 1, got {passes}")
    if passes == 1 and tol is not None:
        raise ValueError("--tol needs several passes (it measures ||A||_F); drop --passes 1")
    options = {} if tol is None else {"tol": tol}
    U, s, Vh = randla.rsvd(op, k, sketch=sketch, rng=seed, passes=passes, **options)
    return U, s, Vh, op.passes if isinstance(op, DaskOperator) else None


def _panel_bytes(A, k, limit):
    """Row-panel size within the budget. The factors and their QR workspace take about
    3 (m + n) (k + 10) words; a third of the rest goes to a panel, leaving room for its
    products and the partial sums of the tree reduction. The single-pass sketches are wider
    (about 3k) but the same order."""
    m, n = A.shape
    need = 3 * (m + n) * (k + 10) * np.dtype(A.dtype).itemsize
    if need > 2 * limit // 3:
        raise ValueError(f"--memory-limit {limit} bytes is too small for rank {k} on a {m} x {n} "
                         f"matrix: the factors alone need about {need} bytes; allow at least "
                         f"{3 * need // 2}")
    return max(1 << 20, (limit - need) // 3)


def _check_output(path):
    if not path.endswith(".npz"):
        raise ValueError(f"output must end in .npz, got {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"output folder does not exist: {folder}")


def save_npz_atomic(path, **arrays):
    """np.savez to a temporary file beside ``path``, then rename it over ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".randla-", suffix=".npz.part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


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
