"""Argument types and error reporting shared by the ``randla`` subcommands, so that every
command refuses bad values the same way: one line naming the option, exit status 2."""
from __future__ import annotations

import argparse
import re
import sys

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}


def parse_bytes(text: str) -> int:
    """'2GB' -> 2_000_000_000, '64MiB' -> 67108864, '1000' -> 1000."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    if not match or match[2].lower() not in _UNITS:
        raise ValueError(f"--memory-limit must be a size such as 512MB or 2GiB, got {text!r}")
    return int(float(match[1]) * _UNITS[match[2].lower()])


def seed_arg(text: str) -> int:
    """argparse type of ``--seed``: a non-negative integer (of any size)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def count_arg(minimum):
    """argparse type: an integer >= ``minimum``."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def fraction_arg(text):
    """argparse type of ``--tol``: a number in (0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {text!r}")
    return value


def error_message(e, memory_hint="make the problem smaller") -> str:
    """The one line an exception becomes: whitespace collapsed, OSError as "file: reason";
    ``memory_hint``: what the command's user can change when memory runs out."""
    text = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, OSError) and e.strerror and e.filename:   # not "[Errno 13] ..."
        text = f"{e.filename}: {e.strerror}"
    if isinstance(e, MemoryError):
        text = f"out of memory ({text}); {memory_hint}"
    return text


def one_line_warnings(command):
    """A ``warnings.showwarning`` printing ``randla COMMAND: warning: ...`` on one line."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"randla {command}: warning: {' '.join(str(message).split())}", file=sys.stderr)
    return show
