"""``randla recommend`` through a subprocess, against the library on the same files."""
import subprocess
import sys

import numpy as np
import pytest

from randla.recommend import PureSVD, evaluate, load_ratings, synthetic_ratings


def _write(ratings, path, sep="\t"):
    u, i, v = ratings.triplets()
    with open(path, "w") as f:
        for a, b, c in zip(ratings.users[u], ratings.items[i], v):
            f.write(f"{a}{sep}{b}{sep}{c:g}{sep}0\n")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ratings")
    train, test = synthetic_ratings(200, 150, 4000, rank=4, rng=1).split(0.2, rng=1)
    return _write(train, d / "train.data"), _write(test, d / "test.data", sep=",")


def _run(*args):
    out = subprocess.run([sys.executable, "-m", "randla", "recommend", *map(str, args)],
                         capture_output=True, text=True, timeout=300)
    return out.returncode, out.stdout, out.stderr


def test_user_recommendations_match_the_library(files):
    code, out, err = _run(files[0], "--user", 7, "-n", 6, "-k", 8, "--seed", 3)
    assert code == 0, err
    R = load_ratings(files[0])
    top = PureSVD(8, rng=3).fit(R).recommend(R.to_indices([7], None)[0], n=6)[0]
    assert [int(x) for x in out.split()] == [int(x) for x in R.items[top]]
    seen = set(R.matrix[R.to_indices([7], None)[0][0]].indices)
    assert not seen & set(top)


def test_evaluate_prints_the_library_numbers(files):
    code, out, err = _run(files[0], "--evaluate", files[1], "-k", 8)
    assert code == 0, err
    R = load_ratings(files[0])
    ev = evaluate(PureSVD(8, rng=0).fit(R), load_ratings(files[1]).align_to(R), k=10)
    assert f"precision@10 {ev.precision:.4f}" in out
    rmse = float(out.split("RMSE")[1])
    assert 0.3 < rmse < 2.0 and np.isfinite(rmse)


@pytest.mark.parametrize("args, message", [
    (["--user", "99999"], "user id 99999 is not in"),
    (["--user", "abc"], "user id 'abc' is not in"),
    (["--user", "007"], "user id '007' is not in"),      # ids are integers: "7", not "007"
    (["--user", "7", "-k", "100000"], "-k 100000 must be less than the numbers of users"),
    (["--user", "7", "-k", "150"], "-k 150 must be less than"),
    (["--user", "1", "-n", "0"], "must be >= 1"),
    ([], "one of the arguments --user --evaluate is required"),
])
def test_errors_are_one_line(files, args, message):
    code, out, err = _run(files[0], *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_missing_file(tmp_path):
    code, _, err = _run(tmp_path / "none.data", "--user", 1)
    assert code == 2 and "No such file" in err


def test_ids_are_printed_as_written_in_the_file(tmp_path):
    # item ids with leading zeros ("0345417623", ISBN-like) and their unpadded twins: the
    # printed ids are the file's strings, never a number read from them
    rng = np.random.default_rng()
    R = synthetic_ratings(60, 40, 900, rank=3, rng=rng)
    names = [f"{j:010d}" if j % 2 else str(j) for j in range(40)]
    names[2], names[3] = "7", "007"
    u, i, v = R.triplets()
    p = tmp_path / "r.csv"
    p.write_text("".join(f"u{a},{names[b]},{c:g}\n" for a, b, c in zip(u, i, v)))
    code, out, err = _run(p, "--user", "u5", "-n", 30, "-k", 4)
    assert code == 0, err
    printed = out.split()
    seen = {names[j] for j in i[u == 5]}
    assert printed and set(printed) <= set(names) - seen and len(set(printed)) == len(printed)
    assert len(printed) == min(30, 40 - len(seen))
