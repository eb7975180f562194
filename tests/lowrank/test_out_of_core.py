"""Out-of-core products and the single-pass SVD against in-memory references."""
import dask.array as da
import h5py
import numpy as np
import pytest
import scipy.sparse as sp
import zarr

import randla
from randla.lowrank import SketchySVD, sketchy_svd
from randla.operators import DaskOperator
from randla.sketch import make

CHUNKINGS = [(97, 61), (30, 17), (7, 61), (97, 5)]


def _spectrum_matrix(rng, m, n, s, dtype=np.float64):
    cplx = np.dtype(dtype).kind == "c"
    draw = (lambda *sh: rng.standard_normal(sh) + 1j * rng.standard_normal(sh)) if cplx \
        else (lambda *sh: rng.standard_normal(sh))
    U = np.linalg.qr(draw(m, len(s)))[0]
    V = np.linalg.qr(draw(n, len(s)))[0]
    return ((U * s) @ V.conj().T).astype(dtype)


def _tol(dtype):
    return 2e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-10


@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_products_equal_in_memory_for_every_chunking(rng, chunks, dtype):
    A = _spectrum_matrix(rng, 97, 61, rng.uniform(1, 2, 40), dtype)
    op = DaskOperator(da.from_array(A, chunks=chunks))
    X = rng.standard_normal((61, 4)).astype(dtype)
    Y = rng.standard_normal((97, 4)).astype(dtype)
    Ah = A.conj().T
    S = make("gaussian", 9, 61, rng=int(rng.integers(1 << 30)))
    T = make("rademacher", 9, 97, rng=int(rng.integers(1 << 30)))
    pairs = [(op.matmat(X), A @ X), (op.rmatmat(Y), Ah @ Y), (op.gram_matmat(X), Ah @ (A @ X)),
             (op.sketch_right(S), S.apply_right(A)), (op.sketch_left(T), T.apply(A)),
             (op.column_means(), A.mean(axis=0))]
    for got, want in pairs:
        assert got.dtype == want.dtype  # float32 stays float32
        np.testing.assert_allclose(got, want, rtol=0, atol=_tol(dtype) * np.abs(want).max())
    assert op.fro_norm() == pytest.approx(np.linalg.norm(A), rel=_tol(dtype))
    assert op.passes == 7  # one pass over A per product, the fused A^H A X included


@pytest.mark.parametrize("chunks", CHUNKINGS)
def test_sketch_of_dask_array_is_lazy_and_equals_in_memory(rng, chunks):
    A = rng.standard_normal((97, 61))
    S = make("gaussian", 12, 97, rng=3)
    Y = S @ da.from_array(A, chunks=chunks)
    assert isinstance(Y, da.Array)
    np.testing.assert_allclose(Y.compute(), S @ A, rtol=0, atol=1e-12 * np.abs(S @ A).max())
    Z = da.from_array(A, chunks=chunks).T @ S.T  # X @ S.T with a dask X
    np.testing.assert_allclose(np.asarray(Z), (S @ A).T, rtol=0, atol=1e-12 * np.abs(S @ A).max())


def test_rsvd_out_of_core_equals_in_memory(rng):
    s = 0.6 ** np.arange(40)
    A = _spectrum_matrix(rng, 300, 80, s)
    ref = randla.rsvd(A, 6, rng=5)
    results = []
    for chunks in [(300, 80), (64, 80), (50, 33)]:
        op = DaskOperator(da.from_array(A, chunks=chunks))
        results.append(randla.rsvd(op, 6, power_iters=2, rng=5))
        assert op.passes == 2 + 1  # fused A^H A X: one pass per power iteration, one for B
    for U, S, Vh in results:
        np.testing.assert_allclose(S, ref.S, rtol=1e-8)
        np.testing.assert_allclose(S, s[:6], rtol=1e-8)
        np.testing.assert_allclose(np.abs(U.T @ ref.U), np.eye(6), atol=1e-7)
        np.testing.assert_allclose(np.abs(Vh @ ref.Vh.T), np.eye(6), atol=1e-7)
    for U, _S, _Vh in results[1:]:  # chunking changes rounding only
        np.testing.assert_allclose(U, results[0].U, atol=1e-10)


def test_nan_in_chunked_input_is_rejected(rng):
    A = rng.standard_normal((50, 20))
    A[37, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        randla.rsvd(da.from_array(A, chunks=(10, 20)), 3, rng=0)
    with pytest.raises(ValueError, match="NaN"):
        sketchy_svd(da.from_array(A, chunks=(10, 20)), 3, rng=0)


def test_unknown_chunks_and_bad_shapes_are_rejected(rng):
    A = da.from_array(rng.standard_normal((20, 5)), chunks=5)
    with pytest.raises(ValueError, match="chunk sizes"):
        DaskOperator(A[A[:, 0] > 0])
    with pytest.raises(ValueError, match="2-D"):
        DaskOperator(da.ones(5))
    with pytest.raises(ValueError, match="rows"):
        make("gaussian", 3, 10, rng=0) @ A


# -- single pass -------------------------------------------------------------------------------
def _tail(s, j):
    return float(np.sum(s[j:] ** 2))


def test_sketchy_svd_within_published_bound(rng):
    """Tropp, Yurtsever, Udell, Cevher (SISC 2019), Thm 5.1 for real data (alpha = 1):
    E ||A - A_hat||_F^2 <= (s-1)/(s-k-1) * min_{rho < k-1} (k+rho-1)/(k-rho-1) tau_{rho+1}^2,
    and ||A - [A_hat]_r||_F <= tau_{r+1} + 2 ||A - A_hat||_F for the rank-r truncation."""
    m, n, r = 120, 90, 5
    sv = np.concatenate([np.ones(r), 0.5 ** np.arange(1, 60)]) + 1e-3
    A = _spectrum_matrix(rng, m, n, sv)
    k, s = 2 * r + 1, 4 * r + 3
    bound = (s - 1) / (s - k - 1) * min((k + rho - 1) / (k - rho - 1) * _tail(sv, rho)
                                        for rho in range(k - 1))
    errs = []
    for _ in range(20):
        sk = SketchySVD(A.shape, r, rng=rng)
        assert (sk.range_size, sk.core_size) == (k, s)
        sk.update(A)
        Q, C, P = sk.reconstruct()
        errs.append(np.linalg.norm(A - Q @ C @ P.T) ** 2)
        U, S, Vh = sk.finalize()
        assert np.linalg.norm(A - (U * S) @ Vh) <= np.sqrt(_tail(sv, r)) + 2 * np.sqrt(errs[-1]) + 1e-9
    assert np.mean(errs) <= bound


def test_sketchy_svd_exact_on_low_rank_and_one_pass(rng):
    A = rng.standard_normal((150, 6)) @ rng.standard_normal((6, 70))
    op = DaskOperator(da.from_array(A, chunks=(40, 30)))
    U, S, Vh = sketchy_svd(op, 6, rng=1)
    assert op.passes == 1
    np.testing.assert_allclose(S, np.linalg.svd(A, compute_uv=False)[:6], rtol=1e-8)
    np.testing.assert_allclose((U * S) @ Vh, A, atol=1e-9 * np.abs(A).max())


def test_sketchy_svd_same_for_every_chunking_and_in_memory(rng):
    A = _spectrum_matrix(rng, 130, 70, 0.8 ** np.arange(50))
    ref = sketchy_svd(A, 5, rng=7)
    for chunks in CHUNKINGS:
        got = sketchy_svd(da.from_array(A, chunks=chunks), 5, rng=7)
        np.testing.assert_allclose(got.S, ref.S, rtol=1e-10)
        np.testing.assert_allclose(got.U, ref.U, atol=1e-9)


def test_stream_of_updates_in_any_order_equals_one_shot(rng):
    """A += H_t: blocks overlapping, out of order, dense and sparse, sum to the same sketches."""
    A = rng.standard_normal((60, 40))
    one = SketchySVD(A.shape, 4, rng=11).update(A)
    sk = SketchySVD(A.shape, 4, rng=11)
    pieces = [(0, 0, A[:, :20]), (30, 20, A[30:, 20:]), (0, 20, A[:30, 20:] - 1.0)]
    pieces.append((0, 20, sp.csr_matrix(np.ones((30, 20)))))  # the sparse correction
    for i in rng.permutation(len(pieces)):
        r0, c0, H = pieces[i]
        sk.update(H, row_start=r0, col_start=c0)
    for got, want in [(sk.Y, one.Y), (sk.X, one.X), (sk.Z, one.Z)]:
        np.testing.assert_allclose(got, want, atol=1e-11)
    np.testing.assert_allclose(sk.finalize().S, one.finalize().S, rtol=1e-10)


def test_sketchy_dtypes_and_update_validation(rng):
    A32 = rng.standard_normal((50, 30)).astype(np.float32)
    U, S, Vh = sketchy_svd(A32, 3, rng=0)
    assert U.dtype == Vh.dtype == S.dtype == np.float32
    Ac = _spectrum_matrix(rng, 50, 30, 0.5 ** np.arange(8), np.complex128)
    U, S, Vh = sketchy_svd(da.from_array(Ac, chunks=(16, 10)), 8, rng=0)
    np.testing.assert_allclose((U * S) @ Vh, Ac, atol=1e-9)
    sk = SketchySVD((10, 8), 2, rng=0)
    with pytest.raises(ValueError, match="does not fit"):
        sk.update(np.ones((3, 3)), row_start=9)
    with pytest.raises(ValueError, match="NaN"):
        sk.update(np.full((2, 2), np.inf))
    with pytest.raises(ValueError, match="rank"):
        SketchySVD((10, 8), 9)


def test_memmaps_hdf5_and_zarr_arrays_stream_by_row_panels(rng, tmp_path, monkeypatch):
    A = _spectrum_matrix(rng, 400, 50, 0.7 ** np.arange(30))
    np.save(tmp_path / "a.npy", A)
    mm = np.load(tmp_path / "a.npy", mmap_mode="r")
    monkeypatch.setattr("randla.lowrank.sketchy._panel_rows", lambda shape, itemsize: 64)
    got = sketchy_svd(mm, 4, rng=2)
    np.testing.assert_allclose(got.S, sketchy_svd(A, 4, rng=2).S, rtol=1e-10)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["a"] = A
    zarr.save_array(str(tmp_path / "a.zarr"), A)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        for stored in (mm, f["a"], zarr.open_array(str(tmp_path / "a.zarr"), mode="r")):
            op = randla.as_operator(stored)
            assert isinstance(op, DaskOperator)
            U, S, Vh = randla.rsvd(op, 4, power_iters=1, rng=2)
            assert op.passes == 2
            np.testing.assert_allclose(S, 0.7 ** np.arange(4), rtol=1e-6)


def test_reigh_and_centered_rsvd_accept_dask_arrays(rng):
    Q = np.linalg.qr(rng.standard_normal((120, 120)))[0]
    ev = 0.7 ** np.arange(120)
    A = (Q * ev) @ Q.T
    got = randla.reigh(da.from_array(A, chunks=(32, 120)), 4, rng=1)
    np.testing.assert_allclose(np.sort(got.eigenvalues)[::-1], ev[:4], rtol=1e-8)
    B = rng.standard_normal((200, 30)) * 0.5 ** np.arange(30) + 3.0
    want = np.linalg.svd(B - B.mean(axis=0), compute_uv=False)[:3]
    got = randla.rsvd(da.from_array(B, chunks=(64, 30)), 3, center=True, power_iters=4, rng=2)
    np.testing.assert_allclose(got.S, want, rtol=1e-6)


# -- lazy U and passes= ------------------------------------------------------------------------
class _ChunkReads:
    """Counts chunk reads of a dask array (the synchronous scheduler runs in this process)."""

    def __init__(self, A, chunks):
        self.reads = 0
        self.nchunks = int(np.prod([len(c) for c in da.from_array(A, chunks=chunks).chunks]))
        self.array = da.from_array(A, chunks=chunks).map_blocks(self._read, dtype=A.dtype)

    def _read(self, block):
        self.reads += block.size > 0   # dask calls it on empty blocks to infer metadata
        return block

    @property
    def passes(self):
        return self.reads / self.nchunks


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_tall_dask_input_gives_a_lazy_u_equal_to_the_in_memory_result(rng, dtype):
    s = 0.8 ** np.arange(50)
    A = _spectrum_matrix(rng, 400, 90, s, dtype)
    counter = _ChunkReads(A, (70, 45))
    got = randla.rsvd(counter.array, 6, power_iters=2, rng=5)
    assert isinstance(got.U, da.Array) and counter.passes == 2 + 1  # U not evaluated yet
    assert got.U.chunks == ((70,) * 5 + (50,), (6,)) and got.U.dtype == A.dtype
    U = got.U.compute()
    assert counter.passes == 2 + 2
    ref = randla.rsvd(A, 6, power_iters=2, rng=5)
    tol = _tol(dtype)
    np.testing.assert_allclose(got.S, ref.S, rtol=tol)
    np.testing.assert_allclose(U.conj().T @ U, np.eye(6), atol=tol)
    np.testing.assert_allclose((U * got.S) @ got.Vh, (ref.U * ref.S) @ ref.Vh,
                               atol=tol * s[0])
    # the sign convention of a lazy U: the largest entry of each row of Vh is real positive
    top = got.Vh[np.arange(6), np.argmax(np.abs(got.Vh), axis=1)]
    np.testing.assert_allclose(top, np.abs(top), atol=tol)


def test_compute_true_and_the_fallbacks_give_u_in_memory(rng):
    A = _spectrum_matrix(rng, 300, 80, np.r_[np.ones(3), np.zeros(37)])   # rank 3 < l
    X = da.from_array(A, chunks=(64, 40))
    eager = randla.rsvd(X, 2, rng=1, compute=True)
    assert isinstance(eager.U, np.ndarray)
    for U, S, _Vh in (randla.rsvd(X, 2, rng=1),                   # rank-deficient sketch
                     randla.rsvd(X, 2, rng=1, method="krylov"),
                     randla.rsvd(X.T, 2, rng=1)):                     # wide
        assert isinstance(U, da.Array)
        np.testing.assert_allclose(S, [1, 1], rtol=1e-10)
        np.testing.assert_allclose(np.asarray(U).T @ np.asarray(U), np.eye(2), atol=1e-10)
    with pytest.raises(TypeError, match="compute"):
        randla.rsvd(X, 2, compute="yes")


def test_passes_chooses_the_method(rng):
    s = 0.7 ** np.arange(40)
    A = _spectrum_matrix(rng, 300, 80, s)
    one = randla.rsvd(A, 5, passes=1, rng=3)                 # in memory: sketchy_svd
    np.testing.assert_array_equal(one.S, sketchy_svd(A, 5, rng=3).S)
    for passes in (1, 2, 4):
        counter = _ChunkReads(A, (64, 80))
        got = randla.rsvd(counter.array, 5, passes=passes, rng=3, compute=passes > 1)
        assert counter.passes == passes and isinstance(got.U, (da.Array, np.ndarray)[passes > 1])
        # row panels: power_iters = passes - 1, B from A^H A X read with A X
        ref = randla.rsvd(A, 5, power_iters=passes - 1, rng=3)
        np.testing.assert_allclose(got.S, ref.S, rtol=1e-10)
        np.testing.assert_allclose(np.asarray(got.U) * got.S @ got.Vh, (ref.U * ref.S) @ ref.Vh,
                                   atol=1e-10)
    counter = _ChunkReads(A, (64, 80))                     # a lazy U: its evaluation is a read
    got = randla.rsvd(counter.array, 5, passes=3, rng=3)
    got.U.compute()
    assert counter.passes == 3
    np.testing.assert_allclose(got.S, randla.rsvd(A, 5, power_iters=1, rng=3).S, rtol=1e-10)
    ref = randla.rsvd(A, 5, power_iters=1, rng=3)            # in memory: 2 passes per iteration
    np.testing.assert_array_equal(randla.rsvd(A, 5, passes=4, rng=3).S, ref.S)
    for bad, err in [(dict(passes=0), "passes"), (dict(passes=2, power_iters=1), "not both"),
                     (dict(passes=1, tol=0.1), "single pass"),
                     (dict(passes=1, method="krylov"), "single pass")]:
        with pytest.raises(ValueError, match=err):
            randla.rsvd(A, 5, **bad)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_single_pass_on_a_numerically_rank_deficient_matrix(rng, dtype):
    """Rank 3 < k: the missing directions come back orthonormal with singular values 0."""
    A = _spectrum_matrix(rng, 300, 80, np.array([3.0, 2.0, 1.0]), dtype)
    counter = _ChunkReads(A, (64, 40))
    U, S, Vh = randla.rsvd(counter.array, 5, passes=1, rng=1)
    U = np.asarray(U)
    assert counter.passes == 1
    np.testing.assert_allclose(S, [3, 2, 1, 0, 0], atol=1e-7)
    np.testing.assert_allclose(U.conj().T @ U, np.eye(5), atol=1e-12)
    np.testing.assert_allclose(Vh @ Vh.conj().T, np.eye(5), atol=1e-12)
    np.testing.assert_allclose((U * S) @ Vh, A, atol=1e-7)


@pytest.mark.parametrize("kw, reads", [({"method": "krylov", "passes": 6}, 6),
                                       ({"center": True, "passes": 5}, 5),
                                       ({"center": True, "method": "krylov", "passes": 5}, 5)])
def test_passes_bound_the_reads_of_every_method(rng, kw, reads):
    A = _spectrum_matrix(rng, 300, 80, 0.7 ** np.arange(40))
    counter = _ChunkReads(A, (64, 80))
    randla.rsvd(counter.array, 5, rng=3, compute=True, **kw)
    assert counter.passes == reads
    with pytest.raises(ValueError, match="too few"):
        randla.rsvd(counter.array, 5, center=True, method="krylov", passes=2)
    with pytest.raises(ValueError, match="tol"):
        randla.rsvd(counter.array, 5, tol=0.1, passes=3)


def test_centered_out_of_core_with_large_means_matches_numpy(rng):
    """A^H A X minus the rank-one mean term cancels when the means are large: B must not be
    solved from it (it was off by 2000x in float32 with means ~100)."""
    A = (rng.standard_normal((4000, 200)) * 0.9 ** np.arange(200) + 100.0).astype(np.float32)
    got = randla.rsvd(da.from_array(A, chunks=(600, 200)), 10, center=True, power_iters=3,
                      rng=1, compute=True)
    want = np.linalg.svd((A - A.mean(axis=0)).astype(np.float64), compute_uv=False)[:10]
    np.testing.assert_allclose(got.S, want, rtol=2e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_single_precision_out_of_core_is_as_accurate_as_in_memory(rng, dtype):
    """No fused A^H A X in single precision: it squares the spread of the singular values
    (a spread of 1e3 gave 64% error in float32). One product at a time: 2 q + 2 reads."""
    s = np.logspace(0, -3, 30)
    A = _spectrum_matrix(rng, 2000, 300, s, dtype)
    counter = _ChunkReads(A, (400, 300))
    got = randla.rsvd(counter.array, 20, power_iters=2, rng=1)
    assert counter.passes == 2 * 2 + 2 and got.U.dtype == A.dtype
    counter = _ChunkReads(A, (400, 300))
    randla.rsvd(counter.array, 20, passes=6, rng=1)
    assert counter.passes == 6
    ref = randla.rsvd(A, 20, power_iters=2, rng=1)
    # the same algorithm as in memory, as accurate (the fused iteration was off by 0.64)
    for r in (got, ref):
        np.testing.assert_allclose(r.S, s[:20], rtol=2e-5)


def test_sketchy_svd_with_sparse_maps_out_of_core_equals_the_stream(rng):
    """Sparse sign maps are applied to each panel without forming them: chunked, streamed and
    recovered exactly on a rank-5 matrix, as with Gaussian maps."""
    A = _spectrum_matrix(rng, 300, 90, np.array([5.0, 4, 3, 2, 1]))
    got = sketchy_svd(da.from_array(A, chunks=(70, 40)), 5, sketch="sparse_sign", rng=2)
    sk = SketchySVD(A.shape, 5, sketch="sparse_sign", rng=2)
    for i in range(0, 300, 45):
        sk.update(A[i:i + 45, :50], row_start=i)
        sk.update(A[i:i + 45, 50:], row_start=i, col_start=50)
    ref = sk.finalize()
    np.testing.assert_allclose(got.S, ref.S, rtol=1e-10)
    np.testing.assert_allclose(got.S, [5, 4, 3, 2, 1], rtol=1e-10)
    np.testing.assert_allclose((got.U * got.S) @ got.Vh, A, atol=1e-10)
