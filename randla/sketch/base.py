"""The Sketcher contract: a random linear map S from n to d dimensions, fully determined by its
kind, shape, parameters and seed, and generated block by block.

Subclasses implement :meth:`Sketcher._block` (a dense or sparse column block of S). Everything
else, ``S @ X``, ``X @ S.T``, ``S[:, i:j]``, ``S.to_dense()``, is derived here from it, streaming
over column tiles so that S is never held whole unless asked for.
"""
from __future__ import annotations

import abc

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .._budget import SKETCH_TILE_BYTES, rows_within
from .._linalg import dense_matmat
from .._validation import check_positive_int, seed_from_rng, working_dtype
from .dask import sketch_dask

#: Memory a generated tile of S may take, in bytes.


class Sketcher(abc.ABC):
    """A random linear map S of shape ``(d, n)``, ``d`` usually much smaller than ``n``.

    Parameters
    ----------
    d, n : int
        Output and input dimensions.
    rng : None, int or numpy.random.Generator
        Seed. An int names the sketch exactly: same seed, same S on every machine.
    dtype : dtype
        Precision of S when applied to data that does not fix it (float64 by default). Applied
        to float32 or complex64 data, S is generated in single precision, so float32 stays float32.

    Notes
    -----
    ``S @ X`` sketches the rows of X (X has n rows) and ``X @ S.T`` the columns (X has n
    columns). X may be a dense array, a scipy.sparse matrix, a LinearOperator or a dask array.
    """

    __array_ufunc__ = None  # make numpy defer ndarray @ S to us

    #: Name under which the registry knows this kind.
    kind: str = ""
    #: Complex sketches map real data to complex sketches.
    is_complex: bool = False
    #: True when any column block is generated on its own (False for global transforms).
    block_addressable: bool = True
    #: True for a sketch whose strength is its input width (the OPU's million-mirror DMD):
    #: algorithms free to choose apply it along the data's larger dimension.
    long_side: bool = False

    def __init__(self, d, n, *, rng=None, dtype=np.float64):
        self.d = check_positive_int(d, "d")
        self.n = check_positive_int(n, "n")
        self.seed = seed_from_rng(rng)
        dtype = working_dtype(dtype, "dtype")
        self.dtype = np.dtype(np.result_type(dtype, np.complex64)) if self.is_complex else dtype

    # -- the one method subclasses implement -----------------------------------------------
    @abc.abstractmethod
    def _block(self, start: int, stop: int, dtype: np.dtype):
        """Columns ``start:stop`` of S in ``dtype`` (dense array or scipy.sparse matrix)."""

    # -- derived interface -------------------------------------------------------------------
    @property
    def shape(self):
        return (self.d, self.n)

    def __repr__(self):
        return f"{type(self).__name__}(d={self.d}, n={self.n}, seed={self.seed}, dtype={self.dtype})"

    def params(self) -> dict:
        """Parameters beyond shape and seed that define S (used in equality and repr)."""
        return {}

    def __eq__(self, other):
        return (type(self) is type(other) and self.shape == other.shape
                and self.seed == other.seed and self.dtype == other.dtype
                and self.params() == other.params())

    def __hash__(self):
        return hash((type(self).__name__, self.shape, self.seed, str(self.dtype)))

    def dtype_for(self, data_dtype) -> np.dtype:
        """dtype of S when applied to data of ``data_dtype``: single precision follows the data."""
        single = np.dtype(data_dtype) in (np.float32, np.complex64)
        if self.is_complex:
            return np.dtype(np.complex64 if single else np.complex128)
        return np.dtype(np.float32 if single else self.dtype)

    def product_hook(self, batch: int, complex_data: bool = False):
        """For code that applies S through its blocks (chunked matrices: ``S.block`` in each
        chunk's task, the products on the CPU) instead of through ``S @ X``: call it where the
        product is asked for, with the number of vectors sketched; it returns None or a function
        to call, in any thread, once the product is computed. A sketch whose application has a
        cost of its own returns one: the optical sketch meters its frames (:func:`opu.metering`).
        """
        return None

    def block(self, start: int, stop: int, dtype=None):
        """Columns ``start:stop`` of S, generated independently of any other block."""
        if not (0 <= start <= stop <= self.n):
            raise ValueError(f"column block {start}:{stop} is outside 0:{self.n}")
        return self._block(int(start), int(stop), np.dtype(dtype or self.dtype))

    def __getitem__(self, key):
        if not (isinstance(key, tuple) and len(key) == 2 and key[0] == slice(None)
                and isinstance(key[1], slice) and key[1].step in (None, 1)):
            raise IndexError("sketches support column blocks only: S[:, i:j]")
        start, stop, _ = key[1].indices(self.n)
        return self.block(start, max(start, stop))

    def to_dense(self, dtype=None) -> np.ndarray:
        """S as a dense array (for small sizes and tests)."""
        blk = self.block(0, self.n, dtype)
        return blk.toarray() if sp.issparse(blk) else np.asarray(blk)

    def tile_width(self, itemsize: int) -> int:
        """Columns per generated tile so a dense tile stays within SKETCH_TILE_BYTES."""
        return rows_within(SKETCH_TILE_BYTES, self.d * itemsize, minimum=64, total=self.n)

    @property
    def T(self):
        return _TransposedSketch(self)

    def __matmul__(self, X):
        return self.apply(X)

    # -- application ----------------------------------------------------------------------
    def apply(self, X):
        """S @ X for X with n rows. A 1-D X gives a 1-D result."""
        if _is_dask(X):
            return sketch_dask(self, X)
        if isinstance(X, spla.LinearOperator):
            return self._apply_operator(X)
        vector = getattr(X, "ndim", 2) == 1
        X = X if sp.issparse(X) else np.asarray(X)
        if vector:
            X = X[:, None]
        if X.ndim != 2 or X.shape[0] != self.n:
            raise ValueError(f"X must have {self.n} rows to be sketched by S of shape {self.shape}, "
                             f"got shape {X.shape}")
        data_dtype = working_dtype(X.dtype, "X")
        dt = self.dtype_for(data_dtype)
        Y = self._apply_sparse(X, dt) if sp.issparse(X) else self._apply_dense(X, dt)
        return Y[:, 0] if vector else Y

    def apply_block(self, X, start):
        """``S[:, start:start + len(X)] @ X`` for a dense X: the columns of S that meet the rows
        start:start + len(X) of a larger matrix (a row panel of it). Sparse sign sketches apply
        their kernels to the block without forming it."""
        X = np.asarray(X)
        if X.ndim != 2 or not 0 <= start <= start + X.shape[0] <= self.n:
            raise ValueError(f"rows {start}:{start + len(X)} of X are outside the {self.n} "
                             f"columns of S")
        return self._apply_block_dense(X, self.dtype_for(working_dtype(X.dtype, "X")), start)

    def _apply_block_dense(self, X, dt, start):
        return np.asarray(self._block(start, start + X.shape[0], dt) @ X)

    def apply_right(self, X):
        """X @ S.T for X with n columns. Computed as (S @ X.T).T, a plain (not conjugate)
        transpose, which is exact for complex S too."""
        if isinstance(X, spla.LinearOperator):
            return self.apply(X.T).T
        if getattr(X, "ndim", 2) == 1:
            return self.apply(X)
        return self.apply(X.T).T

    def _apply_dense(self, X, dt):
        out_dtype = np.result_type(X.dtype if X.dtype.kind in "fc" else np.float64, dt)
        w = self.tile_width(np.dtype(dt).itemsize)
        if w >= self.n and X.dtype == out_dtype:
            # one tile: no accumulator (fresh memory is slow to fault in), and S A^T (the right
            # sketch of a C-ordered A) in the shape dense_matmat picks: (A S^T)^T in float32,
            # S A^T as it stands in float64 (20000 x 5000, 120 rows: 68 and 148 ms)
            blk = self._block(0, self.n, dt)
            return dense_matmat(X.T, blk.T).T if X.T.flags.c_contiguous else blk @ X
        Y = np.zeros((self.d, X.shape[1]), dtype=out_dtype)
        for i in range(0, self.n, w):
            j = min(self.n, i + w)
            blk = self._block(i, j, dt)
            Y += blk @ X[i:j]
        return Y

    def _apply_sparse(self, X, dt):
        """S @ X for a scipy.sparse X (any format; subclasses may use CSC natively)."""
        X = X.tocsr()
        out_dtype = np.result_type(X.dtype if X.dtype.kind in "fc" else np.float64, dt)
        Y = np.zeros((self.d, X.shape[1]), dtype=out_dtype)
        w = self.tile_width(np.dtype(dt).itemsize)
        for i in range(0, self.n, w):
            j = min(self.n, i + w)
            Xi = X[i:j]
            if Xi.nnz == 0:
                continue
            blk = self._block(i, j, dt)
            # (Xi^T blk^T)^T keeps the sparse matrix on the left, where scipy is fast.
            Y += np.asarray((Xi.T @ blk.T).T)
        return Y

    def _apply_operator(self, X):
        """S @ X for a LinearOperator X (n x p): (X^H S^H)^H, one rmatmat with the dense S^H."""
        if X.shape[0] != self.n:
            raise ValueError(f"X must have {self.n} rows to be sketched by S of shape {self.shape}, "
                             f"got shape {X.shape}")
        dt = self.dtype_for(working_dtype(X.dtype, "X"))
        S = self.to_dense(dt)
        return np.asarray(X.rmatmat(S.conj().T)).conj().T


class _TransposedSketch:
    """S.T: only there so that ``X @ S.T`` reads as in the maths."""

    __array_ufunc__ = None  # make numpy defer ndarray @ S.T to __rmatmul__

    def __init__(self, S):
        self.S = S
        self.shape = (S.n, S.d)

    def __rmatmul__(self, X):
        return self.S.apply_right(X)

    @property
    def T(self):
        return self.S


def _is_dask(X) -> bool:
    return type(X).__module__.startswith("dask.")


# -- registry ------------------------------------------------------------------------------
_REGISTRY: dict[str, object] = {}


def register(name: str, factory) -> None:
    """Register a Sketcher class (or "module:attr" string, imported on first use) under name."""
    _REGISTRY[name] = factory


def available() -> list[str]:
    """Names that :func:`make` and every ``sketch=`` argument accept."""
    return sorted(_REGISTRY)


def _factory(name: str):
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown sketch {name!r}; choose one of {available()}") from None
    if isinstance(factory, str):
        import importlib
        module, attr = factory.split(":")
        factory = _REGISTRY[name] = getattr(importlib.import_module(module), attr)
    return factory


def prefers_long_side(sketch) -> bool:
    """Whether the sketch (a name, a Sketcher or a factory) wants the data's larger dimension
    as its input: see :attr:`Sketcher.long_side`."""
    if isinstance(sketch, str):
        sketch = _factory(sketch)
    return bool(getattr(sketch, "long_side", False))


def make(name: str, d: int, n: int, *, rng=None, **params) -> Sketcher:
    """Build the sketch called ``name`` of shape (d, n).

    Examples
    --------
    >>> import numpy as np, randla
    >>> S = randla.sketch.make("gaussian", 20, 1000, rng=0)
    >>> S.shape
    (20, 1000)
    >>> bool(np.array_equal(S[:, 100:300], S.to_dense()[:, 100:300]))
    True
    """
    if not isinstance(name, str):
        raise TypeError(f"sketch name must be a str, got {type(name).__name__}")
    return _factory(name)(d, n, rng=rng, **params)


def resolve(sketch, d: int, n: int, *, rng=None, dtype=np.float64) -> Sketcher:
    """What algorithms call with their ``sketch=`` argument: a name, a Sketcher of the right
    shape, or a callable ``f(d, n, rng=..., dtype=...)`` returning one."""
    if isinstance(sketch, Sketcher):
        if sketch.shape != (d, n):
            raise ValueError(f"sketch has shape {sketch.shape}, this call needs {(d, n)}")
        return sketch
    if isinstance(sketch, str):
        return make(sketch, d, n, rng=rng, dtype=dtype)
    if callable(sketch):
        S = sketch(d, n, rng=rng, dtype=dtype)
        if not isinstance(S, Sketcher) or S.shape != (d, n):
            raise ValueError(f"sketch factory must return a Sketcher of shape {(d, n)}")
        return S
    raise TypeError(f"sketch must be a name in {available()}, a Sketcher or a factory, "
                    f"got {type(sketch).__name__}")
