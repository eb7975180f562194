"""Mutation testing of randla's numerical core: change one operator or constant at a time, run
the tests that cover the module, and count the mutants the tests kill.

    python tools/mutate.py [--modules randla/_linalg.py ...] [--sample N] [--seed S]

Each mutant is made in a private copy of the tree (the working tree is never touched), and the
covering tests run with ``-x`` against that copy. A mutant survives when the tests still pass;
``--sample`` draws N mutants per module (reproducibly with ``--seed``) when the whole run would
take too long. The report (per-module scores and every survivor, with its line) is printed and
written to ``.mutation/report.md``.
"""
from __future__ import annotations

import argparse
import ast
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: module -> the tests that cover it
TARGETS = {
    "randla/_linalg.py": ["tests/core", "tests/lowrank/test_reigh_and_orth.py",
                          "tests/lowrank/test_rsvd.py"],
    "randla/sketch/rng.py": ["tests/sketch"],
    "randla/sketch/gaussian.py": ["tests/sketch"],
    "randla/sketch/sparse_sign.py": ["tests/sketch"],
    "randla/sketch/srtt.py": ["tests/sketch"],
    "randla/sketch/base.py": ["tests/sketch"],
    "randla/lowrank/range_finder.py": ["tests/lowrank/test_mutants_range_qb.py",
                                       "tests/lowrank/test_every_route.py",
                                       "tests/lowrank/test_spectrum_sweep.py"],
    "randla/lowrank/qb.py": ["tests/lowrank/test_mutants_range_qb.py",
                             "tests/lowrank/test_every_route.py",
                             "tests/lowrank/test_spectrum_sweep.py"],
    "randla/lowrank/rsvd.py": ["tests/lowrank/test_mutants_rsvd.py",
                               "tests/lowrank/test_every_route.py",
                               "tests/lowrank/test_spectrum_sweep.py"],
    "randla/lowrank/krylov.py": ["tests/lowrank/test_mutants_adaptive.py",
                                 "tests/lowrank/test_every_route.py",
                                 "tests/lowrank/test_spectrum_sweep.py"],
    "randla/lowrank/reigh.py": ["tests/lowrank/test_reigh_and_orth.py"],
    "randla/lowrank/adaptive.py": ["tests/lowrank/test_mutants_adaptive.py",
                                   "tests/lowrank/test_every_route.py",
                                   "tests/lowrank/test_spectrum_sweep.py",
                                   "tests/lowrank/test_adaptive.py"],
    "randla/lowrank/error.py": ["tests/lowrank"],
    "randla/lowrank/sketchy.py": ["tests/lowrank/test_out_of_core.py"],
    "randla/operators/chunked.py": ["tests/operators/test_mutants_chunked.py",
                                    "tests/lowrank/test_every_route.py"],
    "randla/solvers/lstsq.py": ["tests/solvers"],
    "randla/trace/_core.py": ["tests/trace"],
    "randla/trace/hutch.py": ["tests/trace"],
    "randla/trace/exchangeable.py": ["tests/trace"],
    "randla/trace/lanczos.py": ["tests/trace"],
    "randla/kernel/nystrom.py": ["tests/kernel/test_nystrom.py", "tests/kernel/test_psd_checks.py"],
    "randla/kernel/rpcholesky.py": ["tests/kernel/test_rpcholesky.py",
                                    "tests/kernel/test_psd_checks.py"],
    "randla/recommend/ratings.py": ["tests/recommend/test_recommend_ratings.py",
                                    "tests/recommend/test_recommend_store.py"],
    "randla/recommend/metrics.py": ["tests/recommend/test_recommend_metrics.py"],
    "randla/recommend/puresvd.py": ["tests/recommend/test_recommend_puresvd.py"],
    "randla/recommend/store.py": ["tests/recommend/test_recommend_store.py"],
    "randla/recommend/softimpute.py": ["tests/recommend/test_recommend_softimpute.py"],
    "randla/inverse/deblur.py": ["tests/inverse/test_deblur_units.py",
                                 "tests/inverse/test_inverse_deblur.py"],
    "randla/inverse/images.py": ["tests/inverse/test_image_files.py",
                                 "tests/inverse/test_deblur_units.py"],
    "randla/inverse/regularize.py": ["tests/inverse"],
    "randla/inverse/spectral.py": ["tests/inverse/test_inverse_deblur.py",
                                   "tests/inverse/test_deblur_units.py"],
    "randla/inverse/hybrid.py": ["tests/inverse/test_inverse_deblur.py",
                                 "tests/inverse/test_inverse_rules.py"],
    "randla/inverse/blur.py": ["tests/inverse/test_inverse_blur.py",
                               "tests/inverse/test_inverse_deblur.py"],
    "opu/medium.py": ["tests/opu"],
    "opu/linear.py": ["tests/opu"],
}

_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
          ast.FloorDiv: ast.Mult, ast.Pow: ast.Mult, ast.Lt: ast.LtE, ast.LtE: ast.Lt,
          ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
          ast.And: ast.Or, ast.Or: ast.And, ast.USub: ast.UAdd, ast.Is: ast.IsNot,
          ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}


@dataclass(frozen=True)
class Mutant:
    path: str
    index: int        # the index-th mutation point of the module, in ast.walk order
    line: int
    what: str


def _points(tree):
    """Mutation points: (node, field, description) in a deterministic order. Docstrings,
    annotations and the numbers in error messages are left alone."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Module, ast.AsyncFunctionDef)) \
                and node.body and isinstance(node.body[0], ast.Expr) \
                and isinstance(node.body[0].value, ast.Constant):
            skip.add(id(node.body[0].value))
        if isinstance(node, (ast.JoinedStr, ast.Raise, ast.AnnAssign, ast.arg)):
            skip.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.BoolOp)) and type(node.op) in _SWAPS:
            yield node, "op", f"{type(node.op).__name__} -> {_SWAPS[type(node.op)].__name__}"
        elif isinstance(node, ast.Compare) and type(node.ops[0]) in _SWAPS:
            yield node, "cmp", f"{type(node.ops[0]).__name__} -> {_SWAPS[type(node.ops[0])].__name__}"
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float) \
                and not isinstance(node.value, bool):
            yield node, "const", f"{node.value!r} -> {_bumped(node.value)!r}"


def _bumped(value):
    return value + 1 if isinstance(value, int) else (value * 2 if value else 1.0)


def mutants(path):
    tree = ast.parse(open(os.path.join(ROOT, path)).read())
    return [Mutant(path, i, node.lineno, what) for i, (node, _, what) in enumerate(_points(tree))]


def mutated_source(m: Mutant) -> str:
    tree = ast.parse(open(os.path.join(ROOT, m.path)).read())
    node, field, _ = list(_points(tree))[m.index]
    if field == "op":
        node.op = _SWAPS[type(node.op)]()
    elif field == "cmp":
        node.ops[0] = _SWAPS[type(node.ops[0])]()
    else:
        node.value = _bumped(node.value)
    return ast.unparse(tree)


def run_tests(copy, tests, timeout):
    env = {**os.environ, "PYTHONPATH": copy, "NUMBA_CACHE_DIR": os.path.join(copy, ".numba")}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "--no-header", "-o", "addopts=", *tests]
    try:
        out = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout"            # counted as killed: a mutant that hangs is detected
    return "survived" if out.returncode == 0 else "killed"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", nargs="*", default=list(TARGETS))
    parser.add_argument("--sample", type=int, default=None, help="mutants per module")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in TARGETS]
    if unknown:
        parser.error(f"no covering tests known for {unknown}; add them to TARGETS")
    copy = tempfile.mkdtemp(prefix="randla-mutation-")
    for part in ("randla", "opu", "tests", "pyproject.toml"):
        src = os.path.join(ROOT, part)
        (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, os.path.join(copy, part))
    rows, survivors = [], []
    try:
        for path in args.modules:
            tests = TARGETS[path]
            start = time.perf_counter()
            if run_tests(copy, tests, None) != "survived":
                print(f"{path}: its tests fail before any mutation; skipped", file=sys.stderr)
                continue
            timeout = 5 * (time.perf_counter() - start) + 30
            todo = mutants(path)
            if args.sample is not None and args.sample < len(todo):
                todo = sorted(random.Random(args.seed).sample(todo, args.sample),
                              key=lambda m: m.index)
            original = open(os.path.join(ROOT, path)).read()
            killed = 0
            for m in todo:
                with open(os.path.join(copy, path), "w") as f:
                    f.write(mutated_source(m))
                verdict = run_tests(copy, tests, timeout)
                killed += verdict != "survived"
                if verdict == "survived":
                    survivors.append(m)
                print(f"{path}:{m.line} {m.what}: {verdict}", flush=True)
            with open(os.path.join(copy, path), "w") as f:
                f.write(original)
            rows.append((path, killed, len(todo)))
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    report = _report(rows, survivors)
    print(report)
    os.makedirs(os.path.join(ROOT, ".mutation"), exist_ok=True)
    target = os.path.join(ROOT, ".mutation", "report.md")
    with open(target + ".part", "w") as f:
        f.write(report)
    os.replace(target + ".part", target)
    return 0


def _report(rows, survivors):
    lines = ["| module | killed | mutants | score |", "|---|---|---|---|"]
    for path, killed, total in rows:
        lines.append(f"| {path} | {killed} | {total} | {killed / max(total, 1):.0%} |")
    lines += ["", "Survivors:"] + [f"- {m.path}:{m.line} {m.what}" for m in survivors]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
