"""Ratings larger than memory: an on-disk CSR store written from a ratings text file in bounded
memory, and an operator that streams the store's row blocks (one read of the file per product).

A store is a directory::

    meta.json                  format version, shape, nnz, dtype
    indptr.npy                 int64 (n_users + 1,), read into memory (8 bytes a user)
    indices.npy, data.npy      the CSR column indices and ratings, read by row blocks
    users.npy, items.npy       the original ids of rows and columns

all plain ``.npy`` files (``np.load(..., mmap_mode="r")`` opens them), so
``scipy.sparse.csr_matrix((data, indices, indptr))`` rebuilds the matrix when it fits.

Conversion (:func:`save_ratings`) never holds more than one chunk of parsed lines plus one
bucket of rows: the text is parsed once (chunks spilled to binary files, distinct ids
collected), the spilled chunks are read twice (ratings per user, then routed to buckets of
consecutive users of bounded size), and each bucket is sorted, deduplicated (the last rating of
a repeated user-item pair wins, as in :func:`~randla.recommend.load_ratings`) and appended to
the CSR arrays. Everything is written in a temporary directory next to the target, renamed into
place at the end: an interrupted conversion leaves no store.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import re
import shutil
import tempfile

import numpy as np
import scipy.sparse as sp

from .._budget import PANEL_BYTES, rows_within
from .._linalg import fro_norm
from .._validation import check_positive_int
from ..io.files import read_npy_header
from ..operators import Operator
from .ratings import CHUNK_LINES, Ratings, read_chunks

#: Version of the store layout written by :func:`save_ratings`.
STORE_VERSION = 1
_META = "meta.json"
#: Bytes per rating while a bucket is sorted: row, column, rating, sort key and order.
_SORT_BYTES_PER_RATING = 4 + 4 + 8 + 8 + 8
#: Bucket files open at once during a conversion (a cap: buckets then exceed the budget).
_MAX_BUCKETS = 512


class RatingStore:
    """A users x items rating matrix kept on disk as CSR, read by row blocks.

    Open one with :func:`open_ratings`; write one with :func:`save_ratings`. In memory are
    only the row pointers (8 bytes a user) and the ids; the ratings are read block by block.

    Attributes
    ----------
    shape : (int, int)
    nnz : int
    dtype : numpy.dtype
        Of the stored ratings.
    users, items : ndarray
        Original ids of row i / column j (as :class:`~randla.recommend.Ratings`).
    indptr : ndarray of int64 (n_users + 1,)
        CSR row pointers: user u's ratings are entries ``indptr[u]:indptr[u + 1]``.
    directory : str

    Examples
    --------
    >>> import os, tempfile
    >>> from randla.recommend import Ratings, save_ratings, open_ratings
    >>> R = Ratings.from_triplets([10, 10, 20], [1, 2, 2], [4.0, 3.0, 5.0])
    >>> d = os.path.join(tempfile.mkdtemp(), "store")
    >>> store = save_ratings(R, d)
    >>> open_ratings(d)
    RatingStore(2 users x 2 items, 3 ratings)
    >>> store.row_block(1, 2).toarray()
    array([[0., 5.]])
    """

    def __init__(self, directory):
        self.directory = os.fspath(directory)
        try:   # every file through one directory handle: one version even while replaced
            dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            dir_fd = None
        self._fds = {}
        try:
            self._open(dir_fd)
        except BaseException:
            self.close()
            raise
        finally:
            if dir_fd is not None:
                os.close(dir_fd)

    def _open(self, dir_fd):
        meta_path = os.path.join(self.directory, _META)
        try:
            with open(_META, opener=_relative_to(dir_fd)) as f:
                meta = json.load(f)
            self.shape = (int(meta["shape"][0]), int(meta["shape"][1]))
            self.nnz = int(meta["nnz"])
            self.dtype = np.dtype(meta["dtype"])
            version = int(meta["version"])
        except (FileNotFoundError, IsADirectoryError):
            raise FileNotFoundError(f"{self.directory} is not a rating store (no {_META}); "
                                    f"write one with randla.recommend.save_ratings") from None
        except (ValueError, KeyError, TypeError, IndexError) as e:
            raise ValueError(f"{meta_path} is not a valid rating store description: {e}") from None
        if version != STORE_VERSION:
            raise ValueError(f"{self.directory}: store version {version}, this randla reads "
                             f"version {STORE_VERSION}")
        m, n = self.shape
        self.indptr = self._load_small(dir_fd, "indptr.npy", (m + 1,))
        self.users = self._load_small(dir_fd, "users.npy", (m,))
        self.items = self._load_small(dir_fd, "items.npy", (n,))
        if self.indptr.dtype != np.int64 or self.indptr[0] != 0 or self.indptr[-1] != self.nnz \
                or np.any(np.diff(self.indptr) < 0):
            raise ValueError(f"{self.directory}/indptr.npy is not a valid row pointer array "
                             f"for {self.nnz} ratings")
        self._index_dtype, self._index_offset = self._array_header(dir_fd, "indices.npy")
        self._data_dtype, self._data_offset = self._array_header(dir_fd, "data.npy")
        if self._data_dtype != self.dtype or self._index_dtype.kind != "i":
            raise ValueError(f"{self.directory}: data.npy or indices.npy has the wrong dtype")

    def _load_small(self, dir_fd, name, shape):
        path = os.path.join(self.directory, name)
        try:
            with open(name, "rb", opener=_relative_to(dir_fd)) as f:
                a = np.load(f, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise ValueError(f"{path} cannot be read: {e}") from None
        if a.shape != shape:
            raise ValueError(f"{path} has shape {a.shape}, the store needs {shape}")
        return a

    def _array_header(self, dir_fd, name):
        """(dtype, data offset) of a 1-D .npy of nnz entries, checked against the file size;
        the file stays open (:attr:`_fds`), so that this handle reads this version of it."""
        path = os.path.join(self.directory, name)
        try:
            fd = self._fds[name] = _relative_to(dir_fd)(name, os.O_RDONLY)
            with open(fd, "rb", closefd=False) as f:
                shape, fortran, dtype = read_npy_header(f)
                offset = f.tell()
        except (OSError, ValueError, SyntaxError, EOFError) as e:
            raise ValueError(f"{path} is not a valid .npy file: {e}") from None
        if tuple(shape) != (self.nnz,) or dtype.hasobject:
            raise ValueError(f"{path} has shape {tuple(shape)}, the store needs ({self.nnz},)")
        if os.fstat(fd).st_size < offset + self.nnz * dtype.itemsize:
            raise ValueError(f"{path} is truncated")
        return np.dtype(dtype), offset

    def close(self):
        """Close the store's files (reads then fail). A handle keeps the files it opened:
        it reads the version it opened even after ``save_ratings(..., overwrite=True)``
        replaced the store (whose old files the system frees when the last handle closes)."""
        fds, self._fds = getattr(self, "_fds", {}), {}
        for fd in fds.values():
            os.close(fd)

    def __del__(self):
        self.close()

    # -- reading --------------------------------------------------------------------------
    def __repr__(self):
        m, n = self.shape
        return f"RatingStore({m} users x {n} items, {self.nnz} ratings)"

    def __getstate__(self):
        """A pickle holds the path and the identity of the files: unpickled, the handle
        reopens them and refuses a store replaced in between (another version)."""
        state = {k: v for k, v in self.__dict__.items() if k != "_fds"}
        state["_files"] = {name: _identity(os.fstat(fd)) for name, fd in self._fds.items()}
        return state

    def __setstate__(self, state):
        files = state.pop("_files")
        self.__dict__.update(state)
        self._fds = {}
        for name, ident in files.items():
            fd = self._fds[name] = os.open(os.path.join(self.directory, name), os.O_RDONLY)
            if _identity(os.fstat(fd)) != ident:
                self.close()
                raise ValueError(f"{self.directory} was replaced since this handle was "
                                 f"pickled: open it again with open_ratings")

    def _read(self, name, dtype, offset, start, stop):
        out = np.empty(stop - start, dtype=dtype)
        view = memoryview(out).cast("B")
        fd = self._fds.get(name)
        if fd is None:
            raise ValueError(f"the rating store {self.directory} is closed")
        done, pos = 0, offset + start * dtype.itemsize
        while done < len(view):   # pread may return less than asked (large reads)
            got = os.preadv(fd, [view[done:]], pos + done)
            if got == 0:
                raise ValueError(f"{self.directory}/{name} is truncated")
            done += got
        return out

    def row_block(self, start, stop):
        """Rows ``start:stop`` as a CSR matrix (stop - start, n_items), read from disk.

        The block's column indices are checked to lie in [0, n_items) and its ratings to be
        finite (a corrupt store is a ValueError, not a crash in a sparse product)."""
        m, n = self.shape
        if not (0 <= start <= stop <= m):
            raise ValueError(f"rows {start}:{stop} out of range for {m} users")
        p0, p1 = int(self.indptr[start]), int(self.indptr[stop])
        indices = self._read("indices.npy", self._index_dtype, self._index_offset, p0, p1)
        data = self._read("data.npy", self._data_dtype, self._data_offset, p0, p1)
        if indices.size and (indices.min() < 0 or indices.max() >= n):
            raise ValueError(f"{self.directory}/indices.npy is corrupt: a column index of rows "
                             f"{start}:{stop} is outside [0, {n})")
        if not np.isfinite(data).all():
            raise ValueError(f"{self.directory}/data.npy is corrupt: rows {start}:{stop} hold "
                             f"NaN or Inf")
        indptr = (self.indptr[start:stop + 1] - p0).astype(_indptr_dtype(p1 - p0, indices.dtype))
        return sp.csr_matrix((data, indices, indptr), shape=(stop - start, n))

    def rows(self, user_indices):
        """The rows of ``user_indices`` (in that order) as a CSR matrix: one read per run of
        consecutive users."""
        users = np.asarray(user_indices, dtype=np.int64).ravel()
        if users.size and (users.min() < 0 or users.max() >= self.shape[0]):
            raise ValueError(f"user_indices must be in [0, {self.shape[0]})")
        uniq = np.unique(users)
        if uniq.size == 0:
            return sp.csr_matrix((0, self.shape[1]), dtype=self.dtype)
        cut = np.flatnonzero(np.diff(uniq) != 1) + 1
        runs = [self.row_block(int(r[0]), int(r[-1]) + 1) for r in np.split(uniq, cut)]
        block = runs[0] if len(runs) == 1 else sp.vstack(runs, format="csr")
        if uniq.size == users.size and np.array_equal(uniq, users):
            return block
        return block[np.searchsorted(uniq, users)]

    def row_cuts(self, block_bytes=PANEL_BYTES):
        """Row boundaries ``[0, ..., n_users]`` of blocks whose ratings take at most
        ``block_bytes`` (at least one user a block)."""
        per = self._index_dtype.itemsize + self._data_dtype.itemsize
        return row_cuts(self.indptr, max(1, int(block_bytes) // per))

    def blocks(self, block_bytes=PANEL_BYTES):
        """Yield ``(start, stop, csr)`` for consecutive row blocks of at most ``block_bytes``
        of ratings each."""
        cuts = self.row_cuts(block_bytes)
        for s, e in zip(cuts[:-1], cuts[1:]):
            yield int(s), int(e), self.row_block(int(s), int(e))

    def to_ratings(self) -> Ratings:
        """The whole store in memory, as :class:`~randla.recommend.Ratings`."""
        return Ratings(self.row_block(0, self.shape[0]), self.users, self.items)

    def operator(self, block_bytes=PANEL_BYTES) -> RatingStoreOperator:
        """The matrix as an :class:`~randla.operators.Operator` streaming row blocks (for
        :func:`randla.rsvd` and friends)."""
        return RatingStoreOperator(self, block_bytes=block_bytes)


def _relative_to(dir_fd):
    """An ``opener`` for files of the directory open as ``dir_fd`` (None: no such directory)."""
    def opener(name, flags):
        if dir_fd is None:
            raise FileNotFoundError(name)
        return os.open(name, flags, dir_fd=dir_fd)
    return opener


def _identity(st):
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def _indptr_dtype(nnz, index_dtype):
    """Row pointers of a block of nnz ratings: int32 when its column indices are int32 and nnz
    fits in int32 (scipy then keeps both arrays as they are), else int64."""
    if np.dtype(index_dtype) == np.int32 and nnz <= np.iinfo(np.int32).max:
        return np.dtype(np.int32)
    return np.dtype(np.int64)


def row_cuts(indptr, max_nnz, max_rows=None):
    """Greedy row boundaries of CSR blocks of at most ``max_nnz`` entries (and ``max_rows``
    rows); a row with more entries than that is a block of its own."""
    m = len(indptr) - 1
    max_rows = m if max_rows is None else max(1, int(max_rows))
    cuts = [0]
    while cuts[-1] < m:
        s = cuts[-1]
        e = int(np.searchsorted(indptr, indptr[s] + max_nnz, side="right")) - 1
        cuts.append(min(m, s + max_rows, max(e, s + 1)))
    return np.asarray(cuts, dtype=np.int64)


class RatingStoreOperator(Operator):
    """A :class:`RatingStore` seen through products, each one read of the store by row blocks
    of ``block_bytes`` of ratings; ``passes`` counts the reads.

    Products run in float64 whatever the stored dtype (a float32 store halves the disk and
    the blocks): then ``A^T (A X)`` is accurate and is one read, :attr:`fused_gram`, which
    :func:`randla.rsvd`'s power iterations use (one read per iteration instead of two).
    A block's ``A_b X`` (rows x columns of X) is the only other memory.

    Examples
    --------
    >>> import os, tempfile, numpy as np, randla
    >>> from randla.recommend import save_ratings, synthetic_ratings
    >>> R = synthetic_ratings(300, 200, 6000, rng=0)
    >>> op = save_ratings(R, os.path.join(tempfile.mkdtemp(), "s")).operator(block_bytes=4096)
    >>> X = np.ones((200, 2))
    >>> bool(np.allclose(op.gram_matmat(X), R.matrix.T @ (R.matrix @ X))), op.passes
    (True, 1)
    >>> s = randla.rsvd(op, 5, power_iters=3, rng=0).S       # 3 + 1 reads, not 2 x 3 + 2
    >>> bool(np.allclose(s, randla.rsvd(R.matrix, 5, power_iters=3, rng=0).S)), op.passes
    (True, 5)
    """

    kind = "rating_store"
    reads_per_product = 1
    lazy_products = False

    def __init__(self, store: RatingStore, *, block_bytes=PANEL_BYTES):
        super().__init__(store, np.float64)
        self.block_bytes = check_positive_int(block_bytes, "block_bytes")
        self.cuts = store.row_cuts(self.block_bytes)
        self.passes = 0

    @property
    def fused_gram(self) -> bool:
        return True

    def _blocks(self):
        """One pass: (rows slice, float64 CSR block)."""
        self.passes += 1
        for s, e in zip(self.cuts[:-1], self.cuts[1:]):
            B = self.A.row_block(int(s), int(e))
            yield slice(int(s), int(e)), (B if B.dtype == np.float64 else B.astype(np.float64))

    def _row_steps(self, cols):
        # rows of A_b X held at once: a block's rows, split so A_b X stays within the budget
        return rows_within(self.block_bytes, 16 * max(1, cols))

    def matmat(self, X):
        X = np.asarray(X)
        out = np.empty((self.shape[0], X.shape[1]), dtype=np.result_type(X.dtype, np.float64))
        for rows, B in self._blocks():
            out[rows] = B @ X
        return out

    def rmatmat(self, Y):
        Y = np.asarray(Y)
        acc = np.zeros((self.shape[1], Y.shape[1]), dtype=np.result_type(Y.dtype, np.float64))
        for rows, B in self._blocks():
            acc += B.T @ Y[rows]
        return acc

    def gram_matmat(self, X):
        """A^T (A X) in ONE read: the sum over row blocks A_b of A_b^T (A_b X)."""
        return self._gram(X, keep=False)[0]

    def gram_and_product(self, X):
        """``(A^T (A X), A X)`` in ONE read."""
        return self._gram(X, keep=True)

    def _gram(self, X, keep):
        X = np.asarray(X)
        dtype = np.result_type(X.dtype, np.float64)
        acc = np.zeros((self.shape[1], X.shape[1]), dtype=dtype)
        Y = np.empty((self.shape[0], X.shape[1]), dtype=dtype) if keep else None
        step = self._row_steps(X.shape[1])
        for rows, B in self._blocks():
            for i in range(0, B.shape[0], step):
                Bi = B[i:i + step] if B.shape[0] > step else B
                Yi = Bi @ X
                acc += Bi.T @ Yi
                if keep:
                    Y[rows.start + i:rows.start + i + Bi.shape[0]] = Yi
        return acc, Y

    def column_means(self):
        acc = np.zeros(self.shape[1])
        for _, B in self._blocks():
            acc += np.bincount(B.indices, weights=B.data, minlength=self.shape[1])
        return acc / self.shape[0]

    def fro_norm(self):
        return math.hypot(*(fro_norm(B.data) for _, B in self._blocks()))


# -- writing ------------------------------------------------------------------------------
def save_ratings(source, directory, *, sep=None, header=None, dtype=np.float64,
                 chunk_lines=CHUNK_LINES, block_bytes=PANEL_BYTES, overwrite=False) -> RatingStore:
    """Write ratings to an on-disk CSR store (a directory), in bounded memory.

    Parameters
    ----------
    source : str, os.PathLike or Ratings
        A ratings text file in any format :func:`~randla.recommend.load_ratings` reads
        (parsed in chunks, never whole), or ratings already in memory.
    directory : str or os.PathLike
        The store to create. It is written in a temporary directory beside it and renamed
        into place when complete; temporary directories left by a writer that was killed
        are removed by the next save beside them. A symbolic link to a store stays a link:
        the store it points to is replaced.
    sep, header, dtype, chunk_lines :
        As in :func:`~randla.recommend.load_ratings` (text files only, except ``dtype``).
        ``float32`` halves the store and the reads; products still run in float64.
    block_bytes : int
        Memory of one bucket of users while the ratings are sorted into rows (besides one
        chunk of parsed lines): the conversion's bound.
    overwrite : bool
        Replace an existing store at ``directory`` (only a rating store is ever replaced,
        and never one that holds ``source``). Handles open on the old store keep reading
        the old version (see :meth:`RatingStore.close`).

    Returns
    -------
    RatingStore
        The store, open. The matrix equals ``load_ratings(source, ...).matrix`` exactly, and
        its ``users``/``items`` are the same ids.

    Raises
    ------
    ValueError
        A malformed line (the file and line number are named), as load_ratings; a
        ``source`` file inside the store that ``overwrite`` would replace.
    FileExistsError
        ``directory`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> import os, tempfile
    >>> from randla.recommend import save_ratings
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "u.data")
    >>> with open(p, "w") as f:
    ...     _ = f.write("1\\t10\\t4\\t0\\n2\\t10\\t5\\t0\\n1\\t20\\t3\\t0\\n")
    >>> store = save_ratings(p, os.path.join(d, "store"))
    >>> store.shape, store.nnz, store.users, store.items
    ((2, 2), 3, array([1, 2]), array([10, 20]))
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a float dtype, got {dtype}")
    if not isinstance(overwrite, (bool, np.bool_)):
        raise TypeError(f"overwrite must be True or False, got {overwrite!r}")
    chunk_lines = check_positive_int(chunk_lines, "chunk_lines")
    block_bytes = check_positive_int(block_bytes, "block_bytes")
    if not isinstance(source, (Ratings, str, os.PathLike)):
        raise TypeError(f"source must be a path to a ratings file or a Ratings, got "
                        f"{type(source).__name__}")
    path = os.path.abspath(os.fspath(directory))
    _check_target(path, overwrite)
    target = os.path.realpath(path)        # through a symbolic link: the link stays
    if not isinstance(source, Ratings) and os.path.lexists(target) \
            and _inside(os.path.realpath(source), target):
        raise ValueError(f"source {os.fspath(source)} is inside the store {path} that "
                         f"overwrite=True would replace (and delete): move it out first")
    with _writer_lock(target):
        try:
            _write_store(source, target, overwrite, dtype, block_bytes,
                         dict(sep=sep, header=header, dtype=dtype, chunk_lines=chunk_lines))
        except OSError as e:
            raise _named_for(e, target) from None
    return RatingStore(path)


def _write_store(source, target, overwrite, dtype, block_bytes, read_args):
    tmp = tempfile.mkdtemp(prefix=_temp_prefix(target), suffix=".partial",
                           dir=os.path.dirname(target))
    try:
        if isinstance(source, Ratings):
            _write_ratings(source, tmp, dtype)
        else:
            _convert_text(source, tmp, dtype, block_bytes, read_args)
        _move_into_place(tmp, target, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _inside(path, folder):
    return os.path.commonpath([path, folder]) == folder


def _temp_prefix(target):
    return f".{os.path.basename(target)}."


def _named_for(e, target):
    """The OSError ``e`` naming the store being written rather than a temporary path beside
    it (the user never saw that name)."""
    temp = os.path.join(os.path.dirname(target), _temp_prefix(target))
    if isinstance(e.filename, str) and e.filename.startswith(temp) and e.errno is not None:
        return type(e)(e.errno, f"{e.strerror} (writing the rating store)", target)
    return e


@contextlib.contextmanager
def _writer_lock(target):
    """A shared lock on the folder of ``target`` while a store is written there. Whoever gets
    it exclusively first finds no writer at work in that folder: the temporary directories
    of ``target`` there were left by a killed writer, and are removed."""
    parent = os.path.dirname(target)
    try:
        fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "the folder to hold the rating store does not "
                                "exist", parent) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _remove_stale(target)
        except OSError:   # a writer at work (or no locks on this file system): leave all
            pass
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def _remove_stale(target):
    """Remove the ``.partial`` directories of ``target`` and, when the target exists, its
    ``.old`` ones (else an ``.old`` one may hold the only copy of the previous store)."""
    pattern = re.compile(re.escape(_temp_prefix(target)) + r"[a-z0-9_]{8}\.(partial|old)")
    parent = os.path.dirname(target)
    for name in os.listdir(parent):
        match = pattern.fullmatch(name)
        if match and (match[1] == "partial" or os.path.isdir(target)):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def open_ratings(directory) -> RatingStore:
    """Open a rating store written by :func:`save_ratings` (nothing is re-parsed; only the row
    pointers and ids are read)."""
    return RatingStore(directory)


def _check_target(target, overwrite):
    if not os.path.lexists(target):
        return
    if not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace a store")
    if not os.path.isfile(os.path.join(target, _META)):
        raise ValueError(f"{target} exists and is not a rating store: not replaced")


def _move_into_place(tmp, target, overwrite):
    _check_target(target, overwrite)
    umask = os.umask(0)    # mkdtemp made tmp private: give the store the usual permissions
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    if not os.path.lexists(target):
        os.rename(tmp, target)
        return
    old = tempfile.mkdtemp(prefix=_temp_prefix(target), suffix=".old",
                           dir=os.path.dirname(target))
    os.rename(target, os.path.join(old, "store"))
    os.rename(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def _write_meta(tmp, shape, nnz, dtype, users, items, indptr):
    np.save(os.path.join(tmp, "users.npy"), users, allow_pickle=False)
    np.save(os.path.join(tmp, "items.npy"), items, allow_pickle=False)
    np.save(os.path.join(tmp, "indptr.npy"), np.asarray(indptr, dtype=np.int64))
    meta = {"version": STORE_VERSION, "shape": [int(shape[0]), int(shape[1])],
            "nnz": int(nnz), "dtype": np.dtype(dtype).str}
    with open(os.path.join(tmp, _META), "w") as f:
        json.dump(meta, f)


def _index_dtype(n_items):
    return np.dtype(np.int32 if n_items < 2**31 else np.int64)


def _write_ratings(R, tmp, dtype):
    M = R.matrix
    with _NpyAppender(os.path.join(tmp, "indices.npy"), _index_dtype(M.shape[1])) as ind, \
            _NpyAppender(os.path.join(tmp, "data.npy"), dtype) as dat:
        ind.append(M.indices)
        dat.append(M.data)
    _write_meta(tmp, M.shape, M.nnz, dtype, R.users, R.items, M.indptr)


class _NpyAppender:
    """A 1-D .npy file written front to back: the header is rewritten with the final length
    at the end (numpy pads headers so that the length can change in place)."""

    def __init__(self, path, dtype):
        self.path, self.dtype, self.n = path, np.dtype(dtype), 0
        self.f = open(path, "wb")
        self._header()
        self.offset = self.f.tell()

    def _header(self):
        self.f.seek(0)
        np.lib.format.write_array_header_1_0(
            self.f, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                     "shape": (self.n,)})

    def append(self, a):
        a = np.ascontiguousarray(a, dtype=self.dtype)
        self.f.write(memoryview(a).cast("B"))
        self.n += a.size

    def __enter__(self):
        return self

    def __exit__(self, kind, *_):
        try:
            if kind is None:
                self._header()
                if self.f.tell() != self.offset:   # cannot happen with numpy's padding
                    raise RuntimeError(f"{self.path}: the .npy header changed length")
        finally:
            self.f.close()


def _merge_ids(known, chunk_ids):
    """Sorted distinct ids of both; strings for all as soon as one chunk has string ids (as
    load_ratings does)."""
    new = np.unique(chunk_ids)
    if known is None:
        return new
    if known.dtype.kind != new.dtype.kind:
        known, new = known.astype(str), new.astype(str)
    return np.union1d(known, new)


def _positions(ids, chunk_ids):
    """Indices of chunk_ids in the sorted ``ids`` (all present by construction)."""
    if ids.dtype.kind != chunk_ids.dtype.kind:
        chunk_ids = chunk_ids.astype(str)
    return np.searchsorted(ids, chunk_ids)


def _convert_text(path, tmp, dtype, block_bytes, read_args):
    spill = os.path.join(tmp, "spill")
    os.mkdir(spill)
    # pass 1 (the only parse of the text): spill chunks as binary, collect the distinct ids
    users = items = None
    n_chunks = 0
    for u, i, r in read_chunks(path, **read_args):
        for name, a in (("u", u), ("i", i), ("r", r)):
            np.save(os.path.join(spill, f"{n_chunks}{name}.npy"), a, allow_pickle=False)
        users, items = _merge_ids(users, u), _merge_ids(items, i)
        n_chunks += 1
    if users is None:   # a header and no ratings
        users = items = np.zeros(0, np.int64)

    def chunks():
        for k in range(n_chunks):
            u, i, r = (np.load(os.path.join(spill, f"{k}{name}.npy")) for name in "uir")
            yield k, _positions(users, u), _positions(items, i), r

    # pass 2: ratings per user (duplicates included), then buckets of consecutive users
    m, n = len(users), len(items)
    if max(m, n) >= 2**31:   # buckets hold rows and columns as int32
        raise ValueError(f"{os.fspath(path)}: {m} users x {n} items is beyond 2^31 - 1")
    counts = np.zeros(m, dtype=np.int64)
    for _, rows, _, _ in chunks():
        counts += np.bincount(rows, minlength=m)
    per_bucket = max(1, int(block_bytes) // _SORT_BYTES_PER_RATING,
                     -(-int(counts.sum()) // _MAX_BUCKETS))
    cuts = row_cuts(np.concatenate([[0], np.cumsum(counts)]), per_bucket)
    buckets = os.path.join(tmp, "buckets")
    os.mkdir(buckets)
    _route(chunks(), cuts, buckets, spill)
    # pass 3: each bucket sorted into rows, deduplicated, appended to the CSR arrays
    indptr = np.zeros(m + 1, dtype=np.int64)
    with _NpyAppender(os.path.join(tmp, "indices.npy"), _index_dtype(n)) as ind, \
            _NpyAppender(os.path.join(tmp, "data.npy"), dtype) as dat:
        for b in range(len(cuts) - 1):
            s, e = int(cuts[b]), int(cuts[b + 1])
            rows, cols, vals = _sorted_bucket(buckets, b, s, n, dtype)
            ind.append(cols)
            dat.append(vals)
            indptr[s + 1:e + 1] = np.bincount(rows, minlength=e - s)
    np.cumsum(indptr, out=indptr)
    shutil.rmtree(spill)
    shutil.rmtree(buckets)
    _write_meta(tmp, (m, n), indptr[-1], dtype, users, items, indptr)


def _route(chunks, cuts, buckets, spill):
    """Append each chunk's (row, column, rating) to the file of its bucket of users, in file
    order (so the last rating of a repeated pair stays last)."""
    for k, rows, cols, vals in chunks:
        which = np.searchsorted(cuts, rows, side="right") - 1
        order = np.argsort(which, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(which, minlength=len(cuts) - 1))])
        parts = (("r", rows.astype(np.int32)), ("c", cols.astype(np.int32)), ("v", vals))
        for b in np.flatnonzero(np.diff(bounds)):
            sel = order[bounds[b]:bounds[b + 1]]
            for name, a in parts:
                with open(os.path.join(buckets, f"{b}{name}"), "ab") as f:
                    f.write(memoryview(np.ascontiguousarray(a[sel])).cast("B"))
        for name in "uir":   # the disk holds one copy at a time
            os.remove(os.path.join(spill, f"{k}{name}.npy"))


def _sorted_bucket(buckets, b, first_row, n_items, dtype):
    """(local rows, columns, ratings) of bucket b in CSR order, the last of repeated pairs."""
    def read(name, dt):
        path = os.path.join(buckets, f"{b}{name}")
        if not os.path.exists(path):
            return np.zeros(0, dt)
        a = np.fromfile(path, dtype=dt)
        os.remove(path)
        return a
    rows = read("r", np.int32).astype(np.int64) - first_row
    cols = read("c", np.int32)
    vals = read("v", dtype)
    key = rows * n_items + cols
    order = np.argsort(key, kind="stable")
    key = key[order]
    last = np.ones(len(key), dtype=bool)
    last[:-1] = key[1:] != key[:-1]
    keep = order[last]
    return rows[keep], cols[keep], vals[keep]
