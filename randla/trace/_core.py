"""What every trace estimator shares: the float-like result, input handling, test vectors drawn
from randla sketches, matvec counting and the adaptive (``tol=``) driver."""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .. import sketch as _sketch
from .._budget import rows_within
from .._validation import check_positive_int, check_random_state, check_square, real_dtype
from ..operators import as_operator

#: Sketch kinds whose test vectors are rotation invariant (the XTrace normalization needs it).
_ROTATION_INVARIANT = {"gaussian", "sphere"}


class TraceResult(float):
    """A trace estimate that is a float, with its error estimate and cost attached.

    Attributes
    ----------
    estimate : float
        The estimate (also the value of the object itself).
    error : float
        The estimator's own estimate of its standard error (NaN when it has none).
    matvecs : int
        Products of A with a vector that were used.
    method : str
        Name of the estimator.
    """

    def __new__(cls, estimate, error=math.nan, matvecs=0, method=""):
        obj = super().__new__(cls, estimate)
        obj.error = float(error)
        obj.matvecs = int(matvecs)
        obj.method = str(method)
        return obj

    @property
    def estimate(self) -> float:
        return float(self)

    def __repr__(self):
        return (f"TraceResult(estimate={float(self)!r}, error={self.error!r}, "
                f"matvecs={self.matvecs}, method={self.method!r})")

    def __reduce__(self):
        return (type(self), (float(self), self.error, self.matvecs, self.method))


class DiagResult(NamedTuple):
    """A diagonal estimate: the vector, an estimate of its error ``||d_est - diag(A)||_2`` and
    the products with A used. ``np.asarray(result)`` gives the vector."""

    estimate: np.ndarray
    error: float
    matvecs: int

    def __array__(self, dtype=None, copy=None):
        return self.estimate if dtype is None else self.estimate.astype(dtype)


# -- input ---------------------------------------------------------------------------------------
class _Counted:
    """An operator that counts the vectors it is applied to (``matvecs``), and that gives the
    products of A / ``scale``: the estimators square and cube entries of the products (norms,
    variances, Gram matrices), which overflow from about 1e154 and underflow below 1e-154, so
    products far from 1 are brought near it by a power of two (exact), fixed by the first
    product; estimates homogeneous in A are multiplied back by :attr:`unit`."""

    def __init__(self, op, symmetric):
        self.op = op
        self.shape = op.shape
        self.dtype = op.dtype
        self.symmetric = symmetric
        self.matvecs = 0
        self.scale = None
        self.scaled_csr = None  # A / scale for kernels that read a CSR A directly (Lanczos)

    @property
    def unit(self) -> float:
        """What estimates from the products are multiplied by (1 when not scaled)."""
        return 1.0 if self.scale is None else self.scale

    def fix_scale(self, peak):
        """Fix the scale (once) from the largest magnitude ``peak`` of A or a product."""
        if self.scale is None:
            self.scale = safe_scale(peak, self.dtype)
        return self.scale

    def _scaled(self, Y):
        c = self.fix_scale(float(np.max(np.abs(Y), initial=0.0)))
        return Y if c == 1.0 else Y / np.asarray(c, dtype=real_dtype(Y.dtype))

    def matmat(self, X):
        self.matvecs += X.shape[1]
        return self._scaled(_finite(np.asarray(self.op.matmat(X))))

    def rmatmat(self, X):
        """A^T X (A X when A was declared symmetric)."""
        if self.symmetric:
            return self.matmat(X)
        self.matvecs += X.shape[1]
        return self._scaled(_finite(np.asarray(self.op.rmatmat(X))))


def safe_scale(peak, dtype) -> float:
    """1 when entries of magnitude ``peak`` can be squared and cubed safely in ``dtype``,
    else the power of two nearest below ``peak`` (so A / scale has entries near 1)."""
    finfo = np.finfo(real_dtype(dtype))
    limit = math.ldexp(1.0, finfo.maxexp // 8)   # 2^128 for float64, 2^16 for float32
    if not (0 < peak < math.inf) or 1 / limit <= peak <= limit:
        return 1.0
    return math.ldexp(1.0, math.frexp(peak)[1] - 1)


def _finite(Y):
    # a NaN or Inf in one product makes every estimate NaN: say where it came from instead
    if not np.all(np.isfinite(Y)):
        raise ValueError("A produced NaN or Inf in products (check the data or the LinearOperator)")
    return Y


def _no_adjoint(x):
    raise ValueError("A was given as a matvec callable, which has no transpose; pass "
                     "symmetric=True if A is symmetric, or a LinearOperator with rmatvec")


def square_operator(A, n=None, *, symmetric=False, name="A") -> _Counted:
    """Validate A (ndarray, sparse, LinearOperator or matvec callable with size ``n``) as a
    real square operator and wrap it to count matvecs."""
    if callable(A) and not isinstance(A, spla.LinearOperator) and not sp.issparse(A) \
            and not isinstance(A, np.ndarray):
        if n is None:
            raise ValueError(f"{name} is a matvec callable: pass its size n")
        n = check_positive_int(n, "n")
        func = A
        A = spla.LinearOperator((n, n), matvec=lambda x: np.asarray(func(np.ravel(x))),
                                rmatvec=_no_adjoint, dtype=np.float64)
    op = as_operator(A, name)
    check_square(op.shape, name)
    if n is not None and check_positive_int(n, "n") != op.shape[0]:
        raise ValueError(f"n={n} does not match the size of {name}, {op.shape}")
    if op.is_complex:
        raise TypeError(f"{name} is complex; randla.trace estimates traces of real matrices")
    return _Counted(op, symmetric)


#: Matvecs used when neither m nor tol is given: min(n, 100), as imate and PyLops default to a
#: fixed number of probes (stochastic Lanczos quadrature: ``degree`` times min(n, 20) probes).
DEFAULT_MATVECS = 100


def check_budget(m, tol, atol, n, minimum, name="m", default=None):
    """Validate ``m`` (fixed budget, or the cap when ``tol``/``atol`` is given); without either,
    the budget ``default`` (min(n, DEFAULT_MATVECS) when None)."""
    adaptive = tol is not None or atol is not None
    if m is None:
        m = max(minimum, n if adaptive else (min(n, DEFAULT_MATVECS) if default is None else default))
    m = check_positive_int(m, name)
    if m < minimum:
        raise ValueError(f"{name} must be >= {minimum} for this estimator, got {m}")
    for value, label in ((tol, "tol"), (atol, "atol")):
        if value is not None and (not isinstance(value, numbers.Real) or not value > 0):
            raise ValueError(f"{label} must be a positive number, got {value!r}")
    return m, adaptive


def setup(A, m, tol, atol, n, sketch, normalize, rng, minimum, *, symmetric=False,
          default_cap=None, default_budget=None):
    """Validate the arguments every estimator takes: (counted operator, test vectors, budget,
    adaptive?). ``default_cap(n)``: the budget cap with a tolerance; ``default_budget(n)``: the
    budget with neither m nor a tolerance."""
    op = square_operator(A, n, symmetric=symmetric)
    size = op.shape[0]
    if m is None and (tol is not None or atol is not None) and default_cap is not None:
        m = max(minimum, default_cap(size))
    m, adaptive = check_budget(m, tol, atol, size, minimum,
                               default=None if default_budget is None else default_budget(size))
    vectors = TestVectors(sketch, size, rng, op.dtype, normalize)
    return op, vectors, m, adaptive


def chunks(k, n, itemsize=8, max_bytes=2**27):
    """Split k test vectors of length n into column blocks of at most ``max_bytes``."""
    width = rows_within(max_bytes, n * itemsize)
    return [min(width, k - i) for i in range(0, k, width)]


def check_finite_result(value, what):
    if not np.all(np.isfinite(value)):
        raise ValueError(f"{what} is not finite: A's products overflowed or produced NaN")


# -- test vectors ----------------------------------------------------------------------------------
class TestVectors:
    """Test vectors omega with E[omega omega^T] = I drawn from a randla sketch.

    A sketch S (d x n) of the contract satisfies E[S^H S] = I, so the columns of sqrt(d) S^T are
    such test vectors. A name or factory gives fresh vectors on every draw; a Sketcher instance
    is a fixed pool of its d rows, handed out in order. ``normalize`` (or the name "sphere",
    Gaussian vectors scaled to norm sqrt(n)) puts the vectors on the sphere.
    """

    def __init__(self, sketch, n, rng, dtype, normalize=False):
        self.n = n
        self.dtype = np.dtype(dtype)
        self.rng = check_random_state(rng)
        if isinstance(sketch, str) and sketch == "sphere":
            sketch, normalize = "gaussian", True
        self.sketch = sketch
        self.normalize = bool(normalize)
        kind = sketch if isinstance(sketch, str) else getattr(sketch, "kind", "")
        complex_ = isinstance(sketch, _sketch.Sketcher) and sketch.is_complex
        self.rotation_invariant = kind in _ROTATION_INVARIANT and not complex_
        self._pool = None
        if isinstance(sketch, _sketch.Sketcher):
            if sketch.n != n:
                raise ValueError(f"sketch has shape {sketch.shape}; its n must be {n}")
            self._pool, self._used = self._from(sketch), 0
        elif not (isinstance(sketch, str) or callable(sketch)):
            raise TypeError(f"sketch must be a name in {_sketch.available() + ['sphere']}, "
                            f"a Sketcher or a factory, got {type(sketch).__name__}")

    def _from(self, S):
        d = S.shape[0]
        omega = math.sqrt(d) * S.to_dense(S.dtype_for(self.dtype)).T
        if self.normalize:
            omega *= math.sqrt(self.n) / np.linalg.norm(omega, axis=0)
        return np.ascontiguousarray(omega)

    def draw(self, k):
        """The next k test vectors, as the columns of an n x k array."""
        if self._pool is not None:
            if self._used + k > self._pool.shape[1]:
                raise ValueError(f"the sketch supplies {self._pool.shape[1]} test vectors; this "
                                 f"call needs {self._used + k}: give a larger sketch or a name")
            out = self._pool[:, self._used:self._used + k]
            self._used += k
            return out
        return self._from(_sketch.resolve(self.sketch, k, self.n, rng=self.rng,
                                          dtype=real_dtype(self.dtype)))


def ct(X):
    """Conjugate transpose (a plain transpose for real X)."""
    return X.conj().T if np.iscomplexobj(X) else X.T


def rowdot(X, Y):
    """Column-wise inner products x_j^H y_j."""
    return np.einsum("ij,ij->j", X.conj(), Y) if np.iscomplexobj(X) else np.einsum("ij,ij->j", X, Y)


# -- adaptive driver -------------------------------------------------------------------------------
def run(state, m, adaptive, tol, atol, first):
    """Grow ``state`` to the budget ``m`` at once, or, when adaptive, by doubling from ``first``
    matvecs until its error estimate is at most max(atol, tol * |estimate|) or m is spent.

    ``state.grow(budget)`` brings the state to ``budget`` matvecs (states with ``restarts =
    True`` start over, so the budgets they can still afford shrink by what was spent);
    ``state.estimate()`` returns (estimate, error)."""
    if not adaptive:
        state.grow(m)
        return _estimate(state)
    restarts = getattr(state, "restarts", False)
    budget = min(m, first)
    while True:
        state.grow(budget)
        est, err = _estimate(state)
        target = max(atol or 0.0, (tol or 0.0) * _safe_norm(est))
        left = m - state.op.matvecs if restarts else m
        nxt = min(2 * budget, left)
        if err <= target or nxt <= budget:
            return est, err
        budget = nxt


def _safe_norm(x) -> float:
    """||x||_2 without squaring entries of 1e200 (or 1e-200)."""
    peak = float(np.max(np.abs(x), initial=0.0))
    return peak * float(np.linalg.norm(x / peak)) if 0 < peak < math.inf else peak


def _estimate(state):
    """The state's (estimate, error) in the units of A: states of estimators homogeneous in A
    work on A / scale (see :class:`_Counted`); the others (``homogeneous = False``) unscale
    themselves."""
    est, err = state.estimate()
    c = state.op.unit if getattr(state, "homogeneous", True) else 1.0
    return (est, err) if c == 1.0 else (est * c, err * c)


def finish(state, m, adaptive, tol, atol, first, method):
    """Run ``state`` (see :func:`run`) and wrap its estimate as a TraceResult."""
    est, err = run(state, m, adaptive, tol, atol, first)
    return TraceResult(est, err, state.op.matvecs, method)


def sample_error(samples):
    """Standard error of the mean of ``samples`` (NaN for fewer than two), computed at a
    power-of-two scale (exact) so that squares of samples of 1e200 or 1e-200 do not overflow
    or underflow."""
    k = len(samples)
    if k < 2:
        return math.nan
    peak = float(np.max(np.abs(samples)))
    c = math.ldexp(1.0, math.frexp(peak)[1]) if 0 < peak < math.inf else 1.0
    return float(c * np.std(np.asarray(samples) / c, ddof=1) / math.sqrt(k))
