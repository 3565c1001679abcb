"""Test-wide rules: in CI (CI=true) a skipped privileged end-to-end test is a failure, and no test may change
the network stack of the host the suite runs on (only namespaces the tests made themselves)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
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


def host_network_state() -> dict[str, str]:
    """What a test must never change in the host's own namespace: tables, rules, mangle chains, sysctls we set."""
    def output(*argv: str) -> str:
        if not shutil.which(argv[0]):
            return f"{argv[0]} not installed"
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return re.sub(r"\[\d+:\d+\]", "", done.stdout + done.stderr)  # iptables-save's chain counters move

    state = {" ".join(argv): output(*argv) for argv in (
        ("nft", "list", "tables"), ("ip", "-4", "rule"), ("ip", "-6", "rule"))}
    saved = output("iptables-save", "-t", "mangle")
    state["iptables-save -t mangle"] = "\n".join(line for line in saved.splitlines() if not line.startswith("#"))
    for path in (*(Path(f"/proc/sys/net/ipv4/conf/{key}/rp_filter") for key in ("all", "default")),
                 Path("/proc/sys/net/ipv4/tcp_fwmark_accept")):
        state[str(path)] = path.read_text() if path.exists() else ""
    return state


@pytest.fixture(scope="session", autouse=True)
def host_network_untouched() -> Iterator[None]:
    if os.geteuid() != 0:
        yield  # without root no test can change it
        return
    before = host_network_state()
    yield
    changed = {what: value for what, value in host_network_state().items() if before[what] != value}
    assert not changed, f"the tests changed the host's own network stack: {changed}"
