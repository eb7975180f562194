"""randla.lstsq against LAPACK (numpy gelsd, scipy gelsy) and unpreconditioned LSQR.

Goals (issues 5, 16): dense 40000 x 1000 (cond 1e6) and 200000 x 500 at equal backward error and
at the optimal residual (within 1e-8 relative, ``track_residual_excess_*``), >= 2x faster than
LAPACK's gelsd; sparse 10^6 x 200 with 3 nonzeros per row to relative residual 1e-10, >= 5x
faster than scipy's LSQR, plain and with the Jacobi (column-norm) preconditioner, the cheap
preconditioner a user would try first. Accuracy is tracked beside the times (track_*).

Run alone: ``python -m benchmarks.bench_lstsq [dense|sparse]`` prints medians of 3;
``python -m benchmarks.bench_lstsq profile`` the time of each phase of randla's dense path and
the ratio to scipy's gelsd timed alternately in one process (medians of 5, with the load).
"""
import importlib
import os
import time

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import randla
from randla._validation import seed_from_rng
from randla.operators import as_operator

from ._common import cached


def kw_backward_error(A, b, x, svd=None):
    """Karlson-Walden estimate of the relative backward error, with the exact SVD (of the R
    factor of A: same singular values and right vectors)."""
    if svd is None:
        svd = sla.svd(sla.qr(A, mode="r")[0][: A.shape[1]], full_matrices=False)
    _, s, Vh = svd
    r = b - A @ x
    mu = np.linalg.norm(r) / np.linalg.norm(x)
    c = Vh @ (A.T @ r)
    return float(np.sqrt(np.sum(c**2 / (s**2 + mu**2))) / np.linalg.norm(x) / np.linalg.norm(A))


def dense_problem(m, n, seed=0):
    """A with singular values logspace(0, -6): kappa = 1e6, b = A x + noise (||r|| ~ ||b||/3)."""
    rng = np.random.default_rng(seed)
    # a Haar-like basis in m dimensions is too costly to orthonormalize at 200000 x 500: use a
    # Gaussian matrix (condition ~ 1 + 2 sqrt(n/m)) times a graded diagonal and a rotation
    G = rng.standard_normal((m, n)) / np.sqrt(m)
    V = np.linalg.qr(rng.standard_normal((n, n)))[0]
    A = G @ (np.logspace(0, -6, n)[:, None] * V.T)
    b = A @ rng.standard_normal(n) + 0.5 * np.linalg.norm(A @ np.ones(n)) / np.sqrt(m) \
        * rng.standard_normal(m)
    return np.ascontiguousarray(A), b


class DenseLstsq:
    # one axis whose values are shapes (a flat list of tuples would read as two axes)
    params = [[(40000, 1000), (200000, 500)]]
    param_names = ["shape"]
    timeout = 600
    number = 1
    repeat = 3

    def setup(self, shape):
        self.A, self.b = cached(("lstsq", shape), lambda: dense_problem(*shape))

    def _solve(self, which):
        A, b = self.A, self.b
        if which == "randla":
            return randla.lstsq(A, b, rng=0).x
        if which == "randla_sap":
            return randla.lstsq(A, b, method="sap", rng=0).x
        if which == "numpy_gelsd":
            return np.linalg.lstsq(A, b, rcond=None)[0]
        if which == "scipy_gelsd":
            return sla.lstsq(A, b, lapack_driver="gelsd", check_finite=False)[0]
        return sla.lstsq(A, b, lapack_driver="gelsy", check_finite=False)[0]

    def time_randla(self, shape):
        self._solve("randla")

    def time_randla_sap(self, shape):
        self._solve("randla_sap")

    def time_numpy_gelsd(self, shape):
        self._solve("numpy_gelsd")

    def time_scipy_gelsd(self, shape):
        self._solve("scipy_gelsd")

    def time_scipy_gelsy(self, shape):
        self._solve("scipy_gelsy")

    def track_backward_error_randla(self, shape):
        return kw_backward_error(self.A, self.b, self._solve("randla"))

    def track_backward_error_numpy_gelsd(self, shape):
        return kw_backward_error(self.A, self.b, self._solve("numpy_gelsd"))

    def track_residual_excess_randla(self, shape):
        """(||b - A x|| - ||b - A x_gelsd||) / ||b - A x_gelsd||: the goal is |.| <= 1e-8."""
        r = np.linalg.norm(self.b - self.A @ self._solve("randla"))
        r_opt = np.linalg.norm(self.b - self.A @ self._solve("numpy_gelsd"))
        return float((r - r_opt) / r_opt)


def sparse_problem(m=1_000_000, n=200, nnz_per_row=3, scaled=True, seed=0):
    """3 nonzeros per row in random columns; with ``scaled`` the columns are scaled by
    logspace(0, 3), so kappa ~ 1e3 and plain LSQR needs hundreds of iterations."""
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(m), nnz_per_row)
    cols = rng.integers(0, n, size=m * nnz_per_row)
    vals = rng.standard_normal(m * nnz_per_row)
    A = sp.csr_matrix((vals, (rows, cols)), shape=(m, n))
    if scaled:
        A = (A @ sp.diags(np.logspace(0, 3, n))).tocsr()
    b = A @ rng.standard_normal(n) + rng.standard_normal(m)
    return A, b


def jacobi_lsqr(A, b, tol):
    """scipy's LSQR on A D, D = diag(1 / ||a_j||) (Jacobi, i.e. column-norm, preconditioning):
    x = D y. LSQR's tests then apply to A D; it stops at the same relative tolerances."""
    norms = np.sqrt(np.asarray(A.multiply(A).sum(axis=0))).ravel()
    d = 1.0 / np.where(norms > 0, norms, 1.0)
    y = spla.lsqr((A @ sp.diags(d)).tocsr(), b, atol=tol, btol=tol, iter_lim=100_000)[0]
    return d * y


def lsqr_relative_residual(A, b, x):
    """LSQR's own stopping quantity ||A^T r|| / (||A||_F ||r||)."""
    r = b - A @ x
    return float(np.linalg.norm(A.T @ r) / (sp.linalg.norm(A) * np.linalg.norm(r)))


class SparseLstsq:
    params = [True, False]
    param_names = ["column_scaled"]
    timeout = 900
    number = 1
    repeat = 3
    tol = 1e-10

    def setup(self, scaled):
        self.A, self.b = sparse_problem(scaled=scaled)

    def _solve(self, which):
        if which == "randla":
            return randla.lstsq(self.A, self.b, method="sap", tol=self.tol, rng=0).x
        if which == "lsqr_jacobi":
            return jacobi_lsqr(self.A, self.b, self.tol)
        return spla.lsqr(self.A, self.b, atol=self.tol, btol=self.tol, iter_lim=100_000)[0]

    def time_randla_sap(self, scaled):
        self._solve("randla")

    def time_scipy_lsqr(self, scaled):
        self._solve("lsqr")

    def track_relres_randla(self, scaled):
        return lsqr_relative_residual(self.A, self.b, self._solve("randla"))

    def track_relres_scipy_lsqr(self, scaled):
        return lsqr_relative_residual(self.A, self.b, self._solve("lsqr"))

    def time_scipy_lsqr_jacobi(self, scaled):
        self._solve("lsqr_jacobi")

    def track_relres_scipy_lsqr_jacobi(self, scaled):
        return lsqr_relative_residual(self.A, self.b, self._solve("lsqr_jacobi"))


def median_time(fun, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fun()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def profile(shape=(40000, 1000), repeat=5):
    """Where randla.lstsq's time goes on the dense problem (the phases of its default path run
    one by one), then randla and scipy's gelsd timed alternately in this process: medians of
    ``repeat``, with the load average (the machine may be shared)."""
    L = importlib.import_module("randla.solvers.lstsq")
    A, b = dense_problem(*shape)
    m, n = shape
    B = b[:, None]
    phases = {}

    def clock(name, fun):
        t0 = time.perf_counter()
        out = fun()
        phases.setdefault(name, []).append(time.perf_counter() - t0)
        return out

    iterations = 0
    for _ in range(repeat):
        op = as_operator(A, check_finite_values=False)
        d = L._sketch_factor("iterative_sketching", m, n, 0.0) * n + 10
        S = L._make_sketch(None, d, m, seed_from_rng(0), op)
        SA = clock("sketch S @ A", lambda: L._sketch_dense(S, op))
        op, SA, Bs, *_ = clock("NaN check + scale (from SA)",
                               lambda: L._check_and_balance_from_sketch(op, S, SA, B))
        pre = clock("preconditioner (Gram, Cholesky)",
                    lambda: L.SketchPreconditioner(SA, S @ Bs, 0.0, cholesky=True))
        out = clock("iterations", lambda: L._iterative_sketching(
            op, Bs, pre.sketch_solution, pre, 0.0, None, None, n, d))
        iterations = out[1] + 1   # passes: the last one's step is not taken
        clock("one pass (r, A^T r)", lambda: L.residual_and_gradient(op, Bs, out[0]))
    print(f"dense {shape}, d = {d}, {iterations} passes in the iterations")
    for name, ts in phases.items():
        print(f"  {name:32s} {1e3 * np.median(ts):8.1f} ms")
    ours, theirs = [], []
    for _ in range(repeat):
        ours.append(median_time(lambda: randla.lstsq(A, b, rng=0), repeat=1)[0])
        theirs.append(median_time(lambda: sla.lstsq(A, b, lapack_driver="gelsd",
                                                    check_finite=False), repeat=1)[0])
    t_ours, t_theirs = float(np.median(ours)), float(np.median(theirs))
    print(f"  randla.lstsq {t_ours:.3f} s, scipy gelsd {t_theirs:.3f} s: {t_theirs / t_ours:.2f}x "
          f"(medians of {repeat}, alternating; load average {os.getloadavg()[0]:.2f})")


def main(which="dense"):
    if which == "profile":
        for shape in DenseLstsq.params[0]:
            profile(shape)
        return
    if which == "dense":
        for shape in DenseLstsq.params[0]:
            suite = DenseLstsq()
            suite.setup(shape)
            svd = sla.svd(sla.qr(suite.A, mode="r")[0][: shape[1]], full_matrices=False)
            for name in ["randla", "randla_sap", "numpy_gelsd", "scipy_gelsd", "scipy_gelsy"]:
                t, x = median_time(lambda: suite._solve(name))
                print(f"dense {shape} {name:12s} {t:8.3f} s  backward error "
                      f"{kw_backward_error(suite.A, suite.b, x, svd):.2e}", flush=True)
    else:
        for scaled in SparseLstsq.params:
            suite = SparseLstsq()
            suite.setup(scaled)
            for name in ["randla", "lsqr_jacobi", "lsqr"]:
                # plain LSQR on the scaled matrix takes minutes: timed once
                t, x = median_time(lambda: suite._solve(name),
                                   repeat=1 if (scaled and name == "lsqr") else 3)
                print(f"sparse scaled={scaled} {name:11s} {t:8.3f} s  relres "
                      f"{lsqr_relative_residual(suite.A, suite.b, x):.2e}", flush=True)


if __name__ == "__main__":
    import sys

    main(*sys.argv[1:])
