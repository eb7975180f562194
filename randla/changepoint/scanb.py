"""The kernel Scan-B statistic (Li, Xie, Dai & Song, "M-statistic for kernel change-point
detection", NeurIPS 2015), online: the baseline NEWMA is compared with."""
from __future__ import annotations

import math

import numpy as np

from .._validation import check_positive_int, check_real
from ._common import ChangepointResult, Threshold, check_sample, check_samples
from .newma import forgetting_factors


class ScanB:
    """Online kernel Scan-B: the last ``window`` samples against ``n_blocks`` reference blocks
    of ``window`` samples just before them, by the (biased) MMD^2 of a Gaussian kernel averaged
    over the blocks; the statistic is its square root. Per sample: one kernel row against the
    ``(n_blocks + 1) window`` samples kept, and running block sums updated in
    ``O(n_blocks window)`` (memory ``O((n_blocks window)^2)`` for the kernel matrix kept).

    Parameters
    ----------
    d : int
        Dimension of the samples.
    window : int
        Block size B.
    n_blocks : int
        Reference blocks N.
    bandwidth : float, optional
        Width of the Gaussian kernel ``exp(-|x - y|^2 / (2 bandwidth^2))``, ``sqrt(d)`` by
        default.
    threshold, quantile, forget
        As :class:`NEWMA` (the adaptive threshold's forgetting factor ``forget``, by default
        NEWMA's slow factor for the same window).

    Examples
    --------
    >>> import numpy as np
    >>> from randla.changepoint import ScanB
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.standard_normal((600, 3)), rng.standard_normal((600, 3)) + 2])
    >>> res = ScanB(3, window=50, n_blocks=3).detect(X)
    >>> bool(np.any((res.alarms >= 600) & (res.alarms < 700)))
    True
    """

    def __init__(self, d, *, window=250, n_blocks=3, bandwidth=None, threshold="adaptive",
                 quantile=0.99, forget=None):
        self.d = check_positive_int(d, "d")
        self.B = check_positive_int(window, "window", minimum=2)
        self.N = check_positive_int(n_blocks, "n_blocks")
        self.L = (self.N + 1) * self.B
        self.bandwidth = (np.sqrt(self.d) if bandwidth is None
                          else check_real(bandwidth, "bandwidth", low=0, low_open=True))
        if forget is None:  # as NEWMA's threshold for the same window
            forget = forgetting_factors(self.B)[1]
        self._threshold = Threshold(threshold, forget, quantile, burn_in=self.L + int(1 / forget),
                                    rearm=self.B // 4)
        self._buf = np.zeros((self.L, self.d))
        self._K = np.zeros((self.L, self.L))
        self._sums = None  # within-block sums (N + 1,), cross sums with the last block (N,)
        self.t = 0
        self.n_skipped_ = 0  # non-finite samples update() skipped

    @property
    def threshold(self) -> float:
        return self._threshold.last

    def _kernel_row(self, x):
        # in units of the bandwidth: samples at 1e200 (or 1e-200) with a bandwidth to match
        # neither overflow nor underflow; a distance that overflows gives the kernel value 0
        with np.errstate(over="ignore"):
            d2 = (((self._buf - x) / self.bandwidth) ** 2).sum(axis=1)
        return np.exp(-d2 / 2)

    def _block(self, j, t):
        """Ring positions of block j (0 oldest, N the current window) after sample t."""
        start = t - (self.N + 1 - j) * self.B + 1
        return np.arange(start, start + self.B) % self.L

    def _full_sums(self, t):
        K, blocks = self._K, [self._block(j, t) for j in range(self.N + 1)]
        within = np.array([K[np.ix_(b, b)].sum() for b in blocks])
        cross = np.array([K[np.ix_(b, blocks[-1])].sum() for b in blocks[:-1]])
        return within, cross

    def _advance(self, x, t):
        """Sums after sample t (> L - 1) replaces sample t - L: every block loses its oldest
        sample and gains the next one."""
        K, B, N, L = self._K, self.B, self.N, self.L
        within, cross = self._sums
        lost = [t - (N + 1 - j) * B for j in range(N + 1)]  # block j loses lost[j]
        rest = [np.arange(s + 1, s + B) % L for s in lost]   # and keeps these
        lp = [s % L for s in lost]
        for j in range(N + 1):  # remove the lost sample's row and column
            within[j] -= 2 * K[lp[j], rest[j]].sum() + K[lp[j], lp[j]]
        for j in range(N):
            cross[j] -= (K[lp[j], rest[N]].sum() + K[rest[j], lp[N]].sum()
                         + K[lp[j], lp[N]])
        p = t % L  # the sample dropped from the oldest block: its slot takes x
        self._buf[p] = x
        k = self._kernel_row(x)
        K[p, :], K[:, p] = k, k
        gp = [(s + B) % L for s in lost]  # block j gains the sample B after the one it lost
        for j in range(N + 1):
            within[j] += 2 * K[gp[j], rest[j]].sum() + K[gp[j], gp[j]]
        for j in range(N):
            cross[j] += K[gp[j], rest[N]].sum() + K[rest[j], gp[N]].sum() + K[gp[j], gp[N]]

    def _statistic(self, x):
        t = self.t
        if t < self.L:
            p = t
            self._buf[p] = x
            k = self._kernel_row(x)
            self._K[p, :], self._K[:, p] = k, k
            if t == self.L - 1:
                self._sums = self._full_sums(t)
        else:
            self._advance(x, t)
        self.t += 1
        if self._sums is None:
            return 0.0
        within, cross = self._sums
        mmd2 = (within[:-1] + within[-1] - 2 * cross) / self.B**2
        return float(np.sqrt(max(mmd2.mean(), 0.0)))

    def update(self, x):
        """Process one sample: ``(statistic, alarm)``. A sample with NaN or Inf is skipped
        (as in :meth:`NEWMA.update`): ``(nan, False)``, counted in ``n_skipped_``."""
        x, finite = check_sample(x, self.d)
        if not finite:
            self.n_skipped_ += 1
            return math.nan, False
        stat = np.array([self._statistic(x)])
        return float(stat[0]), bool(self._threshold.process(stat)[1].size)

    def detect(self, X) -> ChangepointResult:
        """Process a batch of samples, continuing the stream (alarm indices relative to X).
        Raises ``ValueError`` naming the first sample of X with NaN or Inf (nothing processed)."""
        X = check_samples(X, self.d)
        if X.shape[0] == 0:
            return ChangepointResult(np.zeros(0), np.zeros(0, np.int64))
        stat = np.array([self._statistic(x) for x in X])
        return ChangepointResult(stat, self._threshold.process(stat)[1].astype(np.int64))
