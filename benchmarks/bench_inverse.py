"""Regularization through rsvd against the same through a full SVD, and deblurring against LSQR.

Goals (issue 5): Tikhonov/TSVD on shaw(4096) >= 10x faster than with a full SVD at matching
reconstruction error; 512 x 512 deblurring (A is 262144 x 262144, matrix-free) faster than
scipy's LSQR with the same Tikhonov damping at matching error.

Run alone: ``python -m benchmarks.bench_inverse [shaw|deblur]`` prints medians of 3.
"""
import numpy as np
import scipy.linalg as sla
import scipy.sparse.linalg as spla

from randla.inverse import Spectrum, choose_lambda, problems, tikhonov, tsvd

from .bench_lstsq import median_time


def noisy_shaw(n=4096, level=1e-3, seed=0):
    A, b, x = problems.shaw(n)
    e = np.random.default_rng(seed).standard_normal(n)
    e *= level * np.linalg.norm(b) / np.linalg.norm(e)
    return A, b + e, x, float(np.linalg.norm(e))


def full_svd_tikhonov(A, b, noise_level):
    """The peer: LAPACK's full SVD, then the same discrepancy rule on the full spectrum."""
    U, s, Vh = sla.svd(A, check_finite=False)
    sp = Spectrum(s, U.T @ b, 0.0, A.shape[0], lambda c: Vh.T @ c)
    lam = choose_lambda(sp, "discrepancy", noise_level)
    return sp.solution(sp.tikhonov_filter(lam)), sp


class ShawRegularization:
    timeout = 900
    number = 1
    repeat = 3
    rank = 50  # shaw(4096) has ~22 singular values above 1e-16 sigma_1

    def setup(self):
        self.A, self.b, self.x, self.noise = noisy_shaw()

    def _tikhonov(self):
        return tikhonov(self.A, self.b, rule="discrepancy", noise_level=self.noise,
                        rank=self.rank, rng=0).x

    def _tsvd(self):
        return tsvd(self.A, self.b, rule="discrepancy", noise_level=self.noise,
                    max_rank=self.rank, rng=0).x

    def _full(self):
        return full_svd_tikhonov(self.A, self.b, self.noise)[0]

    def time_tikhonov_rsvd(self):
        self._tikhonov()

    def time_tsvd_rsvd(self):
        self._tsvd()

    def time_tikhonov_full_svd(self):
        self._full()

    def track_error_tikhonov_rsvd(self):
        return float(np.linalg.norm(self._tikhonov() - self.x) / np.linalg.norm(self.x))

    def track_error_tikhonov_full_svd(self):
        return float(np.linalg.norm(self._full() - self.x) / np.linalg.norm(self.x))


class Deblur:
    """512 x 512 phantom, Gaussian blur sigma = 3 px, 1% noise; lam from the discrepancy rule.
    LSQR runs with damp = lam until its error is within 1% of the exact Tikhonov solution's."""

    timeout = 900
    number = 1
    repeat = 3
    n = 512

    def setup(self):
        self.prob = problems.deblur(self.n, sigma=3.0, noise=0.01, rng=0)
        p = self.prob
        self.lam = tikhonov(p.A, p.b, rule="discrepancy", noise_level=p.noise_level, rng=0).lam
        self.iters = self._lsqr_iterations_to_match()

    def _error(self, x):
        return float(np.linalg.norm(x - self.prob.x_true) / np.linalg.norm(self.prob.x_true))

    def _randla(self):
        p = self.prob
        return tikhonov(p.A, p.b, lam=self.lam, rng=0).x

    def _lsqr(self, iter_lim):
        p = self.prob
        return spla.lsqr(p.A, p.b, damp=self.lam, atol=0, btol=0, conlim=0, iter_lim=iter_lim)[0]

    def _lsqr_iterations_to_match(self):
        target = 1.01 * self._error(self._randla())
        for it in range(10, 2001, 10):
            if self._error(self._lsqr(it)) <= target:
                return it
        return 2000

    def time_tikhonov_randla(self):
        self._randla()

    def time_lsqr_same_damping(self):
        self._lsqr(self.iters)

    def track_error_randla(self):
        return self._error(self._randla())

    def track_error_lsqr(self):
        return self._error(self._lsqr(self.iters))

    def track_lsqr_iterations(self):
        return self.iters


def main(which="shaw"):
    if which == "shaw":
        s = ShawRegularization()
        s.setup()
        for name, fun in [("tikhonov_rsvd", s._tikhonov), ("tsvd_rsvd", s._tsvd),
                          ("tikhonov_full_svd", s._full)]:
            t, x = median_time(fun, repeat=1 if name.endswith("full_svd") else 3)
            err = np.linalg.norm(x - s.x) / np.linalg.norm(s.x)
            print(f"shaw(4096) {name:18s} {t:8.3f} s  error {err:.4f}", flush=True)
    else:
        d = Deblur()
        d.setup()
        for name, fun in [("tikhonov_randla", d._randla),
                          (f"lsqr_{d.iters}_iters", lambda: d._lsqr(d.iters))]:
            t, x = median_time(fun)
            print(f"deblur 512 lam={d.lam:.3g} {name:18s} {t:8.3f} s  error {d._error(x):.4f}",
                  flush=True)


if __name__ == "__main__":
    import sys

    main(*sys.argv[1:])
