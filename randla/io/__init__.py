"""Matrices in files: .npy (memory-mapped, O_DIRECT read-ahead), Zarr, HDF5, .npz and .mtx."""
from .direct import DirectPanelReader, direct_io_supported
from .files import (
                    DENSE_SUFFIXES,
                    PANEL_BYTES,
                    SPARSE_SUFFIXES,
                    ArrayRows,
                    H5Rows,
                    NpyRows,
                    SparseHeader,
                    as_panels,
                    check_input_file,
                    open_matrix,
                    sparse_header,
                    split_dataset,
)

__all__ = ["open_matrix", "as_panels", "split_dataset", "ArrayRows", "NpyRows", "H5Rows",
           "DirectPanelReader", "direct_io_supported", "PANEL_BYTES", "DENSE_SUFFIXES",
           "SPARSE_SUFFIXES", "sparse_header", "SparseHeader", "check_input_file"]
