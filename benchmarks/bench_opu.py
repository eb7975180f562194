"""The simulated OPU: projection throughput at a million inputs, against the complex GEMM rate
and the Philox generator's own rate, and against lightonml 1.4.3's simulated OPU.

Run with asv (``make bench ASV_ARGS="-b bench_opu"``) or as a script, which prints the peer
comparison as a table (each case in a fresh process, so peak memory is per case)::

    python benchmarks/bench_opu.py              # all cases but sparse
    python benchmarks/bench_opu.py goal         # n_in = 1e6, d = 1000, batches 1 and 1024
    python benchmarks/bench_opu.py kernel       # kernel error, ours and lightonml's, same model
    python benchmarks/bench_opu.py sparse       # device-mode error against row density

What the peer rows measure:

* ``VsLightonml.time_*``: ``opu.OPU.transform`` (field, then the 8-bit camera: gain, rounding,
  clipping, uint8) against lightonml's ``OPU.transform`` with ``simulated=True``, which returns
  the exact intensities ``|x H|^2`` in float32 (it has no camera model). Ours does the camera's
  work on top, so the comparison is not in our favour.
* ``KernelError.track_error_*`` (like with like): the relative Frobenius error of the Gram
  matrix of random features ``|h.x|^2 / sqrt(D)`` (D = 1000, E|h_ij|^2 = 1) against the kernel
  ``||x||^2 ||y||^2 + (x.y)^2`` on 32 binary vectors of 64 features, averaged over 32 media
  (seeds), for ours and lightonml's medium under the same model:

  - ``model="noiseless"``: both exact intensities: ours ``|OPU.field(x)|^2``, lightonml's
    ``transform(x)`` rescaled to E|h_ij|^2 = 1 (its entries have variance 2 / n_features);
  - ``model="camera"``: both through the same 8-bit camera (``opu.device.Camera`` at its
    default gain, 32 counts for a fully lit DMD, so about 16 counts here): ours is
    ``OPU.transform`` (uint8 counts) decoded to intensities, lightonml's exact intensities go
    through that camera at the same light level and are decoded the same way.

  The two media are different random matrices of the same distribution, so the rows of a model
  should agree to within the spread over media (printed by the script); the camera rows show
  what 8-bit quantization adds to the random-feature error.

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
from opu.device import Camera
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


# -- kernel error, like with like ------------------------------------------------------------
#: Features, samples and media of the kernel-error comparison.
KERNEL_FEATURES, KERNEL_SAMPLES, KERNEL_MEDIA = 64, 32, 32
MODELS = ("noiseless", "camera")


def _ours_intensities(X, model, seed):
    """|h.x|^2 (E|h_ij|^2 = 1) from our simulated OPU: exact, or its camera's uint8 counts
    decoded (counts / gain is the intensity |field|^2 / n_in)."""
    dev = opu.OPU(KERNEL_FEATURES, D, seed=seed).fit1d(n_features=KERNEL_FEATURES)
    scale = dev.n_in / dev.layout.macro     # H_eff sums ``macro`` unit-variance mirrors
    if model == "noiseless":
        F = dev.field(X).astype(np.complex128)
        return (F.real**2 + F.imag**2) / dev.layout.macro
    return dev.transform(X) / dev.camera.gain * scale


def _lightonml_intensities(X, model, seed):
    """|h.x|^2 (E|h_ij|^2 = 1) from lightonml's simulated OPU (entries of variance
    2 / n_features), exact, or through our camera at the light level of our OPU."""
    peer = _lightonml_opu(KERNEL_FEATURES, D)
    if peer is None:
        raise NotImplementedError("lightonml is not installed")
    peer.device.build_random_matrix(KERNEL_FEATURES, D, seed=seed)
    exact = np.asarray(peer.transform(X), dtype=np.float64) * KERNEL_FEATURES / 2
    if model == "noiseless":
        return exact
    camera = Camera()                       # the camera of opu.OPU, at its defaults
    counts = camera.expose(exact / KERNEL_FEATURES, np.random.default_rng(seed))
    return counts / camera.gain * KERNEL_FEATURES


def kernel_errors(side, model):
    """Relative Gram-matrix errors of ``side`` ("ours" or "lightonml") under ``model``, one
    per medium (seeds 0 .. KERNEL_MEDIA - 1), on the same inputs."""
    X = _binary(KERNEL_SAMPLES, KERNEL_FEATURES, seed=5)
    K = opu.kernel(X)
    intensities = _ours_intensities if side == "ours" else _lightonml_intensities
    errors = []
    for seed in range(KERNEL_MEDIA):
        F = intensities(X, model, seed) / np.sqrt(D)
        errors.append(float(np.linalg.norm(F @ F.T - K) / np.linalg.norm(K)))
    return np.array(errors)


class KernelError:
    """Kernel error of the random features, ours and lightonml's, under the same model (see the
    module docstring): mean over the media."""

    params = (list(MODELS),)
    param_names = ["model"]
    timeout = 300

    def setup(self, model):
        if _lightonml_opu(KERNEL_FEATURES, D) is None:
            raise NotImplementedError("lightonml is not installed")

    def track_error_ours(self, model):
        return float(kernel_errors("ours", model).mean())

    def track_error_lightonml(self, model):
        return float(kernel_errors("lightonml", model).mean())


def kernel_table():
    """The kernel-error comparison as rows of markdown: the mean over media and its standard
    error (the errors of different media vary by ~25%)."""
    rows = ["| model | ours | lightonml 1.4.3 |", "|---|---|---|"]
    for model in MODELS:
        cells = [kernel_errors(side, model) for side in ("ours", "lightonml")]
        rows.append(f"| {model} | " + " | ".join(
            f"{e.mean():.5f} +- {e.std(ddof=1) / np.sqrt(len(e)):.5f}" for e in cells) + " |")
    return rows


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
    which = set(argv) or {"goal", "peer", "kernel", "rsvd"}
    if "kernel" in which:
        print(f"kernel error, {KERNEL_SAMPLES} binary vectors of {KERNEL_FEATURES} features, "
              f"D = {D}, {KERNEL_MEDIA} media (mean +- its standard error):")
        for line in kernel_table():
            print(line, flush=True)
        which.discard("kernel")
        if not which:
            return
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
