"""The structural rules of docs/architecture.md, checked on the source itself.

* no function or method in src/ takes more than 8 parameters (the run is an object instead);
* no module in src/ is longer than 500 lines (a big room mixing jobs is split by job);
* no exception is recognised by its class name as a string (the CLI maps errors by type);
* one atomic writer: only rsmi.store.atomic renames a temporary file over a target;
* one declaration per file name: the names of rsmi.store.names appear as string literals
  nowhere else in src/.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rsmi"
MODULES = sorted(SRC.rglob("*.py"))
MAX_PARAMS = 8
MAX_LINES = 500


def _rel(path: Path) -> str:
    return str(path.relative_to(SRC.parent))


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _count_params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    a = fn.args
    count = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs)
    return count + (a.vararg is not None) + (a.kwarg is not None)


def test_the_source_tree_is_found() -> None:
    assert len(MODULES) > 40  # guards the checks below against an empty glob


def test_no_function_takes_more_than_eight_parameters() -> None:
    offenders = [
        f"{_rel(path)}:{fn.lineno} {fn.name} ({_count_params(fn)})"
        for path in MODULES
        for fn in _functions(ast.parse(path.read_text(encoding="utf-8")))
        if _count_params(fn) > MAX_PARAMS
    ]
    assert not offenders, "functions with more than 8 parameters: " + ", ".join(offenders)


def test_no_module_is_longer_than_500_lines() -> None:
    offenders = [
        f"{_rel(path)} ({n})" for path in MODULES
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert not offenders, "modules longer than 500 lines: " + ", ".join(offenders)


def test_no_exception_is_recognised_by_its_class_name() -> None:
    pattern = re.compile(r"type\([^)]*\)\.__name__\s*(==|!=|in\b)|__class__\.__name__\s*(==|!=|in\b)")
    offenders = [
        f"{_rel(path)}:{i}" for path in MODULES
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, "exceptions recognised by class-name strings at " + ", ".join(offenders)


def test_only_the_store_renames_temporary_files_over_targets() -> None:
    owner = SRC / "store" / "atomic.py"
    pattern = re.compile(r"\bos\.replace\(|\.replace\(\s*(path|final|target|dest)|tmp\w*\.rename\(|tmp\w*\.replace\(")
    offenders = [
        f"{_rel(path)}:{i}" for path in MODULES if path != owner
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, "hand-written tmp+rename outside rsmi.store.atomic: " + ", ".join(offenders)


def _declared_names() -> dict[str, str]:
    tree = ast.parse((SRC / "store" / "names.py").read_text(encoding="utf-8"))
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, str):
                names[node.value.value] = node.targets[0].id  # type: ignore[attr-defined]
    return names


# The same literal meaning something else: a Hugging Face datasets directory's state.json.
# The HTML report's Jinja template is called report.html too (a package resource, not a file rsmi
# writes).
OTHER_MEANINGS = {"state.json": {SRC / "data" / "hf.py"}, "report.html": {SRC / "reports" / "html.py"}}


@pytest.mark.parametrize("literal", sorted(set(_declared_names()) - {"config.json", "README.md"}))
def test_file_names_are_declared_once(literal: str) -> None:
    names_file = SRC / "store" / "names.py"
    allowed = OTHER_MEANINGS.get(literal, set())
    offenders = [
        f"{_rel(path)}:{node.lineno}" for path in MODULES if path != names_file and path not in allowed
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value == literal
    ]
    assert not offenders, f"{literal!r} written as a literal outside rsmi.store.names at " + ", ".join(offenders)
