"""Small helpers around ``ip netns`` for the e2e harness.

Only namespaces created here are ever touched: every command that changes
network state runs through ``ip -n NS``/``ip netns exec NS``, so sysctls
under /proc/sys/net (which are per network namespace) are never written in
the host's namespace.
"""

from __future__ import annotations

import functools
import os
import secrets
import select
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Every namespace the harness creates starts with this, so a leftover from a
#: killed run is recognisable (and never confused with the host's own).
NAME_PREFIX = "mu"


class CommandError(subprocess.CalledProcessError):
    """CalledProcessError whose message carries the command's output.

    pytest prints ``str(exc)``; the stock class drops stderr, which is
    exactly what explains a failing ``ip``/``nft``/``busctl`` call.
    """

    def __str__(self) -> str:
        return (
            f"{' '.join(map(str, self.cmd))} exited {self.returncode}\n"
            f"stdout: {self.stdout}\nstderr: {self.stderr}"
        )


def unique_prefix() -> str:
    """A fresh ``mu`` + 6 hex digits prefix, so parallel runs never collide."""
    return NAME_PREFIX + secrets.token_hex(3)


def run_cmd(
    argv: list[str],
    *,
    check: bool = True,
    input: str | None = None,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv to completion with text output captured and a hard timeout."""
    proc = subprocess.run(
        argv,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if check and proc.returncode != 0:
        raise CommandError(proc.returncode, argv, proc.stdout, proc.stderr)
    return proc


def run(
    ns: str,
    *argv: str,
    check: bool = True,
    input: str | None = None,
    timeout: float = 30.0,
) -> subprocess.CompletedProcess[str]:
    """Run a command inside network namespace ``ns``."""
    return run_cmd(
        ["ip", "netns", "exec", ns, *argv], check=check, input=input, timeout=timeout
    )


def ip(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``ip -n ns ARGS``: cheaper than ``ip netns exec`` (no /sys remount)."""
    return run_cmd(["ip", "-n", ns, *args], check=check)


def add(name: str) -> None:
    """Create namespace ``name`` with its loopback up."""
    run_cmd(["ip", "netns", "add", name])
    ip(name, "link", "set", "lo", "up")


def delete(name: str) -> None:
    """Delete namespace ``name`` if it exists (idempotent, for teardown).

    The caller must have stopped the processes it started in there first:
    a namespace with live processes outlives ``ip netns del`` unnamed.
    """
    if os.path.exists(f"/run/netns/{name}"):
        run_cmd(["ip", "netns", "del", name])


def sysctl(ns: str, settings: dict[str, str | int]) -> None:
    """Write sysctls inside ``ns`` (one ``sysctl`` call for all of them)."""
    run(ns, "sysctl", "-q", "-w", *(f"{k}={v}" for k, v in settings.items()))


def read_sysctl(ns: str, key: str) -> str:
    return run(ns, "sysctl", "-n", key).stdout.strip()


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = 0.1,
    diagnose: Callable[[], str] | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that.

    On timeout raise TimeoutError naming ``what`` plus ``diagnose()``'s
    output, so a failing wait says what the system looked like.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f"\n{diagnose()}" if diagnose else ""
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}{detail}")
        time.sleep(interval)


def read_line(proc: subprocess.Popen[str], timeout: float, what: str) -> str:
    """Read one line from ``proc.stdout`` (a text pipe) within ``timeout``.

    Used as a readiness handshake: a child prints a line once it is ready,
    which beats polling. EOF (the child died) or a timeout raises.
    """
    assert proc.stdout is not None, "started with stdout=PIPE"
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=5)
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"{what}: process exited {proc.returncode}: {err}")
    return line.strip()


def stop(proc: subprocess.Popen[Any] | None, timeout: float = 5.0) -> None:
    """Stop a process we started, by its PID: SIGTERM, then SIGKILL."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe:
            pipe.close()


@functools.cache
def skip_reason() -> str | None:
    """Why e2e tests cannot run here, or None if they can.

    Probes by really creating (and deleting) a namespace: being root is not
    enough inside containers without CAP_SYS_ADMIN/CAP_NET_ADMIN.
    """
    if os.geteuid() != 0:
        return "e2e tests need root (network namespaces, nftables)"
    missing = [t for t in ("ip", "nft", "nsenter", "unshare", "sysctl") if not shutil.which(t)]
    if missing:
        return f"e2e tests need {', '.join(missing)}"
    probe = unique_prefix() + "-probe"
    try:
        run_cmd(["ip", "netns", "add", probe])
    except (CommandError, OSError) as exc:
        return f"cannot create a network namespace: {exc}"
    delete(probe)
    return None
