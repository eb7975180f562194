"""Conjugate gradients for Hermitian positive definite systems, with an optional preconditioner."""
from __future__ import annotations

import numpy as np


def conjugate_gradients(matvec, b, *, M=None, tol=1e-8, maxiter=None, x0=None):
    """(Preconditioned) conjugate gradients for a Hermitian positive definite system.

    Returns ``(x, iterations, converged, residuals)`` with the relative residual norms of the
    recursively updated residual after each iteration.
    """
    n = b.shape[0]
    maxiter = 10 * n if maxiter is None else maxiter
    dtype = np.result_type(b.dtype, np.float32)
    x = np.zeros(n, dtype=dtype) if x0 is None else np.array(x0, dtype=dtype)
    r = b - matvec(x) if x0 is not None else b.astype(dtype, copy=True)
    bnorm = np.linalg.norm(b)
    if bnorm == 0:
        return np.zeros(n, dtype=dtype), 0, True, []
    z = M @ r if M is not None else r
    p = z.copy()
    rz = np.vdot(r, z)
    residuals = []
    for it in range(1, maxiter + 1):
        Ap = matvec(p)
        alpha = rz / np.vdot(p, Ap)
        x += alpha * p
        r -= alpha * Ap
        rel = float(np.linalg.norm(r) / bnorm)
        residuals.append(rel)
        if rel <= tol:
            return x, it, True, residuals
        z = M @ r if M is not None else r
        rz_new = np.vdot(r, z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x, maxiter, False, residuals
