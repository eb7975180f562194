"""Real data to the binary frames a DMD displays, and back.

* :class:`ThresholdEncoder`: one frame per vector, ``x > threshold``.
* :class:`BitPlaneEncoder`: separated bit planes. The batch is scaled by its largest magnitude
  and rounded to ``n_bits`` bits, ``|x| ~ scale * sum_k 2^k b_k / (2^p - 1)``; with the sign
  split, positive and negative parts get their own planes, so a vector becomes ``2 p`` binary
  frames. Any *linear* measurement ``L`` of the frames decodes exactly:
  ``L x_q = sum_k w_k L b_k`` with the plane weights ``w_k`` (``±scale 2^k / (2^p - 1)``), and
  the only error left is the rounding of x, at most ``scale / (2 (2^p - 1))`` per entry.

Frames are stacked plane-major: rows ``k * batch ... (k + 1) * batch - 1`` of ``bits`` are
plane ``k`` of the whole batch.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from randla._validation import check_positive_int


@dataclasses.dataclass(frozen=True)
class Encoded:
    """Binary frames of a batch and what it takes to decode linear measurements of them."""

    bits: object            # (n_planes * batch, n) uint8 array or sparse matrix of 0/1
    weights: np.ndarray     # (n_planes,) value of each plane
    batch: int

    @property
    def n_planes(self) -> int:
        return len(self.weights)


class ThresholdEncoder:
    """``x > threshold``: one binary frame per vector.

    Examples
    --------
    >>> from opu.encoding import ThresholdEncoder
    >>> ThresholdEncoder(0.5).encode([[0.2, 0.7, 1.0]]).bits
    array([[0, 1, 1]], dtype=uint8)
    """

    def __init__(self, threshold=0.0):
        self.threshold = float(threshold)

    def encode(self, X) -> Encoded:
        X = _check_real(X)
        bits = (X > self.threshold).astype(np.uint8)
        if sp.issparse(bits):
            bits.eliminate_zeros()
        return Encoded(bits, np.ones(1), X.shape[0])

    def decode(self, Y, encoded=None):
        """Threshold frames decode as themselves."""
        return np.asarray(Y)


class BitPlaneEncoder:
    """Separated bit planes with sign split, ``n_bits`` bits, scaled by the batch maximum.

    Parameters
    ----------
    n_bits : int
        Bits per magnitude, 1 to 16.
    sign_split : bool
        Encode positive and negative parts separately (2 n_bits frames per vector); without
        it, inputs must be non-negative (n_bits frames per vector).

    Examples
    --------
    >>> import numpy as np
    >>> from opu.encoding import BitPlaneEncoder
    >>> enc = BitPlaneEncoder(n_bits=4)
    >>> X = np.array([[0.5, -1.0, 0.25]])
    >>> e = enc.encode(X)
    >>> e.bits.shape, e.n_planes
    ((8, 3), 8)
    >>> R = np.random.default_rng(0).standard_normal((3, 2))   # any linear measurement
    >>> bool(np.abs(enc.decode(e.bits @ R, e) - X @ R).max() <= np.abs(R).sum(0).max() / 30)
    True
    """

    def __init__(self, n_bits=8, *, sign_split=True):
        self.n_bits = check_positive_int(n_bits, "n_bits")
        if self.n_bits > 16:
            raise ValueError(f"n_bits must be <= 16, got {n_bits}")
        self.sign_split = bool(sign_split)

    @property
    def frames_per_vector(self) -> int:
        return self.n_bits * (2 if self.sign_split else 1)

    def encode(self, X) -> Encoded:
        X = _check_real(X)
        data = X.data if sp.issparse(X) else X
        if not self.sign_split and data.size and data.min() < 0:
            raise ValueError("X has negative entries: use sign_split=True")
        top = 2**self.n_bits - 1
        scale = float(np.abs(data).max()) if data.size else 0.0
        scale = scale if scale > 0 else 1.0
        levels = np.rint(np.abs(data) * (top / scale)).astype(np.uint32)
        signs = [1, -1] if self.sign_split else [1]
        planes, weights = [], []
        for sign in signs:
            part = levels * ((data > 0) if sign > 0 else (data < 0))
            for k in range(self.n_bits):
                planes.append(_with_data(X, ((part >> k) & 1).astype(np.uint8)))
                weights.append(sign * scale * 2.0**k / top)
        bits = sp.vstack(planes, format="csr") if sp.issparse(X) else np.concatenate(planes)
        return Encoded(bits, np.asarray(weights), X.shape[0])

    def decode(self, Y, encoded: Encoded):
        """Combine measurements of the frames, ``Y`` of shape (n_planes * batch, ...), into
        measurements of the batch: ``sum_k w_k Y_k``."""
        Y = np.asarray(Y)
        if Y.shape[0] != encoded.n_planes * encoded.batch:
            raise ValueError(f"Y must have {encoded.n_planes * encoded.batch} rows (planes x "
                             f"batch), got {Y.shape[0]}")
        Y = Y.reshape(encoded.n_planes, encoded.batch, *Y.shape[1:])
        dtype = np.result_type(Y.dtype, np.float64) if Y.dtype.kind in "biu" else Y.dtype
        return np.tensordot(encoded.weights.astype(dtype), Y, axes=1).astype(dtype, copy=False)


def _check_real(X):
    if not sp.issparse(X):
        X = np.asarray(X)
        if X.ndim == 1:
            X = X.reshape(1, -1)
    else:
        X = X.tocsr()
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (batch, n_features), got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must be real (bool, integer or float), got {X.dtype}")
    data = X.data if sp.issparse(X) else X
    if X.dtype.kind == "f" and not np.all(np.isfinite(data)):
        raise ValueError("X contains NaN or Inf")
    return X


def _with_data(X, values):
    """``values`` shaped like X: dense as is, sparse with X's pattern (zeros dropped)."""
    if not sp.issparse(X):
        return values
    out = sp.csr_matrix((values, X.indices.copy(), X.indptr.copy()), shape=X.shape)
    out.eliminate_zeros()
    return out
