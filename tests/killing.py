"""Run the CLI in a forked child and SIGKILL it: at the n-th file-system call, or after a random delay.

The n-th call is counted with a Python audit hook (``sys.addaudithook``) on
every event that changes the file system or starts a program, so a test can
kill a run before each of those calls in turn: every state a crash can leave
is reached once (a kill before a call that only reads leaves the same state
as one before the next call that changes something). A random delay, drawn over a measured run's duration, is the
real thing: a kill from outside, wherever the child happens to be.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time

from multiuplink_networkd import cli

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

EVENTS = frozenset({"os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.chmod", "fcntl.flock", "subprocess.Popen"})
"""Audit events (docs.python.org/3/library/audit_events.html) of the calls that change what a kill leaves,
besides an ``open`` for writing (:func:`changes`)."""
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC
KILLED, FINISHED = "killed", "finished"


def changes(event: str, args: tuple[object, ...]) -> bool:
    if event == "open":
        flags = args[2]
        return isinstance(flags, int) and bool(flags & _WRITING)
    return event in EVENTS


def _child(argv: list[str], kill_at: int | None, setup: Callable[[], None] | None, start: str | None) -> None:
    code = 99
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        sys.stdout = sys.stderr = open(devnull, "w")  # noqa: SIM115  (the child ends with os._exit)
        if setup:
            setup()
        if kill_at is not None:
            calls = [0 if start is None else -1]

            def hook(event: str, args: tuple[object, ...]) -> None:
                if event == start and calls[0] < 0:
                    calls[0] = 0
                if calls[0] >= 0 and changes(event, args):
                    calls[0] += 1
                    if calls[0] == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
            sys.addaudithook(hook)
        code = cli.main(argv)
    finally:
        os._exit(code)


def run(argv: list[str], kill_at: int | None = None, after: float | None = None,
        setup: Callable[[], None] | None = None, start: str | None = None) -> tuple[str, int]:
    """``(KILLED, 9)``, or ``(FINISHED, exit code)`` when the run ended before the kill.

    ``kill_at`` counts the calls from the first ``start`` event on (all calls if None); ``setup`` runs
    first in the child.
    """
    pid = os.fork()
    if pid == 0:
        _child(argv, kill_at, setup, start)
    if after is not None:
        time.sleep(after)
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL, status
        return KILLED, signal.SIGKILL
    return FINISHED, os.WEXITSTATUS(status)


def duration(argv: list[str], setup: Callable[[], None] | None = None) -> float:
    """Seconds one unkilled run takes, from fork to exit."""
    started = time.monotonic()
    outcome = run(argv, setup=setup)
    assert outcome == (FINISHED, 0), outcome
    return time.monotonic() - started


def delays(seed: str, count: int, longest: float) -> list[float]:
    """``count`` kill delays spread over ``longest`` seconds, the same for the same seed."""
    draw = random.Random(seed)
    return [draw.uniform(0, longest) for _ in range(count)]
