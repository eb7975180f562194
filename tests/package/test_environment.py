"""randla where the machine is unfriendly: a read-only installation and home, Numba's
thread-unsafe workqueue layer under several Python threads."""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import randla

PACKAGE = os.path.dirname(randla.__file__)
CALL = ("import numpy as np, randla; "
        "print(randla.rsvd(np.random.default_rng(0).standard_normal((300, 80)), 3, "
        "sketch='sparse_sign', rng=0).S.shape)")


def _unshare_works():
    return shutil.which("unshare") and subprocess.run(
        ["unshare", "-rm", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs unshare -rm (user+mount namespaces) "
                    "to make the installation read-only for root")
def test_read_only_package_and_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    script = textwrap.dedent(f"""
        set -e
        mount --bind {PACKAGE} {PACKAGE} && mount -o remount,bind,ro {PACKAGE}
        mount --bind {home} {home} && mount -o remount,bind,ro {home}
        HOME={home} TMPDIR={tmp_path} {sys.executable} -c "{CALL}"
    """)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    out = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("(3,)")
    assert any(p.name.startswith("randla-numba") for p in tmp_path.iterdir())


def test_threads_under_the_workqueue_layer():
    code = textwrap.dedent("""
        import threading, numpy as np, randla
        A = np.random.default_rng(0).standard_normal((2000, 300))
        errors = []
        def work(i):
            try:
                for _ in range(3):
                    randla.rsvd(A, 8, sketch="sparse_sign", rng=i)
            except Exception as exc:
                errors.append(exc)
        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        import numba
        assert numba.threading_layer() == "workqueue", numba.threading_layer()
        assert not errors, errors
    """)
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
