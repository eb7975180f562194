"""Sketch application S @ A (20000 x 5000, d = 200) for each sketch, beside the scipy CSR
product of an explicit sparse sign matrix, and the counter-based normal generator beside
numpy.random.Generator.standard_normal (single-threaded, preallocated output).

Goals (issue 2): SparseSign(zeta=8) >= 5x faster than the scipy CSR product; the generator
>= 2x numpy's rate on the 2 cores, aiming at 500 M normals/s.
"""
import time

import numpy as np

from randla.sketch import make
from randla.sketch import rng as krng

M, N, D = 20000, 5000, 200
SKETCHES = {"gaussian": ("gaussian", {}), "rademacher": ("rademacher", {}),
            "sparse_sign": ("sparse_sign", {"zeta": 8}),
            "countsketch": ("sparse_sign", {"zeta": 1}),
            "srtt": ("srtt", {}), "scipy_csr_sparse_sign": ("sparse_sign", {"zeta": 8})}


def _median_time(fn, repeat=3):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


class SketchApply:
    """S @ A for A dense 20000 x 5000 float64 (C order), d = 200."""

    params = list(SKETCHES)
    param_names = ["sketch"]
    timeout = 600
    number = 1
    repeat = 3

    def setup(self, sketch):
        self.A = np.random.default_rng(0).standard_normal((M, N))
        kind, kw = SKETCHES[sketch]
        self.S = make(kind, D, M, rng=1, **kw)
        if sketch == "scipy_csr_sparse_sign":  # the peer: an explicit CSR matrix
            B = self.S[:, :].tocsr()
            self.product = lambda: B @ self.A
        else:
            self.product = lambda: self.S @ self.A

    def time_apply(self, sketch):
        self.product()

    def track_speedup_vs_scipy_csr(self, sketch):
        """Time of the scipy CSR sparse-sign product over this sketch's time (same run)."""
        B = make("sparse_sign", D, M, rng=1, zeta=8)[:, :].tocsr()
        return _median_time(lambda: B @ self.A) / _median_time(self.product)

    track_speedup_vs_scipy_csr.unit = "x"

    def track_rel_error_vs_dense(self, sketch):
        """||S @ A - dense(S) @ A|| / ||dense(S) @ A||: the kernels against a plain GEMM."""
        ref = self.S.to_dense() @ self.A
        return float(np.linalg.norm(self.product() - ref) / np.linalg.norm(ref))

    track_rel_error_vs_dense.unit = "relative error"

    def track_embedding_distortion(self, sketch):
        """max |sigma_i(S Q) - 1| for an orthonormal Q of 50 columns (sqrt(50/200) = 0.5 is the
        Gaussian limit)."""
        Q = np.linalg.qr(np.random.default_rng(2).standard_normal((M, 50)))[0]
        s = np.linalg.svd(self.S @ Q, compute_uv=False)
        return float(max(s[0] - 1, 1 - s[-1]))

    track_embedding_distortion.unit = "distortion"


class NormalGenerator:
    """2 x 10^7 standard normals into a preallocated array: randla's block-addressable
    Philox/Box-Muller kernel (all threads) vs numpy's default_rng (one thread)."""

    params = [["randla", "numpy"], ["float64", "float32"]]
    param_names = ["generator", "dtype"]
    timeout = 300
    COLS, ROWS = 100_000, 200

    def setup(self, generator, dtype):
        self.out = np.empty((self.COLS, self.ROWS), dtype=dtype)
        if generator == "numpy":
            g = np.random.default_rng(0)
            flat = self.out.reshape(-1)
            self.fill = lambda: g.standard_normal(out=flat, dtype=dtype)
        else:
            self.fill = lambda: krng.fill_normal(self.out, 12345, 0, 0, 0, 1.0)
        self.fill()  # compile / warm up

    def time_fill(self, generator, dtype):
        self.fill()

    def track_million_normals_per_second(self, generator, dtype):
        return self.out.size / _median_time(self.fill, 5) / 1e6

    track_million_normals_per_second.unit = "M normals/s"

    def track_speedup_vs_numpy(self, generator, dtype):
        flat = np.empty(self.out.size, dtype=dtype)
        g = np.random.default_rng(0)
        peer = _median_time(lambda: g.standard_normal(out=flat, dtype=dtype), 5)
        return peer / _median_time(self.fill, 5)

    track_speedup_vs_numpy.unit = "x"

    def track_moment_error(self, generator, dtype):
        """max(|mean|, |var - 1|) of the generated block, in units of its standard error."""
        z = self.out.astype(np.float64).ravel()
        n = z.size
        return float(max(abs(z.mean()) * np.sqrt(n), abs(z.var() - 1) / np.sqrt(2 / n)))

    track_moment_error.unit = "standard errors"
