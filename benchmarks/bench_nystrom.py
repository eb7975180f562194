"""Nystrom and kernel methods against the scikit-learn peers.

- KernelRidge (RPCholesky landmarks) vs ``Nystroem + Ridge`` (uniform landmarks) at equal rank,
  and vs exact ``sklearn.kernel_ridge.KernelRidge`` on 20000 points (a 3.2 GB kernel matrix).
- nystrom_pcg vs plain CG (scipy) on a 20000-point kernel system.

Run as a script for one locked comparison: ``python benchmarks/bench_nystrom.py krr 20000``,
``... krr 100000``, ``... exact 20000``, ``... pcg 20000`` (``krr N repeats rank``).
"""
import sys
import time

import numpy as np
import scipy.sparse.linalg as spla

N_FEATURES = 5
BANDWIDTH = 1.5
ALPHA = 1e-3        # ridge parameter of every KRR model (sklearn's alpha: K + alpha I)
RANK = 1000         # landmarks of both Nystrom models
N_TEST = 5000
PCG_MU = 1e-1
PCG_TOL = 1e-6


def regression_data(n, seed=0):
    """X ~ N(0, I_5) and a smooth target plus noise of sd 0.1; also the noiseless target."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, N_FEATURES))
    f = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + np.cos(X[:, 3] + X[:, 4])
    return X, f + 0.1 * rng.standard_normal(n), f


def rmse(model, Xt, ft):
    return float(np.sqrt(np.mean((model.predict(Xt) - ft) ** 2)))


def randla_krr(X, y, rank=RANK):
    from randla import KernelRidge
    return KernelRidge(alpha=ALPHA, bandwidth=BANDWIDTH, n_components=rank,
                       random_state=0).fit(X, y)


def sklearn_nystroem_ridge(X, y, rank=RANK):
    from sklearn.kernel_approximation import Nystroem
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    return make_pipeline(Nystroem(gamma=1 / (2 * BANDWIDTH**2), n_components=rank,
                                  random_state=0),
                         Ridge(alpha=ALPHA, fit_intercept=False)).fit(X, y)


def sklearn_exact_krr(X, y):
    from sklearn.kernel_ridge import KernelRidge
    return KernelRidge(alpha=ALPHA, kernel="rbf", gamma=1 / (2 * BANDWIDTH**2)).fit(X, y)


class _RegressionSuite:
    param_names = ["n"]
    timeout = 900
    number = 1

    def setup(self, n):
        self.X, self.y, _ = regression_data(n)
        self.Xt, _, self.ft = regression_data(N_TEST, seed=1)


class KernelRidgeSuite(_RegressionSuite):
    """Nystrom KRR at equal rank: RPCholesky landmarks (randla) vs uniform (scikit-learn)."""

    params = [20000, 100000]
    repeat = 3

    def time_randla_krr(self, n):
        randla_krr(self.X, self.y)

    def time_sklearn_nystroem_ridge(self, n):
        sklearn_nystroem_ridge(self.X, self.y)

    def track_rmse_randla_krr(self, n):
        return rmse(randla_krr(self.X, self.y), self.Xt, self.ft)

    def track_rmse_sklearn_nystroem_ridge(self, n):
        return rmse(sklearn_nystroem_ridge(self.X, self.y), self.Xt, self.ft)


class ExactKernelRidgeSuite(_RegressionSuite):
    """Exact KRR (scikit-learn, 3.2 GB kernel matrix at n = 20000): run under the bench lock."""

    params = [20000]
    repeat = 1

    def time_sklearn_exact_krr(self, n):
        sklearn_exact_krr(self.X, self.y)

    def track_rmse_sklearn_exact_krr(self, n):
        return rmse(sklearn_exact_krr(self.X, self.y), self.Xt, self.ft)


def kernel_system(n, seed=0):
    """The dense rbf kernel matrix of n points (n = 20000: 3.2 GB) and a right-hand side."""
    from randla import KernelMatrix
    X, y, _ = regression_data(n, seed)
    return KernelMatrix(X, "rbf", bandwidth=BANDWIDTH).to_dense(), y


def run_nystrom_pcg(K, b):
    from randla import nystrom_pcg
    return nystrom_pcg(K, b, PCG_MU, tol=PCG_TOL, rng=0)


def run_plain_cg(K, b):
    """scipy's CG on (K + mu I) x = b; returns (x, iterations)."""
    count = [0]
    op = spla.LinearOperator(K.shape, matvec=lambda v: K @ v + PCG_MU * v, dtype=K.dtype)
    x, info = spla.cg(op, b, rtol=PCG_TOL, maxiter=20 * K.shape[0],
                      callback=lambda xk: count.__setitem__(0, count[0] + 1))
    if info != 0:
        raise RuntimeError(f"scipy cg did not converge (info={info})")
    return x, count[0]


class NystromPCGSuite:
    """Nystrom-preconditioned CG vs plain CG on (K + mu I) x = b, K a 20000-point rbf kernel."""

    params = [20000]
    param_names = ["n"]
    timeout = 900
    number = 1
    repeat = 1

    def setup(self, n):
        self.K, self.b = kernel_system(n)

    def time_nystrom_pcg(self, n):
        run_nystrom_pcg(self.K, self.b)

    def time_plain_cg(self, n):
        run_plain_cg(self.K, self.b)

    def track_iterations_nystrom_pcg(self, n):
        return run_nystrom_pcg(self.K, self.b).iterations

    def track_iterations_plain_cg(self, n):
        return run_plain_cg(self.K, self.b)[1]


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def main(argv):
    """One comparison per call, printed as one line per measurement."""
    what, n = argv[0], int(argv[1])
    repeats = int(argv[2]) if len(argv) > 2 else 1
    rank = int(argv[3]) if len(argv) > 3 else RANK
    if what in ("krr", "exact"):
        X, y, _ = regression_data(n)
        Xt, _, ft = regression_data(N_TEST, seed=1)
        runs = ({"randla_krr": randla_krr, "sklearn_nystroem_ridge": sklearn_nystroem_ridge}
                if what == "krr" else {"sklearn_exact_krr": sklearn_exact_krr})
        for name, fit in runs.items():
            args = () if what == "exact" else (rank,)
            fit(X[:300], y[:300], *(() if what == "exact" else (50,)))  # warm up the JIT
            times = []
            for _ in range(repeats):
                model, t = _timed(fit, X, y, *args)
                times.append(t)
            print(f"{name} n={n} rank={rank if what == 'krr' else n} "
                  f"median_fit_s={np.median(times):.2f} times={np.round(times, 2).tolist()} "
                  f"test_rmse={rmse(model, Xt, ft):.4f}", flush=True)
    elif what == "pcg":
        run_nystrom_pcg(*kernel_system(300))  # warm up JIT
        K, b = kernel_system(n)
        res, t_pcg = _timed(run_nystrom_pcg, K, b)
        (x_cg, it_cg), t_cg = _timed(run_plain_cg, K, b)
        rel = np.linalg.norm(res.x - x_cg) / np.linalg.norm(x_cg)
        print(f"nystrom_pcg n={n} mu={PCG_MU} rank={res.preconditioner.rank} "
              f"iterations={res.iterations} time_s={t_pcg:.2f}", flush=True)
        print(f"plain_cg n={n} iterations={it_cg} time_s={t_cg:.2f} rel_diff={rel:.1e}")
        print(f"ratios: iterations {it_cg / res.iterations:.1f}x fewer, "
              f"wall time {t_cg / t_pcg:.2f}x faster")
    else:
        raise SystemExit("usage: bench_nystrom.py {krr,exact,pcg} N [repeats]")


if __name__ == "__main__":
    main(sys.argv[1:])
