"""O_DIRECT row panels with read-ahead: the same numbers as the memory map, whatever the order
of requests, with buffers reused only once no panel refers to them."""
import sys

import numpy as np
import pytest

import randla
from randla.io import NpyRows, open_matrix
from randla.io.direct import MAX_BUFFERS, DirectPanelReader, direct_io_supported

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="O_DIRECT is Linux")


@pytest.fixture
def npy(tmp_path, rng):
    # 1001 columns of float32: rows are not a multiple of 4096 bytes, nor is the header
    A = rng.standard_normal((997, 1001)).astype(np.float32)
    path = tmp_path / "a.npy"
    np.save(path, A)
    assert direct_io_supported(path)
    return path, A


def test_panels_equal_the_file_in_any_order(npy, rng):
    path, A = npy
    reader = NpyRows(path, direct=True)
    assert reader.direct
    panels = [(i, min(997, i + 113)) for i in range(0, 997, 113)]
    kept = []
    for start, stop in panels + [panels[j] for j in rng.permutation(len(panels))]:
        got = reader[start:stop, 0:1001]
        kept.append((got, A[start:stop]))          # every panel stays alive
    for got, want in kept:
        np.testing.assert_array_equal(got, want)
    for start, stop in [(5, 6), (990, 997), (0, 997)]:
        np.testing.assert_array_equal(reader[start:stop, 3:17], A[start:stop, 3:17])


def test_buffers_are_reused_once_panels_are_dropped(npy):
    path, A = npy
    reader = DirectPanelReader(str(path), np.load(path, mmap_mode="r").offset, A.shape, A.dtype)
    for _ in range(3):
        for i in range(0, 997, 100):
            np.testing.assert_array_equal(reader.rows(i, min(997, i + 100)), A[i:i + 100])
    assert len(reader._buffers) <= 3       # current panel, the one read ahead, one spare
    held = [reader.rows(i, i + 50) for i in range(0, 950, 50)]    # 19 live panels
    for i, panel in zip(range(0, 950, 50), held):
        np.testing.assert_array_equal(panel, A[i:i + 50])
    assert len(reader._buffers) <= MAX_BUFFERS                      # the rest were one-off
    reader.close()
    reader.close()                         # closing twice closes nothing else


def test_a_file_cut_short_after_opening_is_an_error(npy):
    path, A = npy
    reader = NpyRows(path, direct=True)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    with pytest.raises(ValueError, match="ended early"):
        reader[900:997, 0:1001]


def test_rsvd_through_direct_reads_equals_the_memory_map(npy):
    path, A = npy
    A = A.astype(np.float64) * 0.5 ** np.arange(1001)[None, :] ** 0.3
    np.save(path, A)
    got = randla.rsvd(open_matrix(path, panel_bytes=100 * 8 * 1001, direct=True), 5, rng=2,
                      compute=True)
    ref = randla.rsvd(open_matrix(path, panel_bytes=100 * 8 * 1001, direct=False), 5, rng=2,
                      compute=True)
    np.testing.assert_array_equal(got.S, ref.S)
    np.testing.assert_array_equal(got.U, ref.U)


def test_read_ahead_follows_forward_and_backward_walks(npy):
    path, A = npy
    reader = DirectPanelReader(str(path), np.load(path, mmap_mode="r").offset, A.shape, A.dtype)
    hits = []
    for order in (range(0, 997, 100), reversed(range(0, 997, 100))):
        for i in order:
            hits.append(reader._pending is not None and reader._pending[0][0] == i)
            np.testing.assert_array_equal(reader.rows(i, min(997, i + 100)), A[i:i + 100])
    # forward: every panel but the first is read ahead; backward, from the last panel
    # (requested twice at the turn, so nothing is guessed) every one after the next
    assert hits == [False] + [True] * 9 + [False, False] + [True] * 8, hits
    reader.close()
