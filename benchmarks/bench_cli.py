"""First-run costs: ``import randla``, the first call (imports of numpy/scipy submodules and
the loading of Numba's cached kernels), the ``randla`` command's start-up, and ``randla demo``.

Each ``timeraw_`` benchmark runs its code in a fresh interpreter, so nothing is warm: this is
what a user waits for. Keep these from growing (issue 17: ~0.9 s for import + first call).
"""

_FIRST_RSVD = """
import numpy as np
import randla
A = np.random.default_rng(0).standard_normal((300, 60))
randla.rsvd(A, 5, rng=0)
"""

_FIRST_SPARSE_SIGN = """
import numpy as np
import randla
A = np.random.default_rng(0).standard_normal((300, 60))
randla.rsvd(A, 5, sketch="sparse_sign", rng=0)
"""

_DEMO = """
import contextlib, io
from randla.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    assert main(["demo", "--quiet"]) == 0
"""


class FirstRun:
    """A fresh interpreter each time (asv's timeraw): import costs included."""

    repeat = 3
    number = 1
    timeout = 120

    def timeraw_import_randla(self):
        return "import randla"

    def timeraw_import_and_first_rsvd(self):
        return _FIRST_RSVD

    def timeraw_import_and_first_sparse_sign_rsvd(self):
        # the Numba kernels are loaded from their cache (compiled on the first run ever)
        return _FIRST_SPARSE_SIGN

    def timeraw_cli_help(self):
        return ("import contextlib, io\nfrom randla.cli import main\n"
                "with contextlib.redirect_stdout(io.StringIO()):\n    main(['svd', '--help'])")


class Demo:
    """``randla demo`` as a new user runs it (default sizes; issue 17 asks for < 20 s)."""

    repeat = 1
    number = 1
    timeout = 600

    def timeraw_demo(self):
        return _DEMO
