"""``randla deblur``: deblur an image file with a known point spread function.

    randla deblur IN.png --psf gaussian:3 -o OUT.png [--boundary reflective] [--method tikhonov]
                  [--rule discrepancy] [--noise-level SIGMA] [--lam LAM] [--gray]

The PSF is ``gaussian:SIGMA``, ``motion:LENGTH[,ANGLE]``, ``disk:RADIUS`` or ``file:PATH`` (a
.npy array or an image). Reading and writing images needs Pillow or imageio
(``pip install 'randla[images]'``). The output is written atomically and never over the input.
"""
from __future__ import annotations

import sys
import warnings

from .args import error_message, one_line_warnings

ON_INTERRUPT = "no output written"


def _positive(text):
    import argparse
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def add_arguments(p):
    p.add_argument("input", metavar="IN", help="blurred image (PNG, JPEG, TIFF, ...)")
    p.add_argument("--psf", required=True, metavar="SPEC",
                   help="gaussian:SIGMA, motion:LENGTH[,ANGLE], disk:RADIUS or file:PATH")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="deblurred image")
    p.add_argument("--boundary", choices=("reflective", "periodic", "zero"), default="reflective",
                   help="what the scene does beyond the image (default reflective)")
    p.add_argument("--method", choices=("tikhonov", "tsvd"), default="tikhonov")
    p.add_argument("--rule", choices=("discrepancy", "gcv", "lcurve"), default="discrepancy",
                   help="how the regularization parameter is chosen (default discrepancy)")
    p.add_argument("--noise-level", type=_positive, default=None, metavar="SIGMA",
                   help="noise standard deviation per pixel, on the 0-1 scale (default: estimated)")
    p.add_argument("--lam", type=_positive, default=None, help="a fixed regularization parameter")
    p.add_argument("--gray", action="store_true", help="deblur the luminance only")
    return p


def run(args) -> int:
    warnings.showwarning = one_line_warnings("deblur")
    from ..inverse import deblur_file
    try:
        res = deblur_file(args.input, args.output, args.psf, gray=args.gray,
                          boundary=args.boundary, method=args.method, rule=args.rule,
                          noise_level=args.noise_level, lam=args.lam)
    except (OSError, ValueError, TypeError, ImportError, MemoryError) as e:
        print(f"randla deblur: error: {error_message(e)}", file=sys.stderr)
        return 2
    noise = f"{res.noise_level:.3g}" + (" (estimated)" if res.noise_estimated else "")
    print(f"{args.output}: {res.path} path, rule {res.rule}, lam {res.lam:.4g}, noise {noise}",
          file=sys.stderr)
    return 0
