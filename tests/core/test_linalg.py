"""randla._linalg: overflow-safe norms, CholeskyQR, sign fixing, against numpy references."""
import numpy as np
import pytest

from randla._linalg import cholqr, fix_signs, fix_signs_by_rows, fro_norm, qr_factor


@pytest.mark.parametrize("scale", [1.0, 1e200, 1e-170, 1e-300])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_fro_norm_at_every_scale(rng, scale, dtype):
    x = rng.standard_normal((37, 11))
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(x.shape)
    ref = np.linalg.norm(x.astype(np.complex128))      # computed at scale 1
    if dtype == np.float32 and scale != 1.0:
        return  # float32 cannot hold these scales at all
    y = (x * scale).astype(dtype)
    got = fro_norm(y)
    assert got == pytest.approx(ref * scale, rel=1e-6 if dtype == np.float32 else 1e-12, abs=0)


def test_fro_norm_special_values():
    assert fro_norm(np.zeros((3, 4))) == 0.0
    assert fro_norm(np.array([1.0, np.inf])) == np.inf
    assert np.isnan(fro_norm(np.array([1.0, np.nan])))
    assert fro_norm(np.array([3e200, 4e200])) == pytest.approx(5e200, rel=1e-15)


@pytest.mark.parametrize("cond", [1e2, 1e8, 1e14])
def test_qr_factor_reproduces_y(rng, cond):
    U = np.linalg.qr(rng.standard_normal((500, 20)))[0]
    V = np.linalg.qr(rng.standard_normal((20, 20)))[0]
    Y = (U * np.logspace(0, -np.log10(cond), 20)) @ V.T
    Q, R = qr_factor(Y)
    np.testing.assert_allclose(Q.T @ Q, np.eye(20), atol=1e-12)
    np.testing.assert_allclose(Q @ R, Y, atol=1e-12 * np.linalg.norm(Y))
    assert np.allclose(R, np.triu(R))
    np.testing.assert_allclose(cholqr(Y), Q)


def test_signs(rng):
    U, s, Vh = np.linalg.svd(rng.standard_normal((30, 8)), full_matrices=False)
    U2, Vh2 = fix_signs(-U, -Vh)
    np.testing.assert_allclose((U2 * s) @ Vh2, (U * s) @ Vh, atol=1e-12)
    idx = np.argmax(np.abs(U2), axis=0)
    assert np.all(U2[idx, np.arange(8)] > 0)
    U3, Vh3 = fix_signs_by_rows(-U, -Vh)
    idx = np.argmax(np.abs(Vh3), axis=1)
    assert np.all(Vh3[np.arange(8), idx] > 0)
    np.testing.assert_allclose((U3 * s) @ Vh3, (U * s) @ Vh, atol=1e-12)


@pytest.mark.parametrize("width", [0, 1, 3])
def test_project_out(rng, width):
    from randla._linalg import project_out
    Q = np.linalg.qr(rng.standard_normal((50, max(width, 1))))[0][:, :width]
    W = rng.standard_normal((50, 4))
    P = project_out(W, Q)
    np.testing.assert_allclose(Q.T @ P, 0, atol=1e-12)
    np.testing.assert_allclose(P, W - Q @ (Q.T @ W), atol=1e-12)
    assert project_out(W, None) is W
