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
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from .._numba import parallel_njit

#: Philox stream of every matrix drawn from the generator, in one table so that no two share
#: one: a new kind of random matrix takes the next free number here.
STREAMS = {
    "gaussian.real": 0,
    "gaussian.imag": 1,
    "rademacher.signs": 2,
    "sparse_sign.rows": 3,
    "sparse_sign.signs": 4,
    "srtt.rows": 5,
    "srtt.signs": 6,
    "opu.medium.real": 16,
    "opu.medium.imag": 17,
    "opu.densify.signs": 18,
}
assert len(set(STREAMS.values())) == len(STREAMS)

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)

#: Counters per span: the unit of work of fill_normal (1024 normals of one column).
_SPAN = 256
#: Runs of spans handed to the threads, each with its own buffers (a constant rather than
#: numba.get_num_threads(), which would stop the kernel from being cached).
_PARTS = 256


@njit(inline="always", cache=True)
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10: four uint32 words (held in uint64) from a counter and a key."""
    for _ in range(10):
        # The masks tell LLVM both factors fit 32 bits: one vpmuludq per product in SIMD.
        p0 = _M0 * (c0 & _MASK32)
        p1 = _M1 * (c2 & _MASK32)
        c0, c1, c2, c3 = ((p1 >> _S32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK32)
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return c0, c1, c2, c3


@njit(inline="always", cache=True)
def _keys(seed, stream):
    """Philox key (two 32-bit halves of the seed) and the stream word of the counter."""
    s = np.uint64(seed)
    return s & _MASK32, (s >> _S32) & _MASK32, np.uint64(stream) & _MASK32


# -- Box-Muller with our own log and sincos ------------------------------------------------
# libm calls do not vectorize and may differ between machines; these polynomial kernels (fdlibm
# and FreeBSD coefficients, within ~1 ulp on the reduced ranges; the tests hold them to NumPy's
# log/cos/sin) are plain IEEE arithmetic, so the loops vectorize and every machine gets the same
# bits. float32 output is computed in float32 (twice the SIMD width). The pair (x_r, x_a) of uint32
# words gives z = sqrt(-2 log u) (cos t, sin t) with u = (x_r + 1/2) 2^-32 and
# t = (pi/2) q + (pi/2)(f - 1/2), q = x_a >> 30, f = ((x_a mod 2^30) + 1/2) 2^-30: t is uniform on
# the circle, and the quadrant q only swaps and negates the sine and cosine of |t - pi q/2| <= pi/4.

@intrinsic
def _float_bits(typingctx, x):
    """The IEEE bits of a float as a signed integer of the same width."""
    if isinstance(x, types.Float):
        ity = types.int64 if x.bitwidth == 64 else types.int32

        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], ir.IntType(x.bitwidth))
        return ity(x), codegen


@intrinsic
def _bits_float(typingctx, x):
    """The float whose IEEE bits are the signed integer x (int32 -> float32, int64 -> float64)."""
    if isinstance(x, types.Integer) and x.bitwidth in (32, 64):
        fty = types.float64 if x.bitwidth == 64 else types.float32

        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], context.get_value_type(fty))
        return fty(x), codegen


# float64 constants: fdlibm e_log.c (log), k_sin.c and k_cos.c (sin, cos on [-pi/4, pi/4]).
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_L1, _L2, _L3, _L4, _L5, _L6, _L7 = (
    6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
    2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
    1.479819860511658591e-01)
_S1, _S2, _S3, _S4, _S5, _S6 = (
    -1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04,
    2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10)
_C1, _C2, _C3, _C4, _C5, _C6 = (
    4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05,
    -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11)
_SQRT2 = np.sqrt(2.0)
_PIO2 = np.pi / 2
_INV_2_32 = 2.0**-32
_INV_2_30 = 2.0**-30
_Q1 = np.uint32(1)
_Q2 = np.uint32(2)
_S30 = np.uint32(30)
_MASK30 = np.uint32(0x3FFFFFFF)

# float32 constants: FreeBSD e_logf.c; sin/cos Taylor to x^9 / x^10 (error < 2e-9 on pi/4).
_f32 = np.float32
_L1F, _L2F, _L3F, _L4F = (_f32(float.fromhex(h)) for h in
                          ("0xaaaaaa.0p-24", "0xccce13.0p-25", "0x91e9ee.0p-25", "0xf89e26.0p-26"))
_LN2_HI_F, _LN2_LO_F = _f32(6.9313812256e-01), _f32(9.0580006145e-06)
_S1F, _S2F, _S3F, _S4F = _f32(-1 / 6), _f32(1 / 120), _f32(-1 / 5040), _f32(1 / 362880)
_C1F, _C2F, _C3F, _C4F = _f32(1 / 24), _f32(-1 / 720), _f32(1 / 40320), _f32(-1 / 3628800)
_HALF_F, _ONE_F, _TWO_F, _M2_F = _f32(0.5), _f32(1.0), _f32(2.0), _f32(-2.0)
_SQRT2_F = _f32(np.sqrt(2.0))
_PIO2_F = _f32(np.pi / 2)
_INV_2_32_F = _f32(2.0**-32)
_INV_2_30_F = _f32(2.0**-30)
_EXP_MASK_F, _ONE_BITS_F, _BIAS_F = np.int32(0x7FFFFF), np.int32(0x3F800000), np.int32(127)
_S23 = np.int32(23)
_HALF_RANGE = np.uint32(2**31)
_ZERO_F, _MINUS_ONE_F = _f32(0.0), _f32(-1.0)
_ONE_MINUS_SQRT_HALF_F = _f32(1 - np.sqrt(0.5))


@njit(inline="always", cache=True, error_model="numpy")
def _radius64(x):
    """sqrt(-2 log u), u = (x + 1/2) 2^-32 in (0, 1), for a uint32 word x."""
    u = (np.float64(x) + 0.5) * _INV_2_32
    bits = _float_bits(u)
    e = (bits >> 52) - 1023
    m = _bits_float((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)  # u = m 2^e, m in [1, 2)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    k = np.float64(e + 1 if big else e)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * (_L1 + w * (_L3 + w * (_L5 + w * _L7))) + w * (_L2 + w * (_L4 + w * _L6))
    hfsq = 0.5 * f * f
    logu = k * _LN2_HI - ((hfsq - (s * (hfsq + r) + k * _LN2_LO)) - f)
    return np.sqrt(-2.0 * logu)


@njit(inline="always", cache=True, error_model="numpy")
def _radius32(x):
    """float32 version of :func:`_radius64`. float32(x + 1/2) would round u near 1 (tiny radii
    would lose most digits), so the upper half u = 1 - v takes log1p(-v) with v = (~x + 1/2) 2^-32
    instead: both halves then keep full float32 relative precision."""
    upper = x >= _HALF_RANGE
    a = (np.float32(~x if upper else x) + _HALF_F) * _INV_2_32_F  # u (lower) or v (upper), <= 1/2
    # lower half: u = m 2^e with m in [1, 2), halved when above sqrt(2)
    bits = _float_bits(a)
    e = (bits >> _S23) - _BIAS_F
    m = _bits_float(np.int32((bits & _EXP_MASK_F) | _ONE_BITS_F))  # numba widens int32 ops
    big = m > _SQRT2_F
    k_lo = np.float32(e + np.int32(1) if big else e)
    f_lo = (m * _HALF_F if big else m) - _ONE_F
    # upper half: u = 1 - v = 2^0 (1 - v), or 2^-1 (1 + (1 - 2 v)) once 1 - v < sqrt(1/2); exact
    near_one = a <= _ONE_MINUS_SQRT_HALF_F
    k = (_ZERO_F if near_one else _MINUS_ONE_F) if upper else k_lo
    f = (-a if near_one else _ONE_F - _TWO_F * a) if upper else f_lo
    s = f / (_TWO_F + f)
    z = s * s
    w = z * z
    r = z * (_L1F + w * _L3F) + w * (_L2F + w * _L4F)
    hfsq = _HALF_F * f * f
    logu = k * _LN2_HI_F - ((hfsq - (s * (hfsq + r) + k * _LN2_LO_F)) - f)
    return np.sqrt(_M2_F * logu)


@njit(inline="always", cache=True)
def _quadrant(q, c, s):
    """(cos, sin) of t = (pi/2) q + p from (cos p, sin p)."""
    swap = (q & _Q1) == _Q1
    a = s if swap else c
    b = c if swap else s
    a = -a if (q == _Q1 or q == _Q2) else a
    b = -b if q >= _Q2 else b
    return a, b


@njit(inline="always", cache=True, error_model="numpy")
def _cossin64(x):
    """(cos t, sin t) for the angle t that the uint32 word x encodes (see above)."""
    p = ((np.float64(x & _MASK30) + 0.5) * _INV_2_30 - 0.5) * _PIO2
    z = p * p
    s = p + p * z * (_S1 + z * (_S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * _S6)))))
    c = 1.0 - 0.5 * z + z * z * (_C1 + z * (_C2 + z * (_C3 + z * (_C4 + z * (_C5 + z * _C6)))))
    return _quadrant(x >> _S30, c, s)


@njit(inline="always", cache=True, error_model="numpy")
def _cossin32(x):
    """float32 version of :func:`_cossin64`."""
    p = ((np.float32(x & _MASK30) + _HALF_F) * _INV_2_30_F - _HALF_F) * _PIO2_F
    z = p * p
    s = p + p * z * (_S1F + z * (_S2F + z * (_S3F + z * _S4F)))
    c = _ONE_F - _HALF_F * z + z * z * (_C1F + z * (_C2F + z * (_C3F + z * _C4F)))
    return _quadrant(x >> _S30, c, s)


def _box_muller(words, z, m, scale):
    """z[t, k] (t = 0..3) = the four normals of counter k < m from its four words."""


@overload(_box_muller, jit_options={"error_model": "numpy"})
def _box_muller_impl(words, z, m, scale):
    single = z.dtype == types.float32
    radius = _radius32 if single else _radius64
    cossin = _cossin32 if single else _cossin64
    cast = np.float32 if single else np.float64

    def impl(words, z, m, scale):
        sc = cast(scale)
        for k in range(m):
            r0 = radius(words[0, k]) * sc
            r2 = radius(words[2, k]) * sc
            c1, s1 = cossin(words[1, k])
            c3, s3 = cossin(words[3, k])
            z[0, k] = r0 * c1
            z[1, k] = r0 * s1
            z[2, k] = r2 * c3
            z[3, k] = r2 * s3
    return impl


@njit(cache=True, error_model="numpy")
def _normal_span(dst, words, z, g_lo, g_hi, row0, jl, jh, st, k0, k1, scale):
    """dst[r] = normal of row row0 + r for the rows of counters g_lo:g_hi (clipped to dst)."""
    m = g_hi - g_lo
    for k in range(m):
        x0, x1, x2, x3 = philox4x32(np.uint64(g_lo + k), jl, jh, st, k0, k1)
        words[0, k] = x0
        words[1, k] = x1
        words[2, k] = x2
        words[3, k] = x3
    _box_muller(words, z, m, scale)
    # Scatter back: row 4 g + t of counter g, lane t. Full counters first, then partial ones.
    nrows = dst.shape[0]
    k_lo = max(0, (row0 - 4 * g_lo + 3) // 4)       # first counter whose 4 rows are all in dst
    k_hi = min(m, (row0 + nrows - 4 * g_lo) // 4)   # one past the last such counter
    base = 4 * g_lo - row0
    for k in range(k_lo, k_hi):
        r = base + 4 * k
        dst[r] = z[0, k]
        dst[r + 1] = z[1, k]
        dst[r + 2] = z[2, k]
        dst[r + 3] = z[3, k]
    for k in range(0, min(k_lo, m)):
        _scatter_partial(dst, z, k, base + 4 * k)
    for k in range(max(k_hi, k_lo), m):
        _scatter_partial(dst, z, k, base + 4 * k)


@njit(inline="always", cache=True)
def _scatter_partial(dst, z, k, r):
    """The rows r..r+3 of counter k that fall inside dst."""
    for t in range(4):
        if 0 <= r + t < dst.shape[0]:
            dst[r + t] = z[t, k]


@parallel_njit(error_model="numpy")
def fill_normal(out, seed, stream, row0, col0, scale):
    """out[c, r] = scale * N(0, 1) entry (row0 + r, col0 + c) of the stream.

    Work is split into spans of _SPAN counters of one column, handed out in contiguous runs to
    the threads; each run owns small word/normal buffers that stay in L1.
    """
    ncols, nrows = out.shape
    if ncols == 0 or nrows == 0:
        return
    k0, k1, st = _keys(seed, stream)
    g0 = row0 // 4
    g1 = (row0 + nrows + 3) // 4
    nspan = (g1 - g0 + _SPAN - 1) // _SPAN
    nitems = ncols * nspan
    nparts = min(nitems, _PARTS)
    for part in prange(nparts):
        words = np.empty((4, _SPAN), np.uint32)
        z = np.empty((4, _SPAN), out.dtype)
        for item in range(part * nitems // nparts, (part + 1) * nitems // nparts):
            c, s = divmod(item, nspan)
            j = np.uint64(col0 + c)
            g_lo = g0 + s * _SPAN
            _normal_span(out[c], words, z, g_lo, min(g1, g_lo + _SPAN), row0,
                         j & _MASK32, j >> _S32, st, k0, k1, scale)


@parallel_njit()
def fill_sign(out, seed, stream, row0, col0, scale):
    """out[c, r] = scale * (+-1) entry (row0 + r, col0 + c): one bit of Philox output each."""
    ncols, nrows = out.shape
    k0, k1, st = _keys(seed, stream)
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


@njit(inline="always", cache=True)
def _bounded(x, s):
    """x * s >> 32: a uniform integer in [0, s) from a uint32 word, and the low word that
    Lemire's rejection test (accept when low >= 2^32 mod s) looks at."""
    m = x * s
    return m >> _S32, m & _MASK32


@njit(inline="always", cache=True)
def _next_word(x, pos, g, jl, jh, st, k0, k1):
    """The next word of the sequence: word pos of x = philox(g, ...), moving on to g + 1."""
    if pos == 4:
        g += 1
        x = philox4x32(np.uint64(g), jl, jh, st, k0, k1)
        pos = 0
    return x[pos], x, pos + 1, g


@njit(cache=True)
def _choose_column(dst, mask, high, jl, jh, st, k0, k1):
    """dst = sorted distinct integers drawn uniformly from [0, high) (Floyd's algorithm), the
    words coming in order from the counters (0, jl, jh, st), (1, jl, jh, st), ...; the bounded
    draws are exactly uniform (Lemire's rejection). ``mask`` (length high) is all False on entry
    and on exit."""
    k = dst.shape[0]
    g = 0
    x = philox4x32(np.uint64(0), jl, jh, st, k0, k1)
    pos = 0
    for q in range(k):
        s = np.uint64(high - k + q + 1)  # draw from [0, s) where s - 1 is Floyd's i
        w, x, pos, g = _next_word(x, pos, g, jl, jh, st, k0, k1)
        v, low = _bounded(w, s)
        if low < s:  # rare: only then is the (slow) modulo needed
            threshold = ((_MASK32 + np.uint64(1)) - s) % s
            while low < threshold:
                w, x, pos, g = _next_word(x, pos, g, jl, jh, st, k0, k1)
                v, low = _bounded(w, s)
        v = s - np.uint64(1) if mask[v] else v
        mask[v] = True
        dst[q] = v
    for q in range(k):
        mask[dst[q]] = False
    _insertion_sort(dst)


@njit(inline="always", cache=True)
def _insertion_sort(a):
    for i in range(1, a.shape[0]):
        v = a[i]
        j = i - 1
        while j >= 0 and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


@parallel_njit()
def fill_choice(out, seed, stream, col0, high):
    """out[c] = ``out.shape[1]`` distinct integers of [0, high), sorted, drawn uniformly for
    column col0 + c (a uniform random subset per column; needs out.shape[1] <= high)."""
    ncols, k = out.shape
    if k > high:
        raise ValueError("cannot draw more distinct values than high")
    k0, k1, st = _keys(seed, stream)
    nparts = min(ncols, _PARTS)
    for part in prange(nparts):
        mask = np.zeros(high, np.bool_)
        for c in range(part * ncols // nparts, (part + 1) * ncols // nparts):
            j = np.uint64(col0 + c)
            _choose_column(out[c], mask, high, j & _MASK32, j >> _S32, st, k0, k1)


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
