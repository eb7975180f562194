"""Where Numba caches randla's compiled kernels (no randla imports, and no numba import: this
runs when ``randla`` is imported, before any kernel module loads numba).

Numba caches beside the source or in the user's cache folder; with both read-only, every
``cache=True`` kernel failed ("cannot cache function"). Then the cache goes to a private
temporary folder instead.
"""
from __future__ import annotations

import os
import sys
import tempfile


def _writable(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def choose_cache_dir() -> None:
    """Point NUMBA_CACHE_DIR at a temporary folder when neither of Numba's own places (the
    package's __pycache__, the user cache folder) can be written; the user's setting wins."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")
    user = os.path.join(os.path.expanduser("~"), ".cache", "numba")
    if _writable(here) or _writable(user):
        return
    fallback = os.path.join(tempfile.gettempdir(), f"randla-numba-{os.getuid()}")
    if _writable(fallback):
        os.environ["NUMBA_CACHE_DIR"] = fallback
        if "numba" in sys.modules:  # imported before randla: make it read the setting again
            from numba.core import config
            config.reload_config()


