"""The range finder: an orthonormal Q whose span captures the dominant range of A.

Y = A S^T for a sketch S, refined by power iterations (A A^H)^q Y normalized between products
(Halko, Martinsson & Tropp 2011, Alg. 4.4). This is the first layer of :func:`randla.qb` and
:func:`randla.rsvd`, public as scikit-learn's ``randomized_range_finder`` is.
"""
from __future__ import annotations

import numpy as np

from .. import sketch as _sketch
from .._linalg import NORMALIZERS, between_products, final_basis, project_out
from .._validation import check_choice, check_positive_int, real_dtype
from ..operators import Operator, as_operator
from ._params import check_iters


def sketch_range(op: Operator, S) -> np.ndarray:
    """A @ S.T as a dense array. A complex sketch of real data keeps its real part, itself a
    real sketch of the same family, so real input gets a real basis."""
    Y = np.asarray(op.sketch_right(S))
    if Y.dtype.kind == "c" and not op.is_complex:
        Y = np.ascontiguousarray(Y.real)
    return Y


def power(op: Operator, Y, q: int, normalizer: str, against=None) -> np.ndarray:
    """(A A^H)^q Y, normalized before and after each product with A^H; with ``against`` (an
    orthonormal basis found earlier) each product with A is projected out of its span."""
    for _ in range(q):
        Z = between_products(np.asarray(op.rmatmat(between_products(Y, normalizer))), normalizer)
        Y = project_out(np.asarray(op.matmat(Z)), against)
    return Y


def sketch_columns(op: Operator, S) -> np.ndarray:
    """S^T (n x l) as a dense array, the start of the right-side iterations; real for real A
    (the real part of a complex sketch is a real sketch of the same family)."""
    X = S.to_dense(S.dtype_for(op.dtype)).T
    return np.ascontiguousarray(X.real) if X.dtype.kind == "c" and not op.is_complex else X


def power_right(op: Operator, S, q: int, normalizer: str) -> np.ndarray:
    """X (n x l) spanning (A^H A)^q S^T, by fused A^H A products: one read of A each."""
    X = sketch_columns(op, S)
    for _ in range(q):
        X = between_products(np.asarray(op.gram_matmat_scaled(X)[0]), normalizer)
    return X


def find_range(op: Operator, S, q: int, normalizer: str) -> np.ndarray:
    """Orthonormal Q (m x l) spanning (A A^H)^q A S^T, normalized between products."""
    return final_basis(power(op, sketch_range(op, S), q, normalizer), normalizer)


def range_finder(A, l, *, power_iters=None, sketch="gaussian", normalizer="auto", rng=None):
    """An orthonormal basis Q (m x l) of the dominant range of A: ``A ~ Q Q^H A``.

    Parameters
    ----------
    A : ndarray, scipy.sparse matrix, LinearOperator or dask array, shape (m, n)
    l : int
        Columns of Q (the sketch size: the target rank plus oversampling), 1 <= l <= min(m, n).
    power_iters : int, optional
        Power iterations q (default 2): Q spans (A A^H)^q A S^T; 2 q + 1 products with A.
    sketch : str, Sketcher or callable
        A name of :func:`randla.sketch.available`, a Sketcher of shape (l, n) or a factory.
    normalizer : {"auto", "qr", "lu", "cholqr", "none"}
        Normalization between products, as in :func:`randla.rsvd`.
    rng : None, int or numpy.random.Generator

    Returns
    -------
    ndarray, shape (m, l)
        Orthonormal columns (float32 input gives float32).

    See Also
    --------
    randla.qb : Q and B = Q^H A; randla.rsvd : the SVD built on them.

    Examples
    --------
    >>> import numpy as np, randla
    >>> A = np.random.default_rng(0).standard_normal((300, 8)) @ np.random.default_rng(1).standard_normal((8, 100))
    >>> Q = randla.range_finder(A, 10, rng=0)
    >>> Q.shape, bool(np.allclose(Q @ (Q.T @ A), A))
    ((300, 10), True)
    """
    op = as_operator(A)
    S, q = _setup(op, l, power_iters, sketch, normalizer, rng)
    return np.ascontiguousarray(find_range(op, S, q, normalizer), dtype=op.dtype)


def _setup(op: Operator, l, power_iters, sketch, normalizer, rng):
    """The sketch (l x n) and the power iterations of a range finder call, checked."""
    l = check_positive_int(l, "l")
    if l > min(op.shape):
        raise ValueError(f"l must be <= min(m, n) = {min(op.shape)}, got {l}")
    check_choice(normalizer, "normalizer", NORMALIZERS)
    S = _sketch.resolve(sketch, l, op.shape[1], rng=rng, dtype=real_dtype(op.dtype))
    return S, check_iters(power_iters)
