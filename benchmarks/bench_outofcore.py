"""Out-of-core SVD of a .npy file: randla (rsvd with fused one-pass power iterations, in float64,
with float32 panels (mixed_precision=True) and adaptive, its lazy-U and single-pass variants,
and sketchy_svd) against scikit-learn's randomized_svd on the memmap
and dask's svd_compressed on from_array(memmap), all at k=50 with two power iterations.

asv runs the small suite below (a 160 MB file made in setup_cache). The issue's 5.6 GiB case is
run as a script, each method in a fresh process whose private memory (RssAnon) and peak RSS are
sampled from /proc::

    python benchmarks/bench_outofcore.py make /work/data/big.npy 150000 5000
    python benchmarks/bench_outofcore.py run /work/data/big.npy \
        --methods read read_direct randla randla_mixed randla_adaptive randla_lazy randla1 \
        sketchy sklearn dask \
        [--cold] [--direct on|off] [--rows 50000] [--repeat 3]

``--cold`` drops the page cache before each method (root only); ``--direct on`` makes every
pass of randla a cold read, as for a file larger than memory (``make ... 800000 5000`` writes a
32 GB one).
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
PASSES = {"read": 1, "read_direct": 1, "randla": ITERS + 1, "randla_mixed": ITERS + 1,
          "randla_adaptive": None, "randla_lazy": ITERS + 2, "randla1": 1,
          "sketchy": 1, "sketchy_sparse": 1, "sklearn": 2 * ITERS + 2, "dask": 2 * ITERS + 2}


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
    if method in ("read", "read_direct"):
        read_file(path, rows * mm.shape[1] * mm.itemsize + mm.offset, direct=method == "read_direct")
        return None
    if method in ("randla", "randla_mixed", "randla_adaptive", "randla_lazy", "randla1",
                  "sketchy", "sketchy_sparse"):
        import randla
        from randla.io import open_matrix
        direct = {"1": True, "0": False}.get(os.environ.get("RANDLA_BENCH_DIRECT", ""))
        A = open_matrix(path, direct=direct)[:rows]
        if method == "randla_mixed":   # the power iterations' reads on float32 panels
            return randla.rsvd(A, K, power_iters=ITERS, mixed_precision=True, rng=SEED,
                               compute=True)
        if method == "randla_adaptive":   # the default: accuracy-controlled reads
            return randla.rsvd(A, K, rng=SEED, compute=True)
        if method == "randla1":   # row panels: A S^T and A^H A S^T in the same read
            return randla.rsvd(A, K, passes=1, rng=SEED, compute=True)
        if method == "sketchy":   # Tropp et al.: range, co-range and core sketches
            return randla.sketchy_svd(A, K, rng=SEED)
        if method == "sketchy_sparse":   # the same with sparse sign maps (zeta = 8)
            return randla.sketchy_svd(A, K, sketch="sparse_sign", rng=SEED)
        if method == "randla_lazy":   # U = A W written to disk panel by panel: one more pass
            import dask.array as da
            U, S, Vh = randla.rsvd(A, K, power_iters=ITERS, rng=SEED)
            out = np.lib.format.open_memmap(path + ".U.npy", mode="w+", dtype=U.dtype,
                                            shape=U.shape)
            da.store(U, out, lock=False)
            return out, S, Vh
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


def read_file(path, nbytes, block=64 * 2**20, direct=False):
    """One sequential read of the file: the floor for one pass over A. ``direct``: with
    O_DIRECT (no page cache; the fastest cold read here)."""
    import mmap
    buf = mmap.mmap(-1, block)            # page-aligned, as O_DIRECT needs
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECT if direct else 0))
    try:
        done = 0
        while done < nbytes:
            got = os.preadv(fd, [buf], done)
            if not got:
                break
            done += got
    finally:
        os.close(fd)


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
    if os.path.exists(path + ".U.npy"):
        os.remove(path + ".U.npy")
    info = getattr(res, "info", None)
    reads = {} if info is None else {"passes": info.passes, "float32_passes": info.float32_passes}
    print(json.dumps({"time": elapsed, **reads}))


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
        result.update(method=method, rows=rows, cold=cold, rss_anon_peak=anon, rss_peak=hwm)
        result.setdefault("passes", PASSES[method])
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
    rn.add_argument("--direct", choices=["auto", "on", "off"], default="auto",
                    help="randla's reads: O_DIRECT on/off, or auto (on for files > memory)")
    ch = sub.add_parser("child")
    for name in ("method", "path", "rows", "out"):
        ch.add_argument(name)
    args = p.parse_args(argv)
    if getattr(args, "direct", "auto") != "auto":
        os.environ["RANDLA_BENCH_DIRECT"] = "1" if args.direct == "on" else "0"
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
    params = ["randla", "randla_mixed", "randla_adaptive", "randla_lazy", "randla1", "sketchy",
              "sketchy_sparse", "sklearn", "dask"]
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
