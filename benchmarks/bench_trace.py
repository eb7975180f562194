"""randla.trace against its peers, same matrices, same matvec budget.

- pylops.utils.trace_hutchinson / trace_hutchpp / trace_nahutchpp vs randla's hutchinson /
  hutchpp / na_hutchpp (and randla's xtrace / xnystrace, which pylops lacks), on symmetric
  A = Q diag(lambda) Q^T, n = 2000, m = 120 products, Rademacher vectors on both sides.
- imate.logdet(method="slq") vs randla.trace.logdet on the shifted 2-D grid Laplacian
  L + I (n = 300^2), whose log-determinant is known in closed form; 20 vectors x 30 steps.
- A 10^6-node random geometric graph: logdet(L + I) and triangles tr(A^3) / 6 (``Graph``; also
  ``python benchmarks/bench_trace.py graph`` prints error, time and memory).

``time_*`` are seconds per estimate, ``track_*`` mean relative errors over seeded trials.
"""
import sys
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp

import randla.trace as rt

M = 120
TRIALS = 10
SPECTRA = {
    "flat": lambda n: np.random.default_rng(1).uniform(0.5, 1.5, n),
    "poly2": lambda n: np.arange(1, n + 1) ** -2.0,
    "exp0.9": lambda n: 0.9 ** np.arange(n),
}
PEERS = {"hutchinson": "trace_hutchinson", "hutchpp": "trace_hutchpp",
         "na_hutchpp": "trace_nahutchpp"}


def symmetric_with_spectrum(lam, seed=0):
    n = len(lam)
    Q = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))[0]
    return (Q * lam) @ Q.T


def _pylops(name):
    import pylops.utils
    return getattr(pylops.utils, PEERS[name])


class TraceVsPylops:
    params = (list(SPECTRA), list(PEERS))
    param_names = ["spectrum", "method"]
    timeout = 300

    def setup(self, spectrum, method):
        import pylops
        lam = SPECTRA[spectrum](2000)
        self.A = symmetric_with_spectrum(lam)
        self.tr = lam.sum()
        self.Op = pylops.MatrixMult(self.A)
        self.ours = getattr(rt, method)
        self.theirs = _pylops(method)

    def _pylops_estimate(self, seed):
        np.random.seed(seed)  # noqa: NPY002 - pylops draws from the global numpy generator
        return float(np.real(self.theirs(self.Op, neval=M, sampler="rademacher")))

    def time_randla(self, spectrum, method):
        self.ours(self.A, M, rng=0)

    def time_pylops(self, spectrum, method):
        self._pylops_estimate(0)

    def track_error_randla(self, spectrum, method):
        return float(np.mean([abs(self.ours(self.A, M, rng=s) - self.tr) / self.tr
                              for s in range(TRIALS)]))

    def track_error_pylops(self, spectrum, method):
        return float(np.mean([abs(self._pylops_estimate(s) - self.tr) / self.tr
                              for s in range(TRIALS)]))


class Exchangeable:
    """randla's XTrace / XNysTrace on the same matrices and budget (no pylops counterpart)."""
    params = (list(SPECTRA), ["xtrace", "xnystrace", "nystrompp"])
    param_names = ["spectrum", "method"]
    timeout = 300

    def setup(self, spectrum, method):
        lam = SPECTRA[spectrum](2000)
        self.A, self.tr, self.ours = symmetric_with_spectrum(lam), lam.sum(), getattr(rt, method)

    def time_randla(self, spectrum, method):
        self.ours(self.A, M, rng=0)

    def track_error_randla(self, spectrum, method):
        return float(np.mean([abs(self.ours(self.A, M, rng=s) - self.tr) / self.tr
                              for s in range(TRIALS)]))


def grid_laplacian_plus_identity(side):
    """L + I for the 2-D grid Laplacian (side^2 nodes) and its exact log-determinant."""
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(side, side))
    I = sp.eye(side)
    A = (sp.kron(T, I) + sp.kron(I, T) + sp.eye(side * side)).tocsr()
    mu = 2 - 2 * np.cos(np.arange(1, side + 1) * np.pi / (side + 1))
    return A, float(np.sum(np.log(mu[:, None] + mu[None, :] + 1.0)))


class LogdetVsImate:
    """imate's own log-determinant benchmark setting: SLQ with 20 Rademacher vectors of 30
    Lanczos steps on L + I, without and with full reorthogonalization. Both are the same
    estimator (Rademacher probes, 30-node Gauss quadrature), so at equal samples and degree
    they have equal error in distribution; ``track_error_*`` checks it as the mean relative
    error over ``trials`` seeds (goal, issue 16: randla's time <= imate's at equal error).
    """
    params = (["none", "full"],)
    param_names = ["reorth"]
    samples, degree, trials = 20, 30, 8
    timeout = 300

    def setup(self, reorth):
        self.A, self.exact = grid_laplacian_plus_identity(300)

    def _imate(self, seed, reorth):
        import imate
        return imate.logdet(self.A, method="slq", min_num_samples=self.samples,
                            max_num_samples=self.samples, lanczos_degree=self.degree,
                            orthogonalize=0 if reorth == "none" else -1, error_rtol=1e-14,
                            seed=seed, verbose=False)

    def _randla(self, seed, reorth):
        return rt.logdet(self.A, self.samples * self.degree, degree=self.degree,
                         reorth=reorth, rng=seed)

    def time_randla(self, reorth):
        self._randla(0, reorth)

    def time_imate(self, reorth):
        self._imate(0, reorth)

    def track_error_randla(self, reorth):
        return float(np.mean([abs(self._randla(s, reorth) - self.exact) / self.exact
                              for s in range(self.trials)]))

    def track_error_imate(self, reorth):
        return float(np.mean([abs(self._imate(s, reorth) - self.exact) / self.exact
                              for s in range(self.trials)]))


# -- the 10^6-node graph ------------------------------------------------------------------------
def random_geometric_graph(n, degree=10, seed=0):
    """Adjacency of a random geometric graph on the unit torus with mean degree ``degree``:
    clustered (many triangles) and sparse (nnz ~ degree n)."""
    from scipy.spatial import cKDTree
    pts = np.random.default_rng(seed).random((n, 2))
    r = np.sqrt(degree / (np.pi * n))
    pairs = cKDTree(pts, boxsize=1.0).query_pairs(r, output_type="ndarray")
    A = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return (A + A.T).tocsr()


def exact_triangles(A, rows=100_000):
    """Triangles = sum((A^2) o A) / 6, computed in row blocks to bound memory."""
    total = 0.0
    for i in range(0, A.shape[0], rows):
        Ai = A[i:i + rows]
        total += (Ai @ A).multiply(Ai).sum()
    return total / 6


def exact_logdet_shifted_laplacian(A):
    """log det(L + I) by a sparse LU (SPD, diagonally dominant: no pivoting needed)."""
    import scipy.sparse.linalg as spla
    deg = np.asarray(A.sum(axis=1)).ravel()
    M = (sp.diags(deg + 1.0) - A).tocsc()
    lu = spla.splu(M, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                   options=dict(SymmetricMode=True))
    return float(np.sum(np.log(np.abs(lu.U.diagonal()))))


def cube_operator(A):
    import scipy.sparse.linalg as spla
    mm = lambda X: A @ (A @ (A @ X))
    return spla.LinearOperator(A.shape, matvec=mm, matmat=mm, rmatmat=mm, dtype=A.dtype)


def shifted_laplacian(A):
    deg = np.asarray(A.sum(axis=1)).ravel()
    return (sp.diags(deg + 1.0) - A).tocsr()


def measure(func):
    """(result, seconds, peak MiB allocated through numpy during the call)."""
    tracemalloc.start()
    t = time.perf_counter()
    out = func()
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out, seconds, peak


class Graph:
    """10^6-node random geometric graph (mean degree 10): triangle count and log det(L + I)."""
    timeout = 1800
    number, repeat = 1, 1
    n = 10**6

    def setup_cache(self):
        A = random_geometric_graph(self.n)
        return A, exact_triangles(A)

    def time_triangles_xtrace(self, cache):
        rt.xtrace(cube_operator(cache[0]), 100, rng=0)

    def track_triangles_rel_error(self, cache):
        A, tri = cache
        return abs(rt.xtrace(cube_operator(A), 100, rng=0) / 6 - tri) / tri

    def time_logdet(self, cache):
        rt.logdet(shifted_laplacian(cache[0]), 30 * 16, degree=30, reorth="none", rng=0)


def graph_report(part, n=10**6, reference=None, seeds=3):
    """Print error, time and peak memory of the 10^6-node graph estimates. ``part`` is
    "reference" (exact triangles and logdet, slow: run outside the benchmark lock),
    "triangles" or "logdet" (``reference`` = the exact value printed by "reference")."""
    A, gen_s, _ = measure(lambda: random_geometric_graph(n))
    print(f"graph: n={n}, nnz={A.nnz}, generated in {gen_s:.1f} s")
    if part == "reference":
        tri, sec, mb = measure(lambda: exact_triangles(A))
        print(f"exact triangles {tri:.0f} (sparse products, {sec:.1f} s, peak {mb:.0f} MiB)")
        ref, sec, mb = measure(lambda: exact_logdet_shifted_laplacian(A))
        print(f"exact logdet(L+I) {ref:.10e} (sparse LU, {sec:.1f} s, peak {mb:.0f} MiB)")
    elif part == "triangles":
        C = cube_operator(A)
        for method, m in [("hutchinson", 100), ("hutchpp", 99), ("xtrace", 100)]:
            for s in range(seeds):
                est, sec, mb = measure(lambda: getattr(rt, method)(C, m, rng=s))
                print(f"triangles {method:10s} m={m:3d} seed={s}: {est / 6:.0f} rel.err "
                      f"{abs(est / 6 - reference) / reference:.2e} (reported "
                      f"{est.error / est:.1e}) {sec:.1f} s, peak {mb:.0f} MiB")
    else:
        L = shifted_laplacian(A)
        for degree, nv in [(30, 32)]:
            for s in range(seeds):
                est, sec, mb = measure(lambda: rt.logdet(L, degree * nv, degree=degree,
                                                         reorth="none", rng=s))
                print(f"logdet degree={degree} vectors={nv} seed={s}: {est:.6e} rel.err "
                      f"{abs(est - reference) / abs(reference):.2e} (reported "
                      f"{est.error / abs(est):.1e}) {sec:.1f} s, peak {mb:.0f} MiB")


def logdet_vs_imate_report(repeat=7):
    """Print the median wall and CPU times (alternating runs, same process) and the mean error
    of randla and imate, with the load average before and after: on a shared machine the CPU
    time (both use all threads) is the steadier measure, the lead's quiet run the reference."""
    import os
    suite = LogdetVsImate()
    suite.setup("none")
    for run in (suite._randla, suite._imate):
        run(0, "none")                                  # compile / load
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    for reorth in LogdetVsImate.params[0]:
        wall = {"randla": [], "imate": []}
        cpu = {"randla": [], "imate": []}
        for seed in range(repeat):
            for name, run in (("randla", suite._randla), ("imate", suite._imate)):
                t, c = time.perf_counter(), time.process_time()
                run(seed, reorth)
                wall[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
        w_r, w_i = np.median(wall["randla"]), np.median(wall["imate"])
        c_r, c_i = np.median(cpu["randla"]), np.median(cpu["imate"])
        print(f"reorth={reorth}: wall randla {w_r:.3f} s, imate {w_i:.3f} s (imate/randla "
              f"{w_i / w_r:.2f}); CPU randla {c_r:.3f} s, imate {c_i:.3f} s ({c_i / c_r:.2f}); "
              f"mean rel. error randla {suite.track_error_randla(reorth):.2e}, imate "
              f"{suite.track_error_imate(reorth):.2e}; load average "
              f"{os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    # python benchmarks/bench_trace.py graph {reference|triangles|logdet} [exact value]
    if sys.argv[1:2] == ["graph"]:
        graph_report(sys.argv[2], reference=float(sys.argv[3]) if len(sys.argv) > 3 else None)
    elif sys.argv[1:2] == ["imate"]:
        logdet_vs_imate_report()
