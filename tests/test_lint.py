"""ruff and mypy --strict are part of the test suite (./dev.sh installs pinned versions into the venv)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (./dev.sh test installs it into .venv)")
    return str(found)


def test_ruff() -> None:
    done = subprocess.run([tool("ruff"), "check", "multiuplink_networkd", "tests", "bench", "examples", "tools",
                           "units/multiuplink-generator"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict() -> None:
    done = subprocess.run([tool("mypy")], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
