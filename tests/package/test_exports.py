"""The package's public face: every public name resolves, lazily, to what it always was."""
import importlib
import pkgutil
import subprocess
import sys
import types

import pytest

import randla

#: the public names promised to users (issue of the layered architecture)
PUBLIC = ["rsvd", "reigh", "estimate_error", "sketchy_svd", "lstsq", "nystrom", "nystrom_pcg",
          "rpcholesky", "KernelMatrix", "NystromFeatures", "KernelRidge", "as_operator",
          "range_finder", "qb", "AccuracyWarning"]


@pytest.mark.parametrize("name", PUBLIC)
def test_public_names_resolve(name):
    assert callable(getattr(randla, name))
    assert name in dir(randla)


def test_functions_stay_functions_after_importing_every_module():
    # A fresh interpreter imports every submodule first: no module may shadow a function.
    code = ("import importlib, pkgutil, types, randla\n"
            "for m in pkgutil.walk_packages(randla.__path__, 'randla.'):\n"
            "    if not m.name.startswith('randla.cli'): importlib.import_module(m.name)\n"
            f"for n in {PUBLIC!r}:\n"
            "    assert not isinstance(getattr(randla, n), types.ModuleType), n\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        randla.nope  # noqa: B018


def test_every_export_resolves_to_its_module():
    for name, module in randla._EXPORTS.items():
        assert getattr(randla, name) is getattr(importlib.import_module(module), name)


def test_every_submodule_imports():
    for info in pkgutil.walk_packages(randla.__path__, "randla."):
        assert isinstance(importlib.import_module(info.name), types.ModuleType)


def test_sklearn_estimators_name_the_extra_when_sklearn_is_missing():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import randla\n"
            "try:\n    randla.KernelRidge\nexcept ImportError as e:\n"
            "    assert \"randla[sklearn]\" in str(e), e\nelse:\n    raise SystemExit('no error')\n")
    subprocess.run([sys.executable, "-c", code], check=True)
