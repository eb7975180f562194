"""Exact spectral filtering for blurs that the FFT or the DCT diagonalizes.

A periodic blur is A = F^H diag(lambda) F (F the unitary 2-D FFT); a reflective blur with a
doubly symmetric PSF is A = C^T diag(lambda) C (C the orthonormal 2-D DCT-II). Their SVD is then
known in closed form: singular values abs(lambda), right singular vectors the basis functions,
left ones the basis functions times the phase of lambda. :func:`blur_spectrum` returns it as a
:class:`~randla.inverse.Spectrum`, so that Tikhonov, TSVD and every parameter rule are exact and
cost O(N) per parameter after two O(N log N) transforms.
"""
from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from .blur import BlurOperator
from .regularize import Spectrum

__all__ = ["blur_spectrum"]


def blur_spectrum(A, b):
    """The full SVD information of a diagonalizable :class:`BlurOperator` and data ``b``.

    Parameters
    ----------
    A : BlurOperator
        With ``A.path`` "fft" (periodic boundary) or "dct" (reflective, doubly symmetric PSF).
    b : ndarray
        The blurred image, shape ``A.image_shape`` or flattened.

    Returns
    -------
    Spectrum
        Sorted singular values and coefficients of all N = n1 n2 components (nothing outside
        the computed rank), with ``solution`` mapping filtered coefficients to a flattened image.

    Examples
    --------
    >>> import numpy as np
    >>> from randla.inverse import BlurOperator, gaussian_psf
    >>> from randla.inverse.spectral import blur_spectrum
    >>> A = BlurOperator(gaussian_psf(1.0), (8, 8), boundary="periodic")
    >>> x = np.random.default_rng(0).random(64)
    >>> sp = blur_spectrum(A, A @ x)
    >>> bool(np.allclose(sp.solution(np.ones(64)), x))  # the unfiltered inverse
    True
    """
    if not isinstance(A, BlurOperator) or A.eigenvalues is None:
        raise ValueError("A must be a BlurOperator that the FFT or DCT diagonalizes (periodic "
                         "boundary, or reflective with a doubly symmetric PSF)")
    shape = A.image_shape
    b = np.asarray(b)
    if b.size != shape[0] * shape[1]:
        raise ValueError(f"b must hold {shape[0] * shape[1]} pixels (an image of shape {shape}), "
                         f"got shape {b.shape}")
    B = b.reshape(shape).astype(np.result_type(b.dtype, np.float64))
    lam = A.eigenvalues
    if A.path == "fft":
        Tb = sfft.fft2(B, norm="ortho")
        real_out = not np.iscomplexobj(b)

        def inverse(C):
            X = sfft.ifft2(C, norm="ortho")
            return X.real if real_out else X
    else:
        Tb = sfft.dctn(B, type=2, norm="ortho")

        def inverse(C):
            return sfft.idctn(C, type=2, norm="ortho")

    s = np.abs(lam).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        phase = np.where(s > 0, lam.ravel() / s, 1.0)
    beta = np.conj(phase) * Tb.ravel() if A.path == "fft" else phase.real * Tb.ravel()
    order = np.argsort(-s, kind="stable")
    dtype = beta.dtype

    def to_x(c):
        C = np.zeros(s.size, dtype=np.result_type(c.dtype, dtype))
        C[order] = c
        return inverse(C.reshape(shape)).ravel()

    return Spectrum(s[order], beta[order], 0.0, s.size, to_x)
