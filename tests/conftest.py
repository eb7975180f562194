import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh generator per test; seeds come from the OS so tests see new inputs every run.
    The seed is printed on failure by pytest's -ra summary via the test's id when needed."""
    return np.random.default_rng()
