"""``randla demo`` end to end on a small matrix: every registered sketch has a row, with an
accuracy close to optimal, or says why it is unavailable."""
import re

import numpy as np

import randla.sketch
from randla.cli import main
from randla.testing import matrix_with_spectrum


def test_demo_prints_a_row_per_sketch(capsys):
    assert main(["demo", "--m", "1500", "--n", "300", "--k", "10", "--full", "--quiet"]) == 0
    out = capsys.readouterr().out
    for name in randla.sketch.available():
        row = next(line for line in out.splitlines() if f"sketch={name}" in line)
        if "unavailable" in row:
            continue
        t, err, rel = (float(x) for x in row.split()[-3:])
        assert 1.0 - 1e-6 <= err <= 1.05, row       # spectral error / sigma_(k+1)
        assert rel <= 0.05, row                      # top-k singular values
    for ref in ("svds", "scipy.linalg.svd", "krylov"):
        row = next(line for line in out.splitlines() if ref in line)
        assert float(row.split()[-2]) <= 1.05, row
    assert re.search(r"sigma_\(k\+1\) = [0-9.e+-]+", out)


def test_demo_matrix_has_the_requested_spectrum():
    s = 0.8 ** np.arange(50)
    A = matrix_with_spectrum(200, 50, s, rng=3)
    np.testing.assert_allclose(np.linalg.svd(A, compute_uv=False), s, atol=1e-12)
    B = matrix_with_spectrum(60, 90, s, dtype=np.float32, rng=3)
    assert B.dtype == np.float32
    np.testing.assert_allclose(np.linalg.svd(B.astype(float), compute_uv=False)[:50], s,
                               atol=1e-5)


def test_demo_without_full_skips_the_slow_references(capsys):
    assert main(["demo", "--m", "600", "--n", "120", "--k", "5", "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("randla demo: a 600 x 120")   # said before any work
    assert not any("svds" in line or "LAPACK, full" in line for line in out[1:-1])
    assert sum("randla.rsvd" in line for line in out) == len(randla.sketch.available()) + 1
    assert "--full" in out[-1]


def test_demo_refuses_bad_sizes_in_one_line(capsys):
    assert main(["demo", "--k", "0"]) == 2
    assert main(["demo", "--seed", "-1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("randla demo: error:") for line in err)


def test_demo_refuses_a_matrix_larger_than_memory(capsys, monkeypatch):
    import randla.io.files
    import randla.testing
    built = []
    monkeypatch.setattr(randla.testing, "matrix_with_spectrum", lambda *a, **k: built.append(1))
    monkeypatch.setattr(randla.io.files, "available_memory", lambda: 10**9)
    assert main(["demo", "--m", "100000", "--n", "2000", "--k", "5", "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "randla demo: error: a 100000 x 2000 test matrix " \
        "needs about 4.8 GB to build, more than the 1 GB of memory available" in captured.err
    assert not built and captured.out == ""
