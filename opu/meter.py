"""Metering: the frames, device time and energy of every optical projection made in a block.

Every optical path reports to :func:`record`: :meth:`opu.OPU.transform` and the anchor scheme
(the frames the simulated camera takes), :class:`opu.OpticalSketch` in ``"ideal"`` mode and
:func:`opu.features` (the frames the device *would* take for the same projection, see
:func:`opu.sketcher.OpticalSketch.frames_for`). The active meters live in a
:class:`contextvars.ContextVar`, so meters opened in different threads or asyncio tasks do not
see each other's projections; a meter is shared by the threads it is handed to (its updates take
a lock). Threads started inside a ``with metering()`` block do not inherit it (``threading``
does not copy the context), so a projection made in another thread on behalf of this one is
handed the meters to count it in: :func:`capture` them where the work is asked for and pass them
to :func:`record` as ``also`` (the optical sketch does so for chunked matrices, whose blocks dask
multiplies in its worker threads). Other work submitted to a thread pool is not metered unless
the pool runs it with ``contextvars.copy_context().run``.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import threading
import time

#: Open meters, innermost last: a projection is added to every one of them.
_ACTIVE: contextvars.ContextVar[tuple] = contextvars.ContextVar("opu_meters", default=())


@dataclasses.dataclass
class Meter:
    """What the optical projections inside a :func:`metering` block cost.

    Attributes
    ----------
    frames : int
        Camera frames, on the device or modelled (``mode="ideal"``).
    device_seconds : float
        Modelled device time of those frames (``frames x frame time``).
    energy_joules : float
        Modelled device energy (``device_seconds x device power``).
    calls : int
        Optical projections made (one per ``transform``, ``S @ X`` or ``features`` call, and
        per column block of the DMD for inputs wider than it).
    modelled_frames : int
        The part of ``frames`` that was not simulated through the camera but counted from the
        cost model (ideal mode).
    wall_seconds : float
        Time spent inside the block on this machine (set when the block ends; while it runs,
        the time so far).
    """

    frames: int = 0
    device_seconds: float = 0.0
    energy_joules: float = 0.0
    calls: int = 0
    modelled_frames: int = 0
    wall_seconds: float = 0.0
    _start: float = dataclasses.field(default_factory=time.perf_counter, repr=False)
    _open: bool = dataclasses.field(default=True, repr=False)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False,
                                              compare=False)

    def _add(self, frames, seconds, joules, calls, modelled):
        with self._lock:
            self.frames += int(frames)
            self.device_seconds += float(seconds)
            self.energy_joules += float(joules)
            self.calls += int(calls)
            self.modelled_frames += int(frames) if modelled else 0
            if self._open:
                self.wall_seconds = time.perf_counter() - self._start

    def cpu_joules(self, package_watts=15.0) -> float:
        """Energy of this machine over ``wall_seconds`` at an assumed package power (15 W, a
        typical 2-core laptop package under load: an assumption, not a measurement)."""
        return self.wall_seconds * float(package_watts)


@contextlib.contextmanager
def metering():
    """Meter every optical projection made inside the ``with`` block.

    Yields a :class:`Meter` that the projections update as they happen; meters nest (an inner
    block's projections count in the outer meters too).

    Examples
    --------
    >>> import numpy as np, opu
    >>> dev = opu.OPU(1000, 50, seed=0).fit1d(n_features=1000)
    >>> X = np.random.default_rng(0).integers(0, 2, size=(8, 1000), dtype=np.uint8)
    >>> with opu.metering() as m:
    ...     _ = dev.transform(X)
    ...     _ = dev.transform(X[:2])
    >>> m.frames, m.calls, round(m.device_seconds, 4), round(m.energy_joules, 3)
    (10, 2, 0.005, 0.15)
    """
    meter = Meter()
    token = _ACTIVE.set(_ACTIVE.get() + (meter,))
    try:
        yield meter
    finally:
        _ACTIVE.reset(token)
        meter.wall_seconds = time.perf_counter() - meter._start
        meter._open = False


def record(frames, seconds, joules, *, calls=1, modelled=False, also=()) -> None:
    """Add a projection's frames, device seconds and joules to every open meter of this context
    and to the meters ``also`` (:func:`capture` where the work was asked for) whose block is
    still open; each meter counts it once."""
    active = _ACTIVE.get()
    extra = tuple(m for m in also if m._open and all(m is not a for a in active))
    for meter in active + extra:
        meter._add(frames, seconds, joules, calls, modelled)


def capture() -> tuple:
    """The meters open in this context, for work that runs later or in another thread (a
    thread does not inherit the context): pass them to :func:`record` as ``also``."""
    return _ACTIVE.get()


def active() -> bool:
    """True inside a :func:`metering` block (lets callers skip computing what nobody reads)."""
    return bool(_ACTIVE.get())
