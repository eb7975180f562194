"""deblur's names and units: noise_std (per pixel) against noise_level (||e||), integer images,
PSFs in counts or without a positive sum, what the result reports, and bad calls that must fail
clearly."""
import warnings

import numpy as np
import pytest
import scipy.ndimage as ndi

from randla.exceptions import AccuracyWarning
from randla.inverse import (
    BlurOperator,
    deblur,
    deblur_file,
    estimate_noise,
    gaussian_psf,
    motion_psf,
    read_image,
    write_image,
)


def scene(rng, shape=(40, 36)):
    """A smooth image with edges (a step and a disk), values in [0.1, 0.9]."""
    n1, n2 = shape
    t1, t2 = np.linspace(0, 1, n1)[:, None], np.linspace(0, 1, n2)[None, :]
    a, b = rng.uniform(1, 4, 2)
    X = 0.4 + 0.15 * np.sin(a * t1 + rng.uniform(0, 3)) * np.cos(b * t2)
    X[n1 // 4:n1 // 2, n2 // 4:3 * n2 // 4] += 0.25
    cy, cx, r = rng.uniform(0.5, 0.7) * n1, rng.uniform(0.3, 0.7) * n2, 0.15 * min(shape)
    X[(np.arange(n1)[:, None] - cy) ** 2 + (np.arange(n2)[None, :] - cx) ** 2 < r * r] = 0.85
    return np.clip(X, 0.1, 0.9)


def blurred_scene(rng, psf, shape=(40, 36), noise=0.01, channels=None):
    X = scene(rng, shape) if channels is None else np.stack(
        [scene(rng, shape) for _ in range(channels)], axis=-1)
    B = ndi.convolve(X, psf[..., None] if X.ndim == 3 else psf, mode="reflect")
    return X, B + noise * rng.standard_normal(B.shape)


# -- noise_std (per pixel) and noise_level (||e||) -----------------------------------------
@pytest.mark.parametrize("channels", [None, 3])
def test_noise_level_is_the_norm_of_the_noise_and_noise_std_the_per_pixel_std(rng, channels):
    psf = gaussian_psf(1.5)
    s = rng.uniform(0.005, 0.02)
    _, b = blurred_scene(rng, psf, noise=s, channels=channels)
    by_std = deblur(b, psf, noise_std=s)
    with pytest.warns(FutureWarning, match="noise_std") as rec:
        by_norm = deblur(b, psf, noise_level=s * np.sqrt(b.size))
    future = [w for w in rec if w.category is FutureWarning]
    assert len(future) == 1 and future[0].filename == __file__  # once per call, at the caller
    np.testing.assert_allclose(by_norm.image, by_std.image, rtol=1e-9, atol=1e-12)
    assert by_norm.lam == pytest.approx(by_std.lam, rel=1e-9)
    assert by_std.noise_level == pytest.approx(s * np.sqrt(b.size), rel=1e-12)
    # the old meaning (a per-pixel std passed as noise_level) is gone: s is ||e|| now
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AccuracyWarning)  # far below the true noise: it says so
        with pytest.warns(FutureWarning):
            small = deblur(b, psf, noise_level=s)
        tiny = deblur(b, psf, noise_std=s / np.sqrt(b.size))
    np.testing.assert_allclose(small.image, tiny.image, rtol=1e-9, atol=1e-12)
    assert np.abs(small.image - by_std.image).max() > 10 * s


def test_noise_std_and_noise_level_together_or_bad_are_refused(rng):
    b = scene(rng)
    with pytest.raises(ValueError, match="noise_std .* noise_level"):
        deblur(b, "gaussian:1", noise_std=0.01, noise_level=1.0)
    with pytest.raises(ValueError, match="noise_std"):
        deblur(b, "gaussian:1", noise_std=-0.01)
    with pytest.raises(ValueError, match="noise_level"):
        deblur(b, "gaussian:1", noise_level=0.0)


def test_deblur_file_warns_for_noise_level_at_its_caller(rng, tmp_path):
    pytest.importorskip("PIL")
    psf = gaussian_psf(1.2)
    _, b = blurred_scene(rng, psf)
    write_image(tmp_path / "in.png", b)
    with pytest.warns(FutureWarning) as rec:
        deblur_file(tmp_path / "in.png", tmp_path / "out.png", psf, noise_level=0.5)
    future = [w for w in rec if w.category is FutureWarning]
    assert len(future) == 1 and future[0].filename == __file__
    with pytest.raises(TypeError, match="noise"):
        deblur_file(tmp_path / "in.png", tmp_path / "out2.png", psf, noise=0.01)


# -- SW-7: integer images -------------------------------------------------------------------
@pytest.mark.parametrize("dtype, full", [(np.uint8, 255), (np.uint16, 65535)])
def test_integer_images_are_deblurred_on_the_unit_scale(rng, tmp_path, dtype, full):
    psf = gaussian_psf(1.5)
    X, b = blurred_scene(rng, psf)
    bi = np.round(np.clip(b, 0, 1) * full).astype(dtype)
    r = deblur(bi, psf)
    ref = deblur(bi / full, psf)
    assert r.scale == 1 / full and r.image.dtype == np.float64
    np.testing.assert_allclose(r.image, ref.image, rtol=1e-12, atol=1e-12)
    assert r.noise_std == pytest.approx(estimate_noise(bi / full), rel=1e-12)
    assert estimate_noise(bi) == pytest.approx(estimate_noise(bi / full), rel=1e-12)
    assert np.mean(np.abs(r.image - X)) < 0.05  # not 0-255 values: the scene itself
    with pytest.raises(ValueError, match="noise_std .*divide"):
        deblur(bi, psf, noise_std=2.0)  # grey levels, not the [0, 1] scale


def test_read_deblur_write_round_trip_of_an_8_bit_image(rng, tmp_path):
    pytest.importorskip("PIL")
    psf = gaussian_psf(1.5)
    X, b = blurred_scene(rng, psf, channels=3)
    b8 = np.round(np.clip(b, 0, 1) * 255).astype(np.uint8)
    write_image(tmp_path / "b8.png", b8)               # integers are written as they are
    back = read_image(tmp_path / "b8.png")
    np.testing.assert_array_equal(back, b8 / 255)
    r = deblur(b8, psf)
    np.testing.assert_allclose(deblur(back, psf).image, r.image, rtol=1e-12, atol=1e-12)
    write_image(tmp_path / "out.png", r.image)
    out = read_image(tmp_path / "out.png")
    assert np.abs(out - np.clip(r.image, 0, 1)).max() <= 0.5 / 255 + 1e-12
    assert np.mean(np.abs(out - X)) < 0.05        # neither white nor black: the scene
    u16 = np.round(np.clip(b, 0, 1) * 65535).astype(np.uint16)
    write_image(tmp_path / "u16.png", u16)
    assert np.abs(read_image(tmp_path / "u16.png") - u16 / 65535).max() <= 0.5 / 255 + 1e-12


def test_integer_types_without_a_pixel_range_are_refused(rng):
    b = np.round(scene(rng) * 255)
    with pytest.raises(TypeError, match="blurred .*int64"):
        deblur(b.astype(np.int64), "gaussian:1")
    with pytest.raises(TypeError, match="image .*int32"):
        estimate_noise(b.astype(np.int32))


# -- SW-8, SW-14, CR-5: the PSF -------------------------------------------------------------
def test_a_psf_in_counts_is_the_same_blur_as_normalized(rng, tmp_path):
    psf = motion_psf(5, rng.uniform(0, 180))
    _, b = blurred_scene(rng, psf)
    counts = np.round(psf * rng.uniform(1e3, 1e5))
    np.save(tmp_path / "psf.npy", counts)
    ref = deblur(b, counts / counts.sum(), noise_std=0.01)
    for given in (counts, counts.astype(np.int64), f"file:{tmp_path / 'psf.npy'}"):
        r = deblur(b, given, noise_std=0.01)
        np.testing.assert_allclose(r.image, ref.image, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("psf", [np.zeros((3, 3)), np.array([[1.0, -2.0, 1.0]]),
                                 np.array([[0.0, 1.0], [-1.0, 0.0]]), -gaussian_psf(1.0)])
def test_a_psf_without_a_positive_sum_is_refused(rng, psf):
    b = scene(rng)
    for kw in ({}, {"lam": 0.1}):
        with pytest.raises(ValueError, match="psf must have a positive sum"):
            deblur(b, psf, **kw)


# -- SW-13: rank and lam belong to one method each -----------------------------------------
def test_tsvd_rank_out_of_range_or_with_the_wrong_method_is_refused(rng):
    b = scene(rng, (12, 10))
    for rank in (0, -1, 121):
        with pytest.raises(ValueError, match="rank"):
            deblur(b, "gaussian:1", method="tsvd", rank=rank)
    assert deblur(b, "gaussian:1", method="tsvd", rank=120).rank == 120   # every pixel
    with pytest.raises(TypeError, match="rank"):
        deblur(b, "gaussian:1", method="tsvd", rank=2.5)
    with pytest.raises(ValueError, match="rank"):
        deblur(b, "gaussian:1", rank=5)                       # Tikhonov has no rank
    with pytest.raises(ValueError, match="lam"):
        deblur(b, "gaussian:1", method="tsvd", lam=0.1)       # TSVD has no lam


def test_a_noise_free_image_needs_lam_or_rank(rng):
    # steps of 1/32 are exact in binary: the ramp's differences have no rounding (with /40 one
    # draw in three estimated 2e-17)
    ramp = np.add.outer(np.arange(12.0), rng.integers(1, 4) * np.arange(10.0)) / 32
    assert estimate_noise(ramp) == 0
    with pytest.raises(ValueError, match="noise-free .*pass lam"):
        deblur(ramp, "gaussian:1")
    assert deblur(ramp, "gaussian:1", method="tsvd", rank=7).rank == 7
    assert deblur(ramp, "gaussian:1", lam=0.1).lam == 0.1


def test_estimate_noise_ignores_the_few_edges(rng):
    sigma = rng.uniform(0.005, 0.05)
    X = sigma * rng.standard_normal((128, 128))
    edges = rng.random(X.shape) < 0.01
    X[edges] += rng.choice([-1.0, 1.0], edges.sum())     # 1% of pixels far off: edges
    assert estimate_noise(X) == pytest.approx(sigma, rel=0.1)


# -- what deblur reports --------------------------------------------------------------------
@pytest.mark.parametrize("boundary, path", [("reflective", "spectral"), ("zero", "kronecker")])
def test_tsvd_reports_the_smallest_singular_value_kept(rng, boundary, path):
    shape = (12, 10)
    psf = gaussian_psf(rng.uniform(0.8, 1.5))
    _, b = blurred_scene(rng, psf, shape)
    A = BlurOperator(psf, shape, boundary=boundary)
    s = np.linalg.svd(A @ np.eye(A.shape[1]), compute_uv=False)
    gaps = np.nonzero(s[:-1] > 1.01 * s[1:])[0] + 1        # ranks with a clear cut after them
    rank = int(rng.choice(gaps[gaps < 100]))
    r = deblur(b, psf, boundary=boundary, method="tsvd", rank=rank)
    assert r.path == path and r.rank == rank
    assert r.lam == pytest.approx(s[rank - 1], rel=1e-9)
    assert np.sum(s >= r.lam * (1 - 1e-9)) == rank           # a cut at lam keeps the rank
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AccuracyWarning)
        chosen = deblur(b, psf, boundary=boundary, method="tsvd", noise_std=0.01)
    assert chosen.lam == pytest.approx(s[chosen.rank - 1], rel=1e-9)


def test_colour_residual_is_the_norm_over_all_channels(rng):
    psf = gaussian_psf(1.2)
    _, b = blurred_scene(rng, psf, channels=3)
    r = deblur(b, psf, noise_std=0.01)
    A = BlurOperator(psf, b.shape[:2], boundary="reflective")
    R = np.stack([(A @ r.image[..., c].ravel()).reshape(b.shape[:2]) for c in range(3)],
                 axis=-1) - b
    assert r.residual_norm == pytest.approx(np.linalg.norm(R), rel=1e-9)
    # the discrepancy principle held each channel, and so the whole, to the noise norm
    assert r.residual_norm == pytest.approx(r.noise_level, rel=1e-4)


def test_channels_first_images_are_named_as_such(rng):
    b = np.stack([scene(rng) for _ in range(3)])
    with pytest.raises(ValueError, match="channels-first"):
        deblur(b, "gaussian:1")
    with pytest.raises(ValueError, match="channels-first"):
        estimate_noise(b)
