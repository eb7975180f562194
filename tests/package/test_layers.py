"""The architecture, checked: packages by layer, imports only downward, no cycles, and no
randla import hidden inside a function (the CLI's lazy loading excepted)."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

#: layer of each top-level part; a module imports only its own family or lower layers
LAYERS = {
    "randla": 0, "randla._validation": 0, "randla.exceptions": 0, "randla._linalg": 0,
    "randla._budget": 0, "randla._dask": 0, "randla._numba": 0, "randla._numba_cache": 0,
    "randla.sketch": 1, "randla.io": 1,
    "randla.operators": 2,
    "randla.lowrank": 3, "randla.solvers": 3, "randla.kernel": 3, "randla.trace": 3,
    "randla.changepoint": 3, "randla.recommend": 3,
    "randla.inverse": 4, "randla.testing": 4,
    "randla.cli": 5, "randla.__main__": 5,
    "opu": 2,  # the device model sits on randla's L0/L1 only, beside the operators
}
#: families of one layer that may use each other (the rest of a layer may not)
SAME_LAYER = {
    "randla.solvers": {"randla.lowrank"},
    "randla.kernel": {"randla.lowrank", "randla.solvers"},
    "randla.trace": {"randla.lowrank", "randla.solvers"},
    "randla.changepoint": {"randla.lowrank", "randla.solvers"},
    "randla.recommend": {"randla.lowrank", "randla.solvers"},
    "randla.__main__": {"randla.cli"},
}
LAZY_IMPORTS_ALLOWED = ("randla.cli",)


def _modules():
    for package in ("randla", "opu"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path, parts[-1] == "__init__"


def _family(module):
    best = max((f for f in LAYERS if module == f or module.startswith(f + ".")), key=len)
    return best


def _imports(name, path, is_package):
    """(target module, line, inside a function) for every randla/opu import of a module."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if is_package else name.rpartition(".")[0]
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    nested = {id(n) for f in functions for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] if node.module else [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in ("randla", "opu"):
                yield target, node.lineno, id(node) in nested


def _resolve(target, known):
    """The longest known module that ``target`` names (``from pkg import name`` may name an
    attribute, not a module)."""
    while target not in known and "." in target:
        target = target.rpartition(".")[0]
    return target


MODULES = {name: (path, is_pkg) for name, path, is_pkg in _modules()}
EDGES = {name: [(_resolve(t, MODULES), line, lazy) for t, line, lazy in _imports(name, *MODULES[name])]
         for name in MODULES}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_down_the_layers(name):
    source = _family(name)
    for target, line, _ in EDGES[name]:
        family = _family(target)
        if family == source or (source == "randla" and target == "randla.exceptions"):
            continue
        where = f"{MODULES[name][0].relative_to(ROOT)}:{line} imports {target}"
        if source == "opu":
            assert LAYERS[family] <= 1, f"{where}: opu may use randla's L0/L1 only"
            continue
        assert LAYERS[family] <= LAYERS[source], f"{where}, a higher layer"
        if LAYERS[family] == LAYERS[source] and LAYERS[source] > 0:
            assert family in SAME_LAYER.get(source, ()), f"{where}, a sibling family"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_randla_import_inside_functions(name):
    if name.startswith(LAZY_IMPORTS_ALLOWED):
        return
    lazy = [f"line {line}: {target}" for target, line, inside in EDGES[name]
            if inside and target.startswith("randla")]
    assert not lazy, f"{name} imports randla modules inside functions: {lazy}"


def test_no_import_cycles():
    graph = {n: {t for t, _, lazy in EDGES[n] if not lazy and t in MODULES and t != n}
             for n in MODULES}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_checker_sees_a_violation(tmp_path):
    # a checker that finds nothing proves nothing: feed it a module that imports upward
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from randla.cli import main\n")
    found = list(_imports("randla.sketch.bad", bad, False))
    assert found == [("randla.cli", 2, True)]
    assert LAYERS[_family("randla.cli")] > LAYERS[_family("randla.sketch.bad")]
