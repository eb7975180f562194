"""Helpers shared by the asv suites: test matrices and accuracy measures."""
import numpy as np

_CACHE = {}


def cached(key, make):
    """``make()``, once per process (one value kept at a time). asv re-runs ``setup`` before
    every timed sample; rebuilding a large matrix there took over 1.5 s, after which this
    machine has handed the memory the previous call freed back to its host, and faulting
    fresh memory in runs at ~0.5 GB/s: the timed calls paid for it at random (lstsq
    40000 x 1000: 0.58 s in one asv run, 0.75 s in the next)."""
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = make()
    return _CACHE[key]


def matrix_with_spectrum(m, n, s, dtype=np.float64, seed=0):
    """A = U diag(s) V^T with Haar-ish orthonormal U (m x r) and V (n x r), r = len(s)."""
    rng = np.random.default_rng(seed)
    r = len(s)
    U = np.linalg.qr(rng.standard_normal((m, r)))[0]
    V = np.linalg.qr(rng.standard_normal((n, r)))[0]
    return ((U * s) @ V.T).astype(dtype)
