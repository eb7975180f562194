"""``randla demo``: rsvd with every registered sketch on a matrix with a known spectrum, beside
LAPACK (scipy.linalg.svd) and ARPACK (scipy.sparse.linalg.svds)."""
from __future__ import annotations

import time

import numpy as np
import scipy.fft

from ._validation import check_random_state


def _mix(X, signs):
    """Two rounds of random signs + orthonormal DCT along axis 0: an orthogonal map that
    spreads every row over all rows (as a subsampled randomized transform does)."""
    for s in signs:
        X = scipy.fft.dct(X * s[:, None], axis=0, norm="ortho", workers=-1)
    return X


def matrix_with_spectrum(m, n, s, *, dtype=np.float64, rng=0):
    """A = U diag(s) V^T with exactly the singular values ``s`` (len(s) <= min(m, n)).

    U and V are random orthonormal, built from randomized DCTs in O(m n log m) instead of a
    QR of a Gaussian matrix (20000 x 5000 in ~2 s instead of ~20 s).

    Examples
    --------
    >>> import numpy as np
    >>> from randla.demo import matrix_with_spectrum
    >>> A = matrix_with_spectrum(300, 100, 0.9 ** np.arange(100))
    >>> bool(np.allclose(np.linalg.svd(A, compute_uv=False), 0.9 ** np.arange(100)))
    True
    """
    gen = check_random_state(rng)
    s = np.asarray(s, dtype=np.float64)
    r = len(s)
    if r > min(m, n):
        raise ValueError(f"s has {r} values, more than min(m, n) = {min(m, n)}")
    # V^T: r rows of an orthogonal n x n map; U: r columns of an orthogonal m x m map
    E = np.zeros((n, r))
    E[gen.choice(n, r, replace=False), np.arange(r)] = 1.0
    Vt = _mix(E, gen.choice([-1.0, 1.0], (2, n))).T
    Z = np.zeros((m, n))
    Z[gen.choice(m, r, replace=False)] = s[:, None] * Vt
    return np.ascontiguousarray(_mix(Z, gen.choice([-1.0, 1.0], (2, m))), dtype=dtype)


def spectral_error(A, U, S, Vh, rng=0):
    """||A - U diag(S) Vh||_2, estimated by block Krylov on the residual (a lower bound that
    is tight to a fraction of a percent here): a full SVD of the residual is too costly."""
    from .lowrank import estimate_error
    return estimate_error(A, U, S, Vh, n_probes=10, n_iter=12, rng=rng).estimate


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

    from . import sketch as _sketch
    from .lowrank import rsvd

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
