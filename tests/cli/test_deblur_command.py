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


def _colour_file(path, rng):
    """A blurred, noisy synthetic colour scene (smooth shading and a bright square) as 8 bits."""
    t = np.linspace(0, 1, 48)
    sharp = np.stack([0.3 + 0.2 * np.add.outer(t, t ** 2 * c) / (1 + c) for c in (1, 2, 3)], -1)
    sharp[12:30, 16:40] += 0.3
    b = np.stack([(BlurOperator(gaussian_psf(1.5), sharp.shape[:2], boundary="reflective")
                   @ sharp[..., c].ravel()).reshape(sharp.shape[:2]) for c in range(3)], -1)
    write_image(path, np.clip(b + 0.01 * rng.standard_normal(b.shape), 0, 1))
    return sharp


def test_a_colour_file_is_deblurred_and_reported_in_one_line(tmp_path):
    sharp = _colour_file(tmp_path / "rgb.png", np.random.default_rng())
    out = subprocess.run([sys.executable, "-m", "randla", "deblur", str(tmp_path / "rgb.png"),
                          "--psf", "gaussian:1.5", "-o", str(tmp_path / "out.png")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "noise std" in out.stderr
    result = read_image(tmp_path / "out.png")
    assert result.shape == sharp.shape and np.mean(np.abs(result - sharp)) < 0.05


def test_noise_std_option_and_its_old_name(tmp_path):
    _colour_file(tmp_path / "in.png", np.random.default_rng())

    def run(*args, out="out.png"):
        return subprocess.run([sys.executable, "-m", "randla", "deblur", str(tmp_path / "in.png"),
                               "--psf", "gaussian:1.5", "--gray", "-o", str(tmp_path / out),
                               *args], capture_output=True, text=True, timeout=120)

    new = run("--noise-std", "0.01", out="new.png")
    assert new.returncode == 0 and "noise std 0.01" in new.stderr and "warning" not in new.stderr
    old = run("--noise-level", "0.01", out="old.png")  # the old name keeps its per-pixel meaning
    assert old.returncode == 0 and "--noise-level is deprecated" in old.stderr
    assert (tmp_path / "old.png").read_bytes() == (tmp_path / "new.png").read_bytes()
    both = run("--noise-level", "0.01", "--noise-std", "0.01", out="both.png")
    assert both.returncode == 2 and not (tmp_path / "both.png").exists()


def test_out_of_memory_says_what_to_shrink(tmp_path, monkeypatch, capsys):
    import randla.inverse
    from randla.cli import main

    def too_big(*args, **kwargs):
        raise MemoryError("Unable to allocate 275. MiB for an array with shape (6001, 6001)")

    monkeypatch.setattr(randla.inverse, "deblur_file", too_big)
    assert main(["deblur", str(tmp_path / "in.png"), "--psf", "disk:3000",
                 "-o", str(tmp_path / "out.png")]) == 2
    err = capsys.readouterr().err
    assert "out of memory" in err and "PSF" in err and "--memory-limit" not in err
