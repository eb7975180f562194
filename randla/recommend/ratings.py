"""Rating triplets: a streaming loader for MovieLens-style text files and the :class:`Ratings`
container (a users x items CSR matrix plus the original ids of its rows and columns)."""
from __future__ import annotations

import itertools
import math
import os
import re

import numpy as np
import scipy.sparse as sp

from .._validation import check_choice, check_random_state, check_real, working_dtype

#: Lines parsed per chunk: bounds the loader's temporary memory (a few hundred bytes a line).
CHUNK_LINES = 1 << 20
#: Separators tried, in order, on the first data line when ``sep=None``.
_SNIFF_ORDER = ("::", "\t", ",", ";", "|")


class Ratings:
    """Ratings of users for items: a users x items CSR matrix and the ids of its rows/columns.

    Parameters
    ----------
    matrix : scipy.sparse matrix, shape (n_users, n_items)
        Stored entries are the ratings; an absent entry is "not rated" (a rating of 0 must be
        stored explicitly).
    users, items : array_like, optional
        Original ids of row i / column j (default ``arange``); sorted ids make
        :meth:`to_indices` a binary search.

    Examples
    --------
    >>> from randla.recommend import Ratings
    >>> R = Ratings.from_triplets([10, 10, 20], ["a", "b", "b"], [4.0, 3.0, 5.0])
    >>> R.shape, R.nnz
    ((2, 2), 3)
    >>> R.to_indices([20], ["b"])
    (array([1]), array([1]))
    """

    def __init__(self, matrix, users=None, items=None):
        if not sp.issparse(matrix):
            raise TypeError(f"matrix must be a scipy.sparse matrix, got {type(matrix).__name__}")
        matrix = sp.csr_matrix(matrix)
        matrix.sort_indices()
        dtype = working_dtype(matrix.dtype, "matrix")
        self.matrix = matrix.astype(dtype, copy=False)
        m, n = matrix.shape
        self.users = np.arange(m) if users is None else np.asarray(users)
        self.items = np.arange(n) if items is None else np.asarray(items)
        if self.users.shape != (m,) or self.items.shape != (n,):
            raise ValueError(f"users and items must have {m} and {n} ids, got "
                             f"{self.users.shape} and {self.items.shape}")

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_triplets(cls, users, items, ratings, *, dtype=np.float64):
        """Ratings from parallel arrays of user ids, item ids and ratings.

        Ids may be any sortable values (ints or strings); row/column order is the sorted order
        of the distinct ids. A (user, item) pair given twice keeps its last rating.
        """
        users, items = np.asarray(users), np.asarray(items)
        ratings = np.asarray(ratings, dtype=dtype)
        if not (users.shape == items.shape == ratings.shape) or users.ndim != 1:
            raise ValueError("users, items and ratings must be 1-D arrays of one length, got "
                             f"shapes {users.shape}, {items.shape}, {ratings.shape}")
        if not np.all(np.isfinite(ratings)):
            raise ValueError("ratings contains NaN or Inf")
        uid, rows = np.unique(users, return_inverse=True)
        iid, cols = np.unique(items, return_inverse=True)
        return cls(_csr_keep_last(rows, cols, ratings, (len(uid), len(iid))), uid, iid)

    # -- views ----------------------------------------------------------------------------
    @property
    def shape(self):
        return self.matrix.shape

    @property
    def nnz(self) -> int:
        return int(self.matrix.nnz)

    def __repr__(self):
        m, n = self.shape
        return f"Ratings({m} users x {n} items, {self.nnz} ratings)"

    def triplets(self):
        """(row indices, column indices, ratings) of the stored entries, in CSR order."""
        M = self.matrix
        rows = np.repeat(np.arange(M.shape[0], dtype=M.indices.dtype), np.diff(M.indptr))
        return rows, M.indices.copy(), M.data.copy()

    def to_indices(self, users=None, items=None):
        """Row indices of the user ids ``users`` and column indices of the item ids ``items``.

        Either may be None (then None is returned in its place). An unknown id is a
        ValueError naming it.
        """
        return (None if users is None else _lookup(self.users, users, "users"),
                None if items is None else _lookup(self.items, items, "items"))

    def align_to(self, other: Ratings) -> Ratings:
        """These ratings on the users and items of ``other`` (rows and columns in other's
        order); ratings of users or items that ``other`` does not have are dropped. For a
        test file read on its own, e.g. MovieLens ``u1.test`` against ``u1.base``.

        >>> a = Ratings.from_triplets([1, 2], [10, 20], [4.0, 5.0])
        >>> b = Ratings.from_triplets([2, 3], [20, 30], [3.0, 1.0])
        >>> b.align_to(a).matrix.toarray()
        array([[0., 0.],
               [0., 3.]])
        """
        rows, cols, vals = self.triplets()
        r = _positions(other.users, self.users, "users")[rows]
        c = _positions(other.items, self.items, "items")[cols]
        keep = (r >= 0) & (c >= 0)
        M = sp.csr_matrix((vals[keep], (r[keep], c[keep])), shape=other.shape)
        return Ratings(M, other.users, other.items)

    def with_matrix(self, matrix) -> Ratings:
        """The same users and items with other ratings (``matrix`` of the same shape)."""
        if matrix.shape != self.shape:
            raise ValueError(f"matrix must have shape {self.shape}, got {matrix.shape}")
        return Ratings(matrix, self.users, self.items)

    # -- hold-out -------------------------------------------------------------------------
    def split(self, test_size=0.2, *, by="random", rng=None):
        """Split into (train, test) Ratings with the same users and items.

        Parameters
        ----------
        test_size : float in (0, 1)
            Fraction of the ratings held out.
        by : {"random", "user"}
            "random": that fraction of all ratings, drawn uniformly. "user": that fraction of
            each user's ratings (rounded, at least one), for users with at least two ratings,
            so every such user keeps training data and has test data (top-N evaluation).
        rng : None, int or numpy.random.Generator
        """
        test_size = check_real(test_size, "test_size", low=0.0, high=1.0, low_open=True)
        check_choice(by, "by", ("random", "user"))
        rng = check_random_state(rng)
        M = self.matrix
        if by == "random":
            test = np.zeros(M.nnz, dtype=bool)
            test[rng.permutation(M.nnz)[:int(round(test_size * M.nnz))]] = True
        else:
            test = _per_user_mask(M.indptr, test_size, rng)
        return self._subset(~test), self._subset(test)

    def _subset(self, keep):
        """The ratings whose positions in CSR order are True in ``keep``."""
        M = self.matrix
        kept = np.concatenate([[0], np.cumsum(keep)])   # kept entries before each position
        indptr = kept[M.indptr].astype(M.indptr.dtype)
        sub = sp.csr_matrix((M.data[keep], M.indices[keep], indptr), shape=M.shape)
        return Ratings(sub, self.users, self.items)


def _per_user_mask(indptr, test_size, rng):
    """True for round(test_size * n_u) (>= 1, <= n_u - 1) random ratings of each user u."""
    n_u = np.diff(indptr)
    rows = np.repeat(np.arange(len(n_u)), n_u)
    n_test = np.where(n_u >= 2, np.clip(np.rint(test_size * n_u), 1, n_u - 1), 0)
    # a random order within each row: sort by (row, random key)
    order = np.lexsort((rng.random(len(rows)), rows))
    rank = np.empty(len(rows), dtype=np.int64)
    rank[order] = np.arange(len(rows)) - indptr[rows[order]]
    return rank < n_test[rows]


def _csr_keep_last(rows, cols, vals, shape):
    """CSR from COO triplets; of duplicate (row, col) pairs the last one is kept."""
    M = sp.csr_matrix((vals, (rows, cols)), shape=shape)   # sums duplicates
    if M.nnz == len(vals):
        M.sort_indices()
        return M
    key = rows.astype(np.int64) * shape[1] + cols
    # the last occurrence of each key: unique over the reversed array gives first indices
    _, first_rev = np.unique(key[::-1], return_index=True)
    last = len(key) - 1 - first_rev
    M = sp.csr_matrix((vals[last], (rows[last], cols[last])), shape=shape)
    M.sort_indices()
    return M


def _lookup(ids, wanted, name):
    pos = _positions(ids, wanted, name)
    if np.any(pos < 0):
        bad = np.ravel(wanted)[np.argmax(np.ravel(pos) < 0)]
        raise ValueError(f"{name}: unknown id {bad.item()!r}")
    return pos


def _positions(ids, wanted, name):
    """Index of each of ``wanted`` in ``ids``, -1 where it is absent (binary search)."""
    wanted = np.asarray(wanted)
    if len(ids) == 0:
        return np.full(wanted.shape, -1, dtype=np.int64)
    order = None
    if ids.size > 1 and not np.all(ids[1:] >= ids[:-1]):
        order = np.argsort(ids, kind="stable")
    sorted_ids = ids if order is None else ids[order]
    try:
        pos = np.searchsorted(sorted_ids, wanted)
    except TypeError as exc:
        raise ValueError(f"{name}: ids of type {wanted.dtype} cannot match ids of type "
                         f"{ids.dtype}") from exc
    pos = np.minimum(pos, len(ids) - 1)
    found = sorted_ids[pos] == wanted
    pos = pos if order is None else order[pos]
    return np.where(found, pos, -1).astype(np.int64)


# -- loader -------------------------------------------------------------------------------
def load_ratings(path, *, sep=None, header=None, dtype=np.float64, chunk_lines=CHUNK_LINES):
    """Read a ratings file of ``user<sep>item<sep>rating[<sep>timestamp...]`` lines.

    Reads MovieLens ``u.data`` (tab), ``ratings.dat`` (``::``) and ``ratings.csv`` (comma,
    with a header), and any such text file, in chunks of ``chunk_lines`` lines (memory for
    the parse stays bounded; the result holds the ratings once, as CSR). Columns after the
    third are ignored; blank lines are skipped.

    Parameters
    ----------
    path : str or os.PathLike
    sep : str, optional
        Field separator; None sniffs it from the first line ("::", tab, ",", ";", "|", else
        whitespace).
    header : bool, optional
        Whether the first line names the columns; None: it does when its rating field (the
        third) does not read as a number. A first line whose rating reads as NaN or Inf is
        data, and an error.
    dtype : float dtype
        Of the ratings (float32 halves the memory of a large matrix).
    chunk_lines : int

    Returns
    -------
    Ratings
        The ids of a column (users, items) are int64 when every id in the whole column is
        written as Python writes an int64 (an optional "-", no "+", no leading zero, e.g.
        ``7``, ``-12``, ``0``); else every id of the column is the string of the file, without
        the blanks around it (``"007"`` and ``"7"`` are two items). A UTF-8 byte-order mark
        is skipped.

    Raises
    ------
    ValueError
        For a malformed line (too few fields, a rating that is not a finite number), naming
        the file and the line number (1-based).

    Examples
    --------
    >>> import os, tempfile
    >>> from randla.recommend import load_ratings
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "ratings.csv")
    >>> with open(p, "w") as f:
    ...     _ = f.write("userId,movieId,rating,timestamp\\n1,10,4.0,0\\n1,20,3.5,0\\n2,10,5.0,0\\n")
    >>> R = load_ratings(p)
    >>> R.matrix.toarray()
    array([[4. , 3.5],
           [5. , 0. ]])
    >>> R.users, R.items
    (array([1, 2]), array([10, 20]))
    """
    dtype = np.dtype(dtype)
    users, items, values = [], [], []
    for u, i, r in read_chunks(path, sep=sep, header=header, dtype=dtype,
                               chunk_lines=chunk_lines):
        users.append(u), items.append(i), values.append(r)
    users, items = _unify_ids(users), _unify_ids(items)
    return Ratings.from_triplets(users, items, np.concatenate(values) if values else
                                 np.zeros(0, dtype), dtype=dtype)


def read_chunks(path, *, sep=None, header=None, dtype=np.float64, chunk_lines=CHUNK_LINES):
    """Yield ``(user ids, item ids, ratings)`` of successive chunks of ``chunk_lines`` lines
    of a ratings file, with :func:`load_ratings`' checks and errors (file and line named).
    Ids of a chunk are int64 when every id of the chunk is a canonical integer (no "+", no
    leading zero), else the file's strings: turned into strings, integer ids are then the
    file's strings again, so chunks of either kind combine without loss."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a float dtype, got {dtype}")
    if sep is not None and (not isinstance(sep, str) or sep == ""):
        raise ValueError(f"sep must be a non-empty string or None, got {sep!r}")
    if header is not None and not isinstance(header, bool):
        raise TypeError(f"header must be True, False or None, got {header!r}")
    name = os.fspath(path)
    with open(name, encoding="utf-8-sig", newline="") as f:   # -sig: skip a byte-order mark
        first, first_no = _first_data_line(f)
        if first is None:
            raise ValueError(f"{name}: no ratings in the file")
        sep = _sniff(first) if sep is None else sep
        if header is None:
            fields = _fields(first, sep)
            if len(fields) < 3:
                raise ValueError(f"{name}, line {first_no}: expected user{sep}item{sep}rating, "
                                 f"got {first.rstrip()!r}")
            header = not _reads_as_number(fields[2])
        line_no = first_no + 1 if header else first_no
        lines = itertools.chain([] if header else [first], f)
        while True:
            chunk = list(itertools.islice(lines, chunk_lines))
            if not chunk:
                break
            yield _parse_chunk(chunk, sep, name, line_no, dtype)
            line_no += len(chunk)


def _first_data_line(f):
    for no, line in enumerate(f, start=1):
        if line.strip():
            return line, no
    return None, 0


def _sniff(line):
    for sep in _SNIFF_ORDER:
        if sep in line:
            return sep
    return " "


def _fields(line, sep):
    return line.split() if sep == " " else line.rstrip("\r\n").split(sep)


def _reads_as_number(field):
    """Whether a field reads as a float, NaN and Inf included (a header names its columns)."""
    try:
        float(field)
    except ValueError:
        return False
    return True


def _parse_chunk(lines, sep, name, first_no, dtype):
    """(user ids, item ids, ratings) of a chunk: numpy's C parser first, a line-by-line parse
    that names the bad line (or reads string ids) when it refuses."""
    fast = _parse_fast(lines, sep, dtype)
    if fast is not None:
        return fast
    return _parse_slow(lines, sep, name, first_no, dtype)


def _parse_fast(lines, sep, dtype):
    if sep == "::":   # "::" splits on ":" into fields 0, 2, 4 with empty fields between
        delimiter, cols = ":", (0, 2, 4)
    elif len(sep) == 1:
        delimiter, cols = (None if sep == " " else sep), (0, 1, 2)
    else:
        return None
    rec = np.dtype([("u", np.int64), ("i", np.int64), ("r", np.float64)])
    try:
        a = np.loadtxt(lines, delimiter=delimiter, usecols=cols, dtype=rec, ndmin=1,
                       comments=None)
    except (ValueError, IndexError, OverflowError):
        return None
    if a.size != sum(1 for ln in lines if ln.strip()) or not np.all(np.isfinite(a["r"])):
        return None
    if _maybe_padded_ints(lines, sep):   # "007" or "+7" parsed as 7: ids must stay strings
        return None
    return a["u"], a["i"], a["r"].astype(dtype)


def _maybe_padded_ints(lines, sep):
    """Whether some field of the lines may be an integer written with a "+", a leading zero
    or "-0" (which the C parser reads as an int). A few literal searches over the chunk's text
    (a regex on every field would cost as much as the parse); a false alarm (a rating "05")
    only sends the chunk to the line-by-line parse, which decides field by field."""
    text = "\n" + "".join(lines)
    if "+" in text or "-0" in text:
        return True
    starts = (" ", "\t") if sep == " " else (sep[-1],)
    if sep != " " and any(b in text for b in " \t" if b not in sep):   # " 007" in a field
        return True
    return any(re.search(re.escape(c) + "0[0-9]", text) for c in ("\n", *starts))


def _parse_slow(lines, sep, name, first_no, dtype):
    users, items, values = [], [], []
    for no, line in enumerate(lines, start=first_no):
        if not line.strip():
            continue
        f = _fields(line, sep)
        if len(f) < 3:
            raise ValueError(f"{name}, line {no}: expected user{sep}item{sep}rating, got "
                             f"{line.rstrip()!r}")
        try:
            r = float(f[2])
        except ValueError:
            r = math.nan
        if not math.isfinite(r):
            raise ValueError(f"{name}, line {no}: rating {f[2]!r} is not a finite number")
        users.append(f[0].strip()), items.append(f[1].strip()), values.append(r)
    return _as_int_ids(users), _as_int_ids(items), np.asarray(values, dtype=dtype)


def _as_int_ids(ids):
    """int64 ids when every id is an integer written canonically (str(int(x)) == x: no "+",
    no leading zero, no "_"), else the strings as they are."""
    try:
        values = [int(x) for x in ids]
        if all(str(v) == x for v, x in zip(values, ids)):
            return np.asarray(values, dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    return np.asarray(ids, dtype=str)


def _unify_ids(parts):
    """One id array: integers if every chunk's ids were, else strings."""
    if not parts:
        return np.zeros(0, np.int64)
    if all(p.dtype.kind == "i" for p in parts):
        return np.concatenate(parts)
    return np.concatenate([p.astype(str) for p in parts])


def as_rating_matrix(R, name="R"):
    """The users x items CSR float matrix of a Ratings or a scipy.sparse matrix, validated."""
    M = R.matrix if isinstance(R, Ratings) else R
    if not sp.issparse(M):
        raise TypeError(f"{name} must be a Ratings or a scipy.sparse matrix, got "
                        f"{type(R).__name__}")
    dtype = working_dtype(M.dtype, name)
    if dtype.kind == "c":
        raise TypeError(f"{name} must be real, got {M.dtype}")
    M = M.tocsr() if M.format != "csr" else M
    M = M.astype(dtype) if M.dtype != dtype else M
    if not M.has_sorted_indices:
        M = M.sorted_indices()
    if not np.all(np.isfinite(M.data)):
        raise ValueError(f"{name} contains NaN or Inf")
    return M


def as_rows(rows, n_items, dtype, name="rows"):
    """New users' ratings as a CSR matrix of n_items columns (a 1-D array is one user)."""
    if isinstance(rows, Ratings):
        rows = rows.matrix
    if not sp.issparse(rows):
        rows = np.asarray(rows, dtype=dtype)
    if rows.ndim == 1:
        rows = rows.reshape(1, -1)
    if rows.ndim != 2:
        raise ValueError(f"{name} must be one user's ratings (1-D, {n_items} items) or users x "
                         f"items (2-D), got shape {rows.shape}")
    rows = sp.csr_matrix(rows)
    if rows.shape[1] != n_items:
        raise ValueError(f"{name} must have {n_items} columns (the model's items), got "
                         f"{rows.shape[1]}")
    return as_rating_matrix(rows, name).astype(dtype, copy=False)
