"""``randla deblur`` on real 8-bit image files: the realistic workflow (blur, noise, then
quantization to 8 bits by the file) must improve the image, and bad calls fail in one line."""
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("PIL", reason="image files need Pillow (the images extra)")
from sklearn.datasets import load_sample_image  # noqa: E402

from randla.inverse import BlurOperator, gaussian_psf, motion_psf, read_image, write_image  # noqa: E402


def _psnr(x, ref):
    return 10 * np.log10(1.0 / np.mean((x - ref) ** 2))


@pytest.mark.parametrize("psf_spec, psf", [("gaussian:3", gaussian_psf(3)),
                                           ("motion:9,30", motion_psf(9, 30))])
@pytest.mark.parametrize("noise", [0.003, 0.01])
def test_deblurring_an_8_bit_file_improves_it(tmp_path, psf_spec, psf, noise):
    sharp = load_sample_image("china.jpg").mean(axis=2)[120:376, 180:436] / 255.0
    A = BlurOperator(psf, sharp.shape, boundary="reflective")
    rng = np.random.default_rng(0)
    blurred = (A @ sharp.ravel()).reshape(sharp.shape) + noise * rng.standard_normal(sharp.shape)
    write_image(tmp_path / "in.png", np.clip(blurred, 0, 1))          # 8 bits, as a camera's
    out = subprocess.run([sys.executable, "-m", "randla", "deblur", str(tmp_path / "in.png"),
                          "--psf", psf_spec, "-o", str(tmp_path / "out.png")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "rule discrepancy" in out.stderr
    before = _psnr(read_image(tmp_path / "in.png", gray=True), sharp)
    after = _psnr(read_image(tmp_path / "out.png", gray=True), sharp)
    assert after > before + 0.3, (before, after)


@pytest.mark.parametrize("args, message", [
    (["--psf", "blob:3"], "psf spec must be"),
    (["--psf", "gaussian:3", "--lam", "-1"], "must be a positive number"),
])
def test_bad_calls_fail_in_one_line(tmp_path, args, message):
    write_image(tmp_path / "in.png", np.full((16, 16), 0.5))
    out = subprocess.run([sys.executable, "-m", "randla", "deblur", str(tmp_path / "in.png"),
                          "-o", str(tmp_path / "out.png"), *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.png").exists()


def test_output_is_never_the_input(tmp_path):
    write_image(tmp_path / "in.png", np.full((16, 16), 0.5))
    (tmp_path / "link.png").symlink_to(tmp_path / "in.png")
    before = (tmp_path / "in.png").read_bytes()
    out = subprocess.run([sys.executable, "-m", "randla", "deblur", str(tmp_path / "in.png"),
                          "--psf", "disk:2", "-o", str(tmp_path / "link.png")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "is the input" in out.stderr
    assert (tmp_path / "in.png").read_bytes() == before
