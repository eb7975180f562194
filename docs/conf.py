"""Sphinx configuration for randla."""
import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "randla"
author = "randla developers"
copyright = "2026, randla developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.doctest",
    "numpydoc",
    "matplotlib.sphinxext.plot_directive",
]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
plot_include_source = True
plot_html_show_source_link = False
plot_formats = [("png", 100)]
html_theme = "pydata_sphinx_theme"
html_title = "randla"
exclude_patterns = ["_build"]
nitpicky = False
