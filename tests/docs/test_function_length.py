"""The package stays readable: no function in bids_taskenc/ over 80 lines, no module over 500 lines (issue 26)."""

from __future__ import annotations

import ast
from pathlib import Path

import bids_taskenc

MAX_LINES = 80
MAX_MODULE_LINES = 500
#: Every subpackage and the top-level modules (``.``): the rule covers the whole package.
LAYERS = (".",)


def _long_functions(folder: Path) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n_lines = node.end_lineno - node.lineno + 1
                if n_lines > MAX_LINES:
                    found.append(f"{path.relative_to(folder.parent)}:{node.lineno} {node.name} ({n_lines} lines)")
    return found


def _long_modules(folder: Path) -> list[str]:
    return [
        f"{path.relative_to(folder.parent)} ({n} lines)"
        for path in sorted(folder.rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]


def test_no_long_functions_in_the_package():
    package = Path(bids_taskenc.__file__).parent
    too_long = [line for layer in LAYERS for line in _long_functions((package / layer).resolve())]
    assert not too_long, "split these into steps of their own:\n" + "\n".join(too_long)


def test_no_long_modules_in_the_package():
    package = Path(bids_taskenc.__file__).parent
    too_long = [line for layer in LAYERS for line in _long_modules((package / layer).resolve())]
    assert not too_long, "split these into modules with one job each:\n" + "\n".join(too_long)


def test_the_scan_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "layer").mkdir()
    (tmp_path / "layer" / "mod.py").write_text(f"def long():\n{body}\n")
    assert _long_functions(tmp_path / "layer") == ["layer/mod.py:1 long (81 lines)"]


def test_the_scan_sees_a_long_module(tmp_path):
    (tmp_path / "layer").mkdir()
    (tmp_path / "layer" / "ok.py").write_text("x = 1\n" * MAX_MODULE_LINES)
    (tmp_path / "layer" / "big.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    assert _long_modules(tmp_path / "layer") == ["layer/big.py (501 lines)"]
