"""Dense i.i.d. sketches from the counter-based generator: Gaussian and Rademacher."""
from __future__ import annotations

import numpy as np

from . import rng as _rng
from .base import Sketcher

_STREAM_REAL = _rng.STREAMS["gaussian.real"]
_STREAM_IMAG = _rng.STREAMS["gaussian.imag"]
_STREAM_SIGN = _rng.STREAMS["rademacher.signs"]


class Gaussian(Sketcher):
    """S with i.i.d. N(0, 1/d) entries, so that E[S^H S] = I.

    With ``complex=True`` the entries are complex Gaussian with independent real and imaginary
    parts of variance 1/(2d).

    Examples
    --------
    >>> import numpy as np
    >>> from randla.sketch import Gaussian
    >>> S = Gaussian(50, 2000, rng=1)
    >>> X = np.ones((2000, 3))
    >>> (S @ X).shape, (X.T @ S.T).shape
    ((50, 3), (3, 50))
    """

    kind = "gaussian"

    def __init__(self, d, n, *, rng=None, dtype=np.float64, complex=False):
        self.is_complex = bool(complex)
        super().__init__(d, n, rng=rng, dtype=dtype)

    def params(self):
        return {"complex": self.is_complex}

    def _block(self, start, stop, dtype):
        real = np.finfo(dtype).dtype
        if not self.is_complex:
            return _rng.normal_block(self.seed, _STREAM_REAL, (0, self.d), (start, stop), real,
                                     1.0 / np.sqrt(self.d))
        scale = 1.0 / np.sqrt(2.0 * self.d)
        re = _rng.normal_block(self.seed, _STREAM_REAL, (0, self.d), (start, stop), real, scale)
        im = _rng.normal_block(self.seed, _STREAM_IMAG, (0, self.d), (start, stop), real, scale)
        out = np.empty(re.shape, dtype=dtype, order="F")
        out.real = re
        out.imag = im
        return out


class Rademacher(Sketcher):
    """S with i.i.d. entries +-1/sqrt(d), equally likely."""

    kind = "rademacher"

    def _block(self, start, stop, dtype):
        return _rng.sign_block(self.seed, _STREAM_SIGN, (0, self.d), (start, stop), dtype,
                               1.0 / np.sqrt(self.d))
