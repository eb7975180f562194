"""Counter-based random numbers: every entry is a pure function of (seed, stream, row, column).

Philox4x32-10 (Salmon et al., SC'11) maps a 128-bit counter and a 64-bit key to 128 random bits.
The counter of entry (i, j) is (i // 4, j_lo, j_hi, stream), so a column block of any sketch is
generated on its own, in any order, by any number of threads, and is always the same. Streams
separate independent matrices drawn from one seed (e.g. the real and imaginary parts of H).

Public kernels fill a C-ordered array ``out`` of shape (ncols, nrows): row ``c`` of ``out`` is
column ``col0 + c`` of the sketch restricted to rows ``row0 : row0 + nrows``. Callers transpose
the view to get the (nrows, ncols) block without a copy.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_TWO_PI = 2.0 * np.pi
_INV_2_32 = 1.0 / 4294967296.0


@njit(inline="always", cache=True)
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10: four uint32 words (held in uint64) from a counter and a key."""
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = ((p1 >> _S32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK32)
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return c0, c1, c2, c3


@njit(inline="always", cache=True)
def _uniform_open(x):
    """uint32 -> float64 uniform in (0, 1): never 0, so log() is safe."""
    return (np.float64(x) + 0.5) * _INV_2_32


@njit(inline="always", cache=True)
def _box_muller(a, b):
    r = np.sqrt(-2.0 * np.log(_uniform_open(a)))
    t = _TWO_PI * _uniform_open(b)
    return r * np.cos(t), r * np.sin(t)


@njit(parallel=True, cache=True)
def fill_normal(out, seed, stream, row0, col0, scale):
    """out[c, r] = scale * N(0, 1) entry (row0 + r, col0 + c) of the stream."""
    ncols, nrows = out.shape
    k0 = np.uint64(seed) & _MASK32
    k1 = (np.uint64(seed) >> _S32) & _MASK32
    st = np.uint64(stream) & _MASK32
    g0 = row0 // 4
    g1 = (row0 + nrows + 3) // 4
    for c in prange(ncols):
        j = np.uint64(col0 + c)
        jl = j & _MASK32
        jh = j >> _S32
        for g in range(g0, g1):
            x0, x1, x2, x3 = philox4x32(np.uint64(g), jl, jh, st, k0, k1)
            z0, z1 = _box_muller(x0, x1)
            z2, z3 = _box_muller(x2, x3)
            base = 4 * g - row0
            if 0 <= base < nrows:
                out[c, base] = scale * z0
            if 0 <= base + 1 < nrows:
                out[c, base + 1] = scale * z1
            if 0 <= base + 2 < nrows:
                out[c, base + 2] = scale * z2
            if 0 <= base + 3 < nrows:
                out[c, base + 3] = scale * z3


@njit(parallel=True, cache=True)
def fill_sign(out, seed, stream, row0, col0, scale):
    """out[c, r] = scale * (+-1) entry (row0 + r, col0 + c): one bit of Philox output each."""
    ncols, nrows = out.shape
    k0 = np.uint64(seed) & _MASK32
    k1 = (np.uint64(seed) >> _S32) & _MASK32
    st = np.uint64(stream) & _MASK32
    for c in prange(ncols):
        j = np.uint64(col0 + c)
        jl = j & _MASK32
        jh = j >> _S32
        r = 0
        while r < nrows:
            i = row0 + r
            g = i // 128
            x0, x1, x2, x3 = philox4x32(np.uint64(g), jl, jh, st, k0, k1)
            stop = min(nrows, (g + 1) * 128 - row0)
            while r < stop:
                bit = (row0 + r) % 128
                word = x0 if bit < 32 else (x1 if bit < 64 else (x2 if bit < 96 else x3))
                s = (word >> np.uint64(bit % 32)) & np.uint64(1)
                out[c, r] = scale if s == 1 else -scale
                r += 1


@njit(parallel=True, cache=True)
def fill_uniform_int(out, seed, stream, col0, high):
    """out[c, q] = integer uniform in [0, high) for (draw q, column col0 + c), by 64-bit
    multiply-shift of one Philox word (bias < high / 2**32, negligible for high << 2**32)."""
    ncols, ndraws = out.shape
    k0 = np.uint64(seed) & _MASK32
    k1 = (np.uint64(seed) >> _S32) & _MASK32
    st = np.uint64(stream) & _MASK32
    h = np.uint64(high)
    for c in prange(ncols):
        j = np.uint64(col0 + c)
        jl = j & _MASK32
        jh = j >> _S32
        for g in range((ndraws + 3) // 4):
            x = philox4x32(np.uint64(g), jl, jh, st, k0, k1)
            for t in range(4):
                q = 4 * g + t
                if q < ndraws:
                    out[c, q] = (x[t] * h) >> _S32


def normal_block(seed, stream, rows, cols, dtype=np.float64, scale=1.0):
    """The (rows x cols) block of a standard normal matrix, as an F-ordered array.

    ``rows`` and ``cols`` are (start, stop) pairs. ``dtype`` is float32 or float64.
    """
    (r0, r1), (c0, c1) = rows, cols
    out = np.empty((c1 - c0, r1 - r0), dtype=dtype)
    fill_normal(out, seed, stream, r0, c0, scale)
    return out.T


def sign_block(seed, stream, rows, cols, dtype=np.float64, scale=1.0):
    """The (rows x cols) block of a Rademacher (+-scale) matrix, as an F-ordered array."""
    (r0, r1), (c0, c1) = rows, cols
    out = np.empty((c1 - c0, r1 - r0), dtype=dtype)
    fill_sign(out, seed, stream, r0, c0, scale)
    return out.T
