"""A posteriori error of a low-rank approximation: a certified bound and an estimate."""
from __future__ import annotations

import numpy as np

from .._linalg import fro_norm
from .._validation import check_finite, check_positive_int, check_random_state, real_dtype, working_dtype
from ..operators import ResidualOperator, as_operator
from .results import ErrorEstimate
from .rsvd import rsvd


def estimate_error(A, U, s, Vh, *, n_probes=10, n_iter=4, rng=None):
    """A posteriori error of ``A ~ U diag(s) Vh`` in the spectral norm.

    The bound is Lemma 4.1 of Halko, Martinsson, Tropp (2011): for Gaussian vectors w_i,
    ``||E||_2 <= 10 sqrt(2/pi) max_i ||E w_i||`` with probability at least
    ``1 - 10**-n_probes``, E = A - U diag(s) Vh. The estimate is the top Ritz value of E on a
    block Krylov space grown from the probes (``n_iter`` steps): a lower bound on ||E||_2.

    Parameters
    ----------
    A : ndarray, scipy.sparse matrix, LinearOperator or dask array, shape (m, n)
    U, s, Vh : arrays of shapes (m, r), (r,), (r, n)
        The approximation, e.g. from :func:`rsvd`.
    n_probes : int
        Gaussian probes; the bound fails with probability at most ``10**-n_probes``.
    n_iter : int
        Krylov steps of the estimate (0: the estimate is ``max_i ||E w_i|| / ||w_i||``).
    rng : None, int or numpy.random.Generator

    Returns
    -------
    ErrorEstimate
        ``(bound, probability, estimate)``; costs ``1 + (2 n_iter + 2)`` products with A.

    Examples
    --------
    >>> import numpy as np, randla
    >>> A = np.random.default_rng(0).standard_normal((300, 200)) * 0.9 ** np.arange(200)
    >>> U, s, Vh = randla.rsvd(A, 20, rng=0)
    >>> err = randla.estimate_error(A, U, s, Vh, rng=1)
    >>> true = np.linalg.norm(A - (U * s) @ Vh, 2)
    >>> bool(err.estimate <= true * (1 + 1e-9) <= err.bound), err.probability
    (True, 0.9999999999)
    """
    op = as_operator(A)
    m, n = op.shape
    U, s, Vh = np.asarray(U), np.asarray(s), np.asarray(Vh)
    r = s.shape[0] if s.ndim == 1 else -1
    if U.shape != (m, r) or Vh.shape != (r, n):
        raise ValueError(f"U, s, Vh must have shapes (m, r), (r,), (r, n) with (m, n) = {(m, n)},"
                         f" got {U.shape}, {s.shape}, {Vh.shape}")
    for value, name in ((U, "U"), (s, "s"), (Vh, "Vh")):
        working_dtype(value.dtype, name)
        check_finite(value, name)
    n_probes = check_positive_int(n_probes, "n_probes")
    n_iter = check_positive_int(n_iter, "n_iter", minimum=0)
    gen = check_random_state(rng)
    E = ResidualOperator(op, U.astype(op.dtype, copy=False), s.astype(real_dtype(op.dtype)),
                         Vh.astype(op.dtype, copy=False))
    W = gen.standard_normal((n, n_probes))
    if E.is_complex:  # circular complex probes: P(|z| < t) <= t^2, stronger than the real case
        W = (W + 1j * gen.standard_normal((n, n_probes))) / np.sqrt(2)
    EW = np.asarray(E.matmat(W.astype(E.dtype)))
    if not np.all(np.isfinite(EW)):
        raise ValueError("A produced NaN or Inf in products (check the data or the LinearOperator)")
    norms = np.array([fro_norm(EW[:, j]) for j in range(EW.shape[1])])   # no overflow at 1e300
    bound = 10 * np.sqrt(2 / np.pi) * float(norms.max())
    estimate = float((norms / np.linalg.norm(W, axis=0)).max())
    if n_iter > 0 and min(m, n) > 1:
        ritz = rsvd(E, 1, oversample=min(n_probes, min(m, n)) - 1, power_iters=n_iter,
                    method="krylov", rng=gen).S[0]
        estimate = max(estimate, float(ritz))
    return ErrorEstimate(bound, 1 - 10.0 ** -n_probes, estimate)
