"""Files that lie: headers announcing absurd sizes, negative dimensions, damaged archives. Each
is refused with a ValueError naming the file, before anything of the announced size is
allocated; honest files give their true sizes."""
import os
import resource

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from randla.io import open_matrix, sparse_header


def _crafted_npy(path, shape, descr="<f8"):
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False,
                                                 "shape": shape})
        f.write(bytes(64))
    return path


@pytest.mark.parametrize("shape, message", [((2**32, 2**32), "truncated"),
                                            ((2**62, 4), "truncated"),
                                            ((-5, 10), "negative dimension"),
                                            ((10, -1), "negative dimension")])
def test_crafted_npy_headers(tmp_path, shape, message):
    path = _crafted_npy(tmp_path / "x.npy", shape)
    with pytest.raises(ValueError, match=message) as info:
        open_matrix(path)
    assert str(path) in str(info.value)


def test_sparse_header_reads_sizes_without_loading(tmp_path, rng):
    A = sp.random(70, 40, density=0.1, random_state=rng, format="csr")
    sp.save_npz(tmp_path / "a.npz", A)
    sp.save_npz(tmp_path / "c.npz", A.tocoo(), compressed=False)
    scipy.io.mmwrite(tmp_path / "a.mtx", A)
    scipy.io.mmwrite(tmp_path / "d.mtx", A.toarray())
    scipy.io.mmwrite(tmp_path / "s.mtx", (A[:, :40].T @ A[:, :40]).tocoo(), symmetry="symmetric")
    for name in ("a.npz", "c.npz", "a.mtx"):
        h = sparse_header(tmp_path / name)
        assert (h.shape, h.nnz, h.dtype) == ((70, 40), A.nnz, np.float64), name
        # at least what the CSR result takes
        assert h.load_bytes >= A.data.nbytes + A.indices.nbytes + A.indptr.nbytes, name
    assert sparse_header(tmp_path / "d.mtx").load_bytes == 70 * 40 * 8
    h = sparse_header(tmp_path / "s.mtx")
    assert h.shape == (40, 40)


def test_a_tiny_file_announcing_a_huge_matrix_is_refused_within_the_budget(tmp_path):
    path = tmp_path / "big.mtx"
    path.write_text("%%MatrixMarket matrix coordinate real general\n"
                    "100000000 100000000 1\n1 1 1.0\n")
    h = sparse_header(path)
    assert h.shape == (10**8, 10**8) and h.load_bytes > 4 * 10**8   # the CSR row pointers
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match="more than the 100000000 bytes allowed"):
        open_matrix(path, max_bytes=10**8)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before   # KiB on Linux
    assert grown < 50 * 1024
    (tmp_path / "lie.mtx").write_text("%%MatrixMarket matrix coordinate real general\n"
                                      "2 2 5\n1 1 1.0\n")
    with pytest.raises(ValueError, match="5 entries announced in a 2 x 2"):
        sparse_header(tmp_path / "lie.mtx")


@pytest.mark.parametrize("content, message", [(b"PK\x03\x04" + bytes(200), "not a valid .npz file"),
                                              (b"not a zip at all", "not a valid .npz file"),
                                              (b"", "is an empty file"),
                                              (None, "not a valid .npz file")])
def test_damaged_npz(tmp_path, content, message, rng):
    path = tmp_path / "x.npz"
    if content is None:   # a valid archive cut in the middle
        sp.save_npz(path, sp.random(200, 200, density=0.2, random_state=rng, format="csr"))
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 2])
    else:
        path.write_bytes(content)
    for call in (lambda: open_matrix(path), lambda: sparse_header(path),
                 lambda: open_matrix(path, max_bytes=10**9)):
        with pytest.raises(ValueError, match=message) as info:
            call()
        assert str(info.value).startswith(str(path)) and "pickle" not in str(info.value)


def test_npz_member_announcing_a_huge_array(tmp_path):
    import zipfile
    path = tmp_path / "x.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for name, shape, descr in [("data", (2**40,), "<f8"), ("indices", (2**40,), "<i4"),
                                   ("indptr", (11,), "<i4"), ("format", (), "|S3"),
                                   ("shape", (2,), "<i8")]:
            with zf.open(f"{name}.npy", "w") as f:
                np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False,
                                                         "shape": shape})
                if name == "format":
                    f.write(b"csr")
                elif name == "shape":
                    f.write(np.array([10, 10], "<i8").tobytes())
    h = sparse_header(path)
    assert h.nnz == 2**40 and h.load_bytes > 2**40 * 12
    with pytest.raises(ValueError, match="needs about"):
        open_matrix(path, max_bytes=2**30)


def test_a_dataset_for_a_single_matrix_file_is_refused(tmp_path, rng):
    np.save(tmp_path / "a.npy", rng.standard_normal((5, 3)))
    sp.save_npz(tmp_path / "a.npz", sp.eye(4, format="csr"))
    for name in ("a.npy", "a.npz"):
        with pytest.raises(ValueError, match="holds a single matrix"):
            open_matrix(tmp_path / name, "/data")
    assert os.path.exists(tmp_path / "a.npy")


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".mtx", ".h5"])
def test_empty_files_and_folders_are_named(tmp_path, suffix):
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=f"^{empty} is an empty file"):
        open_matrix(empty)
    folder = tmp_path / f"folder{suffix}"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=f"^{folder} is a directory"):
        open_matrix(folder)
