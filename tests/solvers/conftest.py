"""Shared problems of the least-squares tests."""
import numpy as np
import pytest
import scipy.linalg as sla

import randla


def _forward_errors(rng, method, cond=1e10, m=4000, n=50):
    """(error of randla, error of Householder QR) on an m x n tiny-residual problem of
    condition cond (the residual orthogonal to range(A), 1e-12 in norm)."""
    U = np.linalg.qr(rng.standard_normal((m, n)))[0]
    V = np.linalg.qr(rng.standard_normal((n, n)))[0]
    A = (U * np.logspace(-np.log10(cond), 0, n)) @ V.T
    x = rng.standard_normal(n)
    x /= np.linalg.norm(x)
    r = rng.standard_normal(m)
    r -= U @ (U.T @ r)
    b = A @ x + 1e-12 * r / np.linalg.norm(r)
    Q, R = np.linalg.qr(A)
    err_qr = np.linalg.norm(sla.solve_triangular(R, Q.T @ b) - x)
    return np.linalg.norm(randla.lstsq(A, b, method=method, rng=rng).x - x), err_qr


@pytest.fixture
def forward_errors():
    """The function ``(rng, method, cond=1e10, m=4000, n=50) -> (err, err_qr)``."""
    return _forward_errors
