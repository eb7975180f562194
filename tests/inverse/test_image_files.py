"""Image files: palette, CMYK and bilevel files read as pixel values; integers and floats
written on one scale (the rule in randla.inverse.images)."""
import numpy as np
import pytest
import scipy.ndimage as ndi

from randla.inverse import read_image, write_image

Image = pytest.importorskip("PIL.Image", reason="image files need Pillow (the images extra)")


def test_palette_and_cmyk_files_are_read_as_rgb(rng, tmp_path):
    colours = rng.integers(0, 256, (6, 3), dtype=np.uint8)
    rgb = colours[rng.integers(0, 6, (20, 24))]                # six colours: exact in a palette
    for name in ("pal.png", "pal.gif"):
        Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=6).save(
            tmp_path / name)
        np.testing.assert_array_equal(read_image(tmp_path / name), rgb / 255)
    smooth = np.clip(ndi.gaussian_filter(rng.random((32, 40, 3)), (4, 4, 0)) * 2 - 0.5, 0, 1)
    Image.fromarray(np.round(smooth * 255).astype(np.uint8)).convert("CMYK").save(
        tmp_path / "cmyk.jpg", quality=95)
    back = read_image(tmp_path / "cmyk.jpg")
    assert back.shape == smooth.shape and np.abs(back - smooth).mean() < 0.03
    gray = read_image(tmp_path / "cmyk.jpg", gray=True)
    assert np.abs(gray - smooth @ [0.299, 0.587, 0.114]).mean() < 0.03


def test_bilevel_files_are_read_as_zero_and_one(rng, tmp_path):
    bits = rng.random((9, 13)) < 0.5
    Image.fromarray(bits).save(tmp_path / "bits.png")
    assert Image.open(tmp_path / "bits.png").mode == "1"
    np.testing.assert_array_equal(read_image(tmp_path / "bits.png"), bits.astype(float))


def test_integer_images_are_written_on_their_full_range(rng, tmp_path):
    x = rng.random((10, 12, 3))
    for dtype, full in ((np.uint8, 255), (np.uint16, 65535)):
        write_image(tmp_path / "i.png", np.round(x * full).astype(dtype))
        assert np.abs(read_image(tmp_path / "i.png") - x).max() <= 0.5 / 255 + 0.5 / full + 1e-12
    write_image(tmp_path / "f.png", x)
    assert np.abs(read_image(tmp_path / "f.png") - x).max() <= 0.5 / 255 + 1e-12


def test_floats_on_a_0_255_scale_and_other_integers_are_refused(rng, tmp_path):
    x = rng.random((10, 12)) * 255
    with pytest.raises(ValueError, match="0-255"):
        write_image(tmp_path / "white.png", x)    # clipped to [0, 1] it would be all white
    with pytest.raises(TypeError, match="int64"):
        write_image(tmp_path / "white.png", np.round(x).astype(np.int64))
    assert not (tmp_path / "white.png").exists()
    # a deblurred image rings and overshoots [0, 1] at edges: that is written, clipped
    y = rng.random((10, 12))
    y[:, :3] = rng.uniform(1.1, 3, (10, 3))
    write_image(tmp_path / "ok.png", y)
    np.testing.assert_allclose(read_image(tmp_path / "ok.png"), np.clip(y, 0, 1), atol=0.5 / 255)


def test_one_channel_and_big_endian_images_are_written(rng, tmp_path):
    x = rng.random((9, 11))
    write_image(tmp_path / "one.png", x[..., None])                 # (H, W, 1)
    np.testing.assert_allclose(read_image(tmp_path / "one.png"), x, atol=0.5 / 255 + 1e-12)
    big = np.round(x * 65535).astype(">u2")                         # as 16-bit big-endian TIFFs
    write_image(tmp_path / "big.png", big)
    np.testing.assert_allclose(read_image(tmp_path / "big.png"), x, atol=0.5 / 255 + 1e-6)
