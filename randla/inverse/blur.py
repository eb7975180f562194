"""Blur operators on images with zero, periodic or reflective boundary conditions, and PSFs.

A blur maps an image X (shape ``(n1, n2)``, flattened row-major) to
``Y[i, j] = sum_{k, l} psf[k, l] X[i - k + c1, j - l + c2]`` where ``(c1, c2)`` is the PSF's
center and X is extended beyond its edges by the boundary condition:

- ``"zero"``: X = 0 outside (``scipy.ndimage.convolve(..., mode="constant")``);
- ``"periodic"``: X repeats (``mode="wrap"``);
- ``"reflective"``: X is mirrored about its edges, half a pixel out (x[-1] = x[0]): Hansen,
  Nagy and O'Leary's reflexive boundary, which is ``mode="reflect"`` in scipy.ndimage (not
  ``"mirror"``, which reflects about the edge pixel's center).

The fast paths (Hansen, Nagy & O'Leary, *Deblurring Images*, SIAM 2006): a periodic blur is
diagonalized by the 2-D FFT, a reflective blur with a doubly symmetric PSF by the 2-D DCT-II;
every other case pads the image by the boundary condition and convolves with FFTs
(overlap-add, so memory stays a few images even for a 4096 x 4096 image).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft
import scipy.sparse as sps
import scipy.sparse.linalg as spla

from .._validation import check_choice, check_positive_int, check_real
from .problems import KroneckerOperator

__all__ = ["BlurOperator", "gaussian_psf", "motion_psf", "disk_psf", "BOUNDARIES"]

BOUNDARIES = ("zero", "periodic", "reflective")


# -- PSFs ----------------------------------------------------------------------------------------
def gaussian_psf(sigma, size=None):
    """A normalized Gaussian PSF exp(-(i^2 + j^2) / (2 sigma^2)) on an odd square grid.

    Parameters
    ----------
    sigma : float > 0
        Standard deviation in pixels.
    size : int, optional
        Side of the (odd) grid; default ``2 * ceil(3 * sigma) + 1``.

    Examples
    --------
    >>> from randla.inverse import gaussian_psf
    >>> p = gaussian_psf(1.0)
    >>> p.shape, round(float(p.sum()), 12)
    ((7, 7), 1.0)
    """
    sigma = check_real(sigma, "sigma", low_open=True)
    half = _half(size, 3 * sigma)
    t = np.arange(-half, half + 1)
    g = np.exp(-t**2 / (2 * sigma**2))
    p = np.outer(g, g)
    return p / p.sum()


def motion_psf(length, angle=0.0):
    """A normalized linear-motion PSF: a line segment covering ``length`` pixels at ``angle``
    degrees (counter-clockwise from the horizontal axis), anti-aliased by supersampling (as
    MATLAB's ``fspecial("motion")``: the segment joins pixel centers ``length - 1`` apart).

    Examples
    --------
    >>> from randla.inverse import motion_psf
    >>> p = motion_psf(9)
    >>> p.shape, bool(abs(p.sum() - 1) < 1e-12)
    ((9, 9), True)
    """
    length = check_real(length, "length", low=1.0)
    angle = check_real(angle, "angle", low=-math.inf)
    half = _half(None, (length - 1) / 2)
    th = np.deg2rad(angle)
    # supersample the segment and splat each sample bilinearly: a smooth, centered PSF
    t = np.linspace(-(length - 1) / 2, (length - 1) / 2, int(32 * length) + 1)
    r, c = -t * np.sin(th) + half, t * np.cos(th) + half  # image rows grow downwards
    p = np.zeros((2 * half + 1, 2 * half + 1))
    r0, c0 = np.floor(r).astype(int), np.floor(c).astype(int)
    fr, fc = r - r0, c - c0
    for dr, wr in ((0, 1 - fr), (1, fr)):
        for dc, wc in ((0, 1 - fc), (1, fc)):
            ok = (r0 + dr <= 2 * half) & (c0 + dc <= 2 * half)
            np.add.at(p, (r0[ok] + dr, c0[ok] + dc), (wr * wc)[ok])
    return p / p.sum()


def disk_psf(radius):
    """A normalized out-of-focus (uniform disk) PSF of ``radius`` pixels, with each pixel
    weighted by the fraction of its area inside the disk (8 x 8 supersampling).

    Examples
    --------
    >>> from randla.inverse import disk_psf
    >>> p = disk_psf(3)
    >>> p.shape, bool(abs(p.sum() - 1) < 1e-12), bool((p == p.T).all())
    ((7, 7), True, True)
    """
    radius = check_real(radius, "radius", low_open=True)
    half = _half(None, radius - 0.5)
    s = (np.arange(8) + 0.5) / 8 - 0.5
    t = np.arange(-half, half + 1)
    fine = (t[:, None] + s[None, :]).ravel()
    inside = (fine[:, None] ** 2 + fine[None, :] ** 2 <= radius**2).astype(float)
    p = inside.reshape(2 * half + 1, 8, 2 * half + 1, 8).mean(axis=(1, 3))
    return p / p.sum()


def _half(size, extent):
    if size is None:
        return max(int(math.ceil(extent)), 0)
    size = check_positive_int(size, "size")
    if size % 2 == 0:
        raise ValueError(f"size must be odd (the PSF is centered), got {size}")
    return size // 2


# -- boundary extension ------------------------------------------------------------------------
def _source_index(idx, n, boundary):
    """The pixel of a length-n signal that padded position ``idx`` (may be <0 or >=n) copies,
    -1 for a zero."""
    if boundary == "zero":
        return np.where((idx >= 0) & (idx < n), idx, -1)
    if boundary == "periodic":
        return idx % n
    j = idx % (2 * n)  # half-sample symmetric: period 2n, x[-1] = x[0]
    return np.where(j < n, j, 2 * n - 1 - j)


def _extension_matrix(n, before, after, boundary):
    """Sparse (n + before + after) x n 0/1 matrix P with P x = x extended by the boundary."""
    src = _source_index(np.arange(-before, n + after), n, boundary)
    rows = np.nonzero(src >= 0)[0]
    return sps.csr_matrix((np.ones(rows.size), (rows, src[rows])), shape=(n + before + after, n))


class BlurOperator(spla.LinearOperator):
    """A 2-D blur with a given PSF and boundary condition, on flattened (row-major) images.

    Parameters
    ----------
    psf : array_like, shape (p, q)
        The point spread function (any real 2-D array; not normalized here).
    shape : tuple of 2 ints
        The image shape ``(n1, n2)``; the operator is ``(n1 n2) x (n1 n2)``.
    boundary : {"zero", "periodic", "reflective"}
        How the scene continues beyond the image (see the module docstring); "reflective" is the
        right model for a crop of a larger photo.
    center : tuple of 2 ints, optional
        The PSF pixel that maps a point to itself; default ``(p // 2, q // 2)`` (the array
        center, as scipy.ndimage).

    Attributes
    ----------
    path : str
        How products are computed: ``"fft"`` (periodic), ``"dct"`` (reflective, doubly
        symmetric PSF) or ``"padded-fft"``.
    eigenvalues : ndarray or None
        The diagonal in the FFT (``norm="ortho"`` 2-D FFT, complex) or DCT-II (real) basis on
        the fast paths: A = T^H diag(eigenvalues) T.

    Examples
    --------
    >>> import numpy as np, scipy.ndimage as ndi
    >>> from randla.inverse import BlurOperator, gaussian_psf
    >>> X = np.random.default_rng(0).random((20, 30))
    >>> A = BlurOperator(gaussian_psf(2.0), X.shape, boundary="reflective")
    >>> ref = ndi.convolve(X, gaussian_psf(2.0), mode="reflect")
    >>> A.path, bool(np.allclose(A @ X.ravel(), ref.ravel()))
    ('dct', True)
    """

    def __init__(self, psf, shape, *, boundary="zero", center=None):
        psf = np.asarray(psf)
        if psf.ndim != 2 or psf.size == 0:
            raise ValueError(f"psf must be a non-empty 2-D array, got shape {psf.shape}")
        if psf.dtype.kind not in "fiub":
            raise TypeError(f"psf must be real, got dtype {psf.dtype}")
        if not np.all(np.isfinite(psf)):
            raise ValueError("psf contains NaN or Inf")
        dtype = np.float32 if psf.dtype == np.float32 else np.float64
        self.psf = psf.astype(dtype)
        self.image_shape = _check_shape(shape)
        self.boundary = check_choice(boundary, "boundary", BOUNDARIES)
        self.center = _check_center(center, psf.shape)
        n = self.image_shape[0] * self.image_shape[1]
        super().__init__(np.dtype(dtype), (n, n))
        p, q = psf.shape
        c1, c2 = self.center
        self._pad = ((p - 1 - c1, c1), (q - 1 - c2, c2))
        (b1, a1), (b2, a2) = self._pad
        n1, n2 = self.image_shape
        # np.pad and slicing folds for pads up to the image size; sparse 0/1 matrices beyond
        self._slice_pad = max(b1, a1) <= n1 and max(b2, a2) <= n2
        if not self._slice_pad:
            self._P1 = _extension_matrix(n1, b1, a1, self.boundary)
            self._P2 = _extension_matrix(n2, b2, a2, self.boundary)
        # the valid part of a circular convolution of size >= n + p - 1 is the linear one
        self._fft_shape = (sfft.next_fast_len(n1 + p - 1, real=True),
                           sfft.next_fast_len(n2 + q - 1, real=True))
        self._H = None  # the PSF's transform, computed on first use
        self.eigenvalues = None
        if self.boundary == "periodic":
            self.path = "fft"
            self.eigenvalues = self._fft_eigenvalues()
        elif self.boundary == "reflective" and self.is_doubly_symmetric():
            self.path = "dct"
            self.eigenvalues = self._dct_eigenvalues()
        else:
            self.path = "padded-fft"

    # -- structure ------------------------------------------------------------------------
    def is_doubly_symmetric(self, rtol=1e-12):
        """True when the PSF, about its center, is unchanged by flipping either axis."""
        P = self._centered_psf()
        tol = rtol * np.abs(P).max()
        return bool(np.abs(P - P[::-1]).max() <= tol and np.abs(P - P[:, ::-1]).max() <= tol)

    def separable_factors(self, rtol=1e-10):
        """``(c, r)`` with psf = outer(c, r) when the PSF has numerical rank one, else None."""
        U, s, Vh = np.linalg.svd(self.psf.astype(np.float64))
        if s.size > 1 and s[1] > rtol * s[0]:
            return None
        return U[:, 0] * math.sqrt(s[0]), Vh[0] * math.sqrt(s[0])

    def kronecker(self):
        """The blur as a :class:`~randla.inverse.problems.KroneckerOperator` A1 kron A2 (dense
        n1 x n1 and n2 x n2 factors) when the PSF is separable, else None. Its SVD is the
        Kronecker product of two small SVDs."""
        f = self.separable_factors()
        if f is None:
            return None
        mats = [_blur_matrix_1d(v, n, c, self.boundary)
                for v, n, c in zip(f, self.image_shape, self.center)]
        return KroneckerOperator(*mats)

    def _centered_psf(self):
        """The PSF zero-padded so that its center is the middle pixel."""
        p, q = self.psf.shape
        c1, c2 = self.center
        h1, h2 = max(c1, p - 1 - c1), max(c2, q - 1 - c2)
        P = np.zeros((2 * h1 + 1, 2 * h2 + 1), dtype=self.psf.dtype)
        P[h1 - c1:h1 - c1 + p, h2 - c2:h2 - c2 + q] = self.psf
        return P

    def _fft_eigenvalues(self):
        n1, n2 = self.image_shape
        p, q = self.psf.shape
        c1, c2 = self.center
        # fold the PSF onto the torus with its center at pixel (0, 0): exact for any PSF size
        S = np.zeros((n1, n2), dtype=self.psf.dtype)
        i = (np.arange(p) - c1) % n1
        j = (np.arange(q) - c2) % n2
        np.add.at(S, (i[:, None], j[None, :]), self.psf)
        return sfft.fft2(S)  # the eigenvalues, for the norm="ortho" transform pair too

    def _dct_eigenvalues(self):
        # Hansen-Nagy-O'Leary: lambda = dct2(A e_1) / dct2(e_1), with A e_1 from the exact path
        e1 = np.zeros(self.image_shape, dtype=self.psf.dtype)
        e1[0, 0] = 1
        Ae1 = self._padded_apply(e1[None])[0]
        return sfft.dctn(Ae1, type=2, norm="ortho") / sfft.dctn(e1, type=2, norm="ortho")

    # -- products ------------------------------------------------------------------------
    def _images(self, X):
        return X.T.reshape(X.shape[1], *self.image_shape)

    def _matmat(self, X):
        imgs = self._images(np.asarray(X))
        if self.path == "fft":
            out = sfft.ifft2(sfft.fft2(imgs, norm="ortho") * self.eigenvalues, norm="ortho")
            out = out if np.iscomplexobj(X) else out.real
        elif self.path == "dct":
            out = self._dct_apply(imgs)
        else:
            out = self._padded_apply(imgs)
        return out.reshape(imgs.shape[0], -1).T.astype(self._out_dtype(X), copy=False)

    def _rmatmat(self, Y):
        imgs = self._images(np.asarray(Y))
        if self.path == "fft":
            out = sfft.ifft2(sfft.fft2(imgs, norm="ortho") * self.eigenvalues.conj(), norm="ortho")
            out = out if np.iscomplexobj(Y) else out.real
        elif self.path == "dct":
            out = self._dct_apply(imgs)  # symmetric
        else:
            out = self._padded_rapply(imgs)
        return out.reshape(imgs.shape[0], -1).T.astype(self._out_dtype(Y), copy=False)

    def _matvec(self, x):
        return self._matmat(np.asarray(x).reshape(-1, 1)).ravel()

    def _rmatvec(self, y):
        return self._rmatmat(np.asarray(y).reshape(-1, 1)).ravel()

    def _adjoint(self):
        return _Adjoint(self)

    def _out_dtype(self, X):
        return np.result_type(self.dtype, np.asarray(X).dtype)

    def _dct_apply(self, imgs):
        lam = self.eigenvalues
        return np.stack([_dct_filter(img, lam) for img in imgs])

    def _transfer(self):
        if self._H is None:
            self._H = sfft.rfft2(self.psf, s=self._fft_shape)
        return self._H

    def _extend(self, img):
        if self._slice_pad:
            mode = {"zero": "constant", "periodic": "wrap", "reflective": "symmetric"}
            return np.pad(img, self._pad, mode=mode[self.boundary])
        return self._P1 @ img @ self._P2.T

    def _fold(self, Z):
        """The adjoint of :meth:`_extend`: add the border back onto the pixels it copies."""
        if not self._slice_pad:
            return self._P1.T @ (self._P2.T @ Z.T).T
        (b1, a1), (b2, a2) = self._pad
        n1, n2 = self.image_shape
        Z = _fold_axis(Z, b1, a1, n1, self.boundary)
        return _fold_axis(Z.T, b2, a2, n2, self.boundary).T

    def _padded_apply(self, imgs):
        H, s = self._transfer(), self._fft_shape
        p, q = self.psf.shape
        n1, n2 = self.image_shape
        out = []
        for img in imgs:
            if np.iscomplexobj(img):
                out.append(self._padded_apply(img.real[None])[0]
                           + 1j * self._padded_apply(img.imag[None])[0])
                continue
            Y = sfft.irfft2(sfft.rfft2(self._extend(img), s=s) * H, s=s)
            out.append(Y[p - 1:p - 1 + n1, q - 1:q - 1 + n2])
        return np.stack(out)

    def _padded_rapply(self, imgs):
        # adjoint of (valid convolution after extension): full correlation, then fold back
        H, s = self._transfer(), self._fft_shape
        p, q = self.psf.shape
        n1, n2 = self.image_shape
        out = []
        for img in imgs:
            if np.iscomplexobj(img):
                out.append(self._padded_rapply(img.real[None])[0]
                           + 1j * self._padded_rapply(img.imag[None])[0])
                continue
            Y = np.zeros(s, dtype=img.dtype)
            Y[p - 1:p - 1 + n1, q - 1:q - 1 + n2] = img
            Z = sfft.irfft2(sfft.rfft2(Y) * H.conj(), s=s)
            out.append(self._fold(Z[:n1 + p - 1, :n2 + q - 1]))
        return np.stack(out)


def _fold_axis(Z, before, after, n, boundary):
    """Adjoint of extending axis 0 by ``before`` and ``after`` rows (each at most n)."""
    core = Z[before:before + n].copy()
    top, bottom = Z[:before], Z[before + n:]
    if boundary == "periodic":  # row -j copies n - j, row n + j copies j
        core[n - before:] += top
        core[:after] += bottom
    elif boundary == "reflective":  # row -j copies j - 1, row n + j copies n - 1 - j
        core[:before] += top[::-1]
        core[n - after:] += bottom[::-1]
    return core


def _dct_filter(img, lam):
    if np.iscomplexobj(img):
        return _dct_filter(img.real, lam) + 1j * _dct_filter(img.imag, lam)
    return sfft.idctn(sfft.dctn(img, type=2, norm="ortho") * lam, type=2, norm="ortho")


class _Adjoint(spla.LinearOperator):
    def __init__(self, A):
        self.A = A
        super().__init__(A.dtype, A.shape[::-1])

    def _matmat(self, X):
        return self.A._rmatmat(X)

    def _rmatmat(self, Y):
        return self.A._matmat(Y)

    def _matvec(self, x):
        return self.A._rmatvec(x)

    def _rmatvec(self, y):
        return self.A._matvec(y)

    def _adjoint(self):
        return self.A


def _blur_matrix_1d(v, n, c, boundary):
    """The n x n matrix of the 1-D blur y[i] = sum_k v[k] x[i - k + c] with the boundary."""
    M = np.zeros((n, n))
    i = np.arange(n)
    for k, w in enumerate(v):
        src = _source_index(i - k + c, n, boundary)
        ok = src >= 0
        np.add.at(M, (i[ok], src[ok]), w)
    return M


def _check_shape(shape):
    try:
        n1, n2 = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be a pair of ints (n1, n2), got {shape!r}") from None
    check_positive_int(n1, "shape[0]")
    check_positive_int(n2, "shape[1]")
    return n1, n2


def _check_center(center, pshape):
    if center is None:
        return pshape[0] // 2, pshape[1] // 2
    try:
        c1, c2 = (int(c) for c in center)
    except (TypeError, ValueError):
        raise ValueError(f"center must be a pair of ints, got {center!r}") from None
    if not (0 <= c1 < pshape[0] and 0 <= c2 < pshape[1]):
        raise ValueError(f"center must lie inside the psf of shape {pshape}, got {center!r}")
    return c1, c2
