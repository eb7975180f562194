"""NEWMA: online change-point detection from two exponentially weighted moving averages of
random features (Keriven, Garreau & Poli, "NEWMA: a new method for scalable model-free online
change-point detection", IEEE Trans. Signal Processing 68, 2020)."""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from .._budget import SKETCH_TILE_BYTES
from .._validation import check_positive_int, check_random_state, check_real, seed_from_rng
from ..sketch import Sketcher, make, resolve
from ._common import ChangepointResult, Threshold, check_sample, check_samples, warm_ewma

#: Samples whose features are held at once by :meth:`NEWMA.detect`.
_CHUNK = 2048


def forgetting_factors(window):
    """The paper's forgetting factors for a window of ``window`` samples: ``(fast, slow)``.

    The slow factor ``l`` is tied to the fast one ``L`` by ``L (1 - L)^B = l (1 - l)^B`` (both
    averages weigh a sample ``B`` steps old equally), and ``L`` minimizes the paper's error
    bound over a grid, then is moved halfway to ``1 / (B + 1)`` as in the authors' code.

    Examples
    --------
    >>> from randla.changepoint import forgetting_factors
    >>> fast, slow = forgetting_factors(250)
    >>> bool(slow < 1 / 251 < fast)
    True
    """
    B = check_positive_int(window, "window")
    peak = 1.0 / (B + 1)
    grid = np.exp(np.linspace(np.log(1.001 * peak), -0.01, 400))
    slows = np.array([_partner(L, B) for L in grid])
    bound = ((np.sqrt(grid + slows) + (1 - slows) ** (2 * B) - (1 - grid) ** (2 * B))
             / ((1 - slows) ** B - (1 - grid) ** B))
    fast = (grid[np.argmin(bound)] + peak) / 2
    return float(fast), float(_partner(fast, B))


def _partner(L, B):
    """The l < 1/(B+1) with l (1 - l)^B = L (1 - L)^B."""
    target = np.log(L) + B * np.log1p(-L)
    # in u = log l (l may be far below the smallest float): u + B log(1 - e^u) = target
    u = brentq(lambda u: u + B * np.log1p(-np.exp(u)) - target, target - 1.0, -np.log(B + 1))
    return np.exp(u)


class NEWMA:
    """Online change-point detection by NEWMA.

    Two exponentially weighted moving averages of random features ``psi(x_t)``, a fast one
    (factor ``forget_fast``) and a slow one (``forget_slow``), agree while the distribution is
    stable; the statistic is the distance between them, ``||z_fast - z_slow||``. Memory and time
    per sample are those of one feature vector, whatever the window.

    Parameters
    ----------
    d : int
        Dimension of the samples.
    n_features : int
        Number of random features m.
    sketch : {"gaussian", "optical"} or Sketcher
        "gaussian": random Fourier features ``[cos(w x), sin(w x)] / sqrt(m)`` of the Gaussian
        kernel of width ``bandwidth``. "optical": OPU intensity features ``|H x|^2 / m`` (the
        complex optical sketch; metered by :func:`opu.metering`). A Sketcher of shape
        ``(n_features, d)``: intensities if complex, else random Fourier features.
    forget_fast, forget_slow : float, optional
        Forgetting factors in (0, 1), fast > slow; by default :func:`forgetting_factors` of
        ``window``.
    threshold : "adaptive" or float
        The paper's adaptive threshold (EWMAs of the squared statistic with factor
        ``forget_slow``, normal ``quantile``), or a fixed value.
    rng : None, int or numpy.random.Generator
        Draws the random features.
    window : int
        Window size the default forgetting factors correspond to (250 as in the paper's
        experiments).
    bandwidth : float, optional
        Width of the Gaussian kernel, ``sqrt(d)`` by default (standardized data).
    quantile : float
        Normal quantile of the adaptive threshold (the authors' code uses 0.95). The squared
        statistic has a heavier right tail than the Gaussian the threshold assumes: measured
        on a stationary Gaussian stream in d = 5 (after the burn-in), 0.99 gives about 15
        false alarms per 10^4 samples and 0.999 about 4, but 0.999 misses 4 changes in 10 of
        the benchmark's mixture stream, where 0.99 finds all with none false.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.changepoint import NEWMA
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.standard_normal((1500, 5)), rng.standard_normal((1500, 5)) + 1.5])
    >>> res = NEWMA(5, n_features=200, rng=0).detect(X)
    >>> res.statistic.shape, bool(np.any((res.alarms >= 1500) & (res.alarms < 1700)))
    ((3000,), True)
    """

    def __init__(self, d, *, n_features=1000, sketch="gaussian", forget_fast=None,
                 forget_slow=None, threshold="adaptive", rng=None, window=250, bandwidth=None,
                 quantile=0.99):
        self.d = check_positive_int(d, "d")
        self.n_features = check_positive_int(n_features, "n_features")
        default_fast, default_slow = forgetting_factors(window)
        self.forget_fast = default_fast if forget_fast is None else check_real(
            forget_fast, "forget_fast", low=0, high=1, low_open=True)
        self.forget_slow = default_slow if forget_slow is None else check_real(
            forget_slow, "forget_slow", low=0, high=1, low_open=True)
        if not self.forget_slow < self.forget_fast < 1:
            raise ValueError(f"need 0 < forget_slow < forget_fast < 1, got {self.forget_slow}, "
                             f"{self.forget_fast}")
        self.bandwidth = (np.sqrt(self.d) if bandwidth is None
                          else check_real(bandwidth, "bandwidth", low=0, low_open=True))
        seed = seed_from_rng(check_random_state(rng) if rng is None else rng)
        if sketch == "optical":
            self.sketch = make("optical", self.n_features, self.d, rng=seed, complex=True)
        else:
            self.sketch = resolve(sketch, self.n_features, self.d, rng=seed)
        if not isinstance(self.sketch, Sketcher):
            raise TypeError("sketch must be 'gaussian', 'optical' or a Sketcher")
        self.intensity = bool(self.sketch.is_complex)
        # a small software sketch is kept dense: one GEMV per sample instead of generating S
        # again (the optical sketch always goes through its own apply, which is metered)
        small = self.n_features * self.d * 16 <= SKETCH_TILE_BYTES
        self._dense = (self.sketch.to_dense() if small and self.sketch.kind != "optical"
                       else None)
        self._threshold = Threshold(threshold, self.forget_slow, quantile,
                                    burn_in=2 * int(np.ceil(1 / self.forget_slow)),
                                    rearm=int(np.ceil(0.25 / self.forget_fast)))
        self._z = None  # (fast, slow) averages
        self._t = 0     # samples seen
        self.n_skipped_ = 0  # non-finite samples update() skipped
        self.thresholds_ = np.zeros(0)  # thresholds of the last detect call

    @property
    def threshold(self) -> float:
        """The current threshold (after the last sample)."""
        return self._threshold.last

    def features(self, X) -> np.ndarray:
        """``psi(x)`` of the rows of X, shape (n_samples, m or 2m)."""
        X = np.asarray(X, dtype=np.float64)
        Y = X @ self._dense.T if self._dense is not None else np.asarray(
            self.sketch.apply_right(X))
        if self.intensity:
            return (Y.real**2 + Y.imag**2) * np.sqrt(self.n_features)
        # the Gaussian sketch has entries N(0, 1/m): sqrt(m) / bandwidth makes w ~ N(0, 1/s^2)
        theta = Y * (np.sqrt(self.n_features) / self.bandwidth)
        return np.hstack([np.cos(theta), np.sin(theta)]) / np.sqrt(self.n_features)

    def _statistic(self, X):
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            psi = self.features(X)
        bad = ~np.all(np.isfinite(psi), axis=1)
        if bad.any():  # finite x whose features overflow (|x|^2 for optical ones)
            i = int(np.argmax(bad))
            raise _Overflow(i, float(np.abs(X[i]).max()))
        # Warm-up: an average of factor a starts as the running mean (factor 1 / (t + 1)) until
        # 1 / (t + 1) falls below a, so neither average remembers an arbitrary start (starting
        # both at psi(x_0) makes a bump of a few 1 / forget_slow samples that the adaptive
        # threshold then carries).
        zf, zs = self._z if self._z is not None else (0.0 * psi[0], 0.0 * psi[0])
        fast = warm_ewma(psi, self.forget_fast, zf, self._t)
        slow = warm_ewma(psi, self.forget_slow, zs, self._t)
        self._z = (fast[-1], slow[-1])
        self._t += len(psi)
        return _row_norms(fast - slow)

    def update(self, x):
        """Process one sample: ``(statistic, alarm)``.

        A sample with NaN or Inf (or whose features overflow) is skipped: it returns
        ``(nan, False)``, leaves the detector as it was and counts in ``n_skipped_``; the next
        samples are processed as if it had not come.
        """
        x, finite = check_sample(x, self.d)
        try:
            stat = self._statistic(x[None, :]) if finite else None
        except _Overflow:
            stat = None
        if stat is None:
            self.n_skipped_ += 1
            return math.nan, False
        _, alarms = self._threshold.process(stat)
        return float(stat[0]), bool(alarms.size)

    def detect(self, X) -> ChangepointResult:
        """Process a batch of samples (rows of X), continuing the stream: the same statistics and
        alarms as :meth:`update` on each row in turn. Alarm indices are relative to X.

        Raises ``ValueError`` naming the first sample of X with NaN or Inf, or whose features
        overflow; the detector is then left as it was before the call.
        """
        X = check_samples(X, self.d)
        saved = self._z, self._t, vars(self._threshold).copy()
        stats, alarms, thresholds = [], [], []
        for i in range(0, X.shape[0], _CHUNK):
            try:
                s = self._statistic(X[i:i + _CHUNK])
            except _Overflow as e:
                self._z, self._t = saved[:2]
                vars(self._threshold).update(saved[2])
                raise ValueError(f"X: the features of sample {e.index + i} overflow (its largest "
                                 f"entry, {e.magnitude:.3g}, is too large for the sketch)"
                                 ) from None
            thr, a = self._threshold.process(s)
            stats.append(s)
            alarms.append(a + i)
            thresholds.append(thr)
        if not stats:
            self.thresholds_ = np.zeros(0)
            return ChangepointResult(np.zeros(0), np.zeros(0, np.int64))
        self.thresholds_ = np.concatenate(thresholds)
        return ChangepointResult(np.concatenate(stats), np.concatenate(alarms).astype(np.int64))


def _row_norms(D):
    """Norms of the rows of D, each row divided by a power of two near its largest entry first
    (exact): optical features grow like |x|^2, and the squares of differences of 1e-160 would
    underflow (1e160: overflow)."""
    peak = np.max(np.abs(D), axis=1)
    c = np.ldexp(1.0, np.frexp(np.where((peak > 0) & np.isfinite(peak), peak, 1.0))[1])
    return c * np.linalg.norm(D / c[:, None], axis=1)


class _Overflow(ArithmeticError):
    """The features of sample ``index`` (in the batch) are not finite."""

    def __init__(self, index, magnitude):
        super().__init__(index, magnitude)
        self.index, self.magnitude = index, magnitude
