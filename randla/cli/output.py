"""Output files of the ``randla`` commands: checked before any work, written atomically.

An output is written into a temporary file beside it (``.randla-*.npz.part``), created before
the computation starts (so an unwritable folder is reported at once), and renamed over the
destination only when complete; an output that is a symlink is written through (the file it
names is replaced, as ``np.savez`` would overwrite it). A failure or an interruption (Ctrl-C, SIGTERM: see
:func:`randla.cli.main`) removes the temporary file and leaves an old output as it was.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import zipfile

import numpy as np


def check_output(path, *inputs):
    """Refuse an output that would destroy an input (the same file, through a symlink or a
    hard link), that is not an .npz, whose folder does not exist, or that is a read-only
    file (``np.savez`` could not write it either). A symlink is written through."""
    path = os.fspath(path)
    if not path.endswith(".npz"):
        raise ValueError(f"output must end in .npz, got {path!r}")
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            raise NotADirectoryError(f"the output's folder {folder} is a file")
        raise FileNotFoundError(f"output folder does not exist: {folder}")
    if os.path.isdir(target):
        raise IsADirectoryError(f"output {path} is a directory")
    if os.path.exists(target) and not os.access(target, os.W_OK):
        raise PermissionError(13, "a read-only file: not replaced (make it writable, or "
                                  "choose another output)", path)
    for source in inputs:
        if os.path.exists(path) and os.path.exists(source) and os.path.samefile(path, source):
            raise ValueError(f"output {path} is the input {source}: writing it would destroy "
                             f"the input; choose another output file")


def _new_file_mode(path) -> int:
    """The permissions a plain ``open(path, 'w')`` would give: an existing file keeps its own,
    a new one gets 0o666 minus the umask (mkstemp's 0o600 would hide results from a group)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


class AtomicNpz:
    """An .npz (as ``np.savez``, uncompressed) built member by member in a temporary file
    beside ``path``, which :meth:`commit` renames over ``path``; leaving the ``with`` block
    without committing removes it.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from randla.cli.output import AtomicNpz
    >>> path = os.path.join(tempfile.mkdtemp(), "r.npz")
    >>> with AtomicNpz(path) as out:
    ...     out.add("s", np.arange(3.0))
    ...     float(out.memmap("s").sum())
    ...     out.commit()
    3.0
    >>> sorted(os.listdir(os.path.dirname(path))), np.load(path)["s"].tolist()
    (['r.npz'], [0.0, 1.0, 2.0])
    """

    def __init__(self, path):
        self.path = os.fspath(path)                  # what messages name
        self.target = os.path.realpath(self.path)   # what is replaced: a symlink's file
        folder = os.path.dirname(self.target)
        mode = _new_file_mode(self.target)
        try:
            fd, self.tmp = tempfile.mkstemp(prefix=".randla-", suffix=".npz.part", dir=folder)
        except OSError as e:
            raise OSError(e.errno, f"cannot write to the output folder ({e.strerror})",
                          folder) from None
        self.file = os.fdopen(fd, "w+b")
        try:
            with self._writing():
                os.fchmod(fd, mode)
        except OSError:
            self.file.close()
            os.unlink(self.tmp)
            raise
        self.zip = zipfile.ZipFile(self.file, "w", compression=zipfile.ZIP_STORED,
                                   allowZip64=True)
        self.offsets = {}
        self._open = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.tmp is not None:
            self.discard()
        return False

    @contextlib.contextmanager
    def _writing(self):
        """An OSError of the temporary file names the output the user asked for (the .part
        file is an implementation detail, and is gone once the error is reported)."""
        try:
            yield
        except OSError as e:
            raise OSError(e.errno, f"cannot write the output ({e.strerror or e})",
                          self.path) from None

    def add(self, name, value, *, quiet=True):
        """Write ``value`` as ``name.npy``; a dask array is computed one row block at a time
        (a lazy U = A @ W reads the input once more, and is never held whole)."""
        if hasattr(value, "blocks"):
            with self._writing():
                member = self._member(name)
            _write_row_blocks(member, value, name, quiet, self._writing)
            with self._writing():
                member.close()
            self._open = None
            return
        value = np.asanyarray(value)
        with self._writing():
            member = self._member(name)
            np.lib.format.write_array(member, value, allow_pickle=False)
            member.close()
        self._open = None

    def _member(self, name):
        # kept until closed: after a failure, discard() closes it before the archive
        self._open = self.zip.open(f"{name}.npy", "w", force_zip64=True)
        self.offsets[name] = self.file.tell()   # stored uncompressed: the data start here
        return self._open

    def memmap(self, name):
        """A read-only memory map of a member already written (its pages stay in the page
        cache, not in this process's memory)."""
        from ..io.files import read_npy_header
        with self._writing():
            self.file.flush()
            with open(self.tmp, "rb") as f:
                f.seek(self.offsets[name])
                shape, fortran, dtype = read_npy_header(f)
                offset = f.tell()
            return np.memmap(self.tmp, dtype=dtype, mode="r", offset=offset, shape=shape,
                             order="F" if fortran else "C")

    def commit(self):
        """Finish the archive, flush it to disk and rename it over the destination."""
        with self._writing():
            self.zip.close()
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.tmp, self.target)
        self.tmp = None
        _fsync_folder(self.target)

    def discard(self):
        """Remove the temporary file, whatever state the failure left it in (a full disk
        makes closing it fail too: it is removed all the same)."""
        tmp, self.tmp = self.tmp, None
        member, self._open = self._open, None
        closes = ([member.close] if member is not None else []) + [self.zip.close, self.file.close]
        for close in closes:
            try:
                close()
            except Exception:   # a half-written member, unflushable data: the file goes anyway
                pass
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def _fsync_folder(path):
    """Make the rename itself durable (POSIX); best effort elsewhere."""
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_row_blocks(out, X, name, quiet, writing):
    """Each block computed (a read of the input: its errors name the input), then written
    (``writing``: its errors name the output)."""
    from tqdm import tqdm

    from .._dask import compute
    fmt = np.lib.format
    with writing():
        fmt.write_array_header_1_0(out, {"descr": fmt.dtype_to_descr(X.dtype),
                                         "fortran_order": False, "shape": X.shape})
    for i in tqdm(range(X.numblocks[0]), desc=f"writing {name}", unit="block", file=sys.stderr,
                  delay=1.0, leave=False, disable=quiet):
        block = np.ascontiguousarray(compute(X.blocks[i])[0])
        with writing():
            out.write(block.data)
