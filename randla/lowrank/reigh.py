"""Randomized eigendecomposition of Hermitian matrices (Halko, Martinsson & Tropp 2011,
Alg. 5.3): range finder, then Rayleigh-Ritz on the small projected matrix."""
from __future__ import annotations

import numpy as np

from .. import sketch as _sketch
from .._linalg import cholqr, fix_signs
from .._validation import check_random_state, check_rank, check_square, real_dtype
from ..operators import HermitianOperator, as_operator
from ._params import check_iters, check_oversample
from .range_finder import power, sketch_range
from .results import EighResult


def check_hermitian(op, rng):
    """One random probe: ||A x - A^H x|| must be at rounding level."""
    n = check_square(op.shape, what="Hermitian")
    x = check_random_state(rng).standard_normal((n, 1)).astype(op.dtype)
    ax, ahx = np.asarray(op.matmat(x)), np.asarray(op.rmatmat(x))
    scale = np.linalg.norm(ax) + np.linalg.norm(ahx)
    if np.linalg.norm(ax - ahx) > np.sqrt(np.finfo(op.dtype).eps) * scale:
        raise ValueError("A must be Hermitian (symmetric if real): A x != A^H x for a random x")


def reigh(A, k, *, oversample=None, power_iters=None, sketch="gaussian", rng=None):
    """Randomized eigendecomposition of a Hermitian A: the k eigenpairs of largest magnitude,
    by a randomized range finder and Rayleigh-Ritz (Halko, Martinsson, Tropp 2011, Alg. 5.3).

    Parameters
    ----------
    A : ndarray, scipy.sparse matrix, LinearOperator or dask array, shape (n, n)
        Hermitian (symmetric if real); checked with one random probe.
    k : int
        Number of eigenpairs, 1 <= k <= n.
    oversample, power_iters, sketch, rng
        As in :func:`rsvd`; ``2 * power_iters + 2`` products with A in all.

    Returns
    -------
    EighResult
        ``(eigenvalues, eigenvectors)``, eigenvalues ascending as numpy.linalg.eigh returns
        them; the largest-magnitude entry of each eigenvector is real positive.

    See Also
    --------
    randla.nystrom : Nystrom approximation for positive semidefinite A (one pass, more accurate).

    Examples
    --------
    >>> import numpy as np, randla
    >>> Q = np.linalg.qr(np.random.default_rng(0).standard_normal((100, 100)))[0]
    >>> A = (Q * 0.5 ** np.arange(100)) @ Q.T
    >>> w, V = randla.reigh(A, 3, rng=0)
    >>> np.round(w, 6)
    array([0.25, 0.5 , 1.  ])
    """
    op = as_operator(A)
    n = op.shape[1]
    check_hermitian(op, rng)
    k = check_rank(k, "k", *op.shape)
    oversample = check_oversample(oversample, k, sketch)
    q = check_iters(power_iters)
    ell = min(k + oversample, n)
    S = _sketch.resolve(sketch, ell, n, rng=rng, dtype=real_dtype(op.dtype))
    # (A A^H)^q = A^2q for Hermitian A: the power loop with A^H products taken as A products
    Q = cholqr(power(HermitianOperator(op), sketch_range(op, S), q, "auto"))
    T = Q.conj().T @ np.asarray(op.matmat(Q))
    w, V = np.linalg.eigh((T + T.conj().T) / 2)
    top = np.sort(np.argsort(-np.abs(w), kind="stable")[:k])  # eigh sorts ascending already
    V, _ = fix_signs(Q @ V[:, top], np.zeros((k, 0)))
    return EighResult(w[top].astype(real_dtype(op.dtype)), np.ascontiguousarray(V, op.dtype))
