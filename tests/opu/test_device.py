"""The simulated OPU: layout, camera model, speckle statistics, frame accounting, bad input."""
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.stats

from opu import OPU
from opu.encoding import BitPlaneEncoder, ThresholdEncoder


def _seed(rng):
    return int(rng.integers(0, 2**62))


def _binary(rng, shape, p=0.5):
    return (rng.random(shape) < p).astype(np.uint8)


def _reference_intensity(opu, X):
    """|X @ H_eff.T + b|^2 / n_in in float64 from the raw blocks of H."""
    lay = opu.layout
    H = opu.medium.block(dtype=np.complex128)
    Heff = H[:, :lay.input_pixels].reshape(opu.n_out, lay.n_features, lay.macro).sum(axis=2)
    b = H[:, opu.n_in - lay.leftover:].sum(axis=1) if opu.bias else 0
    return np.abs(X @ Heff.T + b) ** 2 / opu.n_in


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("cache", [0, 2**26])
def test_noiseless_camera_matches_the_model(bias, cache, rng):
    opu = OPU(3001, 150, seed=_seed(rng), bias=bias, cache_bytes=cache, tile_bytes=2**18)
    opu.fit1d(n_features=700)
    assert (opu.layout.macro, opu.layout.leftover) == (4, 201)
    X = _binary(rng, (5, 700))
    Y = opu.transform(X)
    assert Y.dtype == np.uint8 and Y.shape == (5, 150)
    counts = opu.camera.gain * _reference_intensity(opu, X)
    ref = np.clip(np.rint(counts), 0, 255)
    # float32 field: only values within rounding distance of a half-integer may differ by one
    near_half = np.abs(counts - np.floor(counts) - 0.5) < 1e-3 * np.maximum(counts, 1)
    assert np.all((Y == ref) | near_half)
    assert np.abs(Y.astype(int) - ref).max() <= 1


def test_quantization_error_bound(rng):
    """Unsaturated pixels above the floor read I to within half a count: |q / g - I| <= 1/(2g);
    saturated ones read 255 and dim ones read the floor."""
    opu = OPU(2048, 400, seed=_seed(rng), black_level=3, exposure_us=1500)
    opu.fit1d(n_features=2048)
    X = _binary(rng, (8, 2048))
    Y = opu.transform(X).astype(np.float64)
    g = opu.camera.gain
    intensity = _reference_intensity(opu, X)
    inside = (g * intensity > 3) & (g * intensity < 254.5)
    assert np.all(np.abs(Y / g - intensity)[inside] <= 0.5 / g + 1e-4 * intensity[inside])
    assert np.all(Y[g * intensity >= 255.5] == 255) and np.any(Y == 255)
    assert np.all(Y[g * intensity <= 2.5] == 3) and Y.min() == 3


def test_speckle_is_exponential(rng):
    """For a fixed input, intensities over camera pixels are Exp(mean = lit mirrors / n_in)."""
    opu = OPU(800, 6000, seed=_seed(rng))
    opu.fit1d(n_features=800)
    x = _binary(rng, (1, 800))
    intensity = np.abs(opu.field(x)[0]) ** 2 / opu.n_in
    mean = x.sum() / opu.n_in
    assert abs(intensity.mean() / mean - 1) < 5 / np.sqrt(6000)
    assert scipy.stats.kstest(intensity / mean, "expon").pvalue > 1e-4
    # brightest of n pixels ~ ln(n) + 0.58 times the mean (Gumbel): ~9.3 for n = 6000
    assert 6 < intensity.max() / mean < 18


def test_frames_time_and_energy_are_accounted():
    opu = OPU(1000, 30, seed=0).fit1d(n_features=100)
    opu.transform(np.ones((7, 100), np.uint8))
    assert opu.last_call.frames == 7
    assert opu.last_call.device_seconds == pytest.approx(7 * 500e-6)
    assert opu.last_call.energy_joules == pytest.approx(7 * 500e-6 * 30)
    opu.exposure_us = 900  # longer exposure: the frame grows by the 100 us readout
    opu.transform(np.ones((1, 100), bool))
    assert opu.frametime_us == 1000
    assert opu.stats.frames == 8
    assert opu.stats.device_seconds == pytest.approx(7 * 500e-6 + 1000e-6)
    # encoders: one frame per plane of every vector
    X = np.random.default_rng(0).standard_normal((3, 100))
    opu.transform(X, encoder=ThresholdEncoder())
    assert opu.last_call.frames == 3
    opu.transform(X, encoder=BitPlaneEncoder(4), decoder=BitPlaneEncoder(4))
    assert opu.last_call.frames == 3 * 8


def test_exposure_scales_counts(rng):
    opu = OPU(1024, 500, seed=_seed(rng)).fit1d(n_features=1024)
    x = _binary(rng, (1, 1024), 0.3)
    low = opu.transform(x).astype(float)
    opu.exposure_us *= 2
    high = opu.transform(x).astype(float)
    ok = (low > 20) & (high < 250)
    np.testing.assert_allclose(high[ok], 2 * low[ok], atol=1.01)


def test_shot_and_read_noise_statistics(rng):
    opu = OPU(512, 200, seed=_seed(rng), exposure_us=2000, shot_noise=True,
              electrons_per_count=4.0, read_noise=1.5, rng=rng)
    opu.fit1d(n_features=512)
    x = _binary(rng, (1, 512))
    clean = opu.camera.gain * np.abs(opu.field(x)[0]) ** 2 / opu.n_in
    frames = opu.transform(np.repeat(x, 400, axis=0)).astype(np.float64)
    ok = (clean > 20) & (clean < 150)
    assert ok.sum() > 20
    # mean: unbiased; variance: Poisson (counts / electrons_per_count) + read^2 + rounding 1/12
    bias = frames[:, ok].mean(0) - clean[ok]
    assert np.abs(bias).max() < 5 * np.sqrt((clean[ok].max() / 4 + 2.25 + 1 / 12) / 400)
    ratio = frames[:, ok].var(0) / (clean[ok] / 4 + 1.5**2 + 1 / 12)
    assert abs(np.median(ratio) - 1) < 0.15


def test_sparse_and_bool_inputs(rng):
    opu = OPU(1200, 64, seed=_seed(rng)).fit1d(n_features=300)
    X = _binary(rng, (4, 300), 0.1)
    np.testing.assert_array_equal(opu.transform(sp.csr_matrix(X)), opu.transform(X))
    np.testing.assert_array_equal(opu.transform(X.astype(bool)), opu.transform(X))
    assert opu.transform(X[0]).shape == (64,)


def test_bad_inputs_are_rejected():
    opu = OPU(1000, 10, seed=0)
    with pytest.raises(RuntimeError, match="fit1d"):
        opu.transform(np.ones((1, 10), np.uint8))
    with pytest.raises(ValueError, match="n_features or|needs X or n_features"):
        opu.fit1d()
    with pytest.raises(ValueError, match="exceeds"):
        opu.fit1d(n_features=900, reserve=200)
    opu.fit1d(n_features=10)
    with pytest.raises(TypeError, match="encoder"):
        opu.transform(np.full((1, 10), 0.5))
    with pytest.raises(ValueError, match="only 0 and 1"):
        opu.transform(np.full((1, 10), 2, np.uint8))
    with pytest.raises(ValueError, match="shape"):
        opu.transform(np.ones((1, 11), np.uint8))
    with pytest.raises(ValueError, match="exposure_us"):
        opu.exposure_us = 0
    with pytest.raises(ValueError, match="black_level"):
        OPU(100, 10, black_level=300)
    with pytest.raises(ValueError, match="read_noise"):
        OPU(100, 10, read_noise=-1)
