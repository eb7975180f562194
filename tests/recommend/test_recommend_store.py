"""Rating stores on disk: save_ratings (text or Ratings -> CSR directory), open_ratings, the
streaming operator, and PureSVD fit / recommend / fold_in on a store against the in-memory CSR."""
import os
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import randla.recommend.store as store_mod
from randla.recommend import (
    PureSVD,
    Ratings,
    RatingStore,
    load_ratings,
    open_ratings,
    save_ratings,
    synthetic_ratings,
)

FORMATS = {
    "u.data": lambda u, i, r: f"{u}\t{i}\t{r:g}\t881250949",
    "ratings.dat": lambda u, i, r: f"{u}::{i}::{r:g}::978300760",
    "ratings.csv": lambda u, i, r: f"{u},{i},{r},1112486027",
    "plain.txt": lambda u, i, r: f"{u} {i}   {r}",
    "semi.txt": lambda u, i, r: f"{u};{i};{r}",
}


def random_triplets(rng, n=400, users=60, items=40, string_at=None):
    """Random (user, item, rating) lines in random order, with repeated pairs (the last rating
    wins) and, from position ``string_at`` on, some string item ids."""
    u = rng.integers(1, 3 * users, n)
    i = rng.integers(1, 3 * items, n)
    r = rng.integers(1, 11, n) / 2
    rep = rng.integers(0, n, n // 10)        # repeat some pairs later with other ratings
    u, i, r = np.r_[u, u[rep]], np.r_[i, i[rep]], np.r_[r, rng.integers(1, 11, len(rep)) / 2]
    items_ = [str(x) for x in i]
    if string_at is not None:
        for k in range(string_at, len(items_), 7):
            items_[k] = f"m{items_[k]}"
    return list(zip(u.tolist(), items_, r.tolist()))


def write_file(path, name, triplets):
    lines = [FORMATS[name](*t) for t in triplets]
    if name == "ratings.csv":
        lines.insert(0, "userId,movieId,rating,timestamp")
    p = path / name
    p.write_text("".join(line + "\n" for line in lines))
    return p


def assert_same_csr(A, B):
    A, B = sp.csr_matrix(A), sp.csr_matrix(B)
    assert A.shape == B.shape and A.nnz == B.nnz
    np.testing.assert_array_equal(A.indptr, B.indptr)
    np.testing.assert_array_equal(A.indices, B.indices)
    np.testing.assert_array_equal(A.data, B.data)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_store_equals_load_ratings_in_every_format(tmp_path, rng, name):
    text = write_file(tmp_path, name, random_triplets(rng))
    R = load_ratings(text)
    # 13-line chunks and ~20-rating buckets: many of both
    store = save_ratings(text, tmp_path / "store", chunk_lines=13, block_bytes=20 * 32)
    again = open_ratings(tmp_path / "store")
    for S in (store, again):
        assert S.shape == R.shape and S.nnz == R.nnz
        assert_same_csr(S.to_ratings().matrix, R.matrix)
        np.testing.assert_array_equal(S.users, R.users)
        np.testing.assert_array_equal(S.items, R.items)
    assert sorted(os.listdir(tmp_path)) == sorted([name, "store"])   # no temporary left


def test_string_ids_from_a_later_chunk_and_float32(tmp_path, rng):
    text = write_file(tmp_path, "ratings.csv", random_triplets(rng, string_at=250))
    R = load_ratings(text, dtype=np.float32)
    S = save_ratings(text, tmp_path / "s", chunk_lines=50, dtype=np.float32)
    assert S.items.dtype.kind == "U" and S.dtype == np.float32
    np.testing.assert_array_equal(S.items, R.items)
    assert_same_csr(S.to_ratings().matrix, R.matrix)


def test_from_ratings_blocks_and_rows(tmp_path, rng):
    R = synthetic_ratings(120, 50, 2000, rng=rng)
    S = save_ratings(R, tmp_path / "s")
    assert_same_csr(S.to_ratings().matrix, R.matrix)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "s").st_mode & 0o777 == 0o777 & ~umask   # not mkdtemp's 0o700
    blocks = list(S.blocks(block_bytes=300))       # 25 ratings a block
    assert len(blocks) > 20
    assert all(B.nnz <= 25 or B.shape[0] == 1 for _, _, B in blocks)
    assert [b[0] for b in blocks[1:]] == [b[1] for b in blocks[:-1]]
    assert_same_csr(sp.vstack([B for _, _, B in blocks]), R.matrix)
    rows = rng.integers(0, 120, 40)                 # any order, repeats
    assert_same_csr(S.rows(rows), R.matrix[rows])


def test_operator_products_one_read_each(tmp_path, rng):
    R = synthetic_ratings(200, 60, 3000, rng=rng)
    M = R.matrix
    op = save_ratings(R, tmp_path / "s").operator(block_bytes=400)
    assert len(op.cuts) > 20 and op.fused_gram and op.reads_per_product == 1
    X, Y = rng.standard_normal((60, 3)), rng.standard_normal((200, 3))
    _close(op.matmat(X), M @ X)
    _close(op.rmatmat(Y), M.T @ Y)
    _close(op.gram_matmat(X), M.T @ (M @ X))
    C, AX = op.gram_and_product(X)
    _close(C, M.T @ (M @ X))
    _close(AX, M @ X)
    np.testing.assert_allclose(op.column_means(), np.asarray(M.mean(axis=0)).ravel())
    np.testing.assert_allclose(op.fro_norm(), sp.linalg.norm(M))
    assert op.passes == 6


def test_puresvd_on_store_matches_in_memory(tmp_path, rng):
    R = synthetic_ratings(500, 150, 12_000, rng=rng)
    S = save_ratings(R, tmp_path / "s")
    seed = int(rng.integers(1 << 30))
    mem = PureSVD(10, power_iters=4, rng=seed).fit(R)
    op = S.operator(block_bytes=2000)              # ~170 ratings a block: many blocks
    disk = PureSVD(10, power_iters=4, rng=seed).fit(op)
    assert op.passes == 4 + 2                      # fused iterations, B, then R V
    np.testing.assert_allclose(disk.singular_values_, mem.singular_values_, rtol=1e-9)
    np.testing.assert_allclose(disk.item_factors_, mem.item_factors_, atol=1e-7)
    np.testing.assert_allclose(disk.user_factors_, mem.user_factors_, atol=1e-6)
    top_mem, top_disk = mem.recommend(None, 10), disk.recommend(None, 10, batch_bytes=3000)
    assert np.mean(top_mem == top_disk) > 0.995    # near-ties may swap at 1e-9
    seen = R.matrix
    for u in range(0, 500, 37):                    # seen items are excluded
        assert not set(top_disk[u]) & set(seen.indices[seen.indptr[u]:seen.indptr[u + 1]])


def test_puresvd_default_adaptive_on_store(tmp_path, rng):
    R = synthetic_ratings(400, 120, 9000, rng=rng)
    disk = PureSVD(8, rng=1).fit(save_ratings(R, tmp_path / "s"))
    exact = np.linalg.svd(R.matrix.toarray(), compute_uv=False)[:8]
    np.testing.assert_allclose(disk.singular_values_, exact, rtol=0.02)


def test_fold_in_and_recommend_mix_store_and_new_rows(tmp_path, rng):
    R = synthetic_ratings(300, 100, 6000, rng=rng)
    mem = PureSVD(6, power_iters=3, rng=0).fit(R)
    disk = PureSVD(6, power_iters=3, rng=0).fit(save_ratings(R, tmp_path / "s"))
    new_rows = R.matrix[[4, 9]]
    for model in (mem, disk):
        assert list(model.fold_in(new_rows)) == [300, 301]
        assert list(model.fold_in(R.matrix[7])) == [302]
    users = np.array([301, 4, 0, 302, 9, 300, 7])
    top = disk.recommend(users, 10, batch_bytes=2 * 100 * 8)   # batches of two users
    assert np.mean(top == mem.recommend(users, 10)) > 0.99
    np.testing.assert_array_equal(top[[0, 3, 5]], top[[4, 6, 1]])   # a copy is its original


def test_float32_store_gives_float32_factors(tmp_path, rng):
    R = synthetic_ratings(200, 80, 4000, rng=rng)
    S32 = save_ratings(R, tmp_path / "s32", dtype=np.float32)
    m32 = PureSVD(5, power_iters=3, rng=0).fit(S32)
    m64 = PureSVD(5, power_iters=3, rng=0).fit(save_ratings(R, tmp_path / "s64"))
    assert m32.item_factors_.dtype == m32.user_factors_.dtype == np.float32
    np.testing.assert_allclose(m32.singular_values_, m64.singular_values_, rtol=1e-6)


def test_tiny_budgets_bound_memory_and_change_nothing(tmp_path, rng):
    R = synthetic_ratings(20_000, 300, 400_000, rng=rng)
    csr_bytes = R.matrix.data.nbytes + R.matrix.indices.nbytes
    S = save_ratings(R, tmp_path / "s")
    big, small = S.operator(), S.operator(block_bytes=1 << 16)
    assert len(big.cuts) == 2 and len(small.cuts) > 50
    X = rng.standard_normal((300, 12))
    ref = big.gram_matmat(X)
    tracemalloc.start()
    got = small.gram_matmat(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    _close(got, ref)
    assert peak < csr_bytes / 8                    # one 64 KiB block at a time, not the matrix


def test_conversion_in_buckets_has_bounded_memory(tmp_path, rng):
    R = synthetic_ratings(5000, 200, 100_000, rng=rng)
    text = tmp_path / "r.csv"
    rows, cols, vals = R.triplets()
    order = rng.permutation(len(rows))              # a file in no particular order
    np.savetxt(text, np.c_[rows[order], cols[order], vals[order]], fmt="%d,%d,%g")
    peaks = []
    for convert in (lambda: save_ratings(text, tmp_path / "s", chunk_lines=5000,
                                         block_bytes=1 << 16),
                    lambda: load_ratings(text, chunk_lines=5000)):
        tracemalloc.start()
        out = convert()
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert_same_csr(open_ratings(tmp_path / "s").to_ratings().matrix, out.matrix)
    assert peaks[0] < peaks[1] / 4                  # one chunk and one bucket at a time


def test_malformed_line_names_file_and_line_and_leaves_nothing(tmp_path):
    lines = ["1,2,3", "1,3,4", "2,2,5", "2,4,x", "3,3,1"]
    p = tmp_path / "r.csv"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"r\.csv, line 4: rating 'x'"):
        save_ratings(p, tmp_path / "s", chunk_lines=2)
    assert os.listdir(tmp_path) == ["r.csv"]


def test_interrupted_write_leaves_no_store_and_keeps_the_old_one(tmp_path, rng, monkeypatch):
    R = synthetic_ratings(100, 40, 1500, rng=rng)
    text = tmp_path / "r.csv"
    rows, cols, vals = R.triplets()
    np.savetxt(text, np.c_[rows, cols, vals], fmt="%d,%d,%g")
    calls = []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)
    real = store_mod._sorted_bucket
    monkeypatch.setattr(store_mod, "_sorted_bucket", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_ratings(text, tmp_path / "s", block_bytes=500)
    assert sorted(os.listdir(tmp_path)) == ["r.csv"]
    monkeypatch.setattr(store_mod, "_sorted_bucket", real)
    old = save_ratings(Ratings(R.matrix[:50]), tmp_path / "s")
    with pytest.raises(FileExistsError):
        save_ratings(text, tmp_path / "s")
    calls.clear()
    monkeypatch.setattr(store_mod, "_sorted_bucket", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_ratings(text, tmp_path / "s", block_bytes=500, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["r.csv", "s"]
    assert open_ratings(tmp_path / "s").shape == old.shape   # the old store, intact
    monkeypatch.setattr(store_mod, "_sorted_bucket", real)
    new = save_ratings(text, tmp_path / "s", overwrite=True)
    assert new.shape == R.shape and sorted(os.listdir(tmp_path)) == ["r.csv", "s"]
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match="not a rating store"):
        save_ratings(text, tmp_path / "plain", overwrite=True)


def test_open_refuses_broken_stores(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="not a rating store"):
        open_ratings(tmp_path)
    S = save_ratings(synthetic_ratings(50, 30, 600, rng=rng), tmp_path / "s")
    data = tmp_path / "s" / "data.npy"
    data.write_bytes(data.read_bytes()[:-8])
    with pytest.raises(ValueError, match="truncated"):
        RatingStore(S.directory)


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="source"):
        save_ratings(42, tmp_path / "s")
    with pytest.raises(TypeError, match="dtype"):
        save_ratings(Ratings(sp.eye(3, format="csr")), tmp_path / "s", dtype=np.int32)
    with pytest.raises(ValueError, match="chunk_lines"):
        save_ratings(tmp_path / "r.csv", tmp_path / "s", chunk_lines=0)
    S = save_ratings(Ratings(sp.eye(3, format="csr")), tmp_path / "s")
    with pytest.raises(ValueError, match="block_bytes"):
        S.operator(block_bytes=0)
    assert S.rows([]).shape == (0, 3)
    assert sorted(os.listdir(tmp_path)) == ["s"]


def _close(got, ref):
    """Equal to rounding: sums taken in another order differ relative to the largest entry."""
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


def test_source_inside_the_store_is_refused_and_kept(tmp_path, rng):
    R = synthetic_ratings(40, 30, 400, rng=rng)
    save_ratings(R, tmp_path / "st")
    rows, cols, vals = R.triplets()
    text = tmp_path / "st" / "u.data"
    np.savetxt(text, np.c_[rows, cols, vals], fmt="%d\t%d\t%g")
    before = text.read_bytes()
    for source in (text, os.path.relpath(text), tmp_path / "st" / ".." / "st" / "u.data"):
        with pytest.raises(ValueError, match="inside the store .*st"):
            save_ratings(source, tmp_path / "st", overwrite=True)
    assert text.read_bytes() == before
    assert_same_csr(open_ratings(tmp_path / "st").to_ratings().matrix, R.matrix)
    assert sorted(os.listdir(tmp_path)) == ["st"]
    os.symlink(text, tmp_path / "link.data")    # a link to it is the same file
    with pytest.raises(ValueError, match="inside the store"):
        save_ratings(tmp_path / "link.data", tmp_path / "st", overwrite=True)
    os.rename(text, tmp_path / "u.data")        # moved out: fine
    assert save_ratings(tmp_path / "u.data", tmp_path / "st", overwrite=True).nnz == R.nnz


def test_open_handle_keeps_reading_its_own_version(tmp_path, rng):
    import pickle
    R1 = synthetic_ratings(60, 30, 700, rng=rng)
    R2 = synthetic_ratings(50, 40, 900, rng=rng)
    old = save_ratings(R1, tmp_path / "s")
    op = old.operator(block_bytes=200)
    X = rng.standard_normal((30, 2))
    fresh = pickle.loads(pickle.dumps(old))
    save_ratings(R2, tmp_path / "s", overwrite=True)
    for S in (old, fresh):
        assert_same_csr(S.to_ratings().matrix, R1.matrix)
        assert_same_csr(S.rows([3, 59, 0]), R1.matrix[[3, 59, 0]])
    _close(op.matmat(X), R1.matrix @ X)
    assert_same_csr(open_ratings(tmp_path / "s").to_ratings().matrix, R2.matrix)
    with pytest.raises(ValueError, match="replaced since this handle"):
        pickle.loads(pickle.dumps(old))
    assert sorted(os.listdir(tmp_path)) == ["s"]
    old.close()
    with pytest.raises(ValueError, match="closed"):
        old.row_block(0, 1)


@pytest.mark.parametrize("bad", [-1, "n_items", 2**31 - 1])
def test_corrupt_indices_are_an_error_not_a_crash(tmp_path, rng, bad):
    R = synthetic_ratings(80, 30, 900, rng=rng)
    save_ratings(R, tmp_path / "s")
    where = int(rng.integers(0, R.nnz))
    ind = np.load(tmp_path / "s" / "indices.npy", mmap_mode="r+")
    ind[where] = 30 if bad == "n_items" else bad
    ind.flush()
    del ind
    S = open_ratings(tmp_path / "s")
    row = int(np.searchsorted(S.indptr, where, side="right")) - 1
    with pytest.raises(ValueError, match=r"indices\.npy is corrupt"):
        S.row_block(row, row + 1)
    S.row_block(0, row)                         # other rows read as they are
    with pytest.raises(ValueError, match=r"indices\.npy is corrupt"):
        PureSVD(4, rng=0).fit(S)


def test_non_finite_stored_rating_is_an_error(tmp_path, rng):
    R = synthetic_ratings(30, 20, 200, rng=rng)
    save_ratings(R, tmp_path / "s")
    data = np.load(tmp_path / "s" / "data.npy", mmap_mode="r+")
    data[int(rng.integers(0, R.nnz))] = np.nan
    data.flush()
    del data
    with pytest.raises(ValueError, match=r"data\.npy is corrupt"):
        open_ratings(tmp_path / "s").to_ratings()


def test_stale_temporaries_are_removed_by_the_next_save(tmp_path, rng):
    import fcntl
    R = synthetic_ratings(30, 20, 200, rng=rng)
    save_ratings(R, tmp_path / "s")
    # left by a killed writer: a partial store, and an old one after the swap
    for name in (".s.k1ll3d_1.partial", ".s.k1ll3d_2.old", ".s.abcdefgh.partial"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.npy").write_bytes(b"x")
    (tmp_path / ".s2.abcdefgh.partial").mkdir()   # another target's: not this save's business
    (tmp_path / "s.other").mkdir()
    # while another writer is at work in the folder, nothing is removed
    fd = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    try:
        save_ratings(R, tmp_path / "s", overwrite=True)
        assert (tmp_path / ".s.k1ll3d_1.partial").exists()
    finally:
        os.close(fd)
    save_ratings(R, tmp_path / "s", overwrite=True)
    assert sorted(os.listdir(tmp_path)) == [".s2.abcdefgh.partial", "s", "s.other"]


def test_overwrite_through_a_symbolic_link_keeps_the_link(tmp_path, rng):
    R1, R2 = (synthetic_ratings(30, 20, 200, rng=rng) for _ in range(2))
    (tmp_path / "data").mkdir()
    save_ratings(R1, tmp_path / "data" / "real")
    os.symlink(tmp_path / "data" / "real", tmp_path / "link")
    with pytest.raises(FileExistsError):
        save_ratings(R2, tmp_path / "link")
    S = save_ratings(R2, tmp_path / "link", overwrite=True)
    assert os.path.islink(tmp_path / "link")
    assert S.directory == str(tmp_path / "link")
    assert_same_csr(open_ratings(tmp_path / "data" / "real").to_ratings().matrix, R2.matrix)
    assert sorted(os.listdir(tmp_path)) == ["data", "link"]
    assert sorted(os.listdir(tmp_path / "data")) == ["real"]


def test_write_errors_name_the_store_not_a_temporary(tmp_path, rng, monkeypatch):
    import errno
    R = synthetic_ratings(30, 20, 200, rng=rng)

    def full(self, a):
        raise OSError(errno.ENOSPC, "No space left on device", self.path)
    monkeypatch.setattr(store_mod._NpyAppender, "append", full)
    with pytest.raises(OSError, match="No space left") as info:
        save_ratings(R, tmp_path / "s")
    assert info.value.filename == str(tmp_path / "s") and "partial" not in str(info.value)
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        save_ratings(R, tmp_path / "no" / "s")
    assert info.value.filename == str(tmp_path / "no")
    assert os.listdir(tmp_path) == []


def test_index_dtypes_at_the_int32_limit():
    # a block's row pointers go up to its nnz: int32 only while nnz fits (no 2^31 allocation)
    f = store_mod._indptr_dtype
    assert f(2**31 - 1, np.int32) == np.int32
    assert f(2**31, np.int32) == np.int64
    assert f(3 * 2**31, np.int32) == np.int64
    assert f(10, np.int64) == np.int64
    assert store_mod._index_dtype(2**31 - 1) == np.int32
    assert store_mod._index_dtype(2**31) == np.int64
    assert store_mod._index_dtype(5) == np.int32
