"""SparseOperator's products with a dense block (the Numba kernels of
randla/operators/_spmm.py) against scipy.sparse's ``A @ X`` and ``A.T @ Y``, on the same
matrices and blocks in the same run, reported as a ratio (scipy's time over randla's).

Matrices (CSR, uniform [0, 1) values): "wide" 2000 x 10^6 at density 1e-4 (2e5 entries),
"tall" 200000 x 50000 at density 1e-3 (1e7 entries), in float64 and float32; C-ordered blocks
of 20 and 60 columns: the shapes of randla's randomized SVD on sparse data.

asv: ``asv run --python=same --quick -b bench_sparse_products``. Plain script, interleaved
rounds, medians: ``python benchmarks/bench_sparse_products.py [wide|tall|wide,tall] [rounds]``.

Measured with the plain script: three runs on 2 threads (each cell of a run: median of 9
calls each way, interleaved) and two on 1 thread (NUMBA_NUM_THREADS=1), on the shared 2-core
machine. Other developers' tests kept one core busy during most of them (load average 1.5-3.2;
a pure-compute Numba kernel then ran no faster on 2 threads than on 1); the second and third
2-thread runs had idle spells (the third began on an idle machine, where that kernel ran twice
as fast on 2 threads), which is where their larger ratios come from. Times in ms, randla /
scipy, median over the runs; "ratios" is scipy's time over randla's in each run:

  matrix dtype   k  | 2 threads: A @ X         ratios           A^T Y                   ratios
  wide   float64 20 |   6.5 /   12.0 (1.85x)  1.36 1.88 3.24 |  19.1 /   23.7 (1.24x)  0.91 1.24 1.47
  wide   float64 60 |  13.9 /   31.0 (2.23x)  2.24 2.20 3.52 |  48.5 /   67.5 (1.39x)  1.04 1.39 1.90
  wide   float32 20 |   3.5 /    8.1 (2.31x)  1.08 2.03 3.38 |  16.1 /   12.1 (0.75x)  0.75 0.50 1.59
  wide   float32 60 |   6.8 /   15.5 (2.28x)  1.89 2.87 2.50 |  23.4 /   34.8 (1.49x)  0.95 1.43 1.93
  tall   float64 20 |  57.6 /  102.0 (1.77x)  1.45 1.67 4.80 |  73.0 /  120.9 (1.66x)  0.84 2.04 1.72
  tall   float64 60 | 337.0 / 1032.3 (3.06x)  3.06 3.76 3.45 | 228.0 / 1014.5 (4.45x)  4.45 8.89 4.82
  tall   float32 20 |  63.8 /   83.4 (1.31x)  1.31 1.33 1.22 |  80.0 /   52.1 (0.65x)  0.62 1.18 0.58
  tall   float32 60 |  96.8 /  167.1 (1.73x)  1.73 2.94 1.61 | 144.0 /  211.9 (1.47x)  1.30 2.25 1.47

  1 thread, ratios of the two runs (A @ X; A^T Y): wide float64 20: 1.76 1.72; 1.05 0.98.
  wide float64 60: 2.15 2.46; 1.10 0.96. wide float32 20: 1.79 1.63; 0.99 0.81. wide float32
  60: 1.77 1.89; 1.07 1.10. tall float64 20: 1.70 1.43; 1.26 1.61. tall float64 60: 2.83 2.96;
  5.02 5.13. tall float32 20: 1.13 1.11; 0.91 0.90. tall float32 60: 1.75 1.62; 1.75 1.64.

scipy runs on one thread either way. randla.rsvd(A, 50, rng=0) on the tall float64 matrix, in
the same session (loaded): 11.2 s with the kernels against 21.1 s with scipy's products
(medians of 3, interleaved; the same singular values).

The wide products are dominated by memory: A @ X reads 2e5 scattered rows of the 10^6-row X,
A^T Y writes a 10^6-row result (fresh pages, for scipy as for randla). In the tall A^T Y,
randla scatters into parts of the 50000-row output (scipy scatters into all of it, on one
thread); with 20 float32 columns its whole output (4 MB) stays in cache, and randla's scatter
is no faster than scipy's on one core (0.9x) and slower when its two threads share one.
"""
import os
import sys
import time

import numpy as np
import scipy.sparse as sp

from randla.operators import as_operator

try:
    from ._common import cached
except ImportError:   # run as a script: python benchmarks/bench_sparse_products.py
    from _common import cached

MATRICES = {"wide": ((2000, 1_000_000), 1e-4), "tall": ((200_000, 50_000), 1e-3)}
PRODUCTS = ["A @ X", "A^T Y"]


def build(matrix, dtype):
    (m, n), density = MATRICES[matrix]
    A = sp.random(m, n, density=density, format="csr", dtype=np.dtype(dtype),
                  random_state=np.random.default_rng(0))
    return A, as_operator(A)


def products(A, op, k, product):
    """(randla's call, scipy's call) for one product with a fresh block of k columns."""
    rng = np.random.default_rng(1)
    if product == "A @ X":
        X = rng.standard_normal((A.shape[1], k)).astype(A.dtype)
        return (lambda: op.matmat(X)), (lambda: A @ X)
    Y = rng.standard_normal((A.shape[0], k)).astype(A.dtype)
    return (lambda: op.rmatmat(Y)), (lambda: A.T @ Y)


def interleaved_medians(fns, rounds=3, calls=3):
    """Median seconds of each function, its calls interleaved with the others' in rounds
    (a neighbour's load then weighs on all of them alike)."""
    times = {name: [] for name in fns}
    for f in fns.values():
        f()   # compile, build caches
    for _ in range(rounds):
        for name, f in fns.items():
            for _ in range(calls):
                t = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t)
    return {name: float(np.median(v)) for name, v in times.items()}


class SparseProducts:
    params = (list(MATRICES), ["float64", "float32"], [20, 60], PRODUCTS)
    param_names = ["matrix", "dtype", "k", "product"]
    timeout = 600
    number = 1
    repeat = 5

    def setup(self, matrix, dtype, k, product):
        A, op = cached((matrix, dtype), lambda: build(matrix, dtype))
        self.ours, self.theirs = products(A, op, k, product)
        self.ours()   # compile the kernels, build the operator's caches

    def time_randla(self, matrix, dtype, k, product):
        self.ours()

    def time_scipy(self, matrix, dtype, k, product):
        self.theirs()

    def track_speedup_vs_scipy(self, matrix, dtype, k, product):
        """scipy's time over randla's, medians of interleaved calls in the same run."""
        t = interleaved_medians({"randla": self.ours, "scipy": self.theirs})
        return t["scipy"] / t["randla"]

    track_speedup_vs_scipy.unit = "x"


def main(which="wide,tall", rounds=3):
    print(f"load: {os.getloadavg()}")
    for matrix in which.split(","):
        for dtype in ("float64", "float32"):
            A, op = build(matrix, dtype)
            for k in (20, 60):
                cells = []
                for product in PRODUCTS:
                    ours, theirs = products(A, op, k, product)
                    t = interleaved_medians({"randla": ours, "scipy": theirs}, rounds)
                    cells.append(f"{product}: {t['randla'] * 1e3:.1f} / {t['scipy'] * 1e3:.1f} ms "
                                 f"({t['scipy'] / t['randla']:.2f}x)")
                print(f"{matrix} {A.shape} {dtype} k={k}: " + "; ".join(cells), flush=True)
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["wide,tall"]), *[int(a) for a in sys.argv[2:3]])
