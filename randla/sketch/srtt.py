"""Subsampled randomized trigonometric transform: S = sqrt(n/d) R F D.

D is a diagonal of random signs, F the orthonormal DCT-II of size n and R keeps d of the n
coordinates, drawn uniformly without replacement. F spreads the energy of any vector evenly over
the coordinates, so that sampling a few of them preserves norms (Ailon-Chazelle, Tropp 2011).

Applying S transforms all n coordinates at once (scipy.fft, O(n log n) per column): the sketch
is global by nature, not block addressable. Its columns still have a closed form,
S[k, i] = sqrt(n/d) D_i sqrt(2/n) c_k cos(pi r_k (2i + 1) / (2n)), which gives ``S[:, i:j]``
and ``to_dense`` in time proportional to their size.
"""
from __future__ import annotations

import numpy as np
import scipy.fft

from .._budget import PANEL_BYTES, rows_within
from . import rng as _rng
from .base import Sketcher

_STREAM_ROWS = _rng.STREAMS["srtt.rows"]
_STREAM_SIGNS = _rng.STREAMS["srtt.signs"]
#: Bytes of X transformed at once (the transform works on a copy of this many columns).


class SRTT(Sketcher):
    """Subsampled randomized trigonometric (DCT-II) transform of shape (d, n), d <= n.

    A subspace embedding for r dimensions needs d of order r log r (a few times r in
    practice). Applying S to an n x p matrix costs O(n p log n), independent of d.

    Parameters
    ----------
    d, n, rng, dtype
        As for :class:`Sketcher`; d <= n (it keeps d of the n transformed coordinates).

    Examples
    --------
    >>> import numpy as np
    >>> from randla.sketch import SRTT
    >>> S = SRTT(40, 1000, rng=0)
    >>> X = np.random.default_rng(0).standard_normal((1000, 3))
    >>> bool(np.allclose(S @ X, S.to_dense() @ X))
    True
    """

    kind = "srtt"
    block_addressable = False

    def __init__(self, d, n, *, rng=None, dtype=np.float64):
        super().__init__(d, n, rng=rng, dtype=dtype)
        if self.d > self.n:
            raise ValueError(f"d must be <= n for an SRTT (it keeps d of the n transformed "
                             f"coordinates), got d={self.d}, n={self.n}")
        rows = np.empty((1, self.d), np.int32)
        _rng.fill_choice(rows, self.seed, _STREAM_ROWS, 0, self.n)
        self.rows = rows[0]
        signs = np.empty((self.n, 1), np.int8)
        _rng.fill_sign(signs, self.seed, _STREAM_SIGNS, 0, 0, 1)
        self.signs = signs[:, 0]

    @property
    def scale(self) -> float:
        return float(np.sqrt(self.n / self.d))

    def _block(self, start, stop, dtype):
        i = np.arange(start, stop, dtype=np.int64)
        # angle pi m / (2n) with m = r (2i + 1) reduced exactly modulo 4n
        m = np.outer(self.rows, 2 * i + 1) % (4 * self.n)
        F = np.cos(np.pi / (2 * self.n) * m) * np.sqrt(2.0 / self.n)
        F[self.rows == 0] *= np.sqrt(0.5)
        F *= self.signs[start:stop] * self.scale
        return np.asfortranarray(F, dtype=dtype)

    def _transform(self, Z, Y, c0):
        """Y[:, c0:c0+w] = S @ Z for a dense (n, w) chunk Z, consumed in place."""
        Z *= self.signs[:, None].astype(Z.real.dtype, copy=False)
        Z = scipy.fft.dct(Z, type=2, axis=0, norm="ortho", workers=-1, overwrite_x=True)
        Y[:, c0:c0 + Z.shape[1]] = Z[self.rows]
        Y[:, c0:c0 + Z.shape[1]] *= Y.real.dtype.type(self.scale)

    def _chunks(self, p, itemsize):
        w = rows_within(PANEL_BYTES, self.n * itemsize)
        for c0 in range(0, p, w):
            yield c0, min(p, c0 + w)

    def _apply_dense(self, X, dt):
        out_dtype = np.result_type(X.dtype if X.dtype.kind in "fc" else np.float64, dt)
        Y = np.empty((self.d, X.shape[1]), dtype=out_dtype)
        for c0, c1 in self._chunks(X.shape[1], out_dtype.itemsize):
            self._transform(np.array(X[:, c0:c1], dtype=out_dtype), Y, c0)
        return Y

    def _apply_sparse(self, X, dt):
        out_dtype = np.result_type(X.dtype if X.dtype.kind in "fc" else np.float64, dt)
        X = X.tocsc() if X.format != "csc" else X
        Y = np.empty((self.d, X.shape[1]), dtype=out_dtype)
        for c0, c1 in self._chunks(X.shape[1], out_dtype.itemsize):
            self._transform(X[:, c0:c1].toarray().astype(out_dtype, copy=False), Y, c0)
        return Y
