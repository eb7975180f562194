import numpy as np
import pytest

import randla


def _matrix_with_spectrum(rng, m, n, s):
    U = np.linalg.qr(rng.standard_normal((m, len(s))))[0]
    V = np.linalg.qr(rng.standard_normal((n, len(s))))[0]
    return (U * s) @ V.T


def test_rsvd_matches_lapack_on_decaying_spectrum(rng):
    s = 0.7 ** np.arange(60)
    A = _matrix_with_spectrum(rng, 300, 120, s)
    U, S, Vh = randla.rsvd(A, 10, rng=rng)
    np.testing.assert_allclose(S, s[:10], rtol=1e-6)
    err = np.linalg.norm(A - (U * S) @ Vh, 2)
    assert err <= 1.05 * s[10]


def test_rsvd_rejects_bad_rank():
    with pytest.raises(ValueError, match="k must be"):
        randla.rsvd(np.ones((5, 4)), 5)
    with pytest.raises(ValueError, match="NaN"):
        randla.rsvd(np.full((5, 4), np.nan), 2)
