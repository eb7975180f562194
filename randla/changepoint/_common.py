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


class Threshold:
    """A fixed threshold, or the adaptive one of Keriven, Garreau & Poli (2020): EWMAs (factor
    ``forget``) of the squared statistic and of its square give a mean and a standard
    deviation, and the threshold is ``sqrt(mean + q std)`` with ``q`` the normal ``quantile``
    (the squared statistic being about Gaussian). An alarm is a rise above it, after
    ``burn_in`` samples."""

    def __init__(self, threshold, forget, quantile, burn_in):
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
        self.above = False
        self.t = 0
        self.last = np.nan

    def process(self, stat):
        """Thresholds and alarm indices (relative to this batch) for a batch of statistics."""
        if self.fixed is None:
            m = ewma(np.stack([stat**2, stat**4], axis=1), self.forget, self.moments)
            self.moments = m[-1]
            thr = np.sqrt(m[:, 0] + self.q * np.sqrt(np.maximum(m[:, 1] - m[:, 0] ** 2, 0)))
        else:
            thr = np.full(stat.shape, self.fixed)
        above = stat > thr
        before = np.concatenate([[self.above], above[:-1]])
        times = self.t + np.arange(len(stat))
        before[times == self.burn_in] = False  # above at the end of the burn-in is an alarm
        alarms = np.flatnonzero(above & ~before & (times >= self.burn_in))
        self.above, self.t = bool(above[-1]), self.t + len(stat)
        self.last = float(thr[-1])
        return thr, alarms
