"""load_ratings on small files in every supported format, and the Ratings container."""
import numpy as np
import pytest
import scipy.sparse as sp

from randla.recommend import Ratings, load_ratings

TRIPLETS = [(196, 242, 3.0), (186, 302, 3.0), (22, 377, 1.0), (244, 51, 2.0), (166, 346, 1.0),
            (298, 474, 4.0), (115, 265, 2.0), (253, 465, 5.0), (196, 51, 4.5)]


def expected_dense():
    users = sorted({u for u, _, _ in TRIPLETS})
    items = sorted({i for _, i, _ in TRIPLETS})
    D = np.zeros((len(users), len(items)))
    for u, i, r in TRIPLETS:
        D[users.index(u), items.index(i)] = r
    return np.array(users), np.array(items), D


def write(tmp_path, name, lines):
    p = tmp_path / name
    p.write_text("".join(line + "\n" for line in lines))
    return p


FORMATS = {
    "u.data": lambda u, i, r: f"{u}\t{i}\t{r:g}\t881250949",
    "ratings.dat": lambda u, i, r: f"{u}::{i}::{r:g}::978300760",
    "ratings.csv": lambda u, i, r: f"{u},{i},{r},1112486027",
    "plain.txt": lambda u, i, r: f"{u} {i}   {r}",
    "semi.txt": lambda u, i, r: f"{u};{i};{r}",
}


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("chunk_lines", [2, 1000])
def test_formats_give_the_matrix(tmp_path, name, chunk_lines):
    lines = [FORMATS[name](*t) for t in TRIPLETS]
    if name == "ratings.csv":
        lines.insert(0, "userId,movieId,rating,timestamp")
    R = load_ratings(write(tmp_path, name, lines), chunk_lines=chunk_lines)
    users, items, D = expected_dense()
    np.testing.assert_array_equal(R.users, users)
    np.testing.assert_array_equal(R.items, items)
    np.testing.assert_array_equal(R.matrix.toarray(), D)
    assert sp.isspmatrix_csr(R.matrix) and R.nnz == len(TRIPLETS)


def test_explicit_sep_header_blank_lines_and_float32(tmp_path):
    lines = ["u|i|r", "1|a|4", "", "2|b|3.5", "1|b|2", ""]
    R = load_ratings(write(tmp_path, "x.txt", lines), sep="|", header=True, dtype=np.float32)
    assert R.matrix.dtype == np.float32
    np.testing.assert_array_equal(R.items, ["a", "b"])
    np.testing.assert_array_equal(R.matrix.toarray(), [[4, 2], [0, 3.5]])


def test_windows_line_endings(tmp_path):
    p = tmp_path / "r.csv"
    p.write_bytes(b"userId,movieId,rating\r\n1,2,3.5\r\n2,7,4\r\n")
    R = load_ratings(p)
    np.testing.assert_array_equal(R.matrix.toarray(), [[3.5, 0], [0, 4]])
    p.write_bytes(b"1,2,3.5\r\n2,x,4\r\n")          # the line-by-line parse
    np.testing.assert_array_equal(load_ratings(p).items, ["2", "x"])


def test_string_ids_in_a_later_chunk(tmp_path):
    lines = ["1,10,4", "2,10,3", "3,x7,5"]
    R = load_ratings(write(tmp_path, "r.csv", lines), chunk_lines=2)
    np.testing.assert_array_equal(R.users, [1, 2, 3])     # each column on its own
    np.testing.assert_array_equal(R.items, ["10", "x7"])
    rows, cols = R.to_indices([3], ["x7"])
    assert R.matrix[rows[0], cols[0]] == 5


@pytest.mark.parametrize("bad, what", [("7,8", "expected"), ("7,8,x", "not a finite number"),
                                       ("7,8,nan", "not a finite number"),
                                       ("7,8,inf", "not a finite number")])
def test_malformed_line_names_file_and_line(tmp_path, bad, what):
    lines = ["userId,movieId,rating", "1,2,3", "1,3,4", "2,2,5", bad, "3,3,1"]
    p = write(tmp_path, "bad.csv", lines)
    for chunk in (2, 100):
        with pytest.raises(ValueError, match=rf"bad\.csv, line 5: .*{what}"):
            load_ratings(p, chunk_lines=chunk)


def test_malformed_first_line_and_empty_file(tmp_path):
    with pytest.raises(ValueError, match="line 2"):
        load_ratings(write(tmp_path, "a.csv", ["", "1,2", "1,2,3"]))
    with pytest.raises(ValueError, match="no ratings"):
        load_ratings(write(tmp_path, "b.csv", ["", ""]))


def test_bad_arguments(tmp_path):
    p = write(tmp_path, "r.csv", ["1,2,3"])
    with pytest.raises(TypeError, match="dtype"):
        load_ratings(p, dtype=np.int64)
    with pytest.raises(ValueError, match="sep"):
        load_ratings(p, sep="")
    with pytest.raises(TypeError, match="header"):
        load_ratings(p, header="yes")


def test_duplicates_keep_the_last_rating():
    R = Ratings.from_triplets([1, 1, 2, 1], [5, 6, 5, 5], [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(R.matrix.toarray(), [[4, 2], [3, 0]])


def test_to_indices_round_trip_and_unknown_ids():
    rng = np.random.default_rng(0)
    users = rng.choice(10_000, 50, replace=False)
    items = rng.choice(10_000, 30, replace=False)
    R = Ratings(sp.random(50, 30, density=0.3, random_state=0, format="csr"), users, items)
    pick = rng.integers(0, 50, 20), rng.integers(0, 30, 20)
    rows, cols = R.to_indices(users[pick[0]], items[pick[1]])
    np.testing.assert_array_equal(rows, pick[0])
    np.testing.assert_array_equal(cols, pick[1])
    with pytest.raises(ValueError, match="unknown id 10001"):
        R.to_indices([10_001], None)


@pytest.mark.parametrize("by", ["random", "user"])
def test_split_partitions_the_ratings(by):
    R = Ratings(sp.random(80, 60, density=0.2, random_state=1, format="csr"))
    train, test = R.split(0.25, by=by, rng=0)
    assert train.shape == test.shape == R.shape
    np.testing.assert_allclose((train.matrix + test.matrix).toarray(), R.matrix.toarray())
    assert train.matrix.multiply(test.matrix).nnz == 0
    assert abs(test.nnz - 0.25 * R.nnz) <= (1 if by == "random" else 0.05 * R.nnz)
    if by == "user":
        n_all = np.diff(R.matrix.indptr)
        n_test = np.diff(test.matrix.indptr)
        many = n_all >= 2
        assert np.all(n_test[many] >= 1) and np.all(n_test[many] <= n_all[many] - 1)
        assert np.all(n_test[~many] == 0)
        np.testing.assert_array_equal(n_test[many], np.clip(np.rint(0.25 * n_all[many]), 1,
                                                            n_all[many] - 1))


def test_split_depends_on_rng_and_validates():
    R = Ratings(sp.random(40, 30, density=0.3, random_state=2, format="csr"))
    a, b = R.split(rng=0)[1], R.split(rng=1)[1]
    assert (a.matrix != b.matrix).nnz > 0
    with pytest.raises(ValueError, match="test_size"):
        R.split(1.5)
    with pytest.raises(ValueError, match="by"):
        R.split(0.2, by="item")


def test_ratings_validation():
    with pytest.raises(TypeError, match="matrix"):
        Ratings(np.eye(3))
    with pytest.raises(ValueError, match="ids"):
        Ratings(sp.eye(3, format="csr"), users=[1, 2])
    with pytest.raises(ValueError, match="one length"):
        Ratings.from_triplets([1, 2], [1], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        Ratings.from_triplets([1], [1], [np.nan])


def test_align_to_maps_ids_and_drops_unknown():
    train = Ratings.from_triplets([5, 7, 9], ["b", "a", "c"], [1.0, 2.0, 3.0])
    test = Ratings.from_triplets([9, 5, 8, 7], ["a", "c", "a", "z"], [4.0, 5.0, 1.0, 2.0])
    T = test.align_to(train)
    assert T.shape == train.shape and T.nnz == 2
    D = np.zeros((3, 3))
    D[2, 0], D[0, 2] = 4.0, 5.0           # (user 9, item a) and (user 5, item c)
    np.testing.assert_array_equal(T.matrix.toarray(), D)
