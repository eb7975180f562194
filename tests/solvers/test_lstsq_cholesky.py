"""The CholeskyQR preconditioner and the backward-error stop of randla.lstsq, against LAPACK."""
import numpy as np
import pytest
import scipy.linalg as sla

import randla
from randla.solvers.lstsq import SketchPreconditioner


def _problem(rng, m, n, cond):
    U = np.linalg.qr(rng.standard_normal((m, n)))[0]
    V = np.linalg.qr(rng.standard_normal((n, n)))[0]
    A = (U * np.logspace(0, -np.log10(cond), n)) @ V.T
    b = A @ rng.standard_normal(n) + 1e-3 * rng.standard_normal(m)
    return A, b


@pytest.mark.parametrize("cond", [1e2, 1e6])
def test_cholesky_preconditioner_whitens_and_matches_householder(rng, cond):
    A, b = _problem(rng, 1500, 60, cond)
    SA = randla.sketch.make("sparse_sign", 500, 1500, rng=1, zeta=4) @ A
    Sb = randla.sketch.make("sparse_sign", 500, 1500, rng=1, zeta=4) @ b[:, None]
    chol = SketchPreconditioner(SA, Sb, 0.0, cholesky=True)
    house = SketchPreconditioner(SA, Sb, 0.0)
    assert chol.R is not None and chol.rank == 60
    # R^H R reproduces the sketch's Gram matrix, so SA R^-1 is orthonormal to ~u cond^2
    Q = sla.solve_triangular(chol.R, SA.T, trans="T").T
    assert np.linalg.norm(Q.T @ Q - np.eye(60), 2) < 1e-12 * cond**2 + 1e-13
    # the same R as Householder's up to row signs; the same sketch-and-solve solution
    # (Cholesky's forward error is ~u cond^2)
    assert np.linalg.norm(np.abs(chol.R) - np.abs(house.R)) <= 1e-14 * cond**2 * chol.fro
    ref = house.sketch_solution
    assert np.linalg.norm(chol.sketch_solution - ref) <= 1e-14 * cond**2 * np.linalg.norm(ref)


def test_cholesky_falls_back_to_householder_when_ill_conditioned(rng):
    A, b = _problem(rng, 1500, 40, 1e12)      # u cond^2 >> 1: the Gram matrix is useless
    SA = randla.sketch.make("gaussian", 300, 1500, rng=2) @ A
    pre = SketchPreconditioner(SA, SA[:, :1], 0.0, cholesky=True)
    Q = sla.solve_triangular(pre.R, SA.T, trans="T").T
    assert np.linalg.norm(Q.T @ Q - np.eye(40), 2) < 1e-3   # Householder's R whitens


@pytest.mark.parametrize("cond", [1e3, 1e6, 1e10])
def test_iterative_sketching_stops_at_lapack_accuracy(rng, cond):
    A, b = _problem(rng, 5000, 80, cond)
    ref = np.linalg.lstsq(A, b, rcond=None)[0]
    res = randla.lstsq(A, b, method="iterative_sketching", rng=rng)
    r_opt = np.linalg.norm(b - A @ ref)
    # residuals agree to the rounding error of forming b - A x (||A|| = 1 here)
    slack = 1e-12 * r_opt + 10 * np.finfo(float).eps * np.linalg.norm(ref)
    assert abs(res.residual_norm - r_opt) <= slack
    # the residual of the returned x (computed by another kernel: equal up to rounding)
    assert abs(res.residual_norm - np.linalg.norm(b - A @ res.x)) <= slack
    assert res.backward_error < 4 * np.finfo(float).eps
    assert np.linalg.norm(res.x - ref) <= 1e-14 * cond**1.5 * np.linalg.norm(ref) + 1e-15


def test_default_dense_sketch_is_sparse_sign_with_four_nonzeros(rng):
    A, b = _problem(rng, 30000, 100, 1e4)      # big enough for "auto" to sketch
    res = randla.lstsq(A, b, rng=3)
    assert res.method == "iterative_sketching"
    S = randla.sketch.make("sparse_sign", res.sketch_size, 30000, rng=3, zeta=4)
    same = randla.lstsq(A, b, method="iterative_sketching", sketch=S, rng=3)
    np.testing.assert_array_equal(res.x, same.x)
    ref = np.linalg.lstsq(A, b, rcond=None)[0]
    assert np.linalg.norm(res.x - ref) <= 1e-10 * np.linalg.norm(ref)
