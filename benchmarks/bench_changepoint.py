"""Change-point detection: NEWMA (random Fourier / optical features) against kernel Scan-B on a
synthetic Gaussian-mixture stream whose mixture is redrawn at every change.

Accuracy (detection rate, mean delay, false alarms per 10^4 samples) does not depend on the
machine; time per sample against the dimension does. As a script it prints the accuracy table::

    python benchmarks/bench_changepoint.py            # d = 20, 20 changes
"""
import sys
import time

import numpy as np

from randla.changepoint import NEWMA, ScanB

SEGMENT = 2000   # samples between changes
WINDOW = 250     # B: NEWMA's default forgetting factors and Scan-B's block size
MAX_DELAY = 1000  # an alarm later than this after a change is a false alarm


def gmm_stream(d, n_changes, *, k=10, seed=0):
    """(X, change points): segments of SEGMENT samples from a mixture of k Gaussians in d
    dimensions (means N(0, I / d) scaled to norm ~1, unit covariance), redrawn at each change."""
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(n_changes + 1):
        means = rng.standard_normal((k, d)) * 1.5 / np.sqrt(d) * np.sqrt(d / 2)
        weights = rng.dirichlet(np.ones(k))
        z = rng.choice(k, size=SEGMENT, p=weights)
        parts.append(means[z] + rng.standard_normal((SEGMENT, d)))
    cps = np.arange(1, n_changes + 1) * SEGMENT
    return np.vstack(parts), cps


def scores(alarms, cps, n):
    """Detection rate, mean delay of the detected changes, false alarms per 10^4 samples."""
    alarms = np.asarray(alarms)
    delays, used = [], np.zeros(alarms.size, bool)
    for cp in cps:
        hit = np.flatnonzero((alarms >= cp) & (alarms < cp + MAX_DELAY))
        if hit.size:
            delays.append(alarms[hit[0]] - cp)
            used[hit] = True
    false = np.sum(~used)
    return (len(delays) / len(cps), float(np.mean(delays)) if delays else np.nan,
            false * 1e4 / n)


def detectors(d):
    return {
        "newma-gaussian": lambda: NEWMA(d, n_features=1000, sketch="gaussian", rng=0,
                                        window=WINDOW),
        "newma-optical": lambda: NEWMA(d, n_features=1000, sketch="optical", rng=0,
                                       window=WINDOW),
        "scan-b": lambda: ScanB(d, window=WINDOW, n_blocks=3),
    }


class Accuracy:
    """Detection rate, mean delay and false alarms per 10^4 samples at d = 20."""

    params = ["newma-gaussian", "newma-optical", "scan-b"]
    param_names = ["detector"]
    timeout = 600

    def setup(self, name):
        self.X, self.cps = gmm_stream(20, 10)
        self.res = detectors(20)[name]().detect(self.X)

    def track_detection_rate(self, name):
        return scores(self.res.alarms, self.cps, len(self.X))[0]

    def track_mean_delay(self, name):
        return scores(self.res.alarms, self.cps, len(self.X))[1]

    def track_false_alarms_per_1e4(self, name):
        return scores(self.res.alarms, self.cps, len(self.X))[2]


class TimePerSample:
    """Streaming time per sample (``update``) against the dimension: NEWMA's is one feature
    vector, Scan-B's a kernel row against (N + 1) B samples."""

    params = (["newma-gaussian", "scan-b"], [10, 100, 1000])
    param_names = ["detector", "d"]
    timeout = 600

    def setup(self, name, d):
        self.det = detectors(d)[name]()
        self.X = np.random.default_rng(0).standard_normal((200, d))
        for x in self.X[:10]:
            self.det.update(x)

    def time_update_200(self, name, d):
        for x in self.X:
            self.det.update(x)


def main():
    X, cps = gmm_stream(20, 20)
    print(f"stream: d=20, {len(X)} samples, {len(cps)} changes every {SEGMENT}; window "
          f"{WINDOW}; detected = alarm within {MAX_DELAY} samples")
    print("| detector | detection rate | mean delay | false alarms / 1e4 | seconds |")
    for name, make in detectors(20).items():
        t = time.perf_counter()
        res = make().detect(X)
        rate, delay, fa = scores(res.alarms, cps, len(X))
        print(f"| {name} | {rate:.2f} | {delay:.0f} | {fa:.1f} | {time.perf_counter() - t:.1f} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
