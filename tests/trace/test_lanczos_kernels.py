"""The Numba Lanczos kernels: the per-vector CSR kernel and the row-chunked kernels against
each other, a dense reference and dense eigendecompositions."""
import math

import numba
import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import randla.trace as rt
import randla.trace.lanczos as lanczos_mod
from randla import sketch
from randla.trace._core import square_operator
from randla.trace.lanczos import lanczos


def _spd(rng, n, density=0.02):
    B = sp.random(n, n, density=density, random_state=np.random.default_rng(rng.integers(1 << 30)))
    return (B @ B.T + sp.eye(n)).tocsr()


def _dense_lanczos(A, v, steps):
    """Textbook Lanczos with full reorthogonalization (twice), in float64 on a dense A."""
    n = len(v)
    Q = np.zeros((n, steps))
    a, b = np.zeros(steps), np.zeros(steps)
    q = v / np.linalg.norm(v)
    for j in range(steps):
        Q[:, j] = q
        w = A @ q
        a[j] = q @ w
        for _ in range(2):
            w -= Q[:, :j + 1] @ (Q[:, :j + 1].T @ w)
        b[j] = np.linalg.norm(w)
        q = w / b[j]
    return a, b


def _as_linear_operator(A):
    return spla.LinearOperator(A.shape, matvec=lambda x: A @ x, matmat=lambda X: A @ X,
                               dtype=A.dtype)


def test_csr_kernel_matches_dense_lanczos_and_the_generic_path(rng):
    n, steps = 400, 25
    A = _spd(rng, n)
    V = rng.standard_normal((n, 5))
    V /= np.linalg.norm(V, axis=0)
    a_csr, b_csr, L_csr = lanczos(square_operator(A, symmetric=True), V, steps, "full")
    a_gen, b_gen, L_gen = lanczos(square_operator(_as_linear_operator(A), symmetric=True), V,
                                  steps, "full")
    assert L_csr.tolist() == L_gen.tolist() == [steps] * 5
    for c in range(5):
        a_ref, b_ref = _dense_lanczos(A.toarray(), V[:, c], steps)
        np.testing.assert_allclose(a_csr[:, c], a_ref, rtol=1e-9)
        np.testing.assert_allclose(b_csr[:, c], b_ref, rtol=1e-9)
        np.testing.assert_allclose(a_gen[:, c], a_ref, rtol=1e-9)
        np.testing.assert_allclose(b_gen[:, c], b_ref, rtol=1e-9)


@pytest.mark.parametrize("reorth", ["none", "full"])
def test_csr_quadrature_is_exact_when_the_krylov_space_fills(rng, reorth):
    """degree >= number of distinct eigenvalues: Gauss quadrature is exact, w^T log(A) w."""
    n = 300
    lam = rng.choice(np.linspace(0.5, 4.0, 12), n)       # 12 distinct eigenvalues
    A = sp.csr_matrix(np.diag(lam))
    w = rng.choice([-1.0, 1.0], n)
    V = (w / np.linalg.norm(w))[:, None]
    a, b, L = lanczos(square_operator(A, symmetric=True), V, 30, reorth)
    if reorth == "full":
        assert L[0] <= 13                                 # stopped on the invariant space
    theta, U = sla.eigh_tridiagonal(a[:L[0], 0], b[:L[0] - 1, 0])
    quad = n * np.sum(U[0] ** 2 * np.log(theta))
    # without reorthogonalization Lanczos runs on and grows ghost nodes, whose weights still
    # sum to the right ones (Greenbaum): the quadrature stays exact to rounding
    assert quad == pytest.approx(np.sum(w**2 * np.log(lam)), rel=1e-10 if reorth == "full"
                                 else 1e-8)


def test_csr_full_reorthogonalization_prevents_ghosts(rng):
    n = 400
    lam = np.r_[[100.0, 50.0], rng.uniform(0, 1, n - 2)]
    A = sp.csr_matrix(np.diag(lam))
    V = rng.standard_normal((n, 2))
    V /= np.linalg.norm(V, axis=0)
    copies = {}
    for reorth in ["full", "none"]:
        a, b, L = lanczos(square_operator(A, symmetric=True), V, 100, reorth)
        theta = sla.eigh_tridiagonal(a[:L[0], 0], b[:L[0] - 1, 0], eigvals_only=True)
        copies[reorth] = np.sum(np.abs(theta - 100) < 1e-6)
    assert copies["full"] == 1 and copies["none"] > 1


def test_csr_logdet_against_dense_and_counts_matvecs(rng):
    n = 500
    A = _spd(rng, n, 0.01)
    exact = np.linalg.slogdet(A.toarray())[1]
    for reorth in ["none", "full"]:
        t = rt.logdet(A, 30 * 40, degree=30, reorth=reorth, rng=1)
        assert t.matvecs == 1200
        assert abs(t - exact) < 5 * t.error + 1e-8 * abs(exact)
        # the same estimate through a LinearOperator (row-chunked kernels, A @ Q products)
        g = rt.logdet(_as_linear_operator(A), 30 * 40, degree=30, reorth=reorth, rng=1)
        assert g == pytest.approx(float(t), rel=1e-9)


def test_csr_results_do_not_depend_on_the_number_of_threads(rng):
    A = _spd(rng, 2000, 0.003)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = [rt.logdet(A, 300, degree=30, reorth=r, rng=5) for r in ("none", "full")]
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = [rt.logdet(A, 300, degree=30, reorth=r, rng=5) for r in ("none", "full")]
    finally:
        numba.set_num_threads(before)
    assert [float(x) for x in one] == [float(x) for x in many]


def test_csr_non_finite_products_are_reported(rng):
    A = _spd(rng, 200).tolil()
    A[3, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        rt.logdet(A.tocsr(), 60, degree=30, rng=0)


def test_csr_full_reorthogonalization_follows_exact_lanczos_past_convergence(rng):
    """Once a Ritz value converges (here by step ~20), Lanczos without reorthogonalization
    drifts from the exact-arithmetic recurrence; with it, alpha and beta stay those of the
    textbook (twice Gram-Schmidt) process, step for step."""
    n, steps = 300, 80
    lam = np.r_[[100.0, 50.0], rng.uniform(0, 1, n - 2)]
    A = sp.csr_matrix(np.diag(lam))
    v = rng.standard_normal(n)
    v /= np.linalg.norm(v)
    a_ref, b_ref = _dense_lanczos(A.toarray(), v, steps)
    a, b, L = lanczos(square_operator(A, symmetric=True), v[:, None], steps, "full")
    assert L[0] == steps
    np.testing.assert_allclose(a[:, 0], a_ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(b[:, 0], b_ref, rtol=1e-8, atol=1e-10)
    a0, b0, _ = lanczos(square_operator(A, symmetric=True), v[:, None], steps, "none")
    assert np.max(np.abs(a0[:, 0] - a_ref)) > 1e-3        # the test can tell them apart


# -- the blocked CSR kernel without reorthogonalization (groups of 4, 2, 1 columns) ----------
def _dense_lanczos_plain(A, v, steps):
    """Textbook Lanczos without reorthogonalization, in float64 on a dense A."""
    a, b = np.zeros(steps), np.zeros(steps)
    q, q_prev, beta = v / np.linalg.norm(v), np.zeros_like(v), 0.0
    for j in range(steps):
        w = A @ q - beta * q_prev
        a[j] = q @ w
        w -= a[j] * q
        b[j] = beta = np.linalg.norm(w)
        q_prev, q = q, w / beta
    return a, b


def _banded_spd(rng, n, band):
    """Random SPD with entries up to ``band`` off the diagonal (the kernel's forward reach),
    reached in most rows; diagonally dominant, so well conditioned."""
    offsets = list(range(-band, band + 1, max(1, band // 3))) + [band, -band]
    offsets = sorted(set(offsets))
    B = sp.diags([rng.uniform(-1, 1, n - abs(k)) for k in offsets], offsets, shape=(n, n))
    S = (B + B.T) / 2
    return (S + sp.diags(np.abs(S).sum(axis=1).A1 + 1.0)).tocsr()


@pytest.mark.parametrize("shape", ["banded", "scattered"])
def test_blocked_kernel_matches_textbook_lanczos(rng, shape):
    """Seven columns (groups of width 4, 2 and 1, or 2, 2, 2, 1 on two threads) against the
    textbook recurrence column by column; a banded A runs one pass per step with a short
    look-ahead, a scattered one finishes each vector before the product reads it."""
    n, steps = 600, 20
    A = _banded_spd(rng, n, 37) if shape == "banded" else _spd(rng, n, 0.01)
    V = rng.standard_normal((n, 7))
    V /= np.linalg.norm(V, axis=0)
    a, b, L = lanczos(square_operator(A, symmetric=True), V, steps, "none")
    assert L.tolist() == [steps] * 7
    for c in range(7):
        a_ref, b_ref = _dense_lanczos_plain(A.toarray(), V[:, c], steps)
        np.testing.assert_allclose(a[:, c], a_ref, rtol=1e-9)
        np.testing.assert_allclose(b[:, c], b_ref, rtol=1e-9)


def test_forward_reach():
    A = sp.csr_matrix(np.triu(np.ones((6, 6)), -2) * np.tril(np.ones((6, 6)), 3))
    assert lanczos_mod._forward_reach(A.indptr, A.indices) == 3
    assert lanczos_mod._forward_reach(*(lambda L: (L.indptr, L.indices))(
        sp.csr_matrix(np.tril(np.ones((5, 5)))))) == 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blocked_kernel_results_do_not_depend_on_the_grouping(rng, monkeypatch, dtype):
    """A column's arithmetic is the same alone or in a group of four: bit for bit."""
    A = _banded_spd(rng, 500, 20).astype(dtype)
    V = rng.standard_normal((500, 9))
    V = (V / np.linalg.norm(V, axis=0)).astype(dtype)
    op = square_operator(A, symmetric=True)
    grouped = lanczos(op, V, 25, "none")
    monkeypatch.setattr(lanczos_mod, "_group_widths",
                        lambda b, threads: np.ones(b, dtype=np.int64))
    alone = lanczos(op, V, 25, "none")
    for x, y in zip(grouped, alone):
        np.testing.assert_array_equal(x, y)


def test_group_widths_cover_the_columns_and_balance_two_threads():
    for b in range(1, 40):
        for threads in (1, 2, 3):
            w = lanczos_mod._group_widths(b, threads)
            assert w.sum() == b and set(w.tolist()) <= {1, 2, 4}
            assert list(w) == sorted(w, reverse=True)
    assert lanczos_mod._group_widths(20, 2).tolist() == [4, 4, 4, 4, 2, 2]
    assert lanczos_mod._group_widths(20, 1).tolist() == [4] * 5


def test_blocked_kernel_stops_columns_on_invariant_spaces_within_a_group(rng):
    """Column c lies in an eigenspace sum of c + 2 distinct eigenvalues: its Krylov space is
    invariant after c + 2 steps. Each column stops there, its quadrature is exact, and the
    others in its group run on unchanged. (The c + 2 eigenvalues are well apart: two close
    ones make the last beta ~ eps ||A|| / gap, above the breakdown threshold.)"""
    n = 400
    lam = np.r_[[0.6, 1.4, 2.2, 3.0], rng.uniform(0.5, 4.0, n - 4)]
    A = sp.csr_matrix(np.diag(lam))
    V = np.zeros((n, 4))
    for c in range(3):
        V[:c + 2, c] = rng.uniform(0.5, 1.0, c + 2)
    V[:, 3] = rng.standard_normal(n)                  # full Krylov space
    V /= np.linalg.norm(V, axis=0)
    op = square_operator(A, symmetric=True)
    a, b, L = lanczos(op, V, 12, "none")
    assert L.tolist() == [2, 3, 4, 12]
    assert op.matvecs == 2 + 3 + 4 + 12
    for c in range(3):
        theta, U = sla.eigh_tridiagonal(a[:L[c], c], b[:L[c] - 1, c])
        assert np.sum(U[0] ** 2 * np.log(theta)) == pytest.approx(
            np.sum(V[:, c] ** 2 * np.log(lam)), rel=1e-12)
    a3, b3, _ = lanczos(square_operator(A, symmetric=True), V[:, 3:], 12, "none")
    np.testing.assert_array_equal(a[:, 3], a3[:, 0])
    np.testing.assert_array_equal(b[:, 3], b3[:, 0])


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 2e-5)])
def test_blocked_logdet_equals_the_dense_quadratic_forms(rng, dtype, rtol):
    """logdet of a fresh SPD matrix with 10 Rademacher probes: the SLQ estimate against the
    mean of w^T log(A) w over the same probes, from a dense eigendecomposition. A degree of 40
    on condition ~10 makes the quadrature error ~1e-13, far below the Monte Carlo error, so
    the comparison checks the kernel, not luck; and the estimate against log det(A)."""
    n = 700
    A = _banded_spd(rng, n, 50).astype(dtype)
    S = sketch.make("rademacher", 10, n, rng=rng)
    W = math.sqrt(10) * S.to_dense().T
    lam, U = np.linalg.eigh(A.toarray().astype(np.float64))
    forms = np.einsum("ic,ic->c", U.T @ W, np.log(lam)[:, None] * (U.T @ W))
    t = rt.logdet(A, 10 * 40, degree=40, reorth="none", sketch=S)
    assert t.matvecs == 400
    assert float(t) == pytest.approx(forms.mean(), rel=rtol)
    exact = np.sum(np.log(lam))
    assert abs(t - exact) < 5 * t.error + rtol * abs(exact)
