import numpy as np
import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(scope="session", autouse=True)
def _single_threaded_blas():
    """Test matrices are small: one BLAS thread is faster for them and keeps the suite from
    collapsing when the machine is shared (2-thread OpenBLAS on a busy core slows ~10x).
    Numba kernels keep their threads, so thread-count invariance is still exercised."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture
def rng():
    """A fresh generator per test, so every run sees new inputs. The seed is printed, and
    pytest shows it with the output of a failing test, to reproduce the failure."""
    seed = np.random.SeedSequence().entropy
    print(f"rng fixture seed: {seed}")
    return np.random.default_rng(seed)
