"""``randla demo``: rsvd with every registered sketch on a matrix with a known spectrum, beside
LAPACK (scipy.linalg.svd) and ARPACK (scipy.sparse.linalg.svds)."""
from __future__ import annotations

import time

import numpy as np


def _timed(f):
    t0 = time.perf_counter()
    out = f()
    return time.perf_counter() - t0, out


def add_arguments(parser):
    parser.add_argument("--m", type=int, default=20000, help="rows of the test matrix")
    parser.add_argument("--n", type=int, default=2000, help="columns of the test matrix")
    parser.add_argument("--k", type=int, default=50, help="rank")
    parser.add_argument("--seed", type=int, default=0, help="seed of matrix and sketches")
    parser.add_argument("--no-lapack", action="store_true",
                        help="skip the full scipy.linalg.svd reference (the slowest row)")


def run(args):
    import scipy.linalg as sla
    import scipy.sparse.linalg as spla

    from .. import sketch as _sketch
    from ..lowrank import rsvd
    from ..testing import matrix_with_spectrum, spectral_error

    m, n, k = args.m, args.n, args.k
    if not 1 <= k < min(m, n):
        raise SystemExit(f"randla demo: need 1 <= k < min(m, n) = {min(m, n)}, got k={k}")
    s = 1.0 / (1.0 + np.arange(min(m, n))) ** 1.5
    t_build, A = _timed(lambda: matrix_with_spectrum(m, n, s, rng=args.seed))
    print(f"test matrix {m} x {n} float64, sigma_i = (i+1)^-1.5, built in {t_build:.2f} s; "
          f"k = {k}, sigma_(k+1) = {s[k]:.3e}")
    print(f"{'method':<34}{'time [s]':>10}{'err/sigma_(k+1)':>18}{'max rel err s_1..k':>20}")

    def row(name, f):
        try:
            t, (U, S, Vh) = _timed(f)
        except ImportError as exc:
            print(f"{name:<34}{'unavailable: ' + str(exc).splitlines()[0][:50]:>48}")
            return
        err = spectral_error(A, U, S, Vh) / s[k]
        rel = np.max(np.abs(np.sort(S)[::-1][:k] - s[:k]) / s[:k])
        print(f"{name:<34}{t:>10.3f}{err:>18.4f}{rel:>20.2e}")

    for name in _sketch.available():
        try:  # compile the sketch's Numba kernels outside the timing
            rsvd(A[:256, :128], 2, sketch=name, rng=args.seed)
        except ImportError:
            pass
        row(f"randla.rsvd sketch={name}", lambda: rsvd(A, k, sketch=name, rng=args.seed))
    row("randla.rsvd method=krylov", lambda: rsvd(A, k, method="krylov", rng=args.seed))
    row("scipy.sparse.linalg.svds (ARPACK)",
        lambda: spla.svds(A, k, random_state=args.seed))
    if not args.no_lapack:
        row("scipy.linalg.svd (LAPACK, full)", lambda: _truncate(sla.svd(A, full_matrices=False), k))
    return 0


def _truncate(usv, k):
    U, S, Vh = usv
    return U[:, :k], S[:k], Vh[:k]
