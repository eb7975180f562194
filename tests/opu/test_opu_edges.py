"""Empty batches, NaN/Inf and extreme scales through the optical paths."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import opu
from opu import OPU, LinearProjection, OpticalSketch


def _seed(rng):
    return int(rng.integers(0, 2**62))


MODES = [("ideal", False), ("device", False), ("ideal", True), ("device", True)]


@pytest.mark.parametrize("mode, densify", MODES)
def test_empty_batches_give_empty_sketches(mode, densify, rng):
    S = OpticalSketch(9, 120, seed=_seed(rng), mode=mode, densify=densify)
    assert (S @ np.zeros((120, 0))).shape == (9, 0)
    assert (np.zeros((0, 120)) @ S.T).shape == (0, 9)
    assert (S @ sp.csr_matrix((120, 0))).shape == (9, 0)


def test_empty_batches_of_features_and_projections(rng):
    assert opu.features(np.zeros((0, 50)), 10, seed=_seed(rng)).shape == (0, 10)
    dev = OPU(400, 30, seed=_seed(rng)).fit1d(n_features=150, macro_pixels=False, reserve=150)
    assert LinearProjection(dev, rng=rng).project(np.zeros((0, 150))).shape == (0, 30)


@pytest.mark.parametrize("mode, densify", MODES)
@pytest.mark.parametrize("scale", [1e200, 1e160, 1e-170, 1e-200])
def test_sketches_are_scale_invariant_without_warnings(mode, densify, scale, rng):
    """Device mode's spread check squared entries of 1e160 (overflow warnings); the bit-plane
    encoding scales each row, so the device's result is the unscaled one times the scale."""
    X = rng.standard_normal((3, 200))
    seed, noise = _seed(rng), _seed(rng)
    want = OpticalSketch(8, 200, seed=seed, rng=noise, mode=mode, densify=densify).apply_right(X)
    S = OpticalSketch(8, 200, seed=seed, rng=noise, mode=mode, densify=densify)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got = S.apply_right(X * scale)
    np.testing.assert_allclose(got / scale, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("mode, densify", MODES)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_input_is_named_without_warnings(mode, densify, bad, rng):
    X = rng.standard_normal((3, 200))
    X[int(rng.integers(3)), int(rng.integers(200))] = bad
    S = OpticalSketch(8, 200, seed=_seed(rng), mode=mode, densify=densify)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match="X contains NaN or Inf"):
            S.apply_right(X)


def test_features_that_overflow_are_named(rng):
    X = rng.standard_normal((4, 50))
    i = int(rng.integers(4))
    X[i] *= 1e200
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with opu.metering() as m, pytest.raises(ValueError, match=rf"X: .* sample {i} overflow"):
            opu.features(X, 10, seed=_seed(rng))
    assert m.frames == 0
    X32 = (rng.standard_normal((2, 50)) * 1e20).astype(np.float32)
    with pytest.raises(ValueError, match="overflow float32"):
        opu.features(X32, 10, seed=_seed(rng))
