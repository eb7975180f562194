"""The OPU as a device to plan on: the DMD limit and column blocks, metering, the H cache, the
seed/rng names, and device mode on sparse rows (densify or a clear refusal)."""
import threading

import numpy as np
import pytest
import scipy.sparse as sp

import opu
import randla
from opu import DMD_MIRRORS, OPU, Medium, OpticalSketch, metering
from opu.sketcher import participation


def _seed(rng):
    return int(rng.integers(0, 2**62))


# -- the DMD limit -----------------------------------------------------------------------------
def test_dmd_limit_is_enforced():
    assert DMD_MIRRORS == 1_039_680 == opu.DMD_PIXELS
    with pytest.raises(ValueError, match="1,039,680 mirrors"):
        OPU(DMD_MIRRORS + 1, 10, seed=0)
    OPU(DMD_MIRRORS, 10, seed=0)  # the real device is fine
    with pytest.raises(ValueError, match="DMD"):
        opu.features(sp.csr_matrix((1, DMD_MIRRORS + 1)), 4, seed=0)


def test_wide_sketch_is_split_into_blocks_that_fit_the_dmd():
    S = OpticalSketch(3, 2_500_000, seed=1)
    assert S.n_blocks == 4 and S.block_width * S.n_blocks >= S.n
    for o in S.opus:
        assert o.n_in == S.block_width + S.n_anchor <= DMD_MIRRORS
    assert [o.medium.row0 for o in S.opus] == [0, 3, 6, 9]  # own camera rows per block
    assert OpticalSketch(3, 1000, seed=1).n_blocks == 1


def test_medium_region_of_interest_is_rows_of_the_whole(rng):
    seed = _seed(rng)
    whole = Medium(300, 40, seed=seed).block(dtype=np.complex128)
    for row0 in (1, 7, 13):
        part = Medium(300, 20, seed=seed, row0=row0).block(dtype=np.complex128)
        np.testing.assert_array_equal(part, whole[row0:row0 + 20])


def test_blocks_sum_digitally(rng, monkeypatch):
    """With a small DMD, S is [S_0 | S_1 | S_2], S_b on camera rows b d ... (b + 1) d - 1, the
    anchor after the block's input mirrors, and S @ X sums the blocks' projections."""
    monkeypatch.setattr("opu.sketcher.DMD_MIRRORS", 300)
    d, n, seed = 6, 500, _seed(rng)
    S = OpticalSketch(d, n, seed=seed, n_anchor=100)
    assert S.n_blocks == 3 and S.block_width == 167
    H = Medium(S.block_width + 100, 3 * d, seed=seed).block(dtype=np.complex128)
    ref = []
    for b in range(3):
        Hb = H[b * d:(b + 1) * d]
        phase = np.exp(-1j * np.angle(Hb[:, S.block_width:].sum(axis=1)))
        cols = min(S.block_width, n - b * S.block_width)
        ref.append(np.sqrt(2 / d) * (phase[:, None] * Hb[:, :cols]).real)
    ref = np.hstack(ref)
    np.testing.assert_allclose(S.to_dense(), ref, rtol=1e-10, atol=1e-12)
    X = rng.standard_normal((n, 4))
    np.testing.assert_allclose(S @ X, ref @ X, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(S @ sp.csr_matrix(X), ref @ X, rtol=1e-9, atol=1e-9)
    with metering() as m:
        S @ X
    assert m.frames == 3 * 2 * 2 * 8 * 4 and m.calls == 3  # frames counted per block


def test_device_blocks_match_the_nominal_matrix(rng, monkeypatch):
    monkeypatch.setattr("opu.sketcher.DMD_MIRRORS", 1200)
    d, n = 60, 1500
    X = rng.standard_normal((n, 3))
    S = OpticalSketch(d, n, seed=_seed(rng), rng=_seed(rng), mode="device")
    assert S.n_blocks == 2
    Y = S @ X
    nominal = S.to_dense() @ X
    assert np.linalg.norm(Y - nominal) / np.linalg.norm(nominal) < 0.15
    assert S.stats.frames == sum(o.stats.frames for o in S.opus) > 2 * 2 * 2 * 8 * 3


# -- metering ----------------------------------------------------------------------------------
def test_metering_counts_every_path(rng):
    X = (rng.random((5, 200)) < 0.5).astype(np.uint8)
    dev = OPU(400, 30, seed=0, rng=1).fit1d(n_features=200)
    A = rng.standard_normal((40, 300))
    with metering() as outer:
        with metering() as m:
            dev.transform(X)
        assert (m.frames, m.calls, m.modelled_frames) == (5, 1, 0)
        assert m.device_seconds == pytest.approx(5 * dev.frametime_us * 1e-6)
        assert m.energy_joules == pytest.approx(m.device_seconds * dev.power_w)
        with metering() as m2:
            randla.rsvd(A, 3, sketch="optical", rng=0)  # the registry name, ideal mode
        assert m2.frames > 0 and m2.frames == m2.modelled_frames and m2.calls >= 1
        with metering() as m3:
            S = OpticalSketch(10, 300, seed=2, rng=3, mode="device")
            S @ A.T
        # device mode: 2 frames per plane, 16 planes, 40 vectors, plus calibration frames
        assert m3.frames >= 2 * 16 * 40 and m3.modelled_frames == 0
        with metering() as m4:
            opu.features(X, 10, seed=0)
        assert m4.frames == 5
    assert outer.frames == m.frames + m2.frames + m3.frames + m4.frames
    assert outer.wall_seconds > 0 and outer.cpu_joules(10.0) == pytest.approx(
        10 * outer.wall_seconds)
    dev.transform(X)  # outside: nothing recorded
    assert outer.frames == m.frames + m2.frames + m3.frames + m4.frames


def test_ideal_mode_reports_the_frames_the_device_would_take(rng):
    A = rng.standard_normal((7, 300))
    ideal = OpticalSketch(10, 300, seed=1)
    with metering() as m:
        ideal.apply_right(A)
    assert m.frames == ideal.frames_for(batch=7) == 2 * 2 * 8 * 7
    device = OpticalSketch(10, 300, seed=1, mode="device")
    device.apply_right(A[:1])  # calibrate
    with metering() as m:
        device.apply_right(A)
    assert m.frames == ideal.frames_for(batch=7)


def test_metering_is_per_thread():
    dev = OPU(100, 5, seed=0).fit1d(n_features=100)
    X = np.ones((3, 100), np.uint8)
    seen = {}

    def other():
        with metering() as m:
            dev.transform(X[:1])
        seen["other"] = m.frames

    with metering() as m:
        t = threading.Thread(target=other)
        t.start()
        t.join()
        dev.transform(X)
    assert m.frames == 3 and seen["other"] == 1


# -- the H cache -------------------------------------------------------------------------------
@pytest.mark.parametrize("cache_rows", [0, 37, 200])
def test_partial_cache_gives_the_same_frames(cache_rows, rng):
    seed = _seed(rng)
    X = (rng.random((4, 200)) < 0.5).astype(np.uint8)
    ref = OPU(400, 30, seed=seed).fit1d(n_features=200).field(X)
    dev = OPU(400, 30, seed=seed, cache_bytes=cache_rows * 30 * 8).fit1d(n_features=200)
    np.testing.assert_allclose(dev.field(X), ref, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(dev.field(sp.csr_matrix(X)), ref, rtol=1e-5, atol=1e-4)
    kept = dev._cache["h_eff"]
    assert (0 if kept is None else kept.shape[0]) == min(cache_rows, 200)


def test_cached_medium_is_not_regenerated(rng, monkeypatch):
    dev = OPU(2000, 50, seed=0).fit1d(n_features=2000)
    X = (rng.random((3, 2000)) < 0.5).astype(np.uint8)
    dev.transform(X)
    calls = []
    monkeypatch.setattr(Medium, "_tile_t", lambda *a, **k: calls.append(1) or 1 / 0)
    dev.transform(X)
    dev.transform(X[:1])
    assert not calls


# -- names -------------------------------------------------------------------------------------
def test_seed_names_the_medium_rng_the_calls(rng):
    a = OpticalSketch(5, 100, seed=3, rng=4)
    assert a == OpticalSketch(5, 100, seed=3, rng=99) == OpticalSketch(5, 100, rng=3)
    assert np.array_equal(a.to_dense(), randla.sketch.make("optical", 5, 100, rng=3).to_dense())
    assert OPU(100, 5, rng=7).medium.seed == OPU(100, 5, rng=7).medium.seed  # drawn from rng
    np.testing.assert_array_equal(opu.features(np.eye(3), 4, seed=5),
                                  opu.features(np.eye(3), 4, rng=5))
    X = rng.standard_normal((4, 100))
    with pytest.warns(DeprecationWarning, match="noise_rng"):
        old = OpticalSketch(5, 100, rng=3, noise_rng=4, mode="device")
    new = OpticalSketch(5, 100, seed=3, rng=4, mode="device")
    assert old == new
    np.testing.assert_array_equal(old.apply_right(X), new.apply_right(X))


# -- sparse rows in device mode ----------------------------------------------------------------
def test_participation_ratio():
    x = np.zeros((3, 50))
    x[0, :10] = 2.0
    x[1] = 1.0
    assert np.allclose(participation(x)[:2], [10, 50]) and participation(x)[2] == np.inf
    np.testing.assert_allclose(participation(sp.csr_matrix(x)), participation(x))


def test_device_mode_refuses_sparse_rows_with_advice(rng):
    n = 20_000
    X = sp.random(3, n, density=1e-3, random_state=rng, format="csr")
    S = OpticalSketch(20, n, seed=1, mode="device")
    with pytest.raises(ValueError, match="densify=True"):
        S.apply_right(X)
    S.apply_right(rng.standard_normal((2, n)))  # dense rows pass


def test_densified_device_mode_is_accurate_on_sparse_rows(rng):
    """Density 1e-4: the refused case above, within 10% of the ideal projection once densified
    (see the user guide for the table over densities and sizes)."""
    n, d = 200_000, 40
    X = sp.random(8, n, density=1e-4, random_state=rng, format="csr",
                  data_rvs=rng.standard_normal)
    seed = _seed(rng)
    S = OpticalSketch(d, n, seed=seed, rng=_seed(rng), mode="device", densify=True)
    ideal = OpticalSketch(d, n, seed=seed, densify=True)
    Y, ref = S.apply_right(X), ideal.apply_right(X) * S.mask
    assert np.linalg.norm(Y - ref) / np.linalg.norm(ref) < 0.12
    # the densified S is still the nominal matrix S_b Q_b, and i.i.d. N(0, 1/d)
    small = OpticalSketch(30, 700, seed=seed, densify=True)
    D = small.to_dense()
    Xs = rng.standard_normal((700, 3))
    np.testing.assert_allclose(small @ Xs, D @ Xs, rtol=1e-9, atol=1e-9)
    assert abs((D**2).mean() * 30 - 1) < 0.05
