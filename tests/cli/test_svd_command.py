"""`randla svd`: round trips for every input format, and clean failures on bad input."""
import os

import h5py
import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
import zarr

from randla.cli import main


def _low_rank(rng, m=300, n=60, r=5):
    s = np.array([10.0, 7, 5, 3, 2])[:r]
    U = np.linalg.qr(rng.standard_normal((m, r)))[0]
    V = np.linalg.qr(rng.standard_normal((n, r)))[0]
    return (U * s) @ V.T, s


def _svd(argv, capsys=None):
    code = main(["svd", *map(str, argv)])
    err = capsys.readouterr().err if capsys else ""
    return code, err


def _check(out, A, s, k):
    with np.load(out) as f:
        assert sorted(f.files) == ["U", "Vh", "metadata", "s"]
        U, S, Vh = f["U"], f["s"], f["Vh"]
    assert U.shape == (A.shape[0], k) and Vh.shape == (k, A.shape[1])
    np.testing.assert_allclose(S, s[:k], rtol=1e-8)
    np.testing.assert_allclose((U * S) @ Vh, A if k == len(s) else (U * S) @ Vh, atol=1e-8)


def _no_leftovers(folder, keep):
    assert sorted(os.listdir(folder)) == sorted(keep)


def test_npy_round_trip_with_each_pass_count(rng, tmp_path):
    A, s = _low_rank(rng)
    np.save(tmp_path / "a.npy", A)
    for passes in ([], ["--passes", "1"], ["--passes", "3"]):
        out = tmp_path / "out.npz"
        assert _svd([tmp_path / "a.npy", "--rank", 5, "--seed", 1, "--quiet", "-o", out, *passes])[0] == 0
        _check(out, A, s, 5)
    _no_leftovers(tmp_path, ["a.npy", "out.npz"])


def test_tol_picks_the_smallest_rank(rng, tmp_path):
    A, s = _low_rank(rng)
    np.save(tmp_path / "a.npy", A)
    out = tmp_path / "o.npz"
    # ||A - A_3||_F / ||A||_F = sqrt(3^2 + 2^2) / ||s|| ~ 0.27: tol 0.3 gives rank 3
    assert _svd([tmp_path / "a.npy", "-k", 5, "--tol", 0.3, "--quiet", "-o", out])[0] == 0
    with np.load(out) as f:
        np.testing.assert_allclose(f["s"], s[:3], rtol=1e-8)


def test_hdf5_zarr_sparse_and_matrix_market_round_trips(rng, tmp_path):
    A, s = _low_rank(rng)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("/group/data", data=A, chunks=(50, 60))
        f.create_dataset("/other", data=np.ones(3))
    zarr.save_array(str(tmp_path / "a.zarr"), A)
    sparse = sp.random(200, 80, density=0.05, random_state=int(rng.integers(1 << 30)), format="csr")
    sp.save_npz(tmp_path / "s.npz", sparse)
    scipy.io.mmwrite(tmp_path / "s.mtx", sparse)
    ref = np.linalg.svd(sparse.toarray(), compute_uv=False)
    for argv in ([f"{tmp_path / 'a.h5'}:/group/data"], [tmp_path / "a.h5", "--dataset", "/group/data"],
                 [tmp_path / "a.zarr"]):
        assert _svd([*argv, "-k", 5, "--quiet", "-o", tmp_path / "o.npz"])[0] == 0
        _check(tmp_path / "o.npz", A, s, 5)
    for name in ("s.npz", "s.mtx"):
        # a random sparse matrix has a flat spectrum: enough passes for 1% on any draw
        assert _svd([tmp_path / name, "-k", 2, "--passes", 20, "--seed", 0, "--quiet",
                     "-o", tmp_path / "o.npz"])[0] == 0
        with np.load(tmp_path / "o.npz") as f:
            np.testing.assert_allclose(f["s"], ref[:2], rtol=1e-2)


def _corrupt_inputs(rng, d):
    A = rng.standard_normal((100, 20))
    np.save(d / "good.npy", A)
    raw = (d / "good.npy").read_bytes()
    (d / "truncated.npy").write_bytes(raw[: len(raw) // 2])
    (d / "header.npy").write_bytes(b"\x93NUMPY\x01\x00garbage" + raw[20:])
    (d / "text.npy").write_bytes(b"just some text\n")
    np.save(d / "strings.npy", np.array([["a", "b"], ["c", "d"]]))
    np.save(d / "vector.npy", np.ones(5))
    nan = A.copy()
    nan[57, 3] = np.nan
    np.save(d / "nan.npy", nan)
    with h5py.File(d / "two.h5", "w") as f:
        f["x"], f["y"] = A, A
    (d / "bad.h5").write_bytes(b"not hdf5 at all")
    np.savez(d / "dense.npz", a=A)
    (d / "bad.mtx").write_text("%%MatrixMarket matrix coordinate real general\n3 3 2\n1 1\n")
    (d / "a.csv").write_text("1,2\n3,4\n")
    sp.save_npz(d / "empty.npz", sp.csr_matrix((0, 0)))
    (d / "folder.npy").mkdir()
    return {
        "missing.npy": "not found", "truncated.npy": "truncated", "header.npy": "not a valid .npy",
        "text.npy": "not a valid .npy", "strings.npy": "numeric", "vector.npy": "2-D",
        "nan.npy": "NaN", "two.h5": "datasets", "two.h5:/z": "no dataset", "bad.h5": "HDF5",
        "dense.npz": "scipy.sparse", "bad.mtx": "Matrix Market", "a.csv": "unsupported",
        "empty.npz": "is empty (shape (0, 0))", "folder.npy": "is a directory",
    }


def test_bad_inputs_fail_cleanly_and_leave_nothing(rng, tmp_path, capsys):
    cases = _corrupt_inputs(rng, tmp_path)
    before = sorted(os.listdir(tmp_path))
    (tmp_path / "keep.npz").write_bytes(b"previous result")
    for name, message in cases.items():
        code, err = _svd([tmp_path / name, "-k", 3, "-o", tmp_path / "keep.npz"], capsys)
        assert code == 2, name
        assert err.startswith("randla svd: error:") and message in err, (name, err)
        assert "Traceback" not in err
    assert (tmp_path / "keep.npz").read_bytes() == b"previous result"  # never half-written
    _no_leftovers(tmp_path, before + ["keep.npz"])


def test_bad_options_fail_cleanly(rng, tmp_path, capsys):
    np.save(tmp_path / "a.npy", rng.standard_normal((50, 10)))
    for argv, message in [(["-k", 11], "--rank must be <= min(m, n) = 10"), (["-k", 3, "--passes", "0"], "--passes"),
                          (["-k", 3, "--memory-limit", "lots"], "--memory-limit"),
                          (["-k", 3, "--memory-limit", "1kB"], "too small"),
                          (["-k", 3, "--sketch", "nope"], "unknown sketch"),
                          (["-k", 3, "--passes", "1", "--tol", "0.1"], "--tol")]:
        code, err = _svd([tmp_path / "a.npy", *argv, "-o", tmp_path / "o.npz"], capsys)
        assert code == 2 and message in err, (argv, err)
    code, err = _svd([tmp_path / "a.npy", "-k", 3, "-o", tmp_path / "no" / "o.npz"], capsys)
    assert code == 2 and "does not exist" in err
    code, err = _svd([tmp_path / "a.npy", "-k", 3, "-o", tmp_path / "a.npy" / "o.npz"], capsys)
    assert code == 2 and f"the output's folder {tmp_path / 'a.npy'} is a file" in err, err
    _no_leftovers(tmp_path, ["a.npy"])


def _nan_or_inf_claimed(err):
    return "NaN" in err or "Inf" in err


def _svd_quietly(argv, capsys):
    """_svd on a matrix whose cast or products overflow: NumPy's floating-point warnings
    (which BLAS kernels may or may not raise) are not what is tested."""
    with np.errstate(all="ignore"):
        return _svd(argv, capsys)


def test_a_finite_file_is_never_said_to_hold_nan_or_inf(rng, tmp_path, capsys, monkeypatch):
    from randla.cli import svd
    A = rng.standard_normal((200, 30))
    np.save(tmp_path / "huge.npy", A * 10.0 ** rng.uniform(39, 300))
    # --dtype float32 casts the finite file to Inf: the CLI's own doing, said as such
    code, err = _svd_quietly([tmp_path / "huge.npy", "-k", 2, "--dtype", "float32", "--quiet",
                      "-o", tmp_path / "o.npz"], capsys)
    assert code == 2 and f"--dtype float32: {tmp_path / 'huge.npy'} is finite" in err, err
    assert "beyond float32's range" in err and not _nan_or_inf_claimed(err), err
    # whatever the library says of NaN, Inf or overflow, a finite file is said to be finite
    np.save(tmp_path / "a.npy", A)
    for failure in (ValueError("A contains NaN or Inf"),
                    ValueError("A produced NaN or Inf in products"),
                    OverflowError(34, "Numerical result out of range")):
        def fail(*args, failure=failure, **kwargs):
            raise failure
        monkeypatch.setattr(svd, "decompose", fail)
        code, err = _svd_quietly([tmp_path / "a.npy", "-k", 2, "--quiet", "-o", tmp_path / "o.npz"],
                         capsys)
        largest = np.abs(A).max()
        assert code == 2 and f"is finite (largest magnitude {largest:.3g}), but the " \
            "computation overflowed" in err, err
        assert not _nan_or_inf_claimed(err) and "(34," not in err, err
    _no_leftovers(tmp_path, ["huge.npy", "a.npy"])


@pytest.mark.parametrize("name", ["a.npy", "s.npz"])
def test_nan_or_inf_in_a_file_is_located(rng, tmp_path, capsys, name):
    A = rng.standard_normal((150, 40))
    bad = [tuple(int(x) for x in rng.integers((150, 40))) for _ in range(3)]
    for (i, j), value in zip(bad, (np.nan, np.inf, -np.inf)):
        A[i, j] = value
    first = min(bad)                 # in row order
    if name == "a.npy":
        np.save(tmp_path / name, A)
    else:
        sp.save_npz(tmp_path / name, sp.csr_matrix(A))
    code, err = _svd_quietly([tmp_path / name, "-k", 2, "--quiet", "-o", tmp_path / "o.npz"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert f"{tmp_path / name} contains NaN or Inf (the first at row {first[0]}, column " \
        f"{first[1]}," in err, err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_named_pipe_is_refused_at_once(tmp_path):
    import subprocess
    import sys
    os.mkfifo(tmp_path / "a.npy")      # opening it would wait for a writer
    p = subprocess.run([sys.executable, "-m", "randla", "svd", str(tmp_path / "a.npy"), "-k", "1",
                        "-o", str(tmp_path / "o.npz")], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and "is not a regular file" in p.stderr, p.stderr


def test_out_of_memory_advice_fits_the_command():
    # --memory-limit is an option of `randla svd` alone
    from randla.cli.args import error_message
    assert "--memory-limit" not in error_message(MemoryError("12 GiB"))
    assert "--memory-limit" in error_message(MemoryError("12 GiB"), "lower --memory-limit")
