"""Row panels of a file larger than memory, read with O_DIRECT by a read-ahead thread.

Through the page cache (a memory map, or plain reads), a cold read here costs about one core of
kernel time per 2 GB/s, which the multiplications need, and every pass over a file larger than
memory is cold. O_DIRECT reads go from the disk to the process's buffer with almost no CPU
(measured on a 6 GB file: 3.5 s wall, 0.1 s CPU; buffered: 4.5 s wall, 3.0 s CPU), so a thread
can read the next panel while BLAS multiplies the current one.

Panels are views of reusable, page-aligned buffers. A buffer is refilled only once no view of it
is alive (its reference count says so), so a caller may keep a panel as long as it likes.
"""
from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

#: Alignment O_DIRECT needs for the offset, length and address of a read.
ALIGN = 4096
#: Buffers kept for reuse; a caller holding more panels gets one-off buffers.
MAX_BUFFERS = 4


def _refcounts(buffers):
    counts = []
    for raw in buffers:
        counts.append(sys.getrefcount(raw))
    return counts


#: The reference count a pooled buffer shows in :meth:`DirectPanelReader._free_buffer` when no
#: panel refers to it (the list, the loop variable, getrefcount's argument: 3 on CPython 3.11),
#: measured rather than assumed, as interpreters count borrowed references differently.
_FREE_REFCOUNT = _refcounts([np.empty(1)])[0]


def direct_io_supported(path) -> bool:
    """Whether ``path`` can be opened with O_DIRECT (Linux; not on tmpfs, for instance)."""
    flag = getattr(os, "O_DIRECT", None)
    if flag is None:
        return False
    try:
        os.close(os.open(path, os.O_RDONLY | flag))
    except OSError:
        return False
    return True


class DirectPanelReader:
    """Reads rows ``start:stop`` of a C-ordered matrix stored at ``offset`` in ``path``,
    prefetching the next panel of the same height in a background thread."""

    def __init__(self, path, offset, shape, dtype):
        self.path, self.offset = path, offset
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.row_bytes = self.shape[1] * self.dtype.itemsize
        self._fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        self._buffers = []
        self._lock = threading.Lock()            # one request at a time
        self._buffer_lock = threading.Lock()     # the reader thread picks buffers too
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="randla-read")
        self._pending = None          # ((start, stop), future) of the panel being prefetched
        self._last = None             # (start, stop) of the previous request

    def rows(self, start, stop):
        with self._lock:
            pending, self._pending = self._pending, None
            if pending is not None and pending[0] == (start, stop):
                panel = pending[1].result()
            else:
                if pending is not None:
                    # wait for the wrong guess; its failure (past a truncated end, say) is
                    # no error of this request
                    pending[1].exception()
                panel = self._read(start, max(start, stop))
            nxt = self._guess_next(start, stop)
            if nxt is not None:
                self._pending = nxt, self._pool.submit(self._read, *nxt)
            self._last = start, stop
            return panel

    def _guess_next(self, start, stop):
        """The panel after (start, stop) while requests walk through the file, forward or
        backward (dask runs independent chunk tasks in descending key order); None otherwise,
        as a guess in a random order would cost a wasted read."""
        height = stop - start
        if start == 0 or (self._last and start == self._last[1]):
            nxt = stop, min(self.shape[0], stop + height)
        elif self._last and stop == self._last[0]:
            nxt = max(0, start - height), start
        else:
            return None
        return nxt if nxt[0] < nxt[1] else None

    def _read(self, start, stop):
        lo = self.offset + start * self.row_bytes
        hi = self.offset + stop * self.row_bytes
        first = lo // ALIGN * ALIGN
        view = self._free_buffer(-(-hi // ALIGN) * ALIGN - first)
        done, need = 0, hi - first
        while done < need:   # a read may return less than asked: continue where it stopped
            got = os.preadv(self._fd, [view[done:]], first + done)
            if got <= 0:
                raise ValueError(f"{self.path} ended early: rows {start}:{stop} are missing")
            done += got
        return view[lo - first:hi - first].view(self.dtype).reshape(stop - start, self.shape[1])

    def _free_buffer(self, nbytes):
        """An aligned byte view of nbytes from a buffer no panel refers to any more."""
        with self._buffer_lock:
            for raw in self._buffers:
                # more references than the pool's own are live panels
                if raw.nbytes >= nbytes + ALIGN and sys.getrefcount(raw) <= _FREE_REFCOUNT:
                    break
            else:
                # 1 MiB of slack, so that panels of slightly different heights share buffers
                raw = np.empty(-(-(nbytes + ALIGN) // 2**20) * 2**20, np.uint8)
                if len(self._buffers) < MAX_BUFFERS:
                    self._buffers.append(raw)
            skip = -raw.ctypes.data % ALIGN
            return raw[skip:skip + nbytes]

    def close(self):
        if self._fd is None:
            return
        # the last reference may go in the reader thread itself, once its read is done
        in_reader = threading.current_thread().name.startswith("randla-read")
        self._pool.shutdown(wait=not in_reader)
        os.close(self._fd)
        self._fd = None

    def __del__(self):
        try:
            self.close()
        except (OSError, AttributeError):
            pass
