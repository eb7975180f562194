"""Tools for testing RandNLA code, ours and yours: matrices with a known spectrum, and the
contract tests every Sketcher and every operator must pass (the suite runs them over every
registered sketch and every operator kind).

- :func:`matrix_with_spectrum`: A = U diag(s) V^T with exactly the singular values s;
- :func:`spectral_error`: ||A - U diag(S) Vh||_2, estimated without a full SVD;
- :func:`check_sketcher`: determinism, block addressability, products and dtypes of a Sketcher;
- :func:`check_operator`: products against a dense reference and the adjoint (dot) test.
"""
from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ._validation import check_random_state
from .lowrank import estimate_error
from .operators import as_operator
from .sketch import Gaussian, Sketcher

__all__ = ["matrix_with_spectrum", "spectral_error", "check_sketcher", "check_operator"]


def _mix(X, signs):
    """Two rounds of random signs + orthonormal DCT along axis 0: an orthogonal map that
    spreads every row over all rows (as a subsampled randomized transform does)."""
    for s in signs:
        X = scipy.fft.dct(X * s[:, None], axis=0, norm="ortho", workers=-1)
    return X


def matrix_with_spectrum(m, n, s, *, dtype=np.float64, rng=0):
    """A = U diag(s) V^T with exactly the singular values ``s`` (len(s) <= min(m, n)).

    U and V are random orthonormal, built from randomized DCTs in O(m n log m) instead of a
    QR of a Gaussian matrix (20000 x 5000 in ~2 s instead of ~20 s).

    Examples
    --------
    >>> import numpy as np
    >>> from randla.testing import matrix_with_spectrum
    >>> A = matrix_with_spectrum(300, 100, 0.9 ** np.arange(100))
    >>> bool(np.allclose(np.linalg.svd(A, compute_uv=False), 0.9 ** np.arange(100)))
    True
    """
    gen = check_random_state(rng)
    s = np.asarray(s, dtype=np.float64)
    r = len(s)
    if r > min(m, n):
        raise ValueError(f"s has {r} values, more than min(m, n) = {min(m, n)}")
    # V^T: r rows of an orthogonal n x n map; U: r columns of an orthogonal m x m map
    E = np.zeros((n, r))
    E[gen.choice(n, r, replace=False), np.arange(r)] = 1.0
    Vt = _mix(E, gen.choice([-1.0, 1.0], (2, n))).T
    Z = np.zeros((m, n))
    Z[gen.choice(m, r, replace=False)] = s[:, None] * Vt
    return np.ascontiguousarray(_mix(Z, gen.choice([-1.0, 1.0], (2, m))), dtype=dtype)


def spectral_error(A, U, S, Vh, rng=0):
    """||A - U diag(S) Vh||_2, estimated by block Krylov on the residual (a lower bound that
    is tight to a fraction of a percent here): a full SVD of the residual is too costly."""
    return estimate_error(A, U, S, Vh, n_probes=10, n_iter=12, rng=rng).estimate


def _tolerance(dtype) -> float:
    return 1e-4 if np.finfo(np.dtype(dtype)).eps > 1e-10 else 1e-10


def _close(got, want, tol, what):
    got, want = np.asarray(got), np.asarray(want)
    scale = max(float(np.abs(want).max(initial=0.0)), 1.0)
    err = float(np.abs(got - want).max(initial=0.0))
    if got.shape != want.shape or not err <= tol * scale:
        raise AssertionError(f"{what}: shape {got.shape} vs {want.shape}, max error {err:.3g} "
                             f"> {tol:.1g} x {scale:.3g}")


def check_sketcher(S, *, rng=None) -> None:
    """Check that ``S`` keeps the Sketcher contract; raise AssertionError saying what broke.

    Checked: ``S.shape == (d, n)``; the same seed gives the same matrix; any column block
    ``S[:, i:j]`` equals the columns of the whole, whatever the cuts; ``S @ X`` for dense,
    sparse and LinearOperator X and ``X @ S.T`` equal the dense product; ``S.apply_block``
    equals the product with zero-padded rows; float32 data stays float32. Costs a few dense
    copies of S: use a small one.

    Examples
    --------
    >>> import randla
    >>> from randla.testing import check_sketcher
    >>> check_sketcher(randla.sketch.make("sparse_sign", 8, 300, rng=0))
    """
    if not isinstance(S, Sketcher):
        raise TypeError(f"S must be a randla.sketch.Sketcher, got {type(S).__name__}")
    gen = check_random_state(rng)
    d, n = S.shape
    dense = S.to_dense()
    if dense.shape != (d, n):
        raise AssertionError(f"to_dense() has shape {dense.shape}, expected {(d, n)}")
    try:  # a second instance from the same seed and parameters
        twin = type(S)(d, n, rng=S.seed, dtype=S.dtype, **S.params())
    except TypeError:  # a constructor taking other arguments: regenerate from S itself
        twin = S
    if not np.array_equal(twin.to_dense(), dense):
        raise AssertionError("the same seed gave a different matrix")
    cuts = np.unique(np.concatenate([[0, n], gen.integers(0, n + 1, 4)]))
    pieces = [S[:, i:j] for i, j in zip(cuts[:-1], cuts[1:])]
    pieces = np.hstack([p.toarray() if sp.issparse(p) else np.asarray(p) for p in pieces])
    if not np.array_equal(pieces, dense):
        raise AssertionError(f"column blocks cut at {cuts.tolist()} differ from the whole")
    for dtype in (np.float64, np.float32, np.complex128):
        X = gen.standard_normal((n, 3)).astype(dtype)
        if np.dtype(dtype).kind == "c":
            X = X + 1j * gen.standard_normal((n, 3))
        ref = S.to_dense(S.dtype_for(X.dtype)) @ X
        tol = _tolerance(dtype)
        _close(S @ X, ref, tol, f"S @ X ({np.dtype(dtype).name})")
        _close(S @ sp.csr_matrix(X), ref, tol, "S @ sparse X")
        _close(S @ spla.aslinearoperator(X), ref, tol, "S @ LinearOperator X")
        _close(X.T @ S.T, ref.T, tol, "X @ S.T")
        if np.dtype(dtype) == np.float32 and (S @ X).dtype != np.float32:
            raise AssertionError(f"float32 data gave {(S @ X).dtype}")
    start = int(gen.integers(0, n))
    X = gen.standard_normal((n - start, 2))
    _close(S.apply_block(X, start), dense[:, start:] @ X, 1e-10, "apply_block")


def check_operator(op, A, *, rng=None) -> None:
    """Check an operator (or anything :func:`randla.as_operator` accepts) against the dense
    matrix ``A`` it stands for; raise AssertionError saying what broke.

    Checked: shape and dtype; ``matmat``, ``rmatmat``, ``gram_matmat`` and
    ``gram_and_product`` against A; the adjoint (dot) test <A x, y> = <x, A^H y>; the range
    and co-range sketches; column means; the Frobenius norm where the operator knows it.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from randla.testing import check_operator
    >>> A = sp.random(40, 30, density=0.2, random_state=np.random.default_rng(0))
    >>> check_operator(A, A.toarray())
    """
    gen = check_random_state(rng)
    op = as_operator(op)
    A = np.asarray(A)
    m, n = A.shape
    if op.shape != (m, n):
        raise AssertionError(f"operator shape {op.shape} differs from A's {(m, n)}")
    tol = _tolerance(op.dtype) * 10
    X = gen.standard_normal((n, 3)).astype(op.dtype)
    Y = gen.standard_normal((m, 3)).astype(op.dtype)
    AX, AhY = A @ X, A.conj().T @ Y
    _close(op.matmat(X), AX, tol, "matmat")
    _close(op.rmatmat(Y), AhY, tol, "rmatmat")
    _close(op.gram_matmat(X), A.conj().T @ AX, tol * 10, "gram_matmat")
    C, P = op.gram_and_product(X)
    _close(C, A.conj().T @ AX, tol * 10, "gram_and_product (A^H A X)")
    _close(P, AX, tol, "gram_and_product (A X)")
    lhs, rhs = np.vdot(Y, op.matmat(X)), np.vdot(op.rmatmat(Y), X)
    if not abs(lhs - rhs) <= tol * max(abs(lhs), abs(rhs), 1.0):
        raise AssertionError(f"dot test failed: <A x, y> = {lhs} but <x, A^H y> = {rhs}")
    Sr, Sl = Gaussian(4, n, rng=1), Gaussian(4, m, rng=2)
    _close(op.sketch_right(Sr), A @ Sr.to_dense().T, tol, "sketch_right (A S^T)")
    _close(op.sketch_left(Sl), Sl.to_dense() @ A, tol, "sketch_left (S A)")
    _close(op.column_means(), A.mean(axis=0), tol, "column_means")
    fro = op.fro_norm()
    if fro is not None and not abs(fro - np.linalg.norm(A)) <= tol * np.linalg.norm(A):
        raise AssertionError(f"fro_norm {fro} differs from ||A||_F = {np.linalg.norm(A)}")
