"""The orchestration layers stay readable: no function in cli/, workflow/, group/ or report/ over 80 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import bids_taskenc

MAX_LINES = 80
LAYERS = ("cli", "workflow", "group", "report")


def _long_functions(folder: Path) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n_lines = node.end_lineno - node.lineno + 1
                if n_lines > MAX_LINES:
                    found.append(f"{path.relative_to(folder.parent)}:{node.lineno} {node.name} ({n_lines} lines)")
    return found


def test_no_long_functions_in_the_orchestration_layers():
    package = Path(bids_taskenc.__file__).parent
    too_long = [line for layer in LAYERS for line in _long_functions(package / layer)]
    assert not too_long, "split these into steps of their own:\n" + "\n".join(too_long)


def test_the_scan_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "layer").mkdir()
    (tmp_path / "layer" / "mod.py").write_text(f"def long():\n{body}\n")
    assert _long_functions(tmp_path / "layer") == ["layer/mod.py:1 long (81 lines)"]
