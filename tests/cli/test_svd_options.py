"""`randla svd` options and `randla info OUT.npz`, driven as a user drives them: a subprocess,
its exit status, its stderr, its output file and the metadata in it."""
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import scipy.sparse as sp

from randla.testing import matrix_with_spectrum


def randla(*argv, check=None):
    """Run ``python -m randla ARGV``; returns (exit status, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-m", "randla", *map(str, argv)], capture_output=True,
                       text=True, timeout=300)
    if check is not None:
        assert p.returncode == check, p.stderr
    return p.returncode, p.stdout, p.stderr


def meta_of(path):
    with np.load(path) as f:
        return json.loads(str(f["metadata"])), {name: f[name] for name in f.files}


@pytest.fixture
def npy(tmp_path, rng):
    """A 400 x 60 float64 file with singular values 0.7^i, column means far from 0."""
    A = matrix_with_spectrum(400, 60, 0.7 ** np.arange(60), rng=rng) + rng.standard_normal(60)
    path = tmp_path / "a.npy"
    np.save(path, A)
    return path, A


def _centered_svd(A):
    return np.linalg.svd(A - A.mean(axis=0), compute_uv=False)


def test_every_option_reaches_the_result_and_the_metadata(npy, tmp_path):
    path, A = npy
    out = tmp_path / "pca.npz"
    _, _, err = randla("svd", path, "-k", 6, "--center", "--power-iters", 3, "--method",
                       "krylov", "--dtype", "float32", "--seed", 11, "--sketch", "rademacher",
                       "--check-iters", 3, "-o", out, check=0)
    meta, f = meta_of(out)
    ref = _centered_svd(A)
    assert f["U"].dtype == f["s"].dtype == f["Vh"].dtype == np.float32
    np.testing.assert_allclose(f["s"], ref[:6], rtol=1e-4)
    np.testing.assert_allclose(f["mean"], A.mean(axis=0), rtol=1e-5, atol=1e-5)
    C = A - A.mean(axis=0)
    true = np.linalg.norm(C - (f["U"] * f["s"]) @ f["Vh"], 2)
    e = meta["error"]
    assert e["estimate"] <= true * 1.001 and true <= e["bound"], (e, true)   # centered residual
    assert true <= 1.05 * ref[6]
    assert e["probability"] == pytest.approx(1 - 1e-10) and e["check_iters"] == 3
    assert e["passes"] == 1 + 1 + 2 * 3 + 2      # column means, probes, Krylov on the residual
    assert (meta["seed"], meta["rank"], meta["center"], meta["method"], meta["sketch"],
            meta["power_iters"], meta["dtype"]) == (11, 6, True, "krylov", "rademacher", 3,
                                                    "float32")
    assert meta["input"]["shape"] == [400, 60] and meta["input"]["dtype"] == "float64"
    assert meta["input"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["input"]["bytes"] == path.stat().st_size
    assert meta["randla_version"] and meta["passes"] >= 1
    assert "seed 11" in err and "<=" in err and "Traceback" not in err


def test_the_seed_is_fresh_printed_saved_and_reproduces(npy, tmp_path):
    path, A = npy
    _, _, err = randla("svd", path, "-k", 4, "-o", tmp_path / "a.npz", check=0)
    meta, first = meta_of(tmp_path / "a.npz")
    assert f"seed {meta['seed']}" in err and meta["seed"] > 0
    # the bound of a lazy U (checked through a memory map of the written file) holds
    true = np.linalg.norm(A - (first["U"] * first["s"]) @ first["Vh"], 2)
    assert true <= meta["error"]["bound"] <= 100 * true and meta["error"]["estimate"] is None
    assert meta["error"]["passes"] == 1
    randla("svd", path, "-k", 4, "--seed", meta["seed"], "-o", tmp_path / "b.npz", check=0)
    # the recorded command line reproduces the result too
    argv = shlex.split(meta["command"])[2:]
    argv[argv.index("-o") + 1] = tmp_path / "c.npz"
    randla("svd", *argv, check=0)
    for name in ("b.npz", "c.npz"):
        _, again = meta_of(tmp_path / name)
        for key in ("U", "s", "Vh"):
            np.testing.assert_array_equal(again[key], first[key])
    randla("svd", path, "-k", 4, "-o", tmp_path / "d.npz", check=0)
    assert meta_of(tmp_path / "d.npz")[0]["seed"] != meta["seed"]


def test_tol_alone_chooses_the_rank_and_max_rank_caps_it(rng, tmp_path):
    s = np.array([10.0, 7, 5, 3, 2])
    A = matrix_with_spectrum(300, 60, s, rng=rng)
    np.save(tmp_path / "a.npy", A)
    # ||A - A_3||_F / ||A||_F = sqrt(3^2 + 2^2) / ||s|| ~ 0.27: tol 0.3 gives rank 3
    randla("svd", tmp_path / "a.npy", "--tol", 0.3, "--quiet", "-o", tmp_path / "t.npz", check=0)
    meta, f = meta_of(tmp_path / "t.npz")
    np.testing.assert_allclose(f["s"], s[:3], rtol=1e-8)
    assert meta["rank"] == 3 and meta["tol"] == 0.3
    _, _, err = randla("svd", tmp_path / "a.npy", "--tol", 0.01, "--max-rank", 2, "-o",
                       tmp_path / "m.npz", check=0)
    assert meta_of(tmp_path / "m.npz")[0]["rank"] == 2
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1 and warning[0].startswith("randla svd: warning:"), err


def test_no_check_passes_and_sparse_summary(rng, tmp_path):
    A = matrix_with_spectrum(300, 50, 0.5 ** np.arange(50), rng=rng)
    np.save(tmp_path / "a.npy", A)
    _, _, err = randla("svd", tmp_path / "a.npy", "-k", 3, "--no-check", "--power-iters", 2,
                       "-o", tmp_path / "n.npz", check=0)
    meta, _ = meta_of(tmp_path / "n.npz")
    assert meta["error"] is None and "<=" not in err
    assert meta["passes"] == 4      # 2 fused power iterations + the sketch: 3 reads; U: 1 more
    randla("svd", tmp_path / "a.npy", "-k", 3, "--passes", 1, "--quiet", "-o",
           tmp_path / "p.npz", check=0)
    assert meta_of(tmp_path / "p.npz")[0]["passes"] == 1
    sp.save_npz(tmp_path / "s.npz", sp.csr_matrix(A * (np.abs(A) > 0.05)))
    _, _, err = randla("svd", tmp_path / "s.npz", "-k", 3, "--power-iters", 2, "-o",
                       tmp_path / "o.npz", check=0)
    meta, _ = meta_of(tmp_path / "o.npz")
    # in memory: sketch, 2 x 2 power iterations, B = Q^T A
    assert meta["passes"] == 6 and "6 pass(es)" in err and "None" not in err, err


def test_info_prints_the_metadata(npy, tmp_path):
    path, _ = npy
    out = tmp_path / "o.npz"
    randla("svd", path, "-k", 4, "--seed", 7, "--quiet", "-o", out, check=0)
    _, text, _ = randla("info", out, check=0)
    assert "seed: 7" in text and "rank: 4" in text and "error.bound:" in text
    assert "input.sha256:" in text and "arrays.U: [400, 4]" in text
    assert "input_now: unchanged" in text
    _, text, _ = randla("info", out, "--json", check=0)
    assert json.loads(text)["seed"] == 7 == meta_of(out)[0]["seed"]
    np.save(path, np.load(path)[:, :-1])       # the input changes after the run
    assert json.loads(randla("info", out, "--json", check=0)[1])["input_now"] == "changed"
    path.unlink()
    assert "input_now: missing" in randla("info", out, check=0)[1]
    np.savez(tmp_path / "plain.npz", a=np.ones(3))
    code, _, err = randla("info", tmp_path / "plain.npz")
    assert code == 2 and err.count("\n") == 1 and "no randla metadata" in err
    _, text, _ = randla("info", check=0)    # without a file: this installation
    assert "numpy" in text


def _one_line_error(code, err, message):
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("randla") and message in err, err


def test_usage_errors_are_one_line(npy, tmp_path):
    path, _ = npy
    out = tmp_path / "o.npz"
    for argv, message in [
        (["demo", "--seed", "-1"], "--seed: must be a non-negative integer"),
        (["svd", path, "-k", 3, "--seed", "-1", "-o", out], "--seed"),
        (["svd", path, "-o", out], "give the rank"),
        (["svd", path, "-k", 0, "-o", out], "--rank: must be >= 1"),
        (["svd", path, "--tol", 2, "-o", out], "--tol: must be a number in (0, 1)"),
        (["svd", path, "-k", 2, "--max-rank", 3, "-o", out], "--max-rank goes with --tol"),
        (["svd", path, "-k", 3, "--passes", 3, "--power-iters", 1, "-o", out], "not both"),
        (["svd", path, "-k", 3, "--passes", 1, "--center", "-o", out], "--passes 1"),
        (["svd", path, "-k", 3, "--method", "lanczos", "-o", out], "invalid choice"),
        (["svd", path, "-k", 3, "--dataset", "/x", "-o", out], "holds a single matrix"),
    ]:
        _one_line_error(*randla(*argv)[::2], message)
    assert not out.exists()


def test_output_that_is_the_input_is_refused(rng, tmp_path):
    A = sp.random(60, 40, density=0.2, random_state=rng, format="csr")
    sp.save_npz(tmp_path / "x.npz", A)
    before = (tmp_path / "x.npz").read_bytes()
    os.symlink(tmp_path / "x.npz", tmp_path / "link.npz")
    os.link(tmp_path / "x.npz", tmp_path / "hard.npz")
    for inp, out in [("x.npz", "x.npz"), ("link.npz", "x.npz"), ("x.npz", "link.npz"),
                     ("x.npz", "hard.npz")]:
        code, _, err = randla("svd", tmp_path / inp, "-k", 2, "-o", tmp_path / out)
        _one_line_error(code, err, "is the input")
    assert (tmp_path / "x.npz").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["hard.npz", "link.npz", "x.npz"]


def _crafted_npy(path, shape):
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False,
                                                 "shape": shape})
        f.write(bytes(64))


def _hostile(d, name):
    if name == "big.mtx":       # 76 bytes announcing 10^8 x 10^8
        (d / name).write_text("%%MatrixMarket matrix coordinate real general\n"
                              "100000000 100000000 1\n1 1 1.0\n")
    elif name == "dense.mtx":
        (d / name).write_text("%%MatrixMarket matrix array real general\n100000 100000\n1.0\n")
    elif name == "corrupt.npz":
        (d / name).write_bytes(b"PK\x03\x04" + bytes(200))
    elif name == "huge.npy":
        _crafted_npy(d / name, (2**32, 2**32))
    elif name == "negative.npy":
        _crafted_npy(d / name, (-5, 10))
    elif name == "wide.npz":    # 300 000 entries: about 3.6 MB loaded
        sp.save_npz(d / name, sp.random(2000, 3000, density=0.05, format="csr",
                                        random_state=np.random.default_rng(0)))


@pytest.mark.parametrize("name, extra, message", [
    ("big.mtx", [], "--memory-limit"), ("dense.mtx", [], "--memory-limit"),
    ("corrupt.npz", [], "is not a valid .npz file"), ("huge.npy", [], "truncated"),
    ("negative.npy", [], "negative dimension"),
    ("wide.npz", ["--memory-limit", "2MB"], "--memory-limit"),
])
def test_hostile_files_are_refused_before_allocating(tmp_path, name, extra, message):
    _hostile(tmp_path, name)
    code, _, err = randla("svd", tmp_path / name, "-k", 2, "-o", tmp_path / "o.npz", *extra)
    _one_line_error(code, err, message)


def test_an_unwritable_folder_is_reported_before_computing(npy, monkeypatch, capsys):
    import randla.lowrank
    from randla.cli import main
    if os.geteuid() == 0:      # root writes anywhere a permission allows: use a pseudo fs
        folder = "/proc"
    else:
        folder = npy[0].parent / "ro"
        folder.mkdir()
        folder.chmod(0o555)
    calls = []

    def boom(*args, **kwargs):
        calls.append(1)
        raise AssertionError("the decomposition ran")
    # randla.rsvd first: reading it caches the real function, which the undo restores
    monkeypatch.setattr(randla, "rsvd", boom)
    monkeypatch.setattr(randla.lowrank, "rsvd", boom)
    code = main(["svd", str(npy[0]), "-k", "3", "-o", os.path.join(folder, "o.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "output folder" in err and not calls, err


@pytest.mark.parametrize("umask, existing, mode", [(0o022, None, 0o644), (0o077, None, 0o600),
                                                    (0o002, None, 0o664), (0o077, 0o640, 0o640)])
def test_output_permissions_follow_the_umask(npy, tmp_path, umask, existing, mode):
    out = tmp_path / "o.npz"
    if existing is not None:
        out.write_bytes(b"old")
        out.chmod(existing)
    p = subprocess.run([sys.executable, "-c", f"import os, sys; os.umask({umask}); "
                        "from randla.cli import main; sys.exit(main(sys.argv[1:]))",
                        "svd", str(npy[0]), "-k", "2", "--quiet", "-o", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert out.stat().st_mode & 0o777 == mode


@pytest.mark.parametrize("sig, code, quiet", [(signal.SIGTERM, 143, True),
                                              (signal.SIGINT, 130, True),
                                              (signal.SIGINT, 130, False)])
def test_a_signal_leaves_the_old_output_and_no_temporary_file(rng, tmp_path, sig, code, quiet):
    A = matrix_with_spectrum(4000, 300, 0.99 ** np.arange(300), rng=rng)
    np.save(tmp_path / "a.npy", A)
    (tmp_path / "o.npz").write_bytes(b"previous result")
    # many power iterations: a run of several seconds, all of it with the .part file open
    p = subprocess.Popen([sys.executable, "-m", "randla", "svd", str(tmp_path / "a.npy"), "-k",
                          "20", "--power-iters", "300", "-o", str(tmp_path / "o.npz")]
                         + ["--quiet"] * quiet,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(n.endswith(".part") for n in os.listdir(tmp_path)):
        assert p.poll() is None and time.monotonic() < deadline, p.stderr.read()
        time.sleep(0.005)
    time.sleep(0.2)
    p.send_signal(sig)
    err = p.stderr.read()
    assert p.wait(timeout=120) == code, err
    assert "Traceback" not in err and "Error" not in err, err
    lines = err.strip().splitlines()     # progress bars (not quiet) end with a carriage return
    assert len(lines) == 1 or not quiet, err
    assert lines[-1].startswith("randla svd: ") and "nothing was written" in lines[-1], err
    assert sorted(os.listdir(tmp_path)) == ["a.npy", "o.npz"]
    assert (tmp_path / "o.npz").read_bytes() == b"previous result"


def test_progress_bars_survive_callbacks_in_any_order():
    # an interruption can land between dask's callbacks: a posttask with no bar, a finish
    # twice (the old code raised AttributeError on the way out of a Ctrl-C)
    from randla.cli.svd import _progress
    with _progress(quiet=False) as p:
        p._posttask("key", None, {}, {}, 0)
        p._finish({}, {}, True)
        p._start({"a": 1})
        p._start({"b": 2})          # a second pass closes the first bar
        p._posttask("b", None, {}, {}, 0)
        p._finish({}, {}, False)
        p._finish({}, {}, False)
    assert p.bar is None and p.n == 2


def test_a_loose_bound_says_how_to_get_an_estimate(tmp_path):
    A = matrix_with_spectrum(600, 80, 0.9 ** np.arange(80), rng=0)
    np.save(tmp_path / "a.npy", A)
    _, _, err = randla("svd", tmp_path / "a.npy", "-k", 5, "--seed", 1, "-o", tmp_path / "b.npz",
                       check=0)
    bound = meta_of(tmp_path / "b.npz")[0]["error"]
    assert bound["estimate"] is None and bound["relative_bound"] > 1
    assert "--check-iters 4 estimates the error" in err
    _, _, err = randla("svd", tmp_path / "a.npy", "-k", 5, "--seed", 1, "--check-iters", 4,
                       "-o", tmp_path / "c.npz", check=0)
    assert "estimate" in err and "--check-iters 4 estimates" not in err
    true = np.linalg.svd(A, compute_uv=False)[5]
    assert meta_of(tmp_path / "c.npz")[0]["error"]["estimate"] >= true * (1 - 1e-6)


_FULL_DISK = """
import resource, signal, sys
from randla.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # writes past the limit fail with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
@pytest.mark.parametrize("name", ["a.npy", "s.npz"])     # U written lazily / from memory
def test_a_full_disk_names_the_output_and_leaves_nothing(rng, tmp_path, name):
    A = rng.standard_normal((3000, 40))
    if name == "a.npy":
        np.save(tmp_path / name, A)
    else:
        sp.save_npz(tmp_path / name, sp.csr_matrix(A * (np.abs(A) > 1)))
    (tmp_path / "o.npz").write_bytes(b"previous result")
    limit = 300_000        # the input is written already; U (3000 x 20 float64) is 480 000 bytes
    p = subprocess.run([sys.executable, "-c", _FULL_DISK, str(limit), "svd", str(tmp_path / name),
                        "-k", "20", "--power-iters", "2", "--quiet", "-o",
                        str(tmp_path / "o.npz")],   # a fixed count: no warning on a flat spectrum
                       capture_output=True, text=True, timeout=300)
    _one_line_error(p.returncode, p.stderr, f"{tmp_path / 'o.npz'}: cannot write the output")
    assert ".part" not in p.stderr
    assert sorted(os.listdir(tmp_path)) == sorted([name, "o.npz"])
    assert (tmp_path / "o.npz").read_bytes() == b"previous result"


def test_a_failed_rename_names_the_output(npy, tmp_path, monkeypatch, capsys):
    from randla.cli import main, output

    def refuse(src, dst):    # as a sticky folder refuses to replace another user's file
        raise PermissionError(1, "Operation not permitted", src, None, dst)
    monkeypatch.setattr(output.os, "replace", refuse)
    out = tmp_path / "o.npz"
    assert main(["svd", str(npy[0]), "-k", "2", "--quiet", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out}: cannot write the output (Operation not permitted)" in err, err
    assert ".part" not in err and sorted(os.listdir(tmp_path)) == ["a.npy"]


def in_process(capsys, *argv, check=0):
    """``randla ARGV`` called in this process (faster than :func:`randla`): (status, stdout,
    stderr)."""
    from randla.cli import main
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    if check is not None:
        assert code == check, err
    return code, out, err


@pytest.mark.parametrize("json_flag", [["--json"], []])
def test_info_into_a_closed_pipe_exits_quietly(npy, tmp_path, capsys, json_flag):
    # `randla info ... | head -1`: the reader is gone before anything is written
    out = tmp_path / "o.npz"
    in_process(capsys, "svd", npy[0], "-k", 2, "--quiet", "-o", out)
    p = subprocess.Popen([sys.executable, "-m", "randla", "info", str(out), *json_flag],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdout.close()
    assert p.wait(timeout=300) == 128 + signal.SIGPIPE
    assert p.stderr.read() == ""


def _changed_at(path, where):
    """Add 1 to one entry of the .npy matrix at ``path``, in place (size and header kept)."""
    A = np.load(path, mmap_mode="r+")
    A[where] += 1
    A.flush()
    del A


@pytest.mark.parametrize("where", [(-1, -1), (200, 30), (0, 0)])
def test_info_sees_a_change_anywhere_in_the_input(npy, tmp_path, capsys, where):
    # a.npy is 192 KB: a change past its first 64 KiB used to read "unchanged"
    path, _ = npy
    out = tmp_path / "o.npz"
    in_process(capsys, "svd", path, "-k", 2, "--quiet", "-o", out)
    original = path.read_bytes()
    _changed_at(path, where)
    assert _info_json(capsys, out)["input_now"] == "changed"
    path.write_bytes(original)     # the same content again, with a new time of modification
    assert _info_json(capsys, out)["input_now"] == "unchanged"


def test_info_sees_a_change_in_any_chunk_of_a_zarr_store(rng, tmp_path, capsys):
    import zarr
    A = rng.standard_normal((300, 20))
    # uncompressed: a changed value leaves every file's size as it was
    z = zarr.create_array(str(tmp_path / "a.zarr"), shape=A.shape, chunks=(100, 20),
                          dtype="f8", compressors=None)
    z[:] = A
    out = tmp_path / "o.npz"
    in_process(capsys, "svd", tmp_path / "a.zarr", "-k", 2, "--quiet", "-o", out)
    assert "input_now: unchanged" in in_process(capsys, "info", out)[1]
    z[299, 19] = A[299, 19] + 1          # the last chunk only
    assert "input_now: changed" in in_process(capsys, "info", out)[1]


def test_info_reads_outputs_with_a_header_checksum(npy, tmp_path, capsys):
    # outputs written before whole-file checksums record the SHA-256 of the first 64 KiB
    import zipfile
    path, _ = npy
    out = tmp_path / "o.npz"
    in_process(capsys, "svd", path, "-k", 2, "--quiet", "-o", out)
    meta, arrays = meta_of(out)
    del meta["input"]["sha256"]
    meta["input"]["header_sha256"] = hashlib.sha256(path.read_bytes()[:65536]).hexdigest()
    meta["input"]["header_bytes"] = 65536
    arrays["metadata"] = np.array(json.dumps(meta))
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    assert zipfile.is_zipfile(old)
    status = _info_json(capsys, old)["input_now"]
    assert status.startswith("size and first 64 KiB unchanged") and "not checksummed" in status
    _changed_at(path, (0, 0))
    assert _info_json(capsys, old)["input_now"] == "changed"


def test_an_input_written_during_the_run_is_not_trusted(npy, tmp_path, monkeypatch, capsys):
    from randla.cli import main, svd
    path, _ = npy
    real = svd.decompose

    def decompose_while_written(*args, **kwargs):
        result = real(*args, **kwargs)
        _changed_at(path, (-1, -1))       # another program writes the file meanwhile
        return result
    monkeypatch.setattr(svd, "decompose", decompose_while_written)
    out = tmp_path / "o.npz"
    assert main(["svd", str(path), "-k", "2", "--quiet", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "changed while it was being read" in err and "nothing was written" in err, err
    assert sorted(os.listdir(tmp_path)) == ["a.npy"]


def _info_json(capsys, path):
    from randla.cli import main
    code = main(["info", str(path), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_info_describes_a_matrix_file(rng, tmp_path, capsys):
    import h5py
    import scipy.io
    m, n = (int(x) for x in rng.integers(5, 60, size=2))
    A = rng.standard_normal((m, n)).astype(np.float32)
    S = sp.random(m, n, density=0.2, random_state=rng, format="csr")
    np.save(tmp_path / "a.npy", A)
    sp.save_npz(tmp_path / "s.npz", S)
    scipy.io.mmwrite(tmp_path / "s.mtx", S)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["x"], f["y"] = A, A.T
    for name, dtype, nnz in [("a.npy", "float32", None), ("s.npz", "float64", S.nnz),
                             ("s.mtx", "float64", S.nnz), ("a.h5:/y", "float32", None)]:
        record = _info_json(capsys, tmp_path / name)
        file = tmp_path / name.split(":")[0]
        shape = [n, m] if name.endswith("/y") else [m, n]
        assert (record["file"], record["format"], record["shape"], record["dtype"],
                record["bytes"]) == (str(file), file.suffix[1:], shape, dtype,
                                     file.stat().st_size), name
        assert record.get("stored_entries") == nnz and record.get("dataset") == (
            "/y" if ".h5" in name else None), name


def test_info_names_a_file_it_cannot_read(rng, tmp_path, capsys):
    from randla.cli import main
    (tmp_path / "garbage.npz").write_bytes(rng.bytes(300))
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "text.npy").write_text("1 2 3\n")
    (tmp_path / "dir.npy").mkdir()
    np.savez(tmp_path / "plain.npz", a=np.ones(3))
    for name, message in [("garbage.npz", "is not a valid .npz file"),
                          ("empty.npz", "is an empty file"), ("text.npy", "is not a valid .npy"),
                          ("dir.npy", "is a directory"), ("missing.npy", "not found"),
                          ("plain.npz", "no randla metadata and holds no scipy.sparse matrix")]:
        code = main(["info", str(tmp_path / name)])
        out, err = capsys.readouterr()
        _one_line_error(code, err, message)
        assert str(tmp_path / name) in err and "pickle" not in err and out == "", err


def test_help_says_what_the_default_iterations_are(capsys):
    from randla.cli import main
    from randla.lowrank import DEFAULT_POWER_ITERS, MAX_ADAPTIVE_ITERS
    assert main(["svd", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "default: 2 power iterations" not in text and "default 2" not in text
    assert (f"Default: adaptive, power iterations until the singular values settle (at most "
            f"{MAX_ADAPTIVE_ITERS};") in text
    assert f"with --tol or --method krylov, {DEFAULT_POWER_ITERS} iterations" in text


def test_an_output_symlink_is_written_through(npy, tmp_path, capsys):
    (tmp_path / "results").mkdir()
    target = tmp_path / "results" / "real.npz"
    target.write_bytes(b"previous result")
    os.symlink(target, tmp_path / "link.npz")
    os.symlink(tmp_path / "results" / "new.npz", tmp_path / "dangling.npz")
    for link in ("link.npz", "dangling.npz"):
        in_process(capsys, "svd", npy[0], "-k", 2, "--quiet", "-o", tmp_path / link)
        assert (tmp_path / link).is_symlink()
    assert meta_of(target)[0]["rank"] == 2 == meta_of(tmp_path / "results" / "new.npz")[0]["rank"]
    assert sorted(os.listdir(tmp_path / "results")) == ["new.npz", "real.npz"]


def test_a_read_only_output_is_not_replaced(npy, tmp_path, monkeypatch, capsys):
    from randla.cli import main, output
    out = tmp_path / "o.npz"
    out.write_bytes(b"previous result")
    out.chmod(0o444)
    if os.geteuid() == 0:     # root may write anything: as a user, os.access says no
        real = os.access
        monkeypatch.setattr(output.os, "access", lambda p, mode: False if os.fspath(p) == str(
            out) and mode == os.W_OK else real(p, mode))
    assert main(["svd", str(npy[0]), "-k", "2", "--quiet", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out}: a read-only file: not replaced" in err, err
    assert out.read_bytes() == b"previous result"


def test_an_input_removed_during_the_run_is_not_trusted(npy, tmp_path, monkeypatch, capsys):
    from randla.cli import main, svd
    path, _ = npy
    real = svd.decompose

    def decompose_then_remove(*args, **kwargs):
        result = real(*args, **kwargs)     # the memory map keeps the data readable
        path.unlink()
        return result
    monkeypatch.setattr(svd, "decompose", decompose_then_remove)
    assert main(["svd", str(path), "-k", "2", "--quiet", "-o", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert "changed while it was being read (written to, replaced or removed)" in err, err
    assert os.listdir(tmp_path) == []


def test_an_interruption_while_u_is_written_leaves_nothing(tmp_path):
    import dask.array as da

    from randla.cli.output import AtomicNpz
    out = tmp_path / "o.npz"
    out.write_bytes(b"previous result")

    def interrupted(block, block_info=None):
        if block_info[0]["chunk-location"][0] == 2:
            raise KeyboardInterrupt
        return block
    U = da.ones((100, 3), chunks=(10, 3)).map_blocks(interrupted, dtype=float)
    with pytest.raises(KeyboardInterrupt), AtomicNpz(out) as f:
        f.add("s", np.arange(3.0))
        f.add("U", U)
        f.commit()
    assert os.listdir(tmp_path) == ["o.npz"] and out.read_bytes() == b"previous result"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_info_on_crafted_metadata(npy, tmp_path, capsys):
    # metadata is JSON anyone can write: odd inputs are statuses, not tracebacks (or a hang)
    path, A = npy
    fifo = tmp_path / "fifo.npy"
    os.mkfifo(fifo)
    for record, status in [("a string", "missing"), ({"path": 42}, "missing"), (None, "missing"),
                           ({"path": str(fifo), "bytes": 0, "sha256": "0"},
                            "changed (now a pipe or a device)")]:
        np.savez(tmp_path / "o.npz", s=np.ones(2), metadata=np.array(json.dumps(
            {"seed": 1, "input": record})))
        assert _info_json(capsys, tmp_path / "o.npz")["input_now"] == status, record


def test_metadata_is_strict_json_when_the_bound_overflows(npy, tmp_path, monkeypatch, capsys):
    # an error bound of inf (an overflow in the check) was written as the token Infinity,
    # which jq and JavaScript refuse
    import types

    import randla.lowrank

    def overflowed(*args, **kwargs):
        return types.SimpleNamespace(bound=float("inf"), probability=1 - 1e-10,
                                     estimate=float("nan"))
    monkeypatch.setattr(randla.lowrank, "estimate_error", overflowed)
    out = tmp_path / "o.npz"
    in_process(capsys, "svd", npy[0], "-k", 2, "--check-iters", 1, "-o", out)

    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")
    with np.load(out) as f:
        meta = json.loads(str(f["metadata"]), parse_constant=refuse)
    assert (meta["error"]["bound"], meta["error"]["estimate"]) == ("inf", "nan")
    printed = json.loads(in_process(capsys, "info", out, "--json")[1], parse_constant=refuse)
    assert printed["error"]["relative_bound"] == "inf"
