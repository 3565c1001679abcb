"""Test-wide rules: in CI (CI=true) a skipped privileged end-to-end test is a failure."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


@pytest.hookimpl(hookwrapper=True)  # type: ignore[untyped-decorator]  # pluggy's decorator is untyped
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    report = outcome.get_result()
    if report.skipped and item.get_closest_marker("e2e") and os.environ.get("CI") == "true":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"privileged e2e test skipped in CI, which runs as root: {reason}"
