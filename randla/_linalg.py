"""Orthonormalization of tall blocks, the step between and after products in range finders.

Householder QR of a tall m x l block runs far below GEMM speed (measured here: 20000 x 110 in
~1 s), while CholeskyQR (Gram matrix by a GEMM, Cholesky of l x l, triangular solve) runs
at GEMM-like speed. CholeskyQR2 (two passes) is orthonormal to machine precision when
cond(Y) < ~u^(-1/2); a shifted first pass (Fukaya et al. 2020, "shifted CholeskyQR3") extends
that to cond(Y) ~ u^(-1); numerically rank-deficient blocks fall back to Householder QR.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
import scipy.linalg as sla

from ._dask import one_blas_thread

NORMALIZERS = ("auto", "qr", "lu", "cholqr", "none")
#: A float64 sum of squares below this may have lost entries to underflow: rescale.
_SMALL_SUM_SQ = 1e-200

# A CholeskyQR pass whose R has a diagonal ratio below this was applied to an almost
# orthonormal block, so its output is orthonormal to ~100 u and no further pass is needed.
_CLEAN_COND = 10.0
_MAX_PASSES = 4


def householder(Y):
    """Orthonormal Q (m x l) with range(Q) containing range(Y), by Householder QR."""
    return sla.qr(Y, mode="economic", check_finite=False)[0]


#: Largest order of a LAPACK call run on one thread by one_thread_lapack (beyond it the call
#: itself takes long enough for threads to pay; measured only at 120).
_ONE_THREAD_ORDER = 512


def one_thread_lapack(order):
    """BLAS limited to one thread around a small (order x order) LAPACK call. numpy and scipy
    each load their own OpenBLAS; a multithreaded call into scipy's leaves its threads
    spinning for a while, taking the cores from numpy's next large product (measured here,
    quiet: a 20000 x 5000 float32 product took 120 ms after a 120 x 120 scipy svdvals or
    triangular solve, 65 ms after the same call on one thread; rsvd's default on that matrix
    in float64 went from 1.26 to 0.72 s)."""
    return one_blas_thread() if order <= _ONE_THREAD_ORDER else contextlib.nullcontext()


def dense_matmat(A, X):
    """A @ X for an ndarray A, in the shape OpenBLAS runs fastest: a C-ordered float64 A
    transposed, (X^T A^T)^T (20000 x 5000 by 120 columns, quiet: 0.142 s against 0.175 s;
    float32 runs A @ X faster, 0.065 against 0.076 s)."""
    if A.dtype == np.float64 and A.flags.c_contiguous:
        return (X.T @ A.T).T
    return A @ X


def dense_rmatmat(A, Y):
    """A^H @ Y for an ndarray A as (Y^H A)^H: conjugates the thin Y, never a copy of A, and
    is the faster shape for a C-ordered A (20000 x 5000 by 120: 0.141 s against 0.182 s for
    ``A.T @ Y`` in float64, 0.069 against 0.076 s in float32)."""
    if A.dtype.kind == "c":
        return (Y.conj().T @ A).conj().T
    return (Y.T @ A).T


def _householder_qr(Y):
    return tuple(sla.qr(Y, mode="economic", check_finite=False))


def _gram(Y):
    """Y^H Y by numpy, which calls SYRK/HERK for ``Y.T @ Y``. On a quiet machine that is the
    fastest form (20000 x 120: 1.6 ms float32, 3.7 ms float64, against 2.4 and 7.9 ms for
    GEMM), and GEMM through scipy's wrappers cost rsvd 0.25 s more in copies; under load
    (a neighbour on a core), OpenBLAS's SYRK slows far more than GEMM (up to 80x)."""
    with np.errstate(over="ignore", invalid="ignore"):   # overflow: Cholesky fails, handled
        return Y.conj().T @ Y if Y.dtype.kind == "c" else Y.T @ Y


class _OutOfRange(Exception):
    """Y^H Y is beyond the floating-point range (or so small that it lost digits)."""


def _check_gram_range(G, dtype):
    """Raise _OutOfRange when the Gram matrix overflowed, or when its largest diagonal entry
    is so small that entries u times smaller are subnormal (Y of entries 1e-170 in float64),
    or zero (all underflowed, or Y = 0: the caller tells them apart)."""
    fi = np.finfo(dtype)
    dmax = float(np.max(G.diagonal().real)) if G.size else 0.0
    if not (dmax < float(fi.max) / (4 * G.shape[0])) or dmax < float(fi.tiny) / float(fi.eps):
        raise _OutOfRange


def _cholqr_pass(Y, shift=False):
    """One CholeskyQR pass: Q = Y R^-1 with R^H R = Y^H Y (+ shift I). Returns (Q, R);
    raises LinAlgError when the Gram matrix is not numerically positive definite, and
    _OutOfRange when it is out of the floating-point range."""
    G = _gram(Y)
    _check_gram_range(G, Y.dtype)
    if shift:
        m, l = Y.shape
        u = np.finfo(Y.dtype).eps / 2
        # Fukaya et al. (2020): s = 11 (m l + l (l + 1)) u ||Y||_2^2, with ||Y||_F^2 >= ||Y||_2^2.
        s = 11.0 * (m * l + l * (l + 1)) * u * float(np.trace(G).real)
        G[np.diag_indices(l)] += s
    with one_thread_lapack(G.shape[0]):
        R = sla.cholesky(G, lower=False, check_finite=False)
        if not np.all(np.isfinite(R)):
            raise np.linalg.LinAlgError("Cholesky factor is not finite")
        # Y @ R^-1 as a GEMM: several times faster than a triangular solve with a tall
        # right-hand side here, and as accurate for what follows (a second pass cleans up).
        Rinv = sla.solve_triangular(R, np.eye(R.shape[0], dtype=R.dtype), check_finite=False)
    return Y @ Rinv, R


def _diag_cond(R) -> float:
    d = np.abs(np.diag(R))
    with np.errstate(over="ignore"):   # a ratio beyond the range is ill-conditioned: inf
        return float(d.max() / d.min()) if d.min() > 0 else np.inf


def qr_factor(Y, orthonormal=True):
    """Y = Q R by CholeskyQR: a shifted first pass when Y is ill conditioned, Householder QR
    when it is numerically rank deficient. R is upper triangular (l x l).

    With ``orthonormal=False`` one pass is made: Q spans range(Y) and is well conditioned,
    which is all a power iteration needs between products. A shifted pass is followed by an
    unshifted one even then: its Q keeps the directions of Y below the shift at their small
    size (the shift is ~0.04 ||Y||^2 for a 2000 x 30 float32 block), and the next products
    lose them to rounding (measured: float32 rsvd went from 6e-7 to 0.94 relative error in
    sigma_20 over three power iterations).
    """
    if Y.shape[1] == 0:
        return Y, np.zeros((0, 0), dtype=Y.dtype)
    try:
        return _qr_factor(Y, orthonormal)
    except _OutOfRange:
        # Y * scale (exact) has its largest entry near 1: Y = Q (R / scale)
        scale = unit_scale(Y)
        if scale is None:
            return _householder_qr(Y)
        try:
            Q, R = _qr_factor(Y * np.asarray(scale, Y.real.dtype), orthonormal)
        except _OutOfRange:   # the scaled block's Gram matrix still lost its small entries
            return _householder_qr(Y)
        return Q, R / np.asarray(scale, R.real.dtype)


def unit_scale(Y):
    """The power of two that brings the largest magnitude of Y into [1/2, 1) (an exact
    scaling), or None when Y is zero or not finite."""
    amax = float(np.max(np.abs(Y))) if Y.size else 0.0
    if not math.isfinite(amax) or amax == 0:
        return None
    return 2.0 ** min(-math.frexp(amax)[1], 1023)   # a subnormal amax: as far as 2^1023 goes


def _qr_factor(Y, orthonormal):
    shifted = False
    try:
        Q, R = _cholqr_pass(Y)
        clean = _diag_cond(R) < _CLEAN_COND
    except np.linalg.LinAlgError:
        try:
            Q, R = _cholqr_pass(Y, shift=True)  # a shifted pass never finishes the job
            clean, shifted = False, True
        except np.linalg.LinAlgError:
            return _householder_qr(Y)
    factors = [R]
    passes = 1
    while not clean and (orthonormal or shifted):
        shifted = False
        if passes == _MAX_PASSES:
            return _householder_qr(Y)
        try:
            Q, R = _cholqr_pass(Q)
        except np.linalg.LinAlgError:
            return _householder_qr(Y)  # rank deficient: only Householder gives a full basis
        factors.append(R)
        passes += 1
        clean = _diag_cond(R) < _CLEAN_COND
    R = factors[-1]
    for Ri in factors[-2::-1]:
        R = R @ Ri
    return Q, R


def cholqr(Y, orthonormal=True):
    """The Q of :func:`qr_factor`."""
    return qr_factor(Y, orthonormal)[0]


def lu_normalize(Y):
    """P L from a partially pivoted LU of Y: well conditioned, spans range(Y) (HMT 2011, fbpca)."""
    return sla.lu(Y, permute_l=True, check_finite=False)[0]


def orthonormalize(Y, normalizer="qr"):
    """A basis of range(Y): orthonormal for "qr", "cholqr" and "auto"; well scaled for "lu";
    Y itself for "none".

    Examples
    --------
    >>> import numpy as np
    >>> from randla.lowrank import orthonormalize
    >>> Y = np.random.default_rng(0).standard_normal((500, 20))
    >>> Q = orthonormalize(Y, "cholqr")
    >>> bool(np.allclose(Q.T @ Q, np.eye(20)))
    True
    """
    Y = np.asarray(Y)
    if normalizer == "qr":
        return householder(Y)
    if normalizer in ("cholqr", "auto"):
        return cholqr(Y)
    if normalizer == "lu":
        return lu_normalize(Y)
    if normalizer == "none":
        return Y
    raise ValueError(f"normalizer must be one of {NORMALIZERS}, got {normalizer!r}")


def between_products(Y, normalizer):
    """The normalization a power iteration applies between two products with A."""
    if normalizer == "auto":
        return cholqr(Y, orthonormal=False)
    return orthonormalize(Y, normalizer)


def final_basis(Y, normalizer):
    """The orthonormal basis a range finder returns: Householder for "qr", CholeskyQR2 else."""
    return householder(Y) if normalizer == "qr" else cholqr(Y)


def project_out(W, Q):
    """W - Q (Q^H W): the part of W orthogonal to the orthonormal columns of Q."""
    if Q is None or Q.shape[1] == 0:
        return W
    return W - Q @ (Q.conj().T @ W)


def small_svd(B):
    with one_thread_lapack(min(B.shape)):
        try:
            return sla.svd(B, full_matrices=False, check_finite=False)
        except np.linalg.LinAlgError:  # gesdd rarely fails to converge; gesvd is the safe path
            return sla.svd(B, full_matrices=False, check_finite=False, lapack_driver="gesvd")


def fix_signs_by_rows(U, Vh):
    """Make the largest-magnitude entry of each row of Vh real and positive."""
    V, Uh = fix_signs(Vh.conj().T, U.conj().T)
    return Uh.conj().T, V.conj().T


def fix_signs(U, Vh):
    """Make the largest-magnitude entry of each column of U real and positive."""
    idx = np.argmax(np.abs(U), axis=0)
    phase = U[idx, np.arange(U.shape[1])]
    phase = phase / np.where(np.abs(phase) == 0, 1, np.abs(phase))
    phase = np.where(np.abs(phase) == 0, 1, phase)
    return U * phase.conj(), Vh * phase[:, None]


def fro_norm(x) -> float:
    """||x||_F of an array, accumulated in float64, without overflow or underflow: entries of
    1e200 or 1e-170 give their norm, not inf or 0 (the sum of squares is rescaled by the
    largest entry only when it is out of range, so the common case is one BLAS dot)."""
    x = np.asarray(x)
    parts = [np.ascontiguousarray(p, dtype=np.float64).ravel()
             for p in ((x.real, x.imag) if x.dtype.kind == "c" else (x,))]
    with np.errstate(over="ignore", under="ignore"):  # both are handled below
        total = sum(float(np.dot(p, p)) for p in parts)
    if math.isfinite(total) and total > _SMALL_SUM_SQ:
        return math.sqrt(total)
    scale = max((float(np.max(np.abs(p), initial=0.0)) for p in parts), default=0.0)
    if scale == 0.0 or not math.isfinite(scale):
        return scale
    return scale * math.sqrt(sum(float(np.dot(p / scale, p / scale)) for p in parts))

