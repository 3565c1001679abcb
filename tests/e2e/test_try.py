"""``multiuplink try`` with a real networkd and traffic: a change that breaks the second uplink is undone exactly
when it is not confirmed, when the try gets SIGHUP, and when its terminal goes away; it stays when confirmed."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time

import pytest

from multiuplink_networkd.cli import EXIT_DRIFT, EXIT_ROLLED_BACK

from . import netns
from .product import Host

BROKEN_GATEWAY = "192.0.2.254"  # nobody: replies via isp2 go nowhere
WINDOW = "10"  # seconds: room for the checks below while the try waits


def snapshot(host: Host) -> dict[str, object]:
    """The generated files and the kernel state the product touches (rule order and counters left out)."""
    ns = host.topology.host_ns
    files = {str(path.relative_to(host.root)): path.read_text()
             for top in ("run", "var") for path in sorted((host.root / top).rglob("*")) if path.is_file()}
    return {
        "files": files,
        "rules": sorted(host.rules().splitlines()),
        "routes": sorted(netns.ip(ns, "-4", "route", "show", "table", "all").stdout.splitlines()),
        "nft": host.nft(),
        "rp_filter": {name: netns.read_sysctl(ns, f"net.ipv4.conf.{name}.rp_filter")
                      for name in ("all", "default", "eth1", "eth2")},
    }


def break_isp2(host: Host) -> None:
    host.stanza.write_text(host.stanza.read_text().replace("table: 102}", f"table: 102, gateway: {BROKEN_GATEWAY}}}"))


def start_try(host: Host, **popen: object) -> subprocess.Popen[str]:
    """``try`` in the background, returned once it waits for a confirmation with isp2 broken."""
    process = host.start("try", "--timeout", WINDOW, **popen)
    assert process.stdout is not None
    said, deadline = b"", time.monotonic() + 30
    while b"to keep this configuration" not in said:  # raw reads: a text stream's buffer would hide lines from select
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(process.stdout.fileno(), 4096) if ready else b""
        assert chunk, f"try did not wait for a confirmation: {said.decode()}"
        said += chunk
    assert f"default via {BROKEN_GATEWAY} dev eth2" in host.table("102"), "the change is live while try waits"
    assert host.reachable() == {"isp1": True, "isp2": False}
    return process


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr


@pytest.mark.parametrize("ending", ["timeout", "SIGHUP"])
def test_an_unconfirmed_try_restores_the_files_and_the_kernel_state_exactly(applied: Host, ending: str) -> None:
    before = snapshot(applied)
    break_isp2(applied)
    process = start_try(applied)
    if ending == "SIGHUP":  # what a lost SSH session sends
        process.send_signal(signal.SIGHUP)
    code, stderr = finish(process)
    reason = "not confirmed in time" if ending == "timeout" else "interrupted by SIGHUP"
    assert code == EXIT_ROLLED_BACK, stderr
    assert stderr.startswith(f"multiuplink: {reason}: the previous configuration was restored"), stderr
    assert snapshot(applied) == before
    assert applied.reachable() == {"isp1": True, "isp2": True}
    drift = applied.multiuplink("status", check_code=EXIT_DRIFT).stdout
    assert "files on disk are not what the configuration renders" in drift, "the stanza still holds the change"


def test_a_try_confirmed_from_another_shell_stays(applied: Host) -> None:
    break_isp2(applied)
    process = start_try(applied)
    assert applied.multiuplink("try", "--confirm").stdout == "confirmed: the configuration stays\n"
    assert finish(process) == (0, "")
    assert f"default via {BROKEN_GATEWAY} dev eth2" in applied.table("102")
    assert "in sync" in applied.multiuplink("status").stdout
    late = applied.multiuplink("try", "--confirm", check_code=3)
    assert "no 'multiuplink try' is waiting for a confirmation" in late.stderr


def test_enter_on_the_terminal_confirms_and_a_terminal_that_goes_away_does_not(applied: Host) -> None:
    before = snapshot(applied)
    break_isp2(applied)
    for confirmed in (False, True):
        terminal, keyboard = os.openpty()
        process = start_try(applied, stdin=keyboard)
        os.close(keyboard)
        if confirmed:
            os.write(terminal, b"\n")
        else:
            os.close(terminal)  # the terminal goes away (a hang-up): only --confirm could confirm now
        code, _ = finish(process)
        assert code == (0 if confirmed else EXIT_ROLLED_BACK)
        if not confirmed:
            assert snapshot(applied) == before
    os.close(terminal)
    assert f"default via {BROKEN_GATEWAY} dev eth2" in applied.table("102")


def test_nothing_to_try(applied: Host) -> None:
    assert applied.multiuplink("try").stdout == "unchanged: nothing to try\n"
