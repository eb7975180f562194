"""Out-of-core SVD of a memory-mapped .npy file: randla (rsvd with fused one-pass power
iterations, and single-pass sketchy_svd) against scikit-learn's randomized_svd on the memmap and
dask's svd_compressed on from_array(memmap), all at k=50 with two power iterations.

asv runs the small suite below (a 160 MB file made in setup_cache). The issue's 5.6 GiB case is
run as a script, each method in a fresh process whose private memory (RssAnon) and peak RSS are
sampled from /proc::

    python benchmarks/bench_outofcore.py make /work/wt/data/big.npy 150000 5000
    flock /work/wt/bench.lock python benchmarks/bench_outofcore.py run /work/wt/data/big.npy \
        --methods read randla randla1 sklearn dask [--cold] [--rows 50000]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

K, ITERS, SEED = 50, 2, 0
PASSES = {"read": 1, "randla": ITERS + 1, "randla_lazy": ITERS + 2, "randla1": 1, "sketchy": 1,
          "sklearn": 2 * ITERS + 2, "dask": 2 * ITERS + 2}


# -- the matrix ----------------------------------------------------------------------------------
def make_matrix(path, m, n, rank=500, seed=0, block=5000):
    """A = G diag(sigma) V^T, sigma_j = 1 / (1 + j / 10) (slow decay, rank 500), written block by
    block into a .npy so that memory stays at one block."""
    rng = np.random.default_rng(seed)
    V = np.linalg.qr(rng.standard_normal((n, rank)))[0]
    W = (V / (1.0 + np.arange(rank) / 10.0)).T / np.sqrt(m)     # diag(sigma) V^T, scaled
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(m, n))
    for i in range(0, m, block):
        out[i:i + block] = rng.standard_normal((min(block, m - i), rank)) @ W
    out.flush()
    del out


# -- the methods (each runs in its own process) ---------------------------------------------------
def run_method(method, path, rows=None):
    """(U, S, Vh) of the first ``rows`` rows of the file, or None for the plain read."""
    mm = np.load(path, mmap_mode="r")
    rows = rows or mm.shape[0]
    if method == "read":
        read_file(path, rows * mm.shape[1] * mm.itemsize + mm.offset)
        return None
    if method in ("randla", "randla_lazy", "randla1", "sketchy"):
        import randla
        from randla.io import open_matrix
        A = open_matrix(path)[:rows]
        if method == "randla1":   # row panels: A S^T and A^H A S^T in the same read
            return randla.rsvd(A, K, passes=1, rng=SEED, compute=True)
        if method == "sketchy":   # Tropp et al.: range, co-range and core sketches
            return randla.sketchy_svd(A, K, rng=SEED)
        if method == "randla_lazy":   # U = A W evaluated chunk by chunk: one more pass
            U, S, Vh = randla.rsvd(A, K, power_iters=ITERS, rng=SEED)
            return U.compute(), S, Vh
        return randla.rsvd(A, K, power_iters=ITERS, rng=SEED, compute=True)
    if method == "sklearn":
        from sklearn.utils.extmath import randomized_svd
        return randomized_svd(mm[:rows], K, n_iter=ITERS, random_state=SEED)
    if method == "dask":
        import dask
        import dask.array as da
        A = da.from_array(mm[:rows])
        return dask.compute(*da.linalg.svd_compressed(A, K, n_power_iter=ITERS, seed=SEED))
    raise ValueError(f"unknown method {method!r}")


def read_file(path, nbytes, block=64 * 2**20):
    """One sequential read of the file: the floor for one pass over A."""
    buf = bytearray(block)
    with open(path, "rb", buffering=0) as f:
        done = 0
        while done < nbytes:
            got = f.readinto(buf)
            if not got:
                break
            done += got


def relative_residual(path, U, S, Vh, rows=None, block=10000):
    """||A - U diag(S) Vh||_F / ||A||_F in one pass over the file."""
    mm = np.load(path, mmap_mode="r")
    rows = rows or mm.shape[0]
    num = den = 0.0
    for i in range(0, rows, block):
        Ai = np.asarray(mm[i:min(rows, i + block)])
        num += np.linalg.norm(Ai - (U[i:i + len(Ai)] * S) @ Vh) ** 2
        den += np.linalg.norm(Ai) ** 2
    return float(np.sqrt(num / den))


# -- measuring a method in a fresh process --------------------------------------------------------
def _child(method, path, rows, out):
    t = time.perf_counter()
    res = run_method(method, path, rows)
    elapsed = time.perf_counter() - t
    if res is not None:
        np.savez(out, U=res[0], S=res[1], Vh=res[2])
    print(json.dumps({"time": elapsed}))


def measure(method, path, rows=None, cold=False, residual=True):
    """Run one method in a child process; wall time, peak RssAnon, peak RSS (VmHWM)."""
    if cold:
        drop_page_cache()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "res.npz")
        proc = subprocess.Popen([sys.executable, __file__, "child", method, path,
                                 str(rows or 0), out], stdout=subprocess.PIPE)
        anon = hwm = 0
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("RssAnon:"):
                            anon = max(anon, int(line.split()[1]) * 1024)
                        elif line.startswith("VmHWM:"):
                            hwm = max(hwm, int(line.split()[1]) * 1024)
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(0.01)
        if proc.wait() != 0:
            raise RuntimeError(f"{method} failed")
        result = json.loads(proc.stdout.read().decode().strip().splitlines()[-1])
        result.update(method=method, rows=rows, cold=cold, rss_anon_peak=anon, rss_peak=hwm,
                      passes=PASSES[method])
        if residual and os.path.exists(out):
            with np.load(out) as f:
                result["S"] = f["S"][:5].tolist()
                result["residual"] = relative_residual(path, f["U"], f["S"], f["Vh"], rows)
    return result


def drop_page_cache():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def main(argv=None):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("path")
    mk.add_argument("m", type=int)
    mk.add_argument("n", type=int)
    rn = sub.add_parser("run")
    rn.add_argument("path")
    rn.add_argument("--methods", nargs="+", default=["read", "randla", "randla1", "sklearn"])
    rn.add_argument("--rows", type=int, nargs="+", default=[0])
    rn.add_argument("--cold", action="store_true")
    rn.add_argument("--repeat", type=int, default=1)
    rn.add_argument("--no-residual", action="store_true")
    ch = sub.add_parser("child")
    for name in ("method", "path", "rows", "out"):
        ch.add_argument(name)
    args = p.parse_args(argv)
    if args.cmd == "make":
        make_matrix(args.path, args.m, args.n)
    elif args.cmd == "child":
        _child(args.method, args.path, int(args.rows) or None, args.out)
    else:
        print(json.dumps({"uptime": os.getloadavg()}), flush=True)
        for rows in args.rows:
            for method in args.methods:
                for _ in range(args.repeat):
                    print(json.dumps(measure(method, args.path, rows or None, args.cold,
                                                     not args.no_residual)),
                          flush=True)


# -- asv suite (small, so that `make bench` stays short) ------------------------------------------
class OutOfCoreSVD:
    """A 20000 x 1000 float64 .npy (160 MB), memory-mapped; k=50, two power iterations."""

    timeout = 300
    params = ["randla", "randla_lazy", "randla1", "sketchy", "sklearn", "dask"]
    param_names = ["method"]

    def setup_cache(self):
        path = os.path.abspath("bench_outofcore_small.npy")
        make_matrix(path, 20000, 1000, rank=200)
        return path

    def time_svd(self, path, method):
        run_method(method, path)

    def track_residual(self, path, method):
        U, S, Vh = run_method(method, path)
        return relative_residual(path, U, S, Vh)

    track_residual.unit = "||A - U S Vh||_F / ||A||_F"


if __name__ == "__main__":
    main()
