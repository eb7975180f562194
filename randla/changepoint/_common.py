"""What the detectors share: the result type and the adaptive threshold."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.signal import lfilter
from scipy.special import ndtri

from .._validation import check_real, check_unit_interval


class ChangepointResult(NamedTuple):
    """Statistic of every sample of a stream and the indices where a change is declared."""

    statistic: np.ndarray  # (n_samples,)
    alarms: np.ndarray     # int64 indices: where the statistic rises above the threshold


def check_samples(X, d, name="X"):
    """X as a float64 (n_samples, d) array of finite samples: a NaN or Inf would make every later
    statistic NaN (no alarm ever again), so the first non-finite sample is named."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != d:
        raise ValueError(f"{name} must have shape (n_samples, {d}), got {X.shape}")
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"{name} has a non-finite value ({X[i, j]}) in sample {i} (column {j}); "
                         f"drop or repair it (update() skips such a sample instead)")
    return X


def check_sample(x, d, name="x"):
    """x as a float64 vector of shape (d,), and whether it is finite."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (d,):
        raise ValueError(f"{name} must have shape ({d},), got {x.shape}")
    return x, bool(np.all(np.isfinite(x)))


def ewma(values, forget, state):
    """``s_t = (1 - forget) s_{t-1} + forget v_t`` along axis 0 from ``s_{-1} = state``; the same
    arithmetic whether the values come one by one or all at once (scipy's lfilter)."""
    zi = (1.0 - forget) * np.asarray(state)[None, ...]
    out, _ = lfilter([forget], [1.0, forget - 1.0], values, axis=0, zi=zi)
    return out


def warm_ewma(values, forget, state, t0):
    """:func:`ewma` that starts as the running mean: the factor is ``max(1 / (t + 1), forget)``
    for sample ``t`` (counted from ``t0``), so the average does not remember its start."""
    out = np.empty(np.shape(values))
    n_warm = min(len(values), max(0, int(np.ceil(1 / forget)) - t0))
    z = np.asarray(state, dtype=np.float64)
    for i in range(n_warm):
        z = z + max(1.0 / (t0 + i + 1), forget) * (values[i] - z)
        out[i] = z
    if n_warm < len(values):
        out[n_warm:] = ewma(values[n_warm:], forget, z)
    return out


class Threshold:
    """A fixed threshold, or the adaptive one of Keriven, Garreau & Poli (2020): EWMAs (factor
    ``forget``) of the squared statistic and of its square give a mean and a standard
    deviation, and the threshold is ``sqrt(mean + q std)`` with ``q`` the normal ``quantile``
    (the squared statistic being about Gaussian). An alarm is a rise above it, after
    ``burn_in`` samples, that follows at least ``rearm`` samples below it (the statistic is
    smooth over about ``rearm`` samples, so its crossings come in bursts: one alarm each)."""

    def __init__(self, threshold, forget, quantile, burn_in, rearm=1):
        if isinstance(threshold, str):
            if threshold != "adaptive":
                raise ValueError(f"threshold must be 'adaptive' or a number, got {threshold!r}")
            self.fixed = None
        else:
            self.fixed = check_real(threshold, "threshold")
        self.forget = forget
        self.q = float(ndtri(check_unit_interval(quantile, "quantile")))
        self.burn_in = int(burn_in)
        self.moments = np.zeros(2)  # EWMAs of stat^2 and stat^4
        self.rearm = max(1, int(rearm))
        self.below = self.rearm  # samples below the threshold since it was last above
        self.t = 0
        self.last = np.nan
        # the moments are of stat / scale, a power of two set by the first nonzero statistic:
        # stat^4 overflows from stat ~ 1e77 (optical features grow like |x|^2) and underflows
        # below 1e-77, either of which would leave an infinite or degenerate threshold
        self.scale = None

    def process(self, stat):
        """Thresholds and alarm indices (relative to this batch) for a batch of statistics."""
        if self.fixed is None:
            c = self._scale(stat)
            z = stat / c
            m = warm_ewma(np.stack([z**2, z**4], axis=1), self.forget, self.moments, self.t)
            self.moments = m[-1]
            thr = c * np.sqrt(m[:, 0] + self.q * np.sqrt(np.maximum(m[:, 1] - m[:, 0] ** 2, 0)))
        else:
            thr = np.full(stat.shape, self.fixed)
        alarms, below = [], self.below
        for i, up in enumerate((stat > thr).tolist()):
            if up:
                if below >= self.rearm and self.t + i >= self.burn_in:
                    alarms.append(i)
                below = 0
            else:
                below += 1
            if self.t + i + 1 == self.burn_in:
                below = self.rearm  # above when the burn-in ends is an alarm
        self.below, self.t = below, self.t + len(stat)
        self.last = float(thr[-1])
        return thr, np.asarray(alarms, dtype=np.int64)

    def _scale(self, stat):
        """The scale of the moments (1 while every statistic so far is zero: their moments are
        zero at any scale, so fixing it later changes nothing)."""
        if self.scale is None:
            nonzero = stat[stat > 0]
            if not nonzero.size:
                return 1.0
            self.scale = math.ldexp(1.0, math.frexp(float(nonzero[0]))[1] - 1)
        return self.scale
