"""Reading and writing image files (with imageio or Pillow, whichever is installed).

Pixel values are floats in [0, 1] in memory; 8-bit files are written with rounding and clipping,
16-bit PNG/TIFF input keeps its precision. Output files are written atomically (a temporary file
in the same folder, then renamed): an interrupted run leaves the old output intact.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

__all__ = ["read_image", "write_image"]

_INSTALL = "reading and writing images needs imageio or Pillow: pip install 'randla[images]'"


def _backend():
    try:
        import imageio.v3 as iio
        return "imageio", iio
    except ImportError:
        pass
    try:
        from PIL import Image
        return "pillow", Image
    except ImportError:
        raise ImportError(_INSTALL) from None


def read_image(path, *, gray=False):
    """An image file as a float64 array in [0, 1], shape (H, W) or (H, W, C).

    Parameters
    ----------
    path : str or os.PathLike
    gray : bool
        Convert a colour image to luminance (ITU-R 601 weights, as Pillow's "L" mode).
    """
    kind, mod = _backend()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such image file: {path!r}")
    if kind == "imageio":
        arr = np.asarray(mod.imread(path))
    else:
        with mod.open(path) as im:
            arr = np.asarray(im)
    if arr.dtype.kind in "ui":
        arr = arr / np.iinfo(arr.dtype).max
    elif arr.dtype == bool:
        arr = arr.astype(float)
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[2] in (2, 4):  # drop alpha
        arr = arr[..., :-1]
    if gray and arr.ndim == 3:
        arr = arr[..., 0] if arr.shape[2] == 1 else arr[..., :3] @ [0.299, 0.587, 0.114]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    return arr


def write_image(path, image, *, overwrite=True):
    """Write a float image with values in [0, 1] (clipped) as an 8-bit file, atomically. The
    format follows the file extension (.png, .jpg, .tif, ...)."""
    kind, mod = _backend()
    path = os.fspath(path)
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got {img.shape}")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path!r} exists (pass overwrite=True)")
    out = np.round(np.clip(np.nan_to_num(img, nan=0.0), 0, 1) * 255).astype(np.uint8)
    folder = os.path.dirname(os.path.abspath(path))
    ext = os.path.splitext(path)[1]
    if not ext:
        raise ValueError(f"the output path {path!r} needs an extension naming the format")
    fd, tmp = tempfile.mkstemp(prefix=".randla-", suffix=ext, dir=folder)
    os.close(fd)
    try:
        if kind == "imageio":
            mod.imwrite(tmp, out)
        else:
            mod.fromarray(out).save(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
