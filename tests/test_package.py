"""The package's public face: lazy exports that survive importing their submodules."""
import importlib
import subprocess
import sys

import pytest

import randla


@pytest.mark.parametrize("name", sorted(n for n, m in randla._EXPORTS.items()
                                        if m == f"randla.{n}"))
def test_function_named_like_its_module_stays_the_function(name):
    # A fresh interpreter: import the submodule first, which binds the package attribute.
    code = (f"import importlib, types, randla; importlib.import_module('randla.{name}'); "
            f"assert not isinstance(randla.{name}, types.ModuleType), randla.{name}")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        randla.nope


def test_every_export_that_exists_resolves():
    for name, module in randla._EXPORTS.items():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            continue  # module of a feature not built in this checkout
        assert getattr(randla, name) is getattr(sys.modules[module], name)
