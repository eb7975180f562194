"""The memory bound: private memory does not grow with the file, only with the budget."""
import subprocess
import sys
import time

import numpy as np
import pytest

LIMIT = "64MB"
LIMIT_BYTES = 64 * 10**6


def _peak_private_memory(argv):
    """Run ``randla svd argv`` in a fresh interpreter; its peak RssAnon (private, anonymous
    memory: what a file's pages in the page cache do not count towards), sampled every 2 ms."""
    proc = subprocess.Popen([sys.executable, "-m", "randla", "svd", *map(str, argv)],
                            stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.002)
    assert proc.wait() == 0, proc.stderr.read().decode()
    return peak


def _write_npy(path, m, n, rng):
    """Random rows, written block by block (never all in memory)."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(m, n))
    block = rng.standard_normal((5000, n))
    for i in range(0, m, 5000):
        out[i:i + 5000] = block[:m - i] * rng.uniform(0.5, 2.0, (min(5000, m - i), 1))
    out.flush()
    del out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rng = np.random.default_rng()
    d = tmp_path_factory.mktemp("memory")
    _write_npy(d / "small.npy", 2000, 1000, rng)   # 16 MB: interpreter, libraries, kernels
    _write_npy(d / "big.npy", 50000, 1000, rng)    # 400 MB, six times the limit
    return d / "small.npy", d / "big.npy"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status")
@pytest.mark.parametrize("passes", [None, 1])
def test_private_memory_bounded_on_a_file_six_times_the_limit(files, tmp_path, passes):
    small, big = files
    extra = [] if passes is None else ["--passes", passes]
    argv = ["-k", 10, "--memory-limit", LIMIT, "--seed", 0, "--quiet", *extra]
    base = _peak_private_memory([small, *argv, "-o", tmp_path / "s.npz"])
    peak = _peak_private_memory([big, *argv, "-o", tmp_path / "b.npz"])
    assert peak - base <= LIMIT_BYTES, (peak / 2**20, base / 2**20)
