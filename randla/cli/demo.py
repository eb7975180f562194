"""``randla demo``: rsvd with every registered sketch on a matrix with a known spectrum, its
time and its accuracy; ``--full`` adds the LAPACK (scipy.linalg.svd) and ARPACK
(scipy.sparse.linalg.svds) references, which take most of a minute on two cores.

The table goes to stdout as each row is done; progress goes to stderr.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from .args import seed_arg


def _timed(f):
    t0 = time.perf_counter()
    out = f()
    return time.perf_counter() - t0, out


def add_arguments(parser):
    parser.add_argument("--m", type=int, default=10000, help="rows of the test matrix")
    parser.add_argument("--n", type=int, default=1000, help="columns of the test matrix")
    parser.add_argument("--k", type=int, default=30, help="rank")
    parser.add_argument("--seed", type=seed_arg, default=0, help="seed of matrix and sketches")
    parser.add_argument("--full", action="store_true",
                        help="add the LAPACK (full SVD) and ARPACK references (slow)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _too_big(m, n) -> str:
    """Why an m x n test matrix cannot be built here ("" if it can): building it holds about
    three m x n float64 arrays at once."""
    from ..io.files import available_memory
    need, available = 3 * 8 * m * n, available_memory()
    if available is None or need <= available:
        return ""
    return (f"a {m} x {n} test matrix needs about {need / 1e9:.3g} GB to build, more than the "
            f"{available / 1e9:.3g} GB of memory available; choose a smaller --m or --n")


def rows(full):
    """``[(label, kind, argument)]``: the rows of the table, in order."""
    from .. import sketch as _sketch
    out = [(f"randla.rsvd sketch={name}", "sketch", name) for name in _sketch.available()]
    out.append(("randla.rsvd method=krylov", "krylov", None))
    if full:
        out += [("scipy.sparse.linalg.svds (ARPACK)", "arpack", None),
                ("scipy.linalg.svd (LAPACK, full)", "lapack", None)]
    return out


def run(args):
    m, n, k = args.m, args.n, args.k
    if not (1 <= m and 1 <= n and 1 <= k < min(m, n)):
        print(f"randla demo: error: need m, n >= 1 and 1 <= k < min(m, n), got m={m}, n={n}, "
              f"k={k}", file=sys.stderr)
        return 2
    too_big = _too_big(m, n)
    if too_big:
        print(f"randla demo: error: {too_big}", file=sys.stderr)
        return 2
    # something on the screen before the imports and the matrix take their seconds
    print(f"randla demo: a {m} x {n} float64 test matrix with sigma_i = (i+1)^-1.5, rank "
          f"k = {k}; the best possible spectral error is sigma_(k+1)", flush=True)
    from tqdm import tqdm

    from ..testing import matrix_with_spectrum
    s = 1.0 / (1.0 + np.arange(min(m, n))) ** 1.5
    table = rows(args.full)
    bar = tqdm(total=len(table) + 1, desc="randla demo", unit="step", file=sys.stderr,
               disable=args.quiet, leave=False)
    try:
        bar.set_postfix_str("building the matrix")
        t_build, A = _timed(lambda: matrix_with_spectrum(m, n, s, rng=args.seed))
        bar.update(1)
        bar.write(f"built in {t_build:.2f} s; sigma_(k+1) = {s[k]:.3e}", file=sys.stdout)
        bar.write(f"{'method':<34}{'time [s]':>10}{'err/sigma_(k+1)':>18}"
                  f"{'max rel err s_1..k':>20}", file=sys.stdout)
        for label, kind, arg in table:
            bar.set_postfix_str(label)
            bar.write(_row(A, s, k, label, kind, arg, args.seed), file=sys.stdout)
            bar.update(1)
    finally:
        bar.close()
    if not args.full:
        print("(randla demo --full adds the LAPACK and ARPACK references)")
    return 0


def _row(A, s, k, label, kind, arg, seed):
    from ..lowrank import estimate_error
    try:
        t, (U, S, Vh) = _timed(_method(A, k, kind, arg, seed))
    except ImportError as exc:
        return f"{label:<34}{'unavailable: ' + str(exc).splitlines()[0][:50]:>48}"
    # ||A - U S Vh||_2 by block Krylov on the residual: 4 probes and 6 steps agree with
    # randla.testing.spectral_error (10 and 12) to 1e-6 here, in a third of the time
    err = estimate_error(A, U, S, Vh, n_probes=4, n_iter=6, rng=0).estimate / s[k]
    rel = np.max(np.abs(np.sort(S)[::-1][:k] - s[:k]) / s[:k])
    return f"{label:<34}{t:>10.3f}{err:>18.4f}{rel:>20.2e}"


def _method(A, k, kind, arg, seed):
    """The computation a row times (Numba kernels compiled beforehand, outside the timing)."""
    from ..lowrank import rsvd
    if kind == "sketch":
        rsvd(A[:256, :128], 2, sketch=arg, rng=seed)
        return lambda: rsvd(A, k, sketch=arg, rng=seed)
    if kind == "krylov":
        return lambda: rsvd(A, k, method="krylov", rng=seed)
    if kind == "arpack":
        import scipy.sparse.linalg as spla
        return lambda: spla.svds(A, k, random_state=seed)
    import scipy.linalg as sla

    def lapack():
        U, S, Vh = sla.svd(A, full_matrices=False)
        return U[:, :k], S[:k], Vh[:k]
    return lapack
