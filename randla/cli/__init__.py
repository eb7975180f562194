"""The ``randla`` command. Each subcommand lives in its own module with ``add_arguments`` and
``run``; this file only wires them, and gives every command the same conventions: errors are one
line on stderr with exit status 2, progress goes to stderr, and an interruption (Ctrl-C,
SIGTERM, SIGHUP) prints one line, removes temporary files and exits with 128 + the signal. A reader
that goes away (``randla info --json | head -1``) ends the command quietly, as it ends Unix
tools, with the status of a SIGPIPE (141)."""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

# subcommand -> (module, one-line help)
COMMANDS = {
    "demo": ("randla.cli.demo", "rsvd with every sketch on a built-in matrix: time and "
                                "accuracy (--full: beside LAPACK and ARPACK)"),
    "info": ("randla.cli.info", "this installation (versions, BLAS, threads), or what an "
                                "output file records"),
    "svd": ("randla.cli.svd", "randomized SVD or PCA of a matrix file, out of core"),
    "deblur": ("randla.cli.deblur", "deblur an image file with a known point spread function"),
    "recommend": ("randla.cli.recommend", "top-N items for a user from a ratings file, or the "
                                          "accuracy of PureSVD and SoftImpute on a test file"),
}


class Interrupted(KeyboardInterrupt):
    """A signal asked the command to stop (raised in the main thread, so cleanups run)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line: ``randla svd: error: ... (see randla svd --help)``, exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="randla", description="Randomized numerical linear algebra.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        try:
            importlib.import_module(module).add_arguments(p)
        except ModuleNotFoundError:
            p.set_defaults(_missing=True)
    return parser


def _raise_interrupted(signum, frame):
    # a second signal must not interrupt the cleanup the first one started
    for sig in _SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                 if hasattr(signal, name))


def _reader_gone() -> int:
    """The end of ``randla ... | head``: what is still buffered goes nowhere (else Python
    reports the broken pipe again when it flushes stdout at exit), and no message."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):   # a stdout without a file descriptor (called in-process)
        pass
    return 128 + getattr(signal, "SIGPIPE", 13)


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:   # usage errors and --help: a status, also when called in-process
        return e.code if isinstance(e.code, int) else 2
    if getattr(args, "_missing", False):
        print(f"randla {args.command}: not available in this build", file=sys.stderr)
        return 2
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _raise_interrupted) for sig in _SIGNALS}
    module = importlib.import_module(args._module)
    try:
        status = int(module.run(args) or 0)
        sys.stdout.flush()   # a closed pipe shows here, not in the interpreter's exit
        return status
    except BrokenPipeError:
        return _reader_gone()
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", signal.SIGINT)
        name = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
        # a command that writes files says what became of them (its ON_INTERRUPT)
        note = getattr(module, "ON_INTERRUPT", "")
        print(f"\nrandla {args.command}: {name}{'; ' + note if note else ''}", file=sys.stderr)
        return 128 + int(signum)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
