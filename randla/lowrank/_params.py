"""Parameters shared by the low-rank drivers: defaults and their checks."""
from __future__ import annotations

from .. import sketch as _sketch
from .._validation import check_positive_int

METHODS = ("power", "krylov")
#: rsvd's methods: "auto" is the adaptive power iteration that turns to block Krylov on flat
#: spectra (with power_iters given, the power method)
RSVD_METHODS = ("auto", *METHODS)
#: Power iterations (or block Krylov depth) used when ``power_iters=None`` where the count is
#: fixed: range_finder, qb, reigh, rsvd with method="krylov" or tol (rsvd's power method is
#: adaptive by default, see :mod:`randla.lowrank.adaptive`). With the default oversampling,
#: two iterations reach a spectral error within 1% of sigma_{k+1} on matrices with a
#: decaying spectrum at 6 passes over A (see benchmarks/bench_lowrank.py).
DEFAULT_POWER_ITERS = 2


def default_oversample(k) -> int:
    """Oversampling used when ``oversample=None``: ``max(10, k // 5)``. The expected error of
    the range finder carries a factor ``1 + sqrt(k / (p - 1))`` (Halko, Martinsson & Tropp
    2011, Thm. 10.6), so p grows with k to keep it bounded: at k = 100 and two power
    iterations, p = 10 gave 1.004-1.018 sigma_(k+1) and p = 20 gave 1.0001-1.0002 in the same
    time (benchmarks/bench_lowrank.py's matrix, three seeds)."""
    return max(10, (k or 0) // 5)


def check_oversample(oversample, k, sketch):
    if oversample is None:
        if isinstance(sketch, _sketch.Sketcher) and k is not None and sketch.shape[0] >= k:
            return sketch.shape[0] - k
        return default_oversample(k)
    return check_positive_int(oversample, "oversample", minimum=0)


def check_iters(power_iters):
    if power_iters is None:
        return DEFAULT_POWER_ITERS
    return check_positive_int(power_iters, "power_iters", minimum=0)
