"""randla.testing.check_sketcher: every registered sketch passes it, and a broken one fails."""
import numpy as np
import pytest

import randla
from randla.sketch import Gaussian
from randla.testing import check_sketcher


@pytest.mark.parametrize("name", randla.sketch.available())
def test_every_registered_sketch_keeps_the_contract(name, rng):
    try:
        S = randla.sketch.make(name, 9, 257, rng=int(rng.integers(1 << 40)))
    except ImportError as exc:  # an optional backend that this installation lacks
        pytest.fail(f"registered sketch {name!r} cannot be built: {exc}")
    check_sketcher(S, rng=rng)


class _ChunkDependent(Gaussian):
    """A broken sketch: each block is drawn afresh from its start, so blocks depend on cuts."""

    def _block(self, start, stop, dtype):
        gen = np.random.default_rng([self.seed, start])
        return gen.standard_normal((self.d, stop - start)).astype(dtype)


class _Float32Upcast(Gaussian):
    """A broken sketch: float32 data comes back as float64."""

    def apply(self, X):
        return np.asarray(super().apply(X), dtype=np.float64)


@pytest.mark.parametrize("broken, match", [(_ChunkDependent, "column blocks"),
                                           (_Float32Upcast, "float32")])
def test_a_broken_sketch_is_caught(broken, match):
    with pytest.raises(AssertionError, match=match):
        check_sketcher(broken(6, 120, rng=1), rng=0)
