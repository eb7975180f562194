"""The counter-based kernels of randla.sketch.rng against a plain NumPy reference, for any
blocking and thread count, and the statistics of what they generate."""
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from randla.sketch import rng as krng

MASK = np.uint64(0xFFFFFFFF)


def philox_ref(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on uint64 arrays holding 32-bit words (Salmon et al. 2011)."""
    c0, c1, c2, c3, k0, k1 = (np.asarray(v, np.uint64) for v in (c0, c1, c2, c3, k0, k1))
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c0
        p1 = np.uint64(0xCD9E8D57) * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & MASK,
                          (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & MASK)
        k0 = (k0 + np.uint64(0x9E3779B9)) & MASK
        k1 = (k1 + np.uint64(0xBB67AE85)) & MASK
    return np.stack([c0, c1, c2, c3])


def words_ref(seed, stream, g, col):
    """The four words of counter (g, col_lo, col_hi, stream) under the key of seed."""
    col = np.uint64(col)
    return philox_ref(g, col & MASK, col >> np.uint64(32), np.uint64(stream),
                      np.uint64(seed) & MASK, np.uint64(seed) >> np.uint64(32))


def normal_ref(seed, stream, rows, cols):
    """Entries (rows x cols) by the documented Box-Muller map, with NumPy's log/cos/sin."""
    r = np.arange(*rows)
    out = np.empty((len(r), cols[1] - cols[0]))
    for c, col in enumerate(range(*cols)):
        w = words_ref(seed, stream, (r // 4).astype(np.uint64), col).astype(np.float64)
        pair = (r % 4) // 2
        x_r = w[2 * pair, np.arange(len(r))]
        x_a = w[2 * pair + 1, np.arange(len(r))].astype(np.uint64)
        radius = np.sqrt(-2 * np.log((x_r + 0.5) * 2.0**-32))
        q = (x_a >> np.uint64(30)).astype(np.float64)
        f = ((x_a & np.uint64(2**30 - 1)).astype(np.float64) + 0.5) * 2.0**-30
        t = np.pi / 2 * q + (f - 0.5) * np.pi / 2
        out[:, c] = radius * np.where(r % 2 == 0, np.cos(t), np.sin(t))
    return out


def test_philox_known_answers():
    # Known-answer vectors of the Random123 distribution (kat_vectors, philox4x32 10 rounds).
    cases = [((0, 0, 0, 0), (0, 0), "6627e8d5 e169c58d bc57ac4c 9b00dbd8"),
             ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, "408f276d 41c83b0e a20bc7c6 6d5451fd"),
             ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
              "d16cfe09 94fdcceb 5001e420 24126ea1")]
    for c, k, want in cases:
        got = numba.njit(lambda a, b: krng.philox4x32(a[0], a[1], a[2], a[3], b[0], b[1]))(
            np.array(c, np.uint64), np.array(k, np.uint64))
        assert " ".join(f"{int(v):08x}" for v in got) == want
        assert " ".join(f"{int(v):08x}" for v in philox_ref(*c, *k)) == want


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 4e-7)])
def test_normal_kernel_matches_numpy_reference(dtype, rtol, rng):
    seed = int(rng.integers(2**63))
    rows, cols = (3, 90), (int(rng.integers(2**40)), 0)
    cols = (cols[0], cols[0] + 13)
    got = krng.normal_block(seed, 5, rows, cols, dtype)
    ref = normal_ref(seed, 5, rows, cols)
    assert got.dtype == dtype
    # relative to max(1, |z|): the radius and the angle each carry ~1 ulp
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol)


def test_float32_is_float64_rounded(rng):
    seed = int(rng.integers(2**63))
    a = krng.normal_block(seed, 0, (0, 512), (0, 300), np.float64)
    b = krng.normal_block(seed, 0, (0, 512), (0, 300), np.float32)
    np.testing.assert_allclose(b, a, rtol=4e-7, atol=4e-7)


@settings(max_examples=30, deadline=None)
@given(r0=st.integers(0, 40), nr=st.integers(0, 70), c0=st.integers(0, 2**40),
       nc=st.integers(0, 9), seed=st.integers(0, 2**63 - 1),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_any_row_and_column_window_is_the_same(r0, nr, c0, nc, seed, dtype):
    big = krng.normal_block(seed, 1, (0, 120), (c0, c0 + 10), dtype)
    part = krng.normal_block(seed, 1, (r0, r0 + nr), (c0, c0 + nc), dtype)
    assert np.array_equal(part, big[r0:r0 + nr, :nc])


def test_long_columns_and_thread_count_give_identical_bits():
    # a single 20000-row column spans many work items; results must not depend on threads
    shapes = [((0, 20000), (7, 8)), ((5, 1029), (0, 300)), ((1, 2), (0, 5000))]
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = [krng.normal_block(99, 0, r, c, np.float64) for r, c in shapes]
        one_f32 = krng.normal_block(99, 0, (0, 20000), (7, 8), np.float32)
        choice1 = np.empty((3000, 8), np.int32)
        krng.fill_choice(choice1, 4, 2, 10, 200)
        numba.set_num_threads(before)
        many = [krng.normal_block(99, 0, r, c, np.float64) for r, c in shapes]
        choice2 = np.empty((3000, 8), np.int32)
        krng.fill_choice(choice2, 4, 2, 10, 200)
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, many):
        assert np.array_equal(a, b)
    assert np.array_equal(one_f32, krng.normal_block(99, 0, (0, 20000), (7, 8), np.float32))
    assert np.array_equal(choice1, choice2)
    # and the long column equals the same column generated in short row windows
    long_col = one[0][:, 0]
    pieces = np.concatenate([krng.normal_block(99, 0, (i, min(20000, i + 777)), (7, 8))[:, 0]
                             for i in range(0, 20000, 777)])
    assert np.array_equal(long_col, pieces)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_normal_statistics(dtype, rng):
    """Moments, a KS test, an equiprobable-bin chi-square and tail frequencies on 2^22 draws."""
    z = krng.normal_block(int(rng.integers(2**63)), 0, (0, 1024), (0, 4096), dtype)
    z = z.astype(np.float64).ravel()
    N = z.size
    assert abs(z.mean()) < 6 / np.sqrt(N)
    assert abs(z.var() - 1) < 6 * np.sqrt(2 / N)
    assert abs(stats.skew(z)) < 6 * np.sqrt(6 / N)
    assert abs(stats.kurtosis(z)) < 6 * np.sqrt(24 / N)
    assert stats.kstest(z[:500_000], "norm").pvalue > 1e-6
    edges = stats.norm.ppf(np.linspace(0, 1, 1001))
    counts = np.histogram(z, edges)[0]
    assert stats.chisquare(counts).pvalue > 1e-6
    for t in (2.0, 3.0, 4.0, 4.5):
        expect = N * 2 * stats.norm.sf(t)
        assert abs(np.sum(np.abs(z) > t) - expect) < 6 * np.sqrt(expect) + 1
    # the two normals of one Box-Muller pair (rows 4g, 4g+1) are independent
    pairs = z.reshape(-1, 2)
    assert abs(np.corrcoef(pairs[:, 0] ** 2, pairs[:, 1] ** 2)[0, 1]) < 6 / np.sqrt(N / 2)
    assert abs(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1]) < 6 / np.sqrt(N / 2)


def test_radius_at_extreme_words():
    # words near 0 (the largest radii), near 2^32 (radius -> 0) and around 2^31: full precision
    x = np.concatenate([np.arange(0, 1000), 2**32 - 1 - np.arange(1000),
                        np.arange(2**31 - 500, 2**31 + 500)]).astype(np.uint32)
    u = (x.astype(np.float64) + 0.5) * 2.0**-32
    ref = np.sqrt(-2 * np.log(u))
    for fn, rtol in ((krng._radius64, 1e-15), (krng._radius32, 2e-7)):
        got = numba.njit(lambda a: np.array([fn(v) for v in a]))(x)
        np.testing.assert_allclose(got, ref, rtol=rtol)


def choice_ref(seed, stream, col, high, k):
    """Floyd's algorithm with Lemire's exact bounded draws; the words come in order from the
    counters g = 0, 1, ... of the reference Philox."""
    seq = (int(w) for g in range(10**9) for w in words_ref(seed, stream, np.uint64(g), col))
    chosen = []
    for i in range(high - k, high):
        s = i + 1
        while True:
            m = next(seq) * s
            if (m & 0xFFFFFFFF) >= (2**32 - s) % s:
                break
        v = m >> 32
        chosen.append(i if v in chosen else v)
    return sorted(chosen)


def test_choice_matches_reference_and_is_uniform(rng):
    seed = int(rng.integers(2**63))
    out = np.empty((6, 5), np.int32)
    krng.fill_choice(out, seed, 3, 77, 11)
    for c in range(6):
        assert out[c].tolist() == choice_ref(seed, 3, 77 + c, 11, 5)
    # uniform over subsets: each value, and each pair of a 2-subset of 5, equally likely
    many = np.empty((50_000, 3), np.int32)
    krng.fill_choice(many, seed, 3, 0, 10)
    assert np.all(np.diff(many, axis=1) > 0)
    assert stats.chisquare(np.bincount(many.ravel(), minlength=10)).pvalue > 1e-6
    pairs = np.empty((50_000, 2), np.int32)
    krng.fill_choice(pairs, seed, 3, 0, 5)
    codes = np.bincount(pairs[:, 0] * 5 + pairs[:, 1], minlength=25)
    assert stats.chisquare(codes[codes > 0]).pvalue > 1e-6 and np.count_nonzero(codes) == 10
    with pytest.raises(ValueError):
        krng.fill_choice(np.empty((1, 4), np.int32), seed, 3, 0, 3)


def test_signs_match_reference(rng):
    seed = int(rng.integers(2**63))
    got = krng.sign_block(seed, 2, (0, 300), (5, 9))
    for c, col in enumerate(range(5, 9)):
        bits = []
        for g in range(3):
            for w in words_ref(seed, 2, np.uint64(g), col):
                bits += [(int(w) >> b) & 1 for b in range(32)]
        assert np.array_equal(got[:, c], np.where(np.array(bits[:300]) == 1, 1.0, -1.0))


def test_fill_into_strided_views():
    # the optical medium fills the real and imaginary parts of a complex array in place
    out = np.empty((7, 33), np.complex64)
    parts = out.view(np.float32)
    krng.fill_normal(parts[:, 0::2], 3, 0, 5, 11, 0.5)
    krng.fill_normal(parts[:, 1::2], 3, 1, 5, 11, 0.5)
    assert np.array_equal(out.real.T, krng.normal_block(3, 0, (5, 38), (11, 18), np.float32, 0.5))
    assert np.array_equal(out.imag.T, krng.normal_block(3, 1, (5, 38), (11, 18), np.float32, 0.5))
