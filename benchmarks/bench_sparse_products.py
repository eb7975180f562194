"""SparseOperator's products with a dense block (the Numba kernels of
randla/operators/_spmm.py) against scipy.sparse's ``A @ X`` and ``A.T @ Y``, on the same
matrices and blocks in the same run, reported as a ratio (scipy's time over randla's).

Matrices (CSR, uniform [0, 1) values): "wide" 2000 x 10^6 at density 1e-4 (2e5 entries),
"tall" 200000 x 50000 at density 1e-3 (1e7 entries), in float64 and float32; C-ordered blocks
of 20 and 60 columns: the shapes of randla's randomized SVD on sparse data.

asv: ``asv run --python=same --quick -b bench_sparse_products``. Plain script, interleaved
rounds, medians: ``python benchmarks/bench_sparse_products.py [wide|tall|wide,tall] [rounds]``.

Measured with the plain script (3 rounds of 3 calls each way, medians, ms: randla / scipy and
scipy's time over randla's), on the 2-core machine while other developers' tests kept about one
core busy (load average 2.6-3.2; a pure-compute Numba kernel ran no faster on 2 threads than on
1 then, so these 2-thread figures show little of the parallel gain):

  matrix  dtype    k   A @ X, 2 threads        A^T Y, 2 threads       A @ X, 1 thread         A^T Y, 1 thread
  wide    float64  20  8.5 / 11.6 (1.37x)      24.7 / 22.6 (0.92x)    6.7 / 11.8 (1.75x)      30.7 / 32.1 (1.05x)
  wide    float64  60  16.0 / 35.8 (2.24x)     62.9 / 65.3 (1.04x)    13.7 / 29.5 (2.16x)     59.6 / 65.6 (1.10x)
  wide    float32  20  7.9 / 8.5 (1.08x)       16.1 / 12.0 (0.75x)    6.1 / 10.9 (1.77x)      16.7 / 16.6 (0.99x)
  wide    float32  60  8.0 / 15.1 (1.87x)      36.6 / 34.8 (0.95x)    9.0 / 15.9 (1.77x)      32.0 / 34.2 (1.07x)
  tall    float64  20  70.5 / 102.0 (1.45x)    144.0 / 120.9 (0.84x)  67.5 / 114.8 (1.70x)    132.3 / 166.1 (1.25x)
  tall    float64  60  337.0 / 1032.3 (3.06x)  228.0 / 1014.5 (4.45x) 333.6 / 943.1 (2.83x)   180.6 / 907.3 (5.02x)
  tall    float32  20  63.8 / 83.4 (1.31x)     80.0 / 50.0 (0.63x)    52.7 / 59.7 (1.13x)     53.0 / 48.1 (0.91x)
  tall    float32  60  96.8 / 167.1 (1.73x)    165.9 / 215.6 (1.30x)  96.1 / 168.0 (1.75x)    110.3 / 192.5 (1.75x)

("1 thread": NUMBA_NUM_THREADS=1; scipy is single-threaded either way.) randla.rsvd(A, 50,
rng=0) on the tall float64 matrix, same session: 11.2 s with the kernels against 21.1 s with
scipy's products (medians of 3, interleaved; the same singular values).

The wide products are dominated by memory: A @ X reads 2e5 scattered rows of the 10^6-row X,
A^T Y writes a 10^6-row result (fresh pages, for scipy as for randla). In the tall A^T Y,
randla scatters into parts of the 50000-row output (scipy scatters into all of it, on one
thread); with 20 float32 columns the whole output fits in cache and scipy's loop is as fast.
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
