"""The boot generator is a script, not a module: its names, read from its source for the tests."""

from __future__ import annotations

import ast
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "units" / "multiuplink-generator"
TREE = ast.parse(SCRIPT.read_text())


def constant(name: str) -> object:
    """The value the script's single top-level assignment gives ``name``."""
    values = [node.value for node in TREE.body if isinstance(node, ast.Assign)
              and any(isinstance(target, ast.Name) and target.id == name for target in node.targets)]
    assert len(values) == 1, f"{name} must be assigned exactly once in {SCRIPT}"
    return ast.literal_eval(values[0])


UNIT = str(constant("UNIT"))
UNIT_DIR = str(constant("UNIT_DIR"))
WANTED_BY = str(constant("WANTED_BY"))
ROOT_ENV = bytes(constant("ROOT_ENV")).decode()  # type: ignore[call-overload]
