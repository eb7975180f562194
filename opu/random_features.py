"""Optical random features: the intensities ``|H x|^2`` of a complex Gaussian medium.

For ``h`` with i.i.d. CN(0, 1) entries, ``a = h.x`` and ``b = h.y`` are jointly circular
Gaussian with ``E[a conj(b)] = x.y``, and Isserlis' theorem gives

    E[|a|^2 |b|^2] = E|a|^2 E|b|^2 + |E[a conj(b)]|^2 = ||x||^2 ||y||^2 + (x.y)^2,

so ``phi(x) = |H x|^2 / sqrt(D)`` (D outputs) has ``phi(x).phi(y) -> k(x, y)`` at the rate
``1 / sqrt(D)`` (Ohana et al., "Kernel computations from large-scale random features obtained by
optical processing units", ICASSP 2020).
"""
from __future__ import annotations

import numpy as np

from randla._validation import check_positive_int

from . import meter as metering
from .device import DMD_MIRRORS, FRAME_US, POWER_W
from .medium import TILE_BYTES, Medium


def features(X, n_components=1000, *, seed=None, rng=None, tile_bytes=TILE_BYTES):
    """Optical random features ``|X @ H.T|^2 / sqrt(n_components)``.

    Parameters
    ----------
    X : array_like or scipy.sparse matrix, shape (n_samples, n_features)
        Real inputs (binary ones are what a DMD shows; any real values work in simulation).
    n_components : int
        Number of features D (camera pixels).
    seed : None, int or numpy.random.Generator
        Names the medium H.
    rng : None, int or numpy.random.Generator
        Draws the medium when ``seed`` is None (so ``rng=0`` names it too).
    tile_bytes : int
        Memory budget of the streamed product.

    Returns
    -------
    ndarray of shape (n_samples, n_components)
        float32 for float32, bool and integer inputs, float64 for float64 inputs.

    Raises
    ------
    ValueError
        When X has NaN or Inf, or when intensities overflow (samples of about 1e150 in float64).

    Notes
    -----
    One frame per sample (the camera reads the intensities directly), reported to
    :func:`opu.metering` as modelled frames. Intensities are not linear, so an input wider than
    the DMD (:data:`opu.DMD_MIRRORS`) cannot be split into blocks: it is refused.

    Examples
    --------
    >>> import numpy as np
    >>> from opu import features
    >>> X = np.random.default_rng(0).standard_normal((2, 50))
    >>> F = features(X, 20000, rng=0)
    >>> k = np.sum(X[0]**2) * np.sum(X[1]**2) + (X[0] @ X[1])**2
    >>> bool(abs(F[0] @ F[1] / k - 1) < 0.1)
    True
    """
    n_components = check_positive_int(n_components, "n_components")
    n_features = X.shape[-1]
    if n_features > DMD_MIRRORS:
        raise ValueError(f"X has {n_features} features, more than the {DMD_MIRRORS:,} mirrors "
                         f"of the DMD (opu.DMD_MIRRORS); intensities |Hx|^2 are not linear, so "
                         f"wider inputs cannot be split into blocks: reduce the dimension first")
    F = Medium(n_features, n_components, seed=rng if seed is None else seed,
               tile_bytes=tile_bytes).field(X)
    with np.errstate(over="ignore"):  # checked below
        out = (F.real**2 + F.imag**2) / np.sqrt(n_components, dtype=F.real.dtype)
    bad = ~np.isfinite(out)
    if bad.any():
        i = int(np.argwhere(bad)[0][0]) if out.ndim == 2 else 0
        raise ValueError(f"X: the intensities |Hx|^2 of sample {i} overflow {out.dtype} (they "
                         f"grow like |x|^2): scale X down")
    frames = F.shape[0] if F.ndim == 2 else 1
    metering.record(frames, frames * FRAME_US * 1e-6, frames * FRAME_US * 1e-6 * POWER_W,
                    modelled=True)
    return out


def kernel(X, Y=None):
    """The kernel the features approximate: ``||x||^2 ||y||^2 + (x.y)^2`` for rows of X and Y."""
    X = np.asarray(X, dtype=np.float64)
    Y = X if Y is None else np.asarray(Y, dtype=np.float64)
    return np.outer((X**2).sum(1), (Y**2).sum(1)) + (X @ Y.T) ** 2
