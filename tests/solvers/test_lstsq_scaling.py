"""lstsq on data scaled by 1e+-200: the same solution, a finite backward error, exact rescaling."""
import warnings

import numpy as np
import pytest

import randla


@pytest.mark.parametrize("scale", [1e200, 1e-200, 2.0 ** 600])
@pytest.mark.parametrize("method", ["direct", "sap", "iterative_sketching"])
def test_extreme_scales(rng, scale, method):
    A = rng.standard_normal((5000, 20))
    b = rng.standard_normal(5000)
    ref = np.linalg.lstsq(A, b, rcond=None)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow on the way
        res = randla.lstsq(scale * A, scale * b, method=method, rng=0)
    assert np.isfinite(res.backward_error) and res.backward_error < 1e-14
    assert np.linalg.norm(res.x - ref) <= 1e-12 * np.linalg.norm(ref)
    np.testing.assert_allclose(res.residual_norm / scale, np.linalg.norm(b - A @ ref), rtol=1e-10)


def test_ridge_scales_with_the_data(rng):
    A, b = rng.standard_normal((3000, 10)), rng.standard_normal(3000)
    s = 2.0 ** -500
    small = randla.lstsq(A * s, b * s, ridge=0.5 * s * s, method="direct")
    plain = randla.lstsq(A, b, ridge=0.5, method="direct")
    np.testing.assert_allclose(small.x, plain.x, rtol=1e-12)
