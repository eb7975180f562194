"""The simulated OPU: projection throughput at a million inputs, against the complex GEMM rate
and the Philox generator's own rate, and against lightonml 1.4.3's simulated OPU.

Run with asv (``make bench ASV_ARGS="-b bench_opu"``) or as a script, which prints the peer
comparison as a table (each case in a fresh process, so peak memory is per case)::

    python benchmarks/bench_opu.py              # all cases
    python benchmarks/bench_opu.py goal         # n_in = 1e6, d = 1000, batches 1 and 1024
    python benchmarks/bench_opu.py sparse       # device-mode error against row density

lightonml is installed by ``make bench`` with ``--no-deps`` (it pins numexpr 2.7 and uses
``np.float``, which the shim below restores).
"""
import json
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp

import opu
from opu.medium import STREAM_REAL, Medium
from randla.sketch import rng as _rng

N_IN, D = 1_000_000, 1000


def _lightonml_opu(n_features, n_out):
    """lightonml's simulated OPU (H stored whole, complex64, seed 0), or None if missing."""
    if not hasattr(np, "float"):
        np.float = float  # lightonml 1.4.3 still uses the alias removed in numpy 1.24
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from lightonml import OPU
            dev = OPU(n_components=n_out, max_n_features=n_features, simulated=True)
            dev.fit1d(n_features=n_features)
    except ImportError:
        return None
    return dev


def _binary(batch, n, seed=0):
    return np.random.default_rng(seed).integers(0, 2, size=(batch, n), dtype=np.uint8)


def cgemm_rate(k=8192, m=1024, n=1000, repeat=3):
    """This machine's complex64 GEMM rate (flops: 8 per complex multiply-add)."""
    rng = np.random.default_rng(0)
    A = (rng.standard_normal((m, k)) + 1j * rng.standard_normal((m, k))).astype(np.complex64)
    B = (rng.standard_normal((k, n)) + 1j * rng.standard_normal((k, n))).astype(np.complex64)
    A @ B
    return 8 * m * k * n / _median_time(lambda: A @ B, repeat)


def rng_rate(cols=20000, rows=1000, repeat=3):
    """Normals per second of the Philox generator filling float32 (the batch-1 ceiling)."""
    out = np.empty((cols, rows), np.float32)
    _rng.fill_normal(out[:2], 0, STREAM_REAL, 0, 0, 1.0)
    return out.size / _median_time(lambda: _rng.fill_normal(out, 0, STREAM_REAL, 0, 0, 1.0), repeat)


def _median_time(f, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


# -- asv suites ------------------------------------------------------------------------------
class Projection:
    """Medium.field at n_in = 1e6, d = 1000: time, peak memory, fraction of GEMM / RNG rate."""

    params = [1, 1024]
    param_names = ["batch"]
    timeout = 1200
    number = 1
    repeat = 1

    def setup(self, batch):
        self.medium = Medium(N_IN, D, seed=1)
        self.X = _binary(batch, N_IN)
        self.medium.field(self.X[:1, :])  # compile

    def time_field(self, batch):
        self.medium.field(self.X)

    def peakmem_field(self, batch):
        self.medium.field(self.X)

    def track_fraction_of_ceiling(self, batch):
        """batch >= 256: effective complex flops / cgemm rate; batch 1: RNG-only time / time."""
        t = _median_time(lambda: self.medium.field(self.X), 1)
        if batch == 1:
            return 2 * N_IN * D / rng_rate() / t
        return 8 * batch * N_IN * D / t / cgemm_rate()

    track_fraction_of_ceiling.unit = "ratio"


class VsLightonml:
    """OPU.transform against lightonml's simulated OPU on the same shapes (binary inputs).

    Both keep H between calls (ours: the first rows of H_eff that fit ``opu.CACHE_BYTES``,
    1 GiB, which holds n = 1e5 x d = 1000), so this times repeated transforms."""

    params = ([10_000, 100_000], [1, 256])
    param_names = ["n_features", "batch"]
    timeout = 600

    def setup(self, n_features, batch):
        self.peer = _lightonml_opu(n_features, D)
        if self.peer is None:
            raise NotImplementedError("lightonml is not installed")
        self.ours = opu.OPU(n_features, D, seed=0).fit1d(n_features=n_features)
        self.X = _binary(batch, n_features)
        self.ours.transform(self.X[:1])

    def time_ours(self, n_features, batch):
        self.ours.transform(self.X)

    def time_lightonml(self, n_features, batch):
        self.peer.transform(self.X)

    def track_kernel_error_ours(self, n_features, batch):
        return _kernel_error(lambda X: opu.features(X, D, rng=0))

    def track_kernel_error_lightonml(self, n_features, batch):
        peer = _lightonml_opu(64, D)
        return _kernel_error(lambda X: np.asarray(peer.transform(X)) * 64 / 2 / np.sqrt(D))


def _kernel_error(featurize):
    """Relative error of the Gram matrix of |Hx|^2 features against ||x||^2||y||^2 + (x.y)^2
    on 32 binary vectors of 64 features."""
    X = _binary(32, 64, seed=5)
    F = np.asarray(featurize(X), dtype=np.float64)
    K = opu.kernel(X)
    return float(np.linalg.norm(F @ F.T - K) / np.linalg.norm(K))


class RsvdSparse:
    """rsvd(sketch="optical") on a 2000 x 1e6 sparse matrix: time, peak memory, accuracy."""

    timeout = 1200

    def setup(self):
        rng = np.random.default_rng(0)
        V = sp.random(N_IN, 10, density=2e-4, random_state=rng, format="csc")
        A = sp.csr_matrix(rng.standard_normal((2000, 10)) * np.geomspace(100, 1, 10)) @ V.T
        self.A = (A + 0.1 * sp.random(2000, N_IN, density=1e-5, random_state=rng)).tocsr()

    def time_rsvd(self):
        import randla
        randla.rsvd(self.A, 10, sketch="optical", rng=0)

    def peakmem_rsvd(self):
        import randla
        randla.rsvd(self.A, 10, sketch="optical", rng=0)

    def track_frames(self):
        """Modelled device frames of the rsvd (opu.metering)."""
        import randla
        with opu.metering() as m:
            randla.rsvd(self.A, 10, sketch="optical", rng=0)
        return m.frames

    def track_sv_error(self):
        import scipy.sparse.linalg as spla

        import randla
        s = randla.rsvd(self.A, 10, sketch="optical", rng=0).S
        ref = np.sort(spla.svds(self.A, 10, return_singular_vectors=False))[::-1]
        return float(np.abs(s - ref).max() / ref[0])


def sparse_table(n, rows=16, densities=(1e-4, 1e-3, 1e-2, 0.1, 0.3, 0.5, 1.0), d=20):
    """Device-mode error against the ideal projection on Gaussian-valued sparse rows, plain and
    densified (the user guide's table): rows of markdown."""
    from opu.sketcher import OpticalSketch, participation
    rng = np.random.default_rng(0)
    out = []
    for density in densities:
        X = sp.random(rows, n, density=density, random_state=rng, format="csc",
                      data_rvs=rng.standard_normal)
        errs = []
        for densify in (False, True):
            ideal = OpticalSketch(d, n, seed=1, densify=densify)
            S = OpticalSketch(d, n, seed=1, rng=2, mode="device", densify=densify)
            S._check_light = lambda X: None  # measure what the refusal protects from
            Y = S.apply_right(X)
            nominal = sum(ideal._apply_real(b, X[:, slice(*S._cols(b))], np.float64)
                          * S.masks[b] for b in range(S.n_blocks))
            errs.append(np.linalg.norm(Y - nominal) / np.linalg.norm(nominal))
        spread = participation(X[:, :S.block_width]).min() / S.n_anchor
        out.append(f"| {n:.0e} | {density:g} | {X.nnz / rows:.0f} | {spread:.3f} | "
                   f"{S.n_blocks} | {errs[0]:.3f} | {errs[1]:.3f} |")
    return out


# -- script: one case per process, so peak memory is per case -------------------------------
def _case(name, *args):
    """Run one case here and return a dict of measurements."""
    t0 = time.perf_counter()
    if name == "rates":
        return {"cgemm_gflops": cgemm_rate() / 1e9, "rng_mnormals": rng_rate() / 1e6}
    if name == "field":
        n_in, batch = args
        medium = Medium(n_in, D, seed=1)
        X = _binary(batch, n_in)
        medium.field(X[:1, :1000], col0=0)
        t = _median_time(lambda: medium.field(X), 1)
        return {"seconds": t, "proj_per_s": batch / t, "gflops": 8 * batch * n_in * D / t / 1e9}
    if name in ("ours", "ours_cached", "lightonml"):
        n_features, batch, repeat = args
        X = _binary(batch, n_features)
        t_build = time.perf_counter()
        if name.startswith("ours"):
            cache = 2**40 if name == "ours_cached" else opu.CACHE_BYTES
            dev = opu.OPU(n_features, D, seed=0, cache_bytes=cache).fit1d(n_features=n_features)
        else:
            dev = _lightonml_opu(n_features, D)
        dev.transform(X[:1])
        t_build = time.perf_counter() - t_build
        t = _median_time(lambda: dev.transform(X), repeat)
        return {"build_s": t_build, "transform_s": t}
    if name == "rsvd":
        import randla
        s = RsvdSparse()
        s.setup()
        t = time.perf_counter()
        res = randla.rsvd(s.A, 10, sketch="optical", rng=0)
        return {"seconds": time.perf_counter() - t, "s0": float(res.S[0]),
                "setup_s": t - t0}
    raise ValueError(name)


def _run(name, *args):
    out = subprocess.run([sys.executable, __file__, "--case", json.dumps([name, *args])],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv):
    if argv and argv[0] == "--case":
        name, *args = json.loads(argv[1])
        res = _case(name, *args)
        res["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(json.dumps(res))
        return
    which = set(argv) or {"goal", "peer", "rsvd"}
    if "sparse" in which:
        print("| n | density | nnz/row | spread/anchor | blocks | error | densified |")
        for n, dens in ((100_000, (1e-4, 1e-3, 1e-2, 0.1, 0.3, 0.5, 1.0)),
                        (1_000_000, (1e-4, 1e-2, 0.3, 1.0))):
            for line in sparse_table(n, densities=dens):
                print(line, flush=True)
        return
    rates = _run("rates")
    print(f"cgemm {rates['cgemm_gflops']:.0f} GFLOP/s, Philox {rates['rng_mnormals']:.0f} "
          f"Mnormal/s, peak {rates['peak_rss_gib']:.2f} GiB")
    if "goal" in which:
        for batch in (1, 256, 1024):
            r = _run("field", N_IN, batch)
            ceiling = 2 * N_IN * D / (rates["rng_mnormals"] * 1e6)
            print(f"field n_in=1e6 d=1000 batch={batch}: {r['seconds']:.2f} s, "
                  f"{r['proj_per_s']:.1f} proj/s, {r['gflops']:.0f} GFLOP/s complex-equivalent "
                  f"= {r['gflops'] / rates['cgemm_gflops']:.2f} x cgemm; RNG-only time "
                  f"{ceiling:.2f} s ({ceiling / r['seconds']:.2f} of ceiling); "
                  f"peak {r['peak_rss_gib']:.2f} GiB")
    if "peer" in which:
        for n_features in (10_000, 100_000):
            for batch in (1, 256):
                rep = 3 if n_features * batch <= 10**6 else 1
                b = _run("lightonml", n_features, batch, rep)
                print(f"transform n={n_features} d={D} batch={batch}: lightonml "
                      f"{b['transform_s']:.3f} s (build {b['build_s']:.2f} s, peak "
                      f"{b['peak_rss_gib']:.2f} GiB)")
                for kind in ("ours", "ours_cached"):
                    a = _run(kind, n_features, batch, rep)
                    print(f"    {kind}: {a['transform_s']:.3f} s (build {a['build_s']:.2f} s, "
                          f"peak {a['peak_rss_gib']:.2f} GiB): speed-up "
                          f"{b['transform_s'] / a['transform_s']:.2f}")
    if "rsvd" in which:
        r = _run("rsvd")
        print(f"rsvd k=10 optical on 2000 x 1e6 sparse: {r['seconds']:.1f} s, "
              f"peak {r['peak_rss_gib']:.2f} GiB")


if __name__ == "__main__":
    main(sys.argv[1:])
