"""``randla deblur``: deblur an image file with a known point spread function.

    randla deblur IN.png --psf gaussian:3 -o OUT.png [--boundary reflective] [--method tikhonov]
                  [--rule discrepancy] [--noise-std SIGMA] [--lam LAM] [--gray]

The PSF is ``gaussian:SIGMA``, ``motion:LENGTH[,ANGLE]``, ``disk:RADIUS`` or ``file:PATH`` (a
.npy array or an image; normalized to sum 1). Reading and writing images needs Pillow
(``pip install 'randla[images]'``). The output is written atomically and never over the input.
``--noise-level`` is the old name of ``--noise-std`` (per pixel): it still works, with a warning.
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
    import argparse
    p.add_argument("input", metavar="IN", help="blurred image (PNG, JPEG, TIFF, ...)")
    p.add_argument("--psf", required=True, metavar="SPEC",
                   help="gaussian:SIGMA, motion:LENGTH[,ANGLE], disk:RADIUS or file:PATH")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="deblurred image")
    p.add_argument("--boundary", choices=("reflective", "periodic", "zero"), default="reflective",
                   help="what the scene does beyond the image (default reflective)")
    p.add_argument("--method", choices=("tikhonov", "tsvd"), default="tikhonov")
    p.add_argument("--rule", choices=("discrepancy", "gcv", "lcurve"), default="discrepancy",
                   help="how the regularization parameter is chosen (default discrepancy)")
    p.add_argument("--noise-std", type=_positive, default=None, metavar="SIGMA",
                   help="noise standard deviation per pixel, on the 0-1 scale (default: estimated)")
    # the old name of --noise-std (the same per-pixel meaning), kept working with a warning
    p.add_argument("--noise-level", type=_positive, default=None, help=argparse.SUPPRESS)
    p.add_argument("--lam", type=_positive, default=None, help="a fixed regularization parameter")
    p.add_argument("--gray", action="store_true", help="deblur the luminance only")
    return p


def run(args) -> int:
    warnings.showwarning = one_line_warnings("deblur")
    noise_std = args.noise_std
    if args.noise_level is not None:
        if noise_std is not None:
            print("randla deblur: error: --noise-level is the old name of --noise-std: pass "
                  "one of them", file=sys.stderr)
            return 2
        print("randla deblur: warning: --noise-level is deprecated: it is the per-pixel "
              "standard deviation, now --noise-std", file=sys.stderr)
        noise_std = args.noise_level
    from ..inverse import deblur_file
    try:
        res = deblur_file(args.input, args.output, args.psf, gray=args.gray,
                          boundary=args.boundary, method=args.method, rule=args.rule,
                          noise_std=noise_std, lam=args.lam)
    except MemoryError as e:
        print(f"randla deblur: error: out of memory ({' '.join(str(e).split())}): the image or "
              "the PSF is too large for this machine; crop the PSF to where it is nonzero, or "
              "deblur a smaller image (--gray for the luminance only)", file=sys.stderr)
        return 2
    except (OSError, ValueError, TypeError, ImportError) as e:
        print(f"randla deblur: error: {error_message(e)}", file=sys.stderr)
        return 2
    noise = _each(res.noise_std, "{:.3g}") + (" (estimated)" if res.noise_estimated else "")
    print(f"{args.output}: {res.path} path, rule {_each(res.rule, '{}')}, "
          f"lam {_each(res.lam, '{:.4g}')}, noise std {noise}", file=sys.stderr)
    return 0


def _each(value, fmt):
    """One value, or a colour image's per-channel values joined by '/' (one if all agree)."""
    values = value if isinstance(value, tuple) else (value,)
    texts = [fmt.format(v) for v in values]
    return texts[0] if len(set(texts)) == 1 else "/".join(texts)
