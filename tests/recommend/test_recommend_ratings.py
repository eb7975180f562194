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


def _reference_ids(column):
    """The rule of load_ratings: int64 when every id is canonical (str(int(x)) == x), else the
    strings of the file."""
    try:
        if all(str(int(x)) == x for x in column):
            return np.unique(np.array([int(x) for x in column], dtype=np.int64))
    except ValueError:
        pass
    return np.unique(np.array(column, dtype=str))


@pytest.mark.parametrize("padded", ["0", "+", "-0", " 0", ""])
@pytest.mark.parametrize("sep", [",", "\t", "::", " "])
def test_ids_are_the_file_strings_across_chunks(tmp_path, rng, padded, sep):
    # random ids; some written with a "+", a leading zero or "-0" in a random chunk: the
    # column's ids are then the file's strings in every chunk ("007" and "7" stay two items)
    n = 60
    users = [str(x) for x in rng.integers(1, 30, n)]
    items = [str(x) for x in rng.integers(1, 25, n)]
    if padded:
        at = rng.choice(n, 3, replace=False)
        for k in at:
            items[k] = padded + items[k]
        users[at[0]] = "0" + users[at[0]]
    ratings = rng.integers(1, 6, n)
    lines = [sep.join([u, i, str(r), "0"]) for u, i, r in zip(users, items, ratings)]
    p = write(tmp_path, "r.txt", lines)
    items = [i.strip() for i in items]          # an id is its field without blanks
    for chunk in (7, 1000):
        R = load_ratings(p, sep=sep, chunk_lines=chunk)
        np.testing.assert_array_equal(R.users, _reference_ids(users))
        np.testing.assert_array_equal(R.items, _reference_ids(items))
        assert R.users.dtype.kind == _reference_ids(users).dtype.kind
        # every rating is where its ids say (the last of a repeated pair)
        last = {(u, i): r for u, i, r in zip(users, items, ratings)}
        key = (lambda x: x) if R.users.dtype.kind == "U" else int
        keyi = (lambda x: x) if R.items.dtype.kind == "U" else int
        rows, cols = R.to_indices([key(u) for u, _ in last], [keyi(i) for _, i in last])
        np.testing.assert_array_equal(np.asarray(R.matrix[rows, cols]).ravel(),
                                      list(last.values()))
        assert R.nnz == len(last)


def test_leading_zero_id_across_a_chunk_boundary(tmp_path):
    p = write(tmp_path, "r.csv", ["1,0345417623,4", "2,007,3", "3,7,5", "4,x,3"])
    for chunk in (1, 2, 100):
        R = load_ratings(p, chunk_lines=chunk)
        np.testing.assert_array_equal(R.items, ["007", "0345417623", "7", "x"])
        np.testing.assert_array_equal(R.users, [1, 2, 3, 4])


def test_byte_order_mark_is_skipped(tmp_path):
    p = tmp_path / "r.csv"
    p.write_bytes("\ufeff1,10,4\n1,20,3\n2,10,5\n".encode())
    R = load_ratings(p)
    np.testing.assert_array_equal(R.users, [1, 2])
    np.testing.assert_array_equal(R.matrix.toarray(), [[4, 3], [5, 0]])
    p.write_bytes("\ufeffuserId,movieId,rating\n1,10,4\n".encode())
    np.testing.assert_array_equal(load_ratings(p).users, [1])


@pytest.mark.parametrize("bad", ["nan", "inf", "-Inf", "NaN"])
def test_non_finite_rating_on_the_first_line_is_an_error_not_a_header(tmp_path, bad):
    p = write(tmp_path, "r.csv", [f"1,10,{bad}", "1,20,3"])
    with pytest.raises(ValueError, match=rf"r\.csv, line 1: rating '{bad}' is not a finite"):
        load_ratings(p)


def test_header_is_sniffed_on_the_rating_column(tmp_path):
    # string ids and a numeric rating: data; a word in the rating column: a header
    R = load_ratings(write(tmp_path, "a.csv", ["u1,i1,4,x", "u2,i1,5,x"]))
    np.testing.assert_array_equal(R.users, ["u1", "u2"])
    R = load_ratings(write(tmp_path, "b.csv", ["10,20,rating,5", "1,2,3,5"]))
    assert R.shape == (1, 1) and R.nnz == 1


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_non_finite_ratings_refused_at_every_door(bad):
    # the fast parse's and the containers' checks (each a separate line of defence)
    from randla.recommend.ratings import _parse_chunk, as_rating_matrix
    with pytest.raises(ValueError, match=r"f, line 3: rating .* not a finite"):
        _parse_chunk(["1,2,3\n", f"1,3,{bad}\n"], ",", "f", 2, np.dtype(np.float64))
    M = sp.csr_matrix(np.array([[1.0, float(bad)]]))
    with pytest.raises(ValueError, match="NaN or Inf"):
        as_rating_matrix(M)
    with pytest.raises(ValueError, match="NaN or Inf"):
        Ratings.from_triplets([1, 2], [1, 1], [1.0, float(bad)])


def test_per_user_split_holds_out_one_rating_of_every_user_with_two():
    # users with 0..6 ratings and a small test_size: round(0.1 n) is 0, the split must still
    # hold out one rating of each user with at least two (and keep one)
    rng = np.random.default_rng()
    counts = rng.permutation(np.repeat(np.arange(7), 5))
    rows = np.repeat(np.arange(len(counts)), counts)
    cols = np.concatenate([rng.choice(10, c, replace=False) for c in counts])
    R = Ratings(sp.csr_matrix((rng.random(len(rows)) + 1, (rows, cols)), shape=(35, 10)))
    n_test = np.diff(R.split(0.1, by="user", rng=rng)[1].matrix.indptr)
    np.testing.assert_array_equal(n_test, np.where(counts >= 2, 1, 0))
    # and a large test_size still leaves each such user one training rating
    n_test = np.diff(R.split(0.95, by="user", rng=rng)[1].matrix.indptr)
    np.testing.assert_array_equal(n_test, np.where(counts >= 2, counts - 1, 0))


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_canonical_files_take_the_c_parser(tmp_path, name, monkeypatch):
    # the MovieLens formats with integer ids never need the line-by-line parse (speed)
    import randla.recommend.ratings as ratings_mod

    def refuse(*args):
        raise AssertionError("line-by-line parse used")
    monkeypatch.setattr(ratings_mod, "_parse_slow", refuse)
    lines = [FORMATS[name](*t) for t in TRIPLETS]
    R = load_ratings(write(tmp_path, name, lines), chunk_lines=4)
    users, items, D = expected_dense()
    np.testing.assert_array_equal(R.matrix.toarray(), D)
    np.testing.assert_array_equal(R.items, items)


def test_header_only_file_and_bad_sep(tmp_path):
    R = load_ratings(write(tmp_path, "h.csv", ["userId,movieId,rating,timestamp"]))
    assert R.shape == (0, 0) and R.nnz == 0
    p = write(tmp_path, "r.csv", ["1,2,3"])
    for sep in (5, b",", ""):
        with pytest.raises(ValueError, match="sep must be a non-empty string"):
            load_ratings(p, sep=sep)


def test_unsorted_ids_are_found():
    rng = np.random.default_rng()
    for n in (2, 3, 7):
        users = rng.permutation(n) * 10 + 5
        if n == 2:
            users = np.array([15, 5])
        if n == 3:
            users = np.array([1, 30, 20])           # the first is the smallest, yet unsorted
        R = Ratings(sp.eye(n, format="csr"), users=users)
        pick = rng.integers(0, n, 5)
        np.testing.assert_array_equal(R.to_indices(users[pick], None)[0], pick)


def test_unknown_id_message_names_the_unknown_one():
    R = Ratings(sp.eye(3, format="csr"), users=[4, 8, 9])
    with pytest.raises(ValueError, match="unknown id 5$"):
        R.to_indices([4, 9, 5, 8], None)          # the first id is at row 0: found
