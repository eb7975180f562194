"""Matrices in files, opened without loading them: .npy (memory-mapped), .zarr, .h5/.hdf5,
.npz (scipy.sparse) and .mtx (Matrix Market).

Dense formats open as dask arrays chunked into row panels; each chunk is read by its task, so a
file larger than memory is processed with memory bounded by the panel size. The readers are
small picklable objects that reopen the file in whichever process (or cluster worker) reads.
"""
from __future__ import annotations

import math
import mmap
import os
import re
import threading
import uuid
import zipfile
import zlib
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .._budget import PANEL_BYTES, rows_within
from .._validation import working_dtype
from .direct import DirectPanelReader, direct_io_supported

DENSE_SUFFIXES = (".npy", ".zarr", ".h5", ".hdf5")
SPARSE_SUFFIXES = (".npz", ".mtx")


def split_dataset(path: str, dataset: str | None = None):
    """``file.h5:/group/data`` -> (``file.h5``, ``/group/data``); an explicit dataset wins."""
    path = os.fspath(path)
    match = re.match(r"(.*\.(?:h5|hdf5|zarr)):(.*)$", path, flags=re.IGNORECASE)
    if match and not os.path.exists(path):
        return match[1], dataset if dataset is not None else (match[2] or None)
    return path, dataset


def open_matrix(path, dataset=None, *, panel_bytes=PANEL_BYTES, direct=None, max_bytes=None):
    """Open the matrix stored in ``path`` without reading it.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npy``, ``.zarr`` (array or group), ``.h5``/``.hdf5`` (``file.h5:/dataset`` or
        ``dataset=``), ``.npz`` written by ``scipy.sparse.save_npz``, or ``.mtx``.
    dataset : str, optional
        Dataset (HDF5) or array (Zarr group) inside the file.
    panel_bytes : int
        Size of a row panel, the unit read by one task.
    direct : bool, optional
        .npy only: read panels with O_DIRECT in a read-ahead thread instead of through a memory
        map (where the file system allows O_DIRECT; else through the memory map). Every pass
        over a file larger than memory is a cold read, and O_DIRECT makes it cost almost no
        CPU, so reading overlaps the multiplications. Default: when the file
        is larger than the memory available (else the page cache keeps it after one pass).
    max_bytes : int, optional
        Sparse formats only (they are loaded): refuse, before reading the entries, a file whose
        loading would take more than ``max_bytes`` of memory (as :func:`sparse_header`
        estimates it from the file's header). Dense formats are never loaded.

    Returns
    -------
    dask.array.Array or scipy.sparse.csr_matrix
        Dense formats give a dask array of row panels; sparse formats are loaded (they are
        compact) as CSR.

    Raises
    ------
    FileNotFoundError, PermissionError
        Missing or unreadable file.
    ValueError
        Corrupt or truncated file, missing dataset (or a dataset named for a format that has
        none), not a 2-D matrix, unknown suffix, a sparse file larger than ``max_bytes``.
    TypeError
        Non-numeric data.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from randla.io import open_matrix
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npy")
    >>> np.save(path, np.arange(12.0).reshape(4, 3))
    >>> A = open_matrix(path, panel_bytes=48)
    >>> A.chunks, float(A.sum().compute())
    (((2, 2), (3,)), 66.0)
    """
    path, dataset = split_dataset(path, dataset)
    suffix = os.path.splitext(path.rstrip("/"))[1].lower()
    check_input_file(path)
    if dataset is not None and suffix not in (".h5", ".hdf5", ".zarr"):
        # a .npy/.npz/.mtx holds one matrix: a dataset name is a mistake, not a no-op
        raise ValueError(f"a dataset ({dataset!r}) names an array inside an .h5/.hdf5/.zarr "
                         f"input; {path} holds a single matrix")
    if suffix in SPARSE_SUFFIXES:   # the header first: its errors say what the file is not
        head = sparse_header(path)
        if max_bytes is not None and head.load_bytes > max_bytes:
            raise ValueError(f"{path} ({head.shape[0]} x {head.shape[1]}, {head.nnz} stored "
                             f"entries) needs about {head.load_bytes} bytes to load, more than "
                             f"the {int(max_bytes)} bytes allowed")
    if suffix == ".npy":
        reader = NpyRows(path, direct=_larger_than_memory(path) if direct is None else direct)
    elif suffix in (".h5", ".hdf5"):
        reader = H5Rows(path, dataset)
    elif suffix == ".zarr":
        reader = _open_zarr(path, dataset)
    elif suffix == ".npz":
        return _load_npz(path)
    elif suffix == ".mtx":
        return _load_mtx(path)
    else:
        raise ValueError(f"unsupported input {path!r}: expected one of "
                         f"{', '.join(DENSE_SUFFIXES + SPARSE_SUFFIXES)}")
    return as_panels(reader, panel_bytes=panel_bytes)


def check_input_file(path):
    """Raise FileNotFoundError, IsADirectoryError (a folder that is not a Zarr store) or
    ValueError (a pipe, a device, an empty file) naming ``path``, before any reader sees it."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"input file not found: {path}")
    if os.path.isdir(path):
        if not path.rstrip("/").lower().endswith(".zarr"):
            raise IsADirectoryError(f"{path} is a directory, not a matrix file")
        return
    if not os.path.isfile(path):   # opening a named pipe would wait for a writer forever
        raise ValueError(f"{path} is not a regular file (a pipe or a device?): a matrix is "
                         f"read several times; save it to a file first")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path} is an empty file (0 bytes)")


def as_panels(x, *, panel_bytes=PANEL_BYTES):
    """A dask array of row panels of ``panel_bytes`` over any row-sliceable 2-D array."""

    import dask.array as da
    from dask.base import tokenize
    _check_matrix(x.shape, x.dtype, getattr(x, "name", "input"))
    rows = rows_within(panel_bytes, x.shape[1] * x.dtype.itemsize, total=x.shape[0])
    meta = np.empty((0, 0), dtype=x.dtype)
    name = getattr(x, "name", None)
    # a stable key per file version and chunking; anything without a name gets a fresh one
    token = (tokenize(name, os.stat(name.split(":")[0]).st_mtime_ns, x.shape, rows)
             if name and os.path.exists(name.split(":")[0]) else uuid.uuid4().hex)
    return da.from_array(x, chunks=(rows, x.shape[1]), asarray=False, meta=meta, lock=False,
                         name=f"{type(x).__name__.lower()}-{token}")


def _check_matrix(shape, dtype, name):
    if len(shape) != 2:
        raise ValueError(f"{name} must hold a 2-D matrix, got shape {tuple(shape)}")
    if min(shape) < 0:   # a crafted header; numpy's parser lets it through
        raise ValueError(f"{name} announces a negative dimension: shape {tuple(shape)}")
    if min(shape) == 0:
        raise ValueError(f"{name} is empty (shape {tuple(shape)})")
    working_dtype(dtype, name)


_READER_LOCK = threading.Lock()


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable), or None where
    the system does not say."""
    try:
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) * 1024 for line in f
                        if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return None


def _larger_than_memory(path) -> bool:
    available = available_memory()
    return available is not None and os.path.getsize(path) > available


class NpyRows:
    """Row blocks of a .npy file, read through a memory map opened once per process.

    Slices are views of the map: the data stay in the page cache (file-backed memory), not in
    the process's private memory. Reading rows i:j also asks the kernel to start reading the
    next block (``MADV_WILLNEED``) so the disk works while the CPU multiplies.
    """

    ndim = 2

    def __init__(self, path, direct=False):
        self.name = os.fspath(path)
        with open(self.name, "rb") as f:
            try:
                shape, fortran, dtype = read_npy_header(f)
            except (ValueError, OSError, SyntaxError, EOFError) as e:
                raise ValueError(f"{self.name} is not a valid .npy file: {e}") from None
            self.offset = f.tell()
        if dtype.hasobject or dtype.fields is not None:
            raise TypeError(f"{self.name} must hold numbers, got dtype {dtype}")
        _check_matrix(shape, dtype, self.name)
        self.shape, self.dtype, self.fortran = tuple(shape), np.dtype(dtype), fortran
        # Python integers: np.prod wraps around in int64 for a crafted (2^32, 2^32)
        need = self.offset + math.prod(shape) * self.dtype.itemsize
        have = os.path.getsize(self.name)
        if have < need:
            raise ValueError(f"{self.name} is truncated: its header announces shape {self.shape} "
                             f"{self.dtype} ({need} bytes) but the file has {have} bytes")
        self._map = self._reader = None
        self.direct = bool(direct) and not fortran and direct_io_supported(self.name)

    def __getstate__(self):
        return self.__dict__ | {"_map": None, "_reader": None}

    def memmap(self):
        if self._map is None:
            self._map = np.memmap(self.name, dtype=self.dtype, mode="r", offset=self.offset,
                                  shape=self.shape, order="F" if self.fortran else "C")
        return self._map

    def __getitem__(self, key):
        rows = key[0] if isinstance(key, tuple) and isinstance(key[0], slice) else None
        if rows is not None and rows.step in (None, 1) and self.direct:
            with _READER_LOCK:   # dask threads may ask for panels at the same time
                if self._reader is None:
                    try:
                        self._reader = DirectPanelReader(self.name, self.offset, self.shape,
                                                         self.dtype)
                    except OSError:   # a worker whose file system refuses O_DIRECT
                        self.direct = False
        if rows is not None and rows.step in (None, 1) and self.direct:
            start, stop, _ = rows.indices(self.shape[0])
            return self._reader.rows(start, stop)[(slice(None),) + key[1:]]
        mm = self.memmap()
        if rows is not None and not self.fortran:
            start, stop, _ = rows.indices(self.shape[0])
            self._prefetch(mm, stop, 2 * stop - start)
        return np.asarray(mm[key])

    def _prefetch(self, mm, start, stop):
        raw = getattr(mm, "_mmap", None)
        stop = min(stop, self.shape[0])
        if raw is None or stop <= start or not hasattr(raw, "madvise"):
            return
        row = self.shape[1] * self.dtype.itemsize
        base = self.offset % mmap.ALLOCATIONGRANULARITY  # where the data start inside the map
        lo = (base + start * row) // mmap.PAGESIZE * mmap.PAGESIZE
        hi = min(len(raw), base + stop * row)
        try:
            raw.madvise(mmap.MADV_WILLNEED, lo, hi - lo)
        except (OSError, ValueError):  # advisory only
            pass


class ArrayRows:
    """Row blocks of an array already open in this process (a np.memmap, an h5py or zarr
    array): slices are read by the task that needs them, so nothing is copied up front."""

    ndim = 2

    def __init__(self, a, name="A"):
        self.a, self.name, self.shape, self.dtype = a, None, tuple(a.shape), np.dtype(a.dtype)
        _check_matrix(self.shape, self.dtype, name)

    def __getitem__(self, key):
        return np.asarray(self.a[key])


class H5Rows:
    """Row blocks of an HDF5 dataset; the file is opened once per process, read-only."""

    ndim = 2

    def __init__(self, path, dataset):
        import h5py
        self.path, self.dataset = os.fspath(path), dataset
        try:
            with h5py.File(self.path, "r") as f:
                if dataset is None:
                    names = _h5_datasets(f)
                    if len(names) != 1:
                        raise ValueError(f"{self.path} holds {len(names)} datasets "
                                         f"({', '.join(names[:10])}): name one as FILE.h5:/path "
                                         f"or with --dataset")
                    self.dataset = names[0]
                if self.dataset not in f or not isinstance(f[self.dataset], h5py.Dataset):
                    raise ValueError(f"{self.path} has no dataset {self.dataset!r}; it holds "
                                     f"{', '.join(_h5_datasets(f)[:10]) or 'no datasets'}")
                d = f[self.dataset]
                self.shape, self.dtype = tuple(d.shape), d.dtype
        except OSError as e:
            raise ValueError(f"{self.path} is not a readable HDF5 file: {e}") from None
        self.name = f"{self.path}:{self.dataset}"
        if self.dtype.kind not in "biufc":
            raise TypeError(f"{self.name} must hold numbers, got dtype {self.dtype}")
        _check_matrix(self.shape, self.dtype, self.name)
        self._file = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_file"} | {"_file": None}

    def __getitem__(self, key):
        import h5py
        if self._file is None:
            self._file = h5py.File(self.path, "r")
        try:
            return self._file[self.dataset][key]
        except OSError as e:  # a truncated or damaged data block surfaces here, mid-read
            raise ValueError(f"{self.name}: cannot read rows {key}: {e}") from None


def _h5_datasets(f):
    import h5py
    names = []
    f.visititems(lambda name, obj: names.append("/" + name) if isinstance(obj, h5py.Dataset) else None)
    return names


def _open_zarr(path, dataset):
    import zarr
    try:
        node = zarr.open(path, mode="r")
    except Exception as e:  # zarr raises several types for a missing or damaged store
        raise ValueError(f"{path} is not a readable Zarr store: {e}") from None
    if dataset is not None:
        try:
            node = node[dataset.strip("/")]
        except (KeyError, TypeError) as e:
            raise ValueError(f"{path} has no array {dataset!r}") from e
    if not hasattr(node, "dtype"):
        arrays = [name for name, _ in node.arrays()]
        if len(arrays) != 1:
            raise ValueError(f"{path} is a Zarr group with {len(arrays)} arrays "
                             f"({', '.join(arrays[:10])}): name one as FILE.zarr:name")
        node = node[arrays[0]]
    if node.dtype.kind not in "biufc":
        raise TypeError(f"{path} must hold numbers, got dtype {node.dtype}")
    return _ZarrRows(node, f"{path}:{dataset or ''}")


class _ZarrRows:
    """A zarr array behind a name (so graphs get stable keys) and clear read errors."""

    ndim = 2

    def __init__(self, z, name):
        self.z, self.name, self.shape, self.dtype = z, name, tuple(z.shape), z.dtype

    def __getitem__(self, key):
        try:
            return np.asarray(self.z[key])
        except Exception as e:  # missing or damaged chunk files
            raise ValueError(f"{self.name}: cannot read rows {key}: {e}") from None


class SparseHeader(NamedTuple):
    """What a sparse file announces, read without loading its entries."""

    shape: tuple
    dtype: np.dtype
    nnz: int
    #: Estimated peak memory of :func:`open_matrix` on the file: the arrays as stored, plus the
    #: CSR matrix they are converted to.
    load_bytes: int


def sparse_header(path) -> SparseHeader:
    """Shape, dtype and stored entries of a ``.npz`` (scipy.sparse) or ``.mtx`` file, from its
    header alone, with the memory loading it would take: a 60-byte file can announce a
    10^8 x 10^8 matrix, and this is how to find out before allocating anything.

    Raises ValueError for a file that is not a valid sparse matrix file.

    Examples
    --------
    >>> import scipy.sparse as sp, tempfile, os
    >>> from randla.io import sparse_header
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npz")
    >>> sp.save_npz(path, sp.eye(1000, 500, format="csr"))
    >>> h = sparse_header(path)
    >>> h.shape, h.nnz, h.dtype
    ((1000, 500), 500, dtype('float64'))
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    check_input_file(path)
    if suffix == ".npz":
        return _npz_header(path)
    if suffix == ".mtx":
        return _mtx_header(path)
    raise ValueError(f"{path} is not a sparse matrix file (.npz or .mtx)")


def _csr_bytes(shape, nnz, dtype):
    index = 4 if max(*shape, nnz) < 2**31 else 8
    return nnz * (working_dtype(dtype).itemsize + index) + (shape[0] + 1) * index


_NPZ_ERRORS = (ValueError, OSError, KeyError, EOFError, SyntaxError, zipfile.BadZipFile,
               zlib.error, NotImplementedError)


class _NotSparseNpz(ValueError):
    """A valid .npz that does not hold a scipy.sparse matrix (its message is final)."""


def _npz_header(path):
    def bad(why):
        return _NotSparseNpz(f"{path} is not a scipy.sparse .npz file (write it with "
                             f"scipy.sparse.save_npz): {why}")
    if not zipfile.is_zipfile(path):   # else numpy's loaders speak of pickled data
        raise ValueError(f"{path} is not a valid .npz file (not a zip archive, or one cut "
                         f"short)")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if not {"format.npy", "shape.npy", "data.npy"} <= names:
                raise bad(f"it holds {', '.join(sorted(names)[:10]) or 'nothing'} (a dense "
                          f"matrix goes in an .npy file: numpy.save)")
            heads = {name: _npy_member_header(zf, name) for name in names}
            small = {}
            for name in ("format.npy", "shape.npy"):
                shape, dtype = heads[name]
                if math.prod(shape) > 16 or dtype.hasobject:
                    raise bad(f"{name} is not a small array")
                with zf.open(name) as f:
                    small[name] = np.lib.format.read_array(f, allow_pickle=False)
    except _NotSparseNpz:
        raise
    except _NPZ_ERRORS as e:
        raise ValueError(f"{path} is not a valid .npz file: {e}") from None
    fmt = small["format.npy"].item()
    fmt = fmt.decode("ascii", "replace") if isinstance(fmt, bytes) else str(fmt)
    shape = tuple(int(d) for d in np.ravel(small["shape.npy"]))
    if len(shape) != 2 or min(shape) < 0:
        raise bad(f"shape {shape}")
    data_shape, dtype = heads["data.npy"]
    nnz = math.prod(data_shape)
    stored = sum(math.prod(s) * d.itemsize for s, d in heads.values())
    convert = _csr_bytes(shape, nnz, dtype) if fmt != "csr" or dtype != working_dtype(dtype) else 0
    return SparseHeader(shape, dtype, nnz, stored + convert)


def read_npy_header(f):
    """``(shape, fortran_order, dtype)`` from the .npy header at ``f``'s position."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
    if version not in read:
        raise ValueError(f"unsupported .npy format version {version}")
    return read[version](f)


def _npy_member_header(zf, name):
    with zf.open(name) as f:
        shape, _, dtype = read_npy_header(f)
    if any(d < 0 for d in shape):
        raise ValueError(f"{name} announces a negative dimension {shape}")
    return tuple(shape), np.dtype(dtype)


_MTX_DTYPES = {"real": np.float64, "double": np.float64, "integer": np.int64,
               "unsigned-integer": np.uint64, "complex": np.complex128, "pattern": np.float64}


def _mtx_header(path):
    def bad(why):
        return ValueError(f"{path} is not a valid Matrix Market file: {why}")
    with open(path, "rb") as f:
        banner = f.readline(1024).decode("ascii", "replace").split()
        if len(banner) != 5 or banner[0].lower() != "%%matrixmarket" or banner[1].lower() != "matrix":
            raise bad("no '%%MatrixMarket matrix' banner")
        layout, field, symmetry = (b.lower() for b in banner[2:])
        if layout not in ("coordinate", "array") or field not in _MTX_DTYPES:
            raise bad(f"unknown layout or field {layout!r} {field!r}")
        for _ in range(100_000):   # comments, then the size line
            line = f.readline(1024).decode("ascii", "replace").strip()
            if line and not line.startswith("%"):
                break
        else:
            raise bad("no size line")
    sizes = line.split()
    if not all(x.isdigit() for x in sizes) or len(sizes) != (3 if layout == "coordinate" else 2):
        raise bad(f"size line {line[:80]!r}")
    m, n = int(sizes[0]), int(sizes[1])
    dtype = np.dtype(_MTX_DTYPES[field])
    if layout == "array":   # loaded as a dense matrix
        return SparseHeader((m, n), dtype, m * n, m * n * dtype.itemsize)
    nnz = int(sizes[2])
    if nnz > m * n:
        raise bad(f"{nnz} entries announced in a {m} x {n} matrix")
    entries = nnz * (1 if symmetry == "general" else 2)
    coo = entries * (16 + dtype.itemsize)
    return SparseHeader((m, n), dtype, nnz, coo + _csr_bytes((m, n), entries, dtype))


def _load_npz(path):
    try:
        A = sp.load_npz(path)
    except _NPZ_ERRORS as e:
        raise ValueError(f"{path} is not a scipy.sparse .npz file (write it with "
                         f"scipy.sparse.save_npz): {e}") from None
    return _checked_sparse(A, path)


def _load_mtx(path):
    import scipy.io
    try:
        A = scipy.io.mmread(path)
    except (ValueError, OSError, IndexError, TypeError) as e:
        raise ValueError(f"{path} is not a valid Matrix Market file: {e}") from None
    return _checked_sparse(A, path)


def _checked_sparse(A, path):
    if not sp.issparse(A):
        A = np.asarray(A)
        _check_matrix(A.shape, A.dtype, path)
        return A
    _check_matrix(A.shape, A.dtype, path)
    return sp.csr_matrix(A)
