"""``randla svd``: randomized SVD (or PCA) of a matrix file, out of core.

    randla svd INPUT (-k K | --tol T [--max-rank R]) [--center] [--passes N | --power-iters Q]
               [--method power|krylov] [--sketch NAME] [--dtype float32] [--seed S]
               [--memory-limit 2GB] [--dataset PATH] [--no-check] -o OUT.npz

OUT.npz holds ``U``, ``s``, ``Vh`` (and ``mean`` with ``--center``) and ``metadata``: a JSON
record of how the result was made (see :func:`metadata` and ``randla info OUT.npz``). It is
written atomically (see :mod:`randla.cli.output`): a failed or interrupted run leaves the old
OUT.npz as it was and no temporary file.
"""
from __future__ import annotations

import json
import math
import os
import re
import secrets
import sys
import time
import warnings

import numpy as np

from .args import count_arg, error_message, fraction_arg, one_line_warnings, parse_bytes, seed_arg
from .output import AtomicNpz, check_output

__all__ = ["add_arguments", "run", "decompose", "metadata", "fingerprint", "parse_bytes",
           "seed_arg"]

#: What an interruption leaves (printed by randla.cli.main): temporary files are removed.
ON_INTERRUPT = "nothing was written (an older output is unchanged)"
#: Krylov steps of the a-posteriori check by default: 2 (seven products, within a few percent
#: of the true error) for input in memory; 0 for files (one more pass, the bound alone).
CHECK_ITERS_MEMORY, CHECK_ITERS_FILE = 2, 0

#: What the default of --passes / --power-iters does, for the help (randla.lowrank's
#: MAX_ADAPTIVE_ITERS and DEFAULT_POWER_ITERS, which a test checks; importing them here
#: would cost every `randla` command a second).
MAX_ADAPTIVE_ITERS, FIXED_POWER_ITERS = 10, 2

EXAMPLES = """examples:
  randla svd data.npy -k 50 -o svd.npz                        # adaptive power iterations
  randla svd data.npy --tol 0.05 --max-rank 200 -o svd.npz     # the rank is chosen
  randla svd data.h5:/counts -k 20 --center -o pca.npz         # PCA
  randla svd big.npy -k 50 --passes 1 --memory-limit 4GB -o svd.npz
  randla info svd.npz                                          # how it was made
"""


def add_arguments(p):
    import argparse
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EXAMPLES
    p.add_argument("input", help="matrix file: .npy, .zarr, .h5/.hdf5 (FILE.h5:/dataset), "
                                 ".npz (scipy.sparse), .mtx")
    p.add_argument("-o", "--output", required=True, metavar="OUT.npz",
                   help="output .npz: U, s, Vh (and mean with --center) and metadata")
    p.add_argument("-k", "--rank", type=count_arg(1), default=None, metavar="K",
                   help="rank; with --tol, the largest rank allowed")
    p.add_argument("--tol", type=fraction_arg, default=None, metavar="T",
                   help="choose the smallest rank with ||A - U diag(s) Vh||_F <= TOL ||A||_F")
    p.add_argument("--max-rank", type=count_arg(1), default=None, metavar="R",
                   help="with --tol: the largest rank (default min(m, n)); sizes the memory")
    p.add_argument("--center", action="store_true",
                   help="subtract the column means first (PCA); the means are saved as 'mean'")
    p.add_argument("--passes", type=count_arg(1), default=None, metavar="N",
                   help="passes over the matrix: 1 = single pass; N >= 2 sets the power "
                        "iterations (see the docs). Default: adaptive, power iterations until "
                        f"the singular values settle (at most {MAX_ADAPTIVE_ITERS}; the "
                        "summary says how many passes); with --tol or --method krylov, "
                        f"{FIXED_POWER_ITERS} iterations")
    p.add_argument("--power-iters", type=count_arg(0), default=None, metavar="Q",
                   help="a fixed number of power iterations (or the Krylov depth), instead of "
                        "--passes; default: adaptive (see --passes)")
    p.add_argument("--method", choices=("power", "krylov"), default="power",
                   help="subspace (power) iteration or block Krylov (better on flat spectra)")
    p.add_argument("--sketch", default="gaussian", metavar="NAME",
                   help="sketch name (see randla.sketch.available()); default gaussian")
    p.add_argument("--dtype", choices=("float32", "float64"), default=None,
                   help="working precision (default: the file's; integers become float64)")
    p.add_argument("--memory-limit", default="1GB", metavar="SIZE",
                   help="working memory to stay within (default 1GB); sets the row-panel size "
                        "and refuses inputs that cannot fit")
    p.add_argument("--seed", type=seed_arg, default=None, metavar="S",
                   help="random seed (default: fresh, printed and saved in the output)")
    p.add_argument("--dataset", default=None, metavar="PATH", help="dataset inside an .h5/.zarr input")
    p.add_argument("--no-check", action="store_true",
                   help="skip the a-posteriori error bound (one more pass over the input)")
    p.add_argument("--check-iters", type=count_arg(0), default=None, metavar="N",
                   help="Krylov steps of the error estimate: the check costs 1 + 2N + 2 "
                        "products (1 for N = 0: the bound alone). Default "
                        f"{CHECK_ITERS_MEMORY} for sparse input, {CHECK_ITERS_FILE} for dense "
                        "files")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")


def run(args) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = one_line_warnings("svd")
        try:
            return _run(args)
        except BrokenPipeError:   # stderr's reader is gone: randla.cli.main ends quietly
            raise
        except (OSError, ValueError, TypeError, MemoryError, OverflowError) as e:
            if _about_nonfinite(e):
                e = explain_nonfinite(args, e)
            print(f"randla svd: error: {error_message(e, 'lower --memory-limit or the rank')}",
                  file=sys.stderr)
            return 2


def _about_nonfinite(e) -> bool:
    """An error that speaks of NaN, Inf or an overflow: of the input, or of a product."""
    return isinstance(e, (ValueError, OverflowError)) and (
        isinstance(e, OverflowError) or re.search(r"NaN|Inf\b|non-?finite|overflow", str(e),
                                                  flags=re.IGNORECASE) is not None)


def explain_nonfinite(args, error) -> Exception:
    """What a NaN/Inf/overflow error of the computation says about the input file, found by
    one more pass over it (on this failure path only): where its first NaN or Inf is; or, for
    a finite file, that its values overflowed (beyond float32's range with --dtype float32,
    or in the products). The library's own words are about A, which may be a cast or a
    product: a finite file must never read as holding NaN or Inf."""
    from ..io import split_dataset
    path, dataset = split_dataset(args.input, args.dataset)
    try:
        first, largest, file_dtype = scan_values(path, dataset)
    except Exception:   # the file cannot be read again: the original error is all there is
        return error
    if first is not None:
        return ValueError(f"{path} contains NaN or Inf (the first at row {first[0]}, column "
                          f"{first[1]}, counting from 0)")
    where = f"{path} is finite (largest magnitude {largest:.3g})"
    work = _dtype(args, file_dtype)
    single = np.finfo(work).dtype == np.float32
    if single and largest > np.finfo(np.float32).max:
        return ValueError(f"--dtype float32: {where}, beyond float32's range "
                          f"({np.finfo(np.float32).max:.3g}); leave --dtype out")
    hint = ("--dtype float64 computes in double precision" if single else
            f"divide the matrix by 10^{math.ceil(math.log10(largest)) - 10} and multiply the "
            f"singular values by it" if largest > 1e10 else "")
    # not the library's words: they speak of NaN or Inf in "A", the cast or a product
    return ValueError(f"{where}, but the computation overflowed" + (f"; {hint}" if hint else ""))


def scan_values(path, dataset=None):
    """``(first, largest, dtype)`` of a matrix file: the (row, column) of its first NaN or Inf
    in row order (None if it has none), the largest magnitude of its finite entries, its dtype.
    Read a panel at a time; a sparse file is loaded."""
    import scipy.sparse as sp

    from .._dask import compute
    from ..io import open_matrix
    A = open_matrix(path, dataset)
    largest = 0.0
    if sp.issparse(A) or isinstance(A, np.ndarray):
        A = sp.coo_matrix(A)
        bad = ~np.isfinite(A.data)
        if bad.any():
            order = np.lexsort((A.col[bad], A.row[bad]))[0]
            return (int(A.row[bad][order]), int(A.col[bad][order])), None, A.dtype
        return None, float(np.max(np.abs(A.data), initial=0.0)), A.dtype
    start = 0
    for i in range(A.numblocks[0]):
        block = compute(A.blocks[i])[0]
        bad = ~np.isfinite(block)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            return (start + int(row), int(col)), None, A.dtype
        largest = max(largest, float(np.max(np.abs(block), initial=0.0)))
        start += block.shape[0]
    return None, largest, A.dtype


def _run(args) -> int:
    from ..io import split_dataset
    start = time.perf_counter()
    limit = parse_bytes(args.memory_limit)
    if args.rank is None and args.tol is None:
        raise ValueError("give the rank (-k/--rank), a tolerance (--tol), or both")
    if args.max_rank is not None and args.tol is None:
        raise ValueError("--max-rank goes with --tol (with a fixed rank, use -k)")
    if args.passes is not None and args.power_iters is not None:
        raise ValueError("give --passes or --power-iters, not both")
    if args.passes == 1 and (args.tol is not None or args.center or args.method != "power"):
        raise ValueError("--passes 1 (a single pass) needs a fixed rank -k, --method power "
                         "and no --center; --tol measures ||A||_F and grows the rank by blocks")
    if args.passes is not None and args.tol is not None:
        raise ValueError("--tol needs no --passes: the rank it reaches sets the passes; give "
                         "--power-iters instead")
    path, dataset = split_dataset(args.input, args.dataset)
    check_output(args.output, path)
    seed = args.seed if args.seed is not None else secrets.randbits(63)
    with AtomicNpz(args.output) as out:   # created now: an unwritable folder fails here
        A, info, before = _open(path, dataset, args, limit)
        with _progress(args.quiet):
            U, s, Vh, passes = decompose(A, args.rank, tol=args.tol, max_rank=args.max_rank,
                                         passes=args.passes, power_iters=args.power_iters,
                                         method=args.method, center=args.center,
                                         sketch=args.sketch, seed=seed)
            out.add("U", U, quiet=args.quiet)
            out.add("s", s)
            out.add("Vh", Vh)
            check, check_passes, mean = None, 0, None
            if args.center or not args.no_check:
                U_read = out.memmap("U") if not isinstance(U, np.ndarray) else U
                check, check_passes, mean = _check(A, U_read, s, Vh, args, seed)
                del U_read
            if mean is not None:
                out.add("mean", mean)
        meta = metadata(args, seed=seed, shape=A.shape, dtype=A.dtype, info=info, rank=len(s),
                        s=s, passes=passes, check=check, check_passes=check_passes,
                        check_iters=check_iters(args, A), seconds=time.perf_counter() - start)
        out.add("metadata", np.array(strict_json(meta)))
        if not _unchanged(path, before):
            raise ValueError(f"{path} changed while it was being read (written to, replaced "
                             f"or removed): nothing was written; run again")
        out.commit()
    if not args.quiet:
        _summary(args, meta)
    return 0


def _open(path, dataset, args, limit):
    """The input, opened within the memory budget, what the metadata records about it, and
    its :func:`_signature` before its checksum was read."""
    from ..io import SPARSE_SUFFIXES, open_matrix, sparse_header
    suffix = os.path.splitext(path.rstrip("/"))[1].lower()
    if suffix in SPARSE_SUFFIXES and os.path.exists(path) and dataset is None:
        head = sparse_header(path)   # sizes from the header, before anything is allocated
        if min(head.shape) == 0:
            raise ValueError(f"{path} is empty (shape {head.shape})")
        _check_ranks(args, head.shape)
        need = _factor_bytes(head.shape, _rank_cap(args, head.shape), _dtype(args, head.dtype))
        _fits(need + head.load_bytes, limit, f"{path} loaded ({head.nnz} stored entries, "
              f"{head.load_bytes} bytes) and the factors", args)
        A = open_matrix(path, max_bytes=limit - need)
    else:
        A = open_matrix(path, dataset)
    file_dtype = A.dtype
    _check_ranks(args, A.shape)
    if hasattr(A, "chunks"):     # reopen with row panels sized to the budget
        probe = A.astype(args.dtype) if args.dtype is not None else A
        A = open_matrix(path, dataset, panel_bytes=_panel_bytes(probe, args, limit))
    if args.dtype is not None and A.dtype != np.dtype(args.dtype):
        A = A.astype(args.dtype)
    before = _signature(path)
    info = {"path": os.path.abspath(path), "dataset": dataset, "format": suffix.lstrip("."),
            "shape": list(A.shape), "dtype": str(file_dtype),
            **fingerprint(path, progress=not args.quiet)}
    return A, info, before


def _unchanged(path, before) -> bool:
    try:
        return _signature(path) == before
    except OSError:   # removed
        return False


def _signature(path):
    """Identity, size and time of modification of the input's file(s): a write during the
    run changes it, and the result, read from two versions of the file, is not written."""
    def stat(name):
        st = os.stat(name)
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
    return [(rel, stat(full)) for rel, full in _files_of(path)] + [stat(path)]


def _check_ranks(args, shape):
    for flag, value in (("-k/--rank", args.rank), ("--max-rank", args.max_rank)):
        if value is not None and value > min(shape):
            raise ValueError(f"{flag} must be <= min(m, n) = {min(shape)} for the "
                             f"{shape[0]} x {shape[1]} input, got {value}")


def _dtype(args, dtype):
    from .._validation import working_dtype
    return np.dtype(args.dtype) if args.dtype is not None else working_dtype(dtype)


def _rank_cap(args, shape):
    """The largest rank the run can reach: -k, else --max-rank, else min(m, n) (for --tol)."""
    caps = [c for c in (args.rank, args.max_rank) if c is not None]
    return max(1, min(caps + [min(shape)]))


def _factor_bytes(shape, k, dtype, u_in_memory=True):
    """The factors and their QR workspace: about 3 (m + n) (k + 10) words, or 3 n (k + 10)
    when U is left lazy and written panel by panel."""
    m, n = shape
    return 3 * ((m if u_in_memory else 0) + n) * (k + 10) * np.dtype(dtype).itemsize


def _fits(need, limit, what, args):
    if need > limit:
        hint = " or --max-rank" if args.tol is not None and args.max_rank is None else ""
        raise ValueError(f"--memory-limit {limit} bytes is too small: {what} need about {need} "
                         f"bytes; raise --memory-limit{hint}")


def _panel_bytes(A, args, limit):
    """Row-panel size within the budget: a quarter of what the factors leave (the read-ahead
    of a file larger than memory holds up to three panels; their products are small). The
    single-pass sketches are wider (about 3k) but the same order."""
    from ..lowrank import plan_rsvd
    from ..operators import as_operator
    plan = plan_rsvd(as_operator(A), tol=args.tol, method=args.method, center=args.center,
                     passes=args.passes, power_iters=args.power_iters, sketch=args.sketch,
                     lazy_ok=True)
    k = _rank_cap(args, A.shape)
    need = _factor_bytes(A.shape, k, A.dtype, u_in_memory=not plan.lazy_u)
    _fits(3 * need // 2, limit, f"rank {k} on a {A.shape[0]} x {A.shape[1]} matrix: the factors",
          args)
    return max(1 << 20, (limit - need) // 4)


def decompose(A, k, *, tol=None, max_rank=None, passes=None, power_iters=None, method="power",
              center=False, sketch="gaussian", seed=None):
    """``(U, s, Vh, passes over A)``. For a chunked A, U may be a lazy dask array ``A @ W``,
    whose evaluation (when the output is written) is the last pass counted."""
    from ..lowrank import rsvd
    kwargs = dict(tol=tol, max_rank=max_rank, passes=passes, power_iters=power_iters,
                  method=method, center=center, sketch=sketch, rng=seed)
    if not hasattr(A, "chunks"):      # sparse input, in memory: count the products
        op, counter = counting(A)
        U, s, Vh = rsvd(op, k, **kwargs)
        return U, s, Vh, counter[0]
    with _DaskPasses() as count:      # each pass over A is one dask computation
        U, s, Vh = rsvd(A, k, **kwargs)
    lazy = A.name in getattr(getattr(U, "dask", None), "layers", ())
    return U, s, Vh, count.n + lazy


def counting(A):
    """``(operator, counter)``: A as an operator whose products (reads of A) are counted in
    ``counter[0]``; in-memory input only (chunked input counts its dask computations)."""
    from ..operators import as_operator
    op = as_operator(A)
    counter = [0]
    base = type(op)

    def counted(name):
        method = getattr(base, name)

        def call(self, *a, **kw):
            counter[0] += 1
            return method(self, *a, **kw)
        return call
    names = ("matmat", "rmatmat", "sketch_right", "sketch_left", "column_means", "fro_norm")
    cls = type(f"Counted{base.__name__}", (base,), {name: counted(name) for name in names})
    clone = object.__new__(cls)
    clone.__dict__.update(op.__dict__)
    return clone, counter


class _DaskPasses:
    def __enter__(self):
        from dask.callbacks import Callback
        self.n = 0
        self._cb = Callback(start=lambda dsk: setattr(self, "n", self.n + 1))
        self._cb.__enter__()
        return self

    def __exit__(self, *exc):
        self._cb.__exit__(*exc)
        return False


def _check(A, U, s, Vh, args, seed):
    """The a-posteriori bound (randla.estimate_error) of the result, on the centered matrix
    with --center; returns (ErrorEstimate or None, passes it took, column means or None)."""
    from ..lowrank import estimate_error
    from ..operators import CenteredOperator
    if hasattr(A, "chunks"):
        from ..operators import as_operator
        op, counter = as_operator(A), None
    else:
        op, counter = counting(A)
    with _DaskPasses() as count:
        if args.center:
            op = CenteredOperator(op)
        err = None if args.no_check else estimate_error(
            op, U, s, Vh, n_iter=check_iters(args, A), rng=np.random.default_rng([seed, 1]))
    mean = op.mean if args.center else None
    return err, count.n + (counter[0] if counter else 0), mean


def check_iters(args, A) -> int:
    if args.check_iters is not None:
        return args.check_iters
    return CHECK_ITERS_FILE if hasattr(A, "chunks") else CHECK_ITERS_MEMORY


#: Bytes the input's checksum reads at a time.
HASH_BLOCK = 8 << 20


def fingerprint(path, progress=False) -> dict:
    """Size and SHA-256 of the whole input: for a file, the digest ``sha256sum`` prints; for a
    Zarr store (a folder), the SHA-256 of its files' relative paths, each followed by a NUL and
    the file's own SHA-256, in sorted order. Any changed byte changes it (one more read of the
    input, streamed in :data:`HASH_BLOCK` blocks; ``progress`` shows a bar on stderr after
    1 s)."""
    import hashlib

    from tqdm import tqdm
    files = _files_of(path)
    size = sum(os.path.getsize(full) for _, full in files)
    with tqdm(total=size, desc="checksum of the input", unit="B", unit_scale=True,
              file=sys.stderr, delay=1.0, leave=False, disable=not progress) as bar:
        if not os.path.isdir(path):
            return {"bytes": size, "sha256": _sha256(path, bar).hexdigest()}
        h = hashlib.sha256()
        for rel, full in files:
            h.update(rel.encode() + b"\0" + _sha256(full, bar).digest())
    return {"bytes": size, "sha256": h.hexdigest()}


def _files_of(path):
    """``[(relative path, path)]``: the file itself, or a folder's files in a fixed order."""
    if not os.path.isdir(path):
        return [(os.path.basename(path), path)]
    out = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        out += [(os.path.relpath(os.path.join(root, name), path), os.path.join(root, name))
                for name in sorted(files)]
    return out


def _sha256(path, bar):
    import hashlib
    h = hashlib.sha256()
    buf = bytearray(HASH_BLOCK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            bar.update(n)
    return h


def header_fingerprint(path) -> dict:
    """What outputs written before whole-file checksums recorded (``header_sha256``): the
    size and the SHA-256 of the first 64 KiB, or of a Zarr store's metadata files. Kept to
    read those outputs: a change past the header does not show in it."""
    import hashlib
    h = hashlib.sha256()
    if os.path.isdir(path):
        size = 0
        for rel, full in _files_of(path):
            size += os.path.getsize(full)
            if os.path.basename(rel).startswith(".z") or os.path.basename(rel) == "zarr.json":
                h.update(rel.encode())
                with open(full, "rb") as f:
                    h.update(f.read(1 << 16))
        return {"bytes": size, "header_sha256": h.hexdigest()}
    with open(path, "rb") as f:
        h.update(f.read(1 << 16))
    return {"bytes": os.path.getsize(path), "header_sha256": h.hexdigest()}


def metadata(args, *, seed, shape, dtype, info, rank, s, passes, check, check_passes,
             check_iters, seconds) -> dict:
    """How the result was made: enough to reproduce it (command, seed, options) and to trust
    it (the error bound and its probability), and which input it belongs to."""
    import datetime

    import randla
    s = np.asarray(s, dtype=np.float64)
    error = None
    if check is not None:
        error = {"bound": check.bound, "probability": check.probability,
                 "estimate": check.estimate if check_iters > 0 else None, "norm": "spectral",
                 "relative_bound": check.bound / s[0] if s.size and s[0] > 0 else None,
                 "check_iters": check_iters, "passes": check_passes}
    return {
        "randla_version": randla.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "randla svd " + " ".join(_quote(a) for a in _argv(args, seed)),
        "seed": seed,
        "rank": rank,
        "passes": passes,
        "sketch": args.sketch,
        "method": args.method,
        "power_iters": args.power_iters,
        "passes_requested": args.passes,
        "tol": args.tol,
        "max_rank": args.max_rank,
        "center": args.center,
        "dtype": str(np.dtype(dtype)),
        "shape": list(shape),
        "error": error,
        "seconds": round(seconds, 3),
        "input": info,
    }


def strict_json(record, **kwargs) -> str:
    """JSON that strict parsers (jq, JavaScript) read: an infinite or NaN number (an error
    bound that overflowed) is written as the string "inf", "-inf" or "nan", not as the
    Infinity/NaN tokens Python's json emits by default."""
    def safe(value):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if isinstance(value, dict):
            return {key: safe(v) for key, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [safe(v) for v in value]
        return value
    return json.dumps(safe(record), allow_nan=False, **kwargs)


def _argv(args, seed):
    """The command line that reproduces the result (the seed made explicit)."""
    argv = [args.input, "-o", args.output]
    for flag, value in (("--rank", args.rank), ("--tol", args.tol), ("--max-rank", args.max_rank),
                        ("--passes", args.passes), ("--power-iters", args.power_iters),
                        ("--dtype", args.dtype), ("--dataset", args.dataset)):
        if value is not None:
            argv += [flag, str(value)]
    argv += ["--method", args.method, "--sketch", args.sketch, "--seed", str(seed),
             "--memory-limit", args.memory_limit]
    if args.check_iters is not None:
        argv += ["--check-iters", str(args.check_iters)]
    argv += ["--center"] * args.center + ["--no-check"] * args.no_check
    return argv


def _quote(text):
    import shlex
    return shlex.quote(str(text))


def _summary(args, meta):
    m, n = meta["shape"]
    print(f"randla svd: {m} x {n} {meta['dtype']}, rank {meta['rank']}, {meta['passes']} "
          f"pass(es) over the input, {meta['seconds']:.2f} s, seed {meta['seed']} -> "
          f"{args.output}", file=sys.stderr)
    err = meta["error"]
    if err is not None:
        rel = "" if err["relative_bound"] is None else f" ({err['relative_bound']:.3g} times s_1)"
        estimate = "" if err["estimate"] is None else f"; estimate {err['estimate']:.3e}"
        # the bound alone is 10 sqrt(2/pi) times a probe's norm: above s_1 it says little
        loose = (err["estimate"] is None and err["relative_bound"] is not None
                 and err["relative_bound"] > 1)
        hint = "; a loose bound: --check-iters 4 estimates the error itself" if loose else ""
        print(f"randla svd: ||A - U diag(s) Vh||_2 <= {err['bound']:.3e}{rel} with probability "
              f">= {err['probability']:.10g}{estimate} ({err['passes']} more pass(es)){hint}",
              file=sys.stderr)


class _progress:
    """A tqdm bar on stderr per pass over the input, shown only once a pass takes > 1 s."""

    def __init__(self, quiet):
        self.quiet = quiet
        self.bar = None

    def __enter__(self):
        if self.quiet:
            return self
        from dask.callbacks import Callback
        self.n = 0
        self.cb = Callback(start=self._start, posttask=self._posttask, finish=self._finish)
        self.cb.__enter__()
        return self

    def _start(self, dsk):
        from tqdm import tqdm
        self._finish()
        self.n += 1
        self.bar = tqdm(total=len(dsk), desc=f"pass {self.n}", unit="task", file=sys.stderr,
                        delay=1.0, leave=False)

    def _posttask(self, key, result, dsk, state, worker_id):
        if self.bar is not None:
            self.bar.update(1)

    def _finish(self, *_):
        # an interruption can come between any two of these calls: never assume a bar
        bar, self.bar = self.bar, None
        if bar is not None:
            bar.close()

    def __exit__(self, *exc):
        if not self.quiet:
            self._finish()
            self.cb.__exit__(*exc)
        return False
