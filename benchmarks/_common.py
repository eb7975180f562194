"""Helpers shared by the asv suites: test matrices and accuracy measures."""
import numpy as np


def matrix_with_spectrum(m, n, s, dtype=np.float64, seed=0):
    """A = U diag(s) V^T with Haar-ish orthonormal U (m x r) and V (n x r), r = len(s)."""
    rng = np.random.default_rng(seed)
    r = len(s)
    U = np.linalg.qr(rng.standard_normal((m, r)))[0]
    V = np.linalg.qr(rng.standard_normal((n, r)))[0]
    return ((U * s) @ V.T).astype(dtype)
