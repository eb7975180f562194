"""What the detectors share: the result type and the adaptive threshold."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.signal import lfilter
from scipy.special import ndtri

from .._validation import check_real, check_unit_interval


class ChangepointResult(NamedTuple):
    """Statistic of every sample of a stream and the indices where a change is declared."""

    statistic: np.ndarray  # (n_samples,)
    alarms: np.ndarray     # int64 indices: where the statistic rises above the threshold


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

    def process(self, stat):
        """Thresholds and alarm indices (relative to this batch) for a batch of statistics."""
        if self.fixed is None:
            m = warm_ewma(np.stack([stat**2, stat**4], axis=1), self.forget, self.moments,
                          self.t)
            self.moments = m[-1]
            thr = np.sqrt(m[:, 0] + self.q * np.sqrt(np.maximum(m[:, 1] - m[:, 0] ** 2, 0)))
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
