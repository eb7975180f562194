"""Sketches applied to chunked matrices: ``S @ X`` for a dask X, and the per-chunk kernels that
chunked operators share. Each chunk meets only the column block of S matching its rows, which is
generated inside the chunk's task (``S.block``): S is never formed."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._dask import dense, offsets, sum_in_order
from .._validation import working_dtype


def times_st(a, s_blk):
    """a @ s_blk.T for a dense chunk and a dense or sparse block of S (sparse on the left,
    where scipy is fast; dense as written, which BLAS runs fastest on a row panel)."""
    return np.asarray((s_blk @ a.T).T) if sp.issparse(s_blk) else a @ s_blk.T


def s_times(s_blk, a):
    """s_blk @ a for a short-wide block of S: OpenBLAS runs (a^T s_blk^T)^T ~6x faster than
    the product as written when s_blk has few rows (measured on a 21 x 1600 @ 1600 x 1000)."""
    return np.asarray(s_blk @ a) if sp.issparse(s_blk) else (a.T @ s_blk.T).T


def sketch_left_chunk(s_blk, a):
    """A chunk's share of S @ A."""
    return s_times(s_blk, dense(a))


def sketch_right_chunk(a, s_blk):
    """A chunk's share of A @ S.T."""
    return times_st(dense(a), s_blk)


def _after(result, hook):
    """``result``, once ``hook()`` has run (a sketch's :meth:`~Sketcher.product_hook`)."""
    hook()
    return result


def sketch_dask(S, X):
    """``S @ X`` for a dask array X with S.shape[1] rows: a lazy dask array of S.shape[0] rows.

    Each chunk X_ij is multiplied by the column block of S matching its rows; the products are
    summed over i. A sketch with a :meth:`~randla.sketch.Sketcher.product_hook` hears of each
    column block of X when it is computed.
    """
    import dask.array as da
    from dask import delayed

    vector = X.ndim == 1
    if vector:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] != S.n:
        raise ValueError(f"X must have {S.n} rows to be sketched by S of shape {S.shape}, "
                         f"got shape {X.shape}")
    dt = S.dtype_for(working_dtype(X.dtype, "X"))
    out_dtype = np.result_type(X.dtype if X.dtype.kind in "fc" else np.float64, dt)
    rows = offsets(X.chunks[0])
    s_blocks = [delayed(S.block, pure=True)(rows[i], rows[i + 1], dt)
                for i in range(len(X.chunks[0]))]
    blocks = X.to_delayed()
    cols = []
    for j, width in enumerate(X.chunks[1]):
        total = sum_in_order(delayed(sketch_left_chunk, pure=True)(s_blocks[i], blocks[i, j])
                             for i in range(len(X.chunks[0])))
        hook = S.product_hook(width, X.dtype.kind == "c")
        if hook is not None:  # runs when the column block is computed, in the task's thread
            total = delayed(_after, pure=False)(total, hook)
        cols.append(da.from_delayed(total, shape=(S.d, width), dtype=out_dtype))
    Y = da.concatenate(cols, axis=1)
    return Y[:, 0] if vector else Y
