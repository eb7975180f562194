"""The ``randla`` command. Each subcommand lives in its own module with ``add_arguments`` and
``run``; this file only wires them."""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help)
COMMANDS = {
    "demo": ("randla.cli.demo", "rsvd with every sketch on a built-in matrix, beside LAPACK"),
    "info": ("randla.cli.info", "versions, BLAS, thread counts, Numba threading layer"),
    "svd": ("randla.cli.svd", "randomized SVD of a matrix file, out of core"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="randla", description="Randomized numerical linear algebra.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        try:
            importlib.import_module(module).add_arguments(p)
        except ModuleNotFoundError:
            p.set_defaults(_missing=True)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "_missing", False):
        print(f"randla {args.command}: not available in this build", file=sys.stderr)
        return 2
    return int(importlib.import_module(args._module).run(args) or 0)
