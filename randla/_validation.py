"""Input validation shared by every public function: checks at the door, clear messages."""
from __future__ import annotations

import math
import numbers

import numpy as np
import scipy.sparse as sp

_SEED_BITS = 63


def check_random_state(rng) -> np.random.Generator:
    """Turn ``rng`` (None, int or Generator) into a Generator, as SPEC 7 recommends."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (numbers.Integral, np.integer)):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.SeedSequence):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be None, an int or a numpy.random.Generator, got {type(rng).__name__}")


def seed_from_rng(rng) -> int:
    """A non-negative 63-bit seed for counter-based sketches.

    An int is used as is (so ``rng=0`` always names the same sketch); a Generator is advanced by
    one draw; None draws fresh entropy.
    """
    if isinstance(rng, (numbers.Integral, np.integer)) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng must be a non-negative int seed, got {rng}")
        return int(rng) & ((1 << _SEED_BITS) - 1)
    return int(check_random_state(rng).integers(0, 1 << _SEED_BITS))


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def working_dtype(dtype, name: str = "A") -> np.dtype:
    """The floating dtype computations run in for data of ``dtype``.

    float32/float64/complex64/complex128 are kept. Integers and bools are promoted to float64
    (documented: there is no integer SVD). Anything else is rejected.
    """
    dtype = np.dtype(dtype)
    if dtype.kind in "biufc" and not dtype.isnative:  # big-endian data computes in native order
        dtype = dtype.newbyteorder("=")
    if dtype in (np.float32, np.float64, np.complex64, np.complex128):
        return dtype
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    if dtype == np.float16:
        raise TypeError(f"{name} has dtype float16, which is not supported: convert to float32")
    raise TypeError(f"{name} must have a numeric dtype (float or complex), got {dtype}")


def check_finite(A, name: str = "A") -> None:
    """Raise ValueError when a dense or sparse array holds NaN or Inf."""
    data = A.data if sp.issparse(A) else A
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{name} contains NaN or Inf")


def real_dtype(dtype) -> np.dtype:
    """float32 for float32/complex64, float64 for float64/complex128."""
    return np.finfo(np.dtype(dtype)).dtype


def check_real(value, name: str, *, low=0.0, high=math.inf, low_open=False) -> float:
    """A finite real number in [low, high) (or (low, high) with ``low_open``), as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and (value > low if low_open else value >= low) and value < high):
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be finite and in {bracket}{low}, {high}), got {value}")
    return value


def check_unit_interval(value, name: str) -> float:
    """A real number strictly between 0 and 1 (a tolerance, a probability, a forgetting factor)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    if not 0 < value < 1:
        raise ValueError(f"{name} must be in (0, 1), got {value}")
    return float(value)


def check_choice(value, name: str, choices) -> str:
    """One of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_rank(k, name: str, m: int, n: int) -> int:
    """An int in [1, min(m, n)]: the rank of an approximation of an m x n matrix."""
    k = check_positive_int(k, name)
    if k > min(m, n):
        raise ValueError(f"{name} must be <= min(m, n) = {min(m, n)}, got {k}")
    return k


def check_square(shape, name: str = "A", what: str = "") -> int:
    """The order n of an n x n shape; ``what`` says why square is needed (e.g. "PSD")."""
    if len(shape) != 2 or shape[0] != shape[1]:
        why = f" ({what})" if what else ""
        raise ValueError(f"{name} must be square{why}, got shape {tuple(shape)}")
    return int(shape[0])
