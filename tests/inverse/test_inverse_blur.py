"""BlurOperator against scipy.ndimage and dense matrices; PSF helpers."""
import numpy as np
import pytest
import scipy.ndimage as ndi

from randla.inverse import BlurOperator, disk_psf, gaussian_psf, motion_psf
from randla.operators import as_operator

MODES = {"zero": "constant", "periodic": "wrap", "reflective": "reflect"}


def psfs(rng):
    return {"gaussian": gaussian_psf(1.3), "motion": motion_psf(7, 30), "disk": disk_psf(2.5),
            "random-even": rng.random((4, 6)), "random-tall": rng.random((5, 2)),
            "horizontal": motion_psf(5)}


@pytest.mark.parametrize("boundary", list(MODES))
@pytest.mark.parametrize("kind", ["gaussian", "motion", "disk", "random-even", "random-tall",
                                  "horizontal"])
def test_matches_ndimage_convolve_and_passes_dot_test(rng, boundary, kind):
    psf = psfs(rng)[kind]
    shape = (int(rng.integers(9, 20)), int(rng.integers(9, 20)))
    A = BlurOperator(psf, shape, boundary=boundary)
    X = rng.standard_normal((shape[0] * shape[1], 3))
    ref = np.column_stack([ndi.convolve(x.reshape(shape), psf, mode=MODES[boundary]).ravel()
                           for x in X.T])
    np.testing.assert_allclose(A @ X, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_allclose(A @ X[:, 0], ref[:, 0], rtol=0, atol=1e-12 * np.abs(ref).max())
    Y = rng.standard_normal((A.shape[0], 2))
    lhs, rhs = (A @ X).T @ Y, X.T @ (A.H @ Y)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-11, atol=1e-11 * np.abs(lhs).max())
    np.testing.assert_allclose(A.rmatvec(Y[:, 0]), (A.H @ Y)[:, 0], rtol=1e-12, atol=1e-13)


def test_fast_paths_are_chosen_where_they_apply(rng):
    shape = (16, 12)
    assert BlurOperator(motion_psf(7, 30), shape, boundary="periodic").path == "fft"
    assert BlurOperator(gaussian_psf(1.0), shape, boundary="reflective").path == "dct"
    assert BlurOperator(disk_psf(3), shape, boundary="reflective").path == "dct"
    assert BlurOperator(motion_psf(7, 30), shape, boundary="reflective").path == "padded-fft"
    assert BlurOperator(gaussian_psf(1.0), shape, boundary="zero").path == "padded-fft"
    # an off-center symmetric PSF is not symmetric about its center
    assert BlurOperator(gaussian_psf(1.0), shape, boundary="reflective",
                        center=(2, 3)).path == "padded-fft"


@pytest.mark.parametrize("boundary", list(MODES))
def test_eigenvalues_and_kronecker_factors_reproduce_the_dense_matrix(rng, boundary):
    shape = (11, 13)
    A = BlurOperator(gaussian_psf(1.2), shape, boundary=boundary)
    dense = A @ np.eye(A.shape[1])
    K = A.kronecker()
    np.testing.assert_allclose(np.kron(*K.factors), dense, atol=1e-13)
    if A.eigenvalues is not None:  # A = T^H diag(lam) T: the singular values are abs(lam)
        s = np.linalg.svd(dense, compute_uv=False)
        np.testing.assert_allclose(np.sort(np.abs(A.eigenvalues).ravel())[::-1], s,
                                   atol=1e-12)
    assert BlurOperator(motion_psf(7, 30), shape, boundary=boundary).kronecker() is None


def test_psf_larger_than_the_image_and_custom_center(rng):
    psf = rng.random((9, 7))
    shape = (5, 4)
    for boundary, mode in MODES.items():
        A = BlurOperator(psf, shape, boundary=boundary, center=(6, 1))
        X = rng.standard_normal(shape)
        # ndimage's origin shifts the center: center = size // 2 + origin for convolve
        ref = ndi.convolve(X, psf, mode=mode, origin=(6 - 4, 1 - 3))
        np.testing.assert_allclose(A @ X.ravel(), ref.ravel(), atol=1e-12)
        Y = rng.standard_normal(A.shape[0])
        assert np.isclose((A @ X.ravel()) @ Y, X.ravel() @ A.rmatvec(Y))


def test_float32_stays_float32_and_composes_with_as_operator(rng):
    A = BlurOperator(gaussian_psf(1.0).astype(np.float32), (8, 9), boundary="reflective")
    x = rng.random(72).astype(np.float32)
    assert A.dtype == np.float32 and (A @ x).dtype == np.float32
    op = as_operator(A)
    X = rng.random((72, 2))
    np.testing.assert_allclose(op.matmat(X), A @ X, rtol=1e-6)
    np.testing.assert_allclose(op.rmatmat(X), A.H @ X, rtol=1e-6)


def test_psf_helpers():
    g = gaussian_psf(2.0)
    assert g.shape == (13, 13) and np.isclose(g.sum(), 1)
    t = np.arange(-6, 7)
    np.testing.assert_allclose(g[6] / g[6, 6], np.exp(-t**2 / 8), rtol=1e-12)
    m = motion_psf(9)  # horizontal: one row, pixels 0..8 covered
    assert m.shape == (9, 9) and np.isclose(m.sum(), 1) and np.count_nonzero(m.sum(1)) == 1
    m90 = motion_psf(9, 90)
    np.testing.assert_allclose(m90, m.T, atol=1e-12)
    m45 = motion_psf(11, 45)
    np.testing.assert_allclose(m45, m45[::-1, ::-1], atol=1e-12)  # centrosymmetric
    assert np.trace(m45[::-1]) > 0.5 and m45[0, 0] == 0 and m45[2, 2] == 0  # anti-diagonal
    d = disk_psf(4)
    assert d.shape == (9, 9) and np.isclose(d.sum(), 1)
    np.testing.assert_allclose(d.sum() / d.max(), np.pi * 16, rtol=0.02)  # area of the disk
    assert d[4, 0] > 0 and d[0, 0] == 0


def test_bad_input():
    with pytest.raises(ValueError, match="psf"):
        BlurOperator(np.ones(3), (4, 4))
    with pytest.raises(TypeError, match="psf"):
        BlurOperator(np.ones((3, 3), complex), (4, 4))
    with pytest.raises(ValueError, match="psf"):
        BlurOperator(np.full((3, 3), np.nan), (4, 4))
    with pytest.raises(ValueError, match="boundary"):
        BlurOperator(np.ones((3, 3)), (4, 4), boundary="mirror")
    with pytest.raises(ValueError, match="shape"):
        BlurOperator(np.ones((3, 3)), (4, 0))
    with pytest.raises(ValueError, match="center"):
        BlurOperator(np.ones((3, 3)), (4, 4), center=(3, 0))
    with pytest.raises(ValueError, match="sigma"):
        gaussian_psf(0)
    with pytest.raises(ValueError, match="size"):
        gaussian_psf(1, size=4)
    with pytest.raises(ValueError, match="radius"):
        disk_psf(-1)
    with pytest.raises(ValueError, match="length"):
        motion_psf(0.5)


def test_write_errors_name_the_output_not_a_temporary(tmp_path, monkeypatch):
    # the image is written to a temporary file first: a failure names the file asked for
    from PIL import Image

    from randla.inverse import write_image

    def full_disk(self, fp, *a, **kw):
        raise OSError(28, "No space left on device", fp)

    monkeypatch.setattr(Image.Image, "save", full_disk)
    target = tmp_path / "out.png"
    with pytest.raises(OSError) as info:
        write_image(target, np.zeros((4, 4)))
    assert info.value.filename == str(target) and ".randla-" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
