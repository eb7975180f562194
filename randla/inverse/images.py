"""Reading and writing image files (with Pillow), and the one rule for pixel values.

The rule, shared by :func:`read_image`, :func:`write_image`, :func:`~randla.inverse.deblur` and
:func:`~randla.inverse.estimate_noise`: pixel values are floats on the [0, 1] scale, or
integers on their type's full range, uint8 (0-255) and uint16 (0-65535), which stand for the
same values divided by 255 or 65535. So ``read_image`` returns floats in [0, 1], ``deblur``
divides an integer image by its type's maximum before deblurring (and says so in its result),
and ``write_image`` writes floats clipped to [0, 1] and 8- or 16-bit integers alike. Other
integer types (int32, int64, ...) have no agreed full range and are refused.

Files: palette images (GIF, palette PNG) are converted to RGB (not their palette indices), CMYK
(JPEG from print workflows), YCbCr, LAB and HSV to RGB, bilevel images to 0/1; alpha is
dropped. 16-bit grayscale PNG/TIFF input keeps its precision. Output files are written
atomically (a temporary file in the same folder, then renamed): an interrupted run leaves the
old output intact.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

__all__ = ["read_image", "write_image", "to_unit_scale"]

_INSTALL = "reading and writing images needs Pillow: pip install 'randla[images]'"

#: full-range integer types and the value that stands for 1.0
_FULL_RANGE = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}

#: Pillow modes that are not pixel values as they stand, and what they are converted to
_CONVERT = {"P": "RGB", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB",
            "1": "L", "PA": "RGBA", "La": "LA", "RGBa": "RGBA"}


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(_INSTALL) from None
    return Image


def check_image_shape(X, name, min_side=2):
    """Refuse anything but (H, W) or (H, W, C), naming a channels-first array as such."""
    if X.ndim == 3 and X.shape[0] <= 4 < X.shape[2]:
        raise ValueError(f"{name} looks channels-first (shape {X.shape}): images are (H, W) or "
                         f"(H, W, C) with channels last; pass np.moveaxis({name}, 0, -1)")
    if X.ndim not in (2, 3) or min(X.shape[:2]) < min_side:
        raise ValueError(f"{name} must be an image of shape (H, W) or (H, W, C), at least "
                         f"{min_side} x {min_side}, got shape {X.shape}")


def to_unit_scale(image, name="image"):
    """``(values, scale)``: an image on the [0, 1] scale and the factor applied to get there
    (1/255 for uint8, 1/65535 for uint16, 1 for floats and bools, which are kept as they are).

    Examples
    --------
    >>> import numpy as np
    >>> from randla.inverse.images import to_unit_scale
    >>> x, scale = to_unit_scale(np.array([[0, 51], [255, 102]], dtype=np.uint8))
    >>> x.tolist(), scale == 1 / 255
    ([[0.0, 0.2], [1.0, 0.4]], True)
    """
    X = np.asarray(image)
    full = _FULL_RANGE.get(X.dtype.newbyteorder("=") if X.dtype.kind in "ui" else X.dtype)
    if full is not None:
        return X / full, 1.0 / full
    if X.dtype.kind in "iu":
        raise TypeError(f"{name} has dtype {X.dtype}, which has no agreed pixel range: pass "
                        f"floats on the [0, 1] scale (e.g. {name} / 255 for 8-bit values), or "
                        f"uint8 or uint16")
    if X.dtype == bool:
        return X.astype(np.float64), 1.0
    if X.dtype.kind != "f":
        raise TypeError(f"{name} must hold real pixel values, got dtype {X.dtype}")
    return X, 1.0


def read_image(path, *, gray=False):
    """An image file as a float64 array in [0, 1], shape (H, W) or (H, W, C).

    Palette, CMYK, YCbCr, LAB and HSV files come out as RGB and bilevel ones as 0/1 (see the
    module docstring); alpha is dropped.

    Parameters
    ----------
    path : str or os.PathLike
    gray : bool
        Convert a colour image to luminance (ITU-R 601 weights, as Pillow's "L" mode).
    """
    Image = _pillow()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such image file: {path!r}")
    with Image.open(path) as im:
        arr = _pixels(im)
    if arr.ndim == 3 and arr.shape[2] in (2, 4):  # drop alpha
        arr = arr[..., :-1]
    if gray and arr.ndim == 3:
        arr = arr[..., 0] if arr.shape[2] == 1 else arr[..., :3] @ [0.299, 0.587, 0.114]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    return arr


def _pixels(im):
    """The pixel values of a Pillow image on the [0, 1] scale (float64)."""
    mode = im.mode
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    elif mode in _CONVERT:
        im = im.convert(_CONVERT[mode])
    arr = np.asarray(im)
    if arr.dtype == bool:
        return arr.astype(np.float64)
    if arr.dtype.kind == "f":
        return arr.astype(np.float64)
    if mode == "I" and im.format == "PNG":  # 16-bit PNG opened as 32-bit by some Pillows
        return arr / 65535.0
    if arr.dtype.kind in "iu" and arr.dtype.newbyteorder("=") not in _FULL_RANGE:
        return arr / float(np.iinfo(arr.dtype).max)
    return to_unit_scale(arr)[0].astype(np.float64, copy=False)


#: a float image whose median is above this is on a 0-255 (or 0-65535) scale, not [0, 1]; a
#: deblurred image rings and overshoots at edges, and noise amplification scatters values on
#: both sides, but the median stays in [0, 1]
_OFF_SCALE_MEDIAN = 1.5


def write_image(path, image, *, overwrite=True):
    """Write an image as an 8-bit file, atomically. The format follows the file extension
    (.png, .jpg, .tif, ...).

    Parameters
    ----------
    path : str or os.PathLike
    image : array_like, shape (H, W) or (H, W, C) with C in 1..4
        Floats on the [0, 1] scale (values outside are clipped, NaN written as 0), or uint8 /
        uint16 on their full range (see the module docstring). A float image whose median
        is above 1.5 (0-255 values) is refused: clipping it would write a white image.
    overwrite : bool
        When False, an existing file is not replaced.
    """
    Image = _pillow()
    path = os.fspath(path)
    img, _ = to_unit_scale(image, "image")
    check_image_shape(img, "image", min_side=1)
    if img.ndim == 3 and img.shape[2] > 4:
        raise ValueError(f"image must have 1 to 4 channels (last axis), got shape {img.shape}")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path!r} exists (pass overwrite=True)")
    _check_unit_scale(img)
    out = np.round(np.clip(np.nan_to_num(img, nan=0.0), 0, 1) * 255).astype(np.uint8)
    if out.ndim == 3 and out.shape[2] == 1:
        out = out[..., 0]
    folder = os.path.dirname(os.path.abspath(path))
    ext = os.path.splitext(path)[1]
    if not ext:
        raise ValueError(f"the output path {path!r} needs an extension naming the format")
    fd, tmp = tempfile.mkstemp(prefix=".randla-", suffix=ext, dir=folder)
    os.close(fd)
    try:
        try:
            Image.fromarray(out).save(tmp)
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
        except OSError as e:   # name the file asked for, not the temporary one
            raise OSError(e.errno, e.strerror or str(e), path) from e
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _check_unit_scale(img):
    finite = img[np.isfinite(img)]
    median = float(np.median(finite)) if finite.size else 0.0
    if median > _OFF_SCALE_MEDIAN:
        raise ValueError(f"image has median {median:.4g}: it looks like 0-255 values, but float "
                         "images are written on the [0, 1] scale (clipping it would write a "
                         "white image); divide it by 255, or pass uint8")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
