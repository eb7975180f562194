"""The door: any input becomes an :class:`~randla.operators.Operator`, validated once.

Accepted: numpy arrays (memmaps included), scipy.sparse matrices, scipy LinearOperators, dask
arrays, and h5py/zarr datasets. A masked array is accepted when nothing in it is masked (its
data is used), and refused with a TypeError otherwise.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .._validation import check_finite, working_dtype
from .base import DenseOperator, Operator, SparseOperator
from .chunked import DaskOperator, file_operator


def as_operator(A, name: str = "A", *, check_finite_values: bool = True) -> Operator:
    """Wrap ``A`` as an :class:`Operator`, validating it.

    Integer and bool arrays are promoted to float64 (documented); float32 and complex64 are kept.
    Raises TypeError for non-numeric input and ValueError for NaN/Inf or a non-2-D shape.
    """
    if isinstance(A, Operator):
        return A
    if type(A).__module__.startswith("dask."):
        return DaskOperator(A, name=name)
    if isinstance(A, np.memmap) or type(A).__module__.split(".")[0] in ("h5py", "zarr"):
        return file_operator(A, name=name)  # a file: row panels, one read per product
    if isinstance(A, spla.LinearOperator):
        if len(A.shape) != 2:
            raise ValueError(f"{name} must be 2-D, got shape {A.shape}")
        return Operator(A, working_dtype(A.dtype, name))
    if sp.issparse(A):
        dtype = working_dtype(A.dtype, name)
        A = A.astype(dtype, copy=False) if A.dtype != dtype else A
        A = A.tocsr() if A.format not in ("csr", "csc") else A
        if not A.has_canonical_format:  # duplicate entries: their sum is the entry
            A = A.copy()
            A.sum_duplicates()
        op = SparseOperator(A, dtype)
        if check_finite_values:
            check_values(op, name)
        return op
    if isinstance(A, np.ma.MaskedArray):
        A = _unmasked(A, name)
    if isinstance(A, np.matrix):  # matrix semantics (2-D rows, * as product) would leak out
        A = np.asarray(A)
    if not isinstance(A, np.ndarray):
        if not hasattr(A, "__array__") and not isinstance(A, (list, tuple)):
            raise TypeError(f"{name} must be an array, a sparse matrix, a LinearOperator or a "
                            f"dask array, got {type(A).__name__}")
        A = np.asarray(A)
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {A.shape}")
    dtype = working_dtype(A.dtype, name)
    if A.dtype != dtype:
        A = A.astype(dtype)
    op = DenseOperator(A, dtype)
    if check_finite_values:
        check_values(op, name)
    return op


def _unmasked(A, name):
    """The data of a masked array in which nothing is masked. A masked entry has no value a
    product could use (numpy's products ignore the mask): what fills it is the caller's call."""
    masked = int(np.ma.count_masked(A))
    if masked:
        raise TypeError(f"{name} is a masked array with {masked} masked entries: masked arrays "
                        f"are not supported; fill them first, e.g. {name}.filled(0) or "
                        f"{name}.filled({name}.mean()) (with nothing masked, the data is used)")
    return np.ma.getdata(A)


def check_values(op, name: str = "A") -> None:
    """The check of :func:`as_operator`, for an array operator made without it: ValueError
    when A holds NaN or Inf. (Other operators show NaN/Inf in their products.)"""
    if type(op) is SparseOperator:
        check_finite(op.A, name)
    elif type(op) is DenseOperator:
        # a finite sum proves every entry finite in one read without a boolean temporary of
        # A's size; a non-finite sum (NaN/Inf, or overflow) gets the exact check
        with np.errstate(over="ignore", invalid="ignore"):
            total = np.sum(op.A)
        if not np.isfinite(total):
            check_finite(op.A, name)
