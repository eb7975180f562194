# Every target bootstraps .venv on its own, so a fresh machine needs nothing but python3.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test bench bench-quick bench-html docs clean mutation

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed-%: $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q -e ".[test]"
	touch $@

$(VENV)/.bench-installed: $(STAMP)
	$(PY) -m pip install -q -e ".[bench]"
	# the peer of benchmarks/bench_opu.py: lightonml pins numexpr 2.7, so no deps; it imports
	# attrs, numexpr and pkg_resources (np.float is shimmed by the benchmark)
	$(PY) -m pip install -q --no-deps lightonml==1.4.3
	$(PY) -m pip install -q attrs numexpr "setuptools<81"
	# the optional peer of benchmarks/bench_recommend.py
	$(PY) -m pip install -q scikit-surprise
	touch $@

$(VENV)/.docs-installed: $(STAMP)
	$(PY) -m pip install -q -e ".[docs]"
	touch $@

demo: $(STAMP)
	$(VENV)/bin/randla demo

test: $(STAMP)
	$(VENV)/bin/ruff check randla opu tests benchmarks tools
	$(VENV)/bin/asv machine --yes >/dev/null
	$(VENV)/bin/asv check --python=same
	$(PY) -m pytest -q

# `make bench` records results in .asv/results (history per commit of main: asv saves the
# results of an existing environment only when told the commit); `make bench-quick`
# runs each benchmark once without recording; `make bench-html` publishes the pages and graphs
# to .asv/html (view them with `.venv/bin/asv preview`)
bench: $(VENV)/.bench-installed
	$(VENV)/bin/asv machine --yes >/dev/null
	$(VENV)/bin/asv run --python=same --set-commit-hash $$(git rev-parse HEAD) --show-stderr $(ASV_ARGS)

bench-quick: $(VENV)/.bench-installed
	$(VENV)/bin/asv machine --yes >/dev/null
	$(VENV)/bin/asv run --python=same --quick --dry-run --show-stderr $(ASV_ARGS)

bench-html: $(VENV)/.bench-installed
	$(VENV)/bin/asv publish

# mutation testing of the numerical core (long: not part of `make test`); MUTATION_ARGS takes
# e.g. --sample 30 --modules randla/_linalg.py
mutation: $(STAMP)
	$(PY) tools/mutate.py $(MUTATION_ARGS)

docs: $(VENV)/.docs-installed
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) docs/_build .asv .mutation
