"""``multiuplink try``: apply, keep the undo stack open, and close it (restoring everything) unless confirmed in time.

The same plan and undo stack as ``apply`` (:func:`.apply.execute`): the
steps are undone in reverse order when the time runs out, or on SIGHUP (a
lost SSH session), SIGTERM or Ctrl-C; once the undo starts, these signals
are ignored, so it runs to its end. The try holds the writer's lock while it
waits, so no other apply, generate or try interleaves with it (they wait).
The confirmation comes from Enter on the terminal, or from ``multiuplink try
--confirm`` in another shell, which reaches the waiting process without the
lock through an abstract Unix socket named after the root directory (only
root or the try's own user may confirm): the try answers "confirmed" only
once it has let go of the undo stack, so a confirmation that arrives as the
time runs out is either taken or reported as too late, never lost.

The limit, as with ``netplan try``: SIGKILL (or the OOM killer, or a power
cut) ends the process before it can undo anything, so the new configuration
stays in force; a reboot applies whatever the stanza files then say.
"""

from __future__ import annotations

import hashlib
import os
import select
import signal
import socket
import struct
import time
from contextlib import contextmanager

from ..errors import HostError
from . import apply, writer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType

ROLLBACK_SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
CONFIRM, CONFIRMED = b"confirm\n", b"confirmed\n"
REPLY_TIMEOUT = 30.0
"""Seconds ``--confirm`` waits for the answer; the try answers at once unless it is rolling back."""


class Interrupted(BaseException):
    """A signal ended the wait; like KeyboardInterrupt, nothing but the undo stack should stop it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.name = signal.Signals(signum).name


def _ignore_signals() -> None:
    for signum in ROLLBACK_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    _ignore_signals()  # a second signal must not cut the undo short
    raise Interrupted(signum)


@contextmanager
def _signals_roll_back() -> Iterator[None]:
    """SIGHUP, SIGTERM and SIGINT raise :class:`Interrupted`; one ignored when we started (nohup) stays ignored."""
    previous = {signum: signal.getsignal(signum) for signum in ROLLBACK_SIGNALS}
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(signum, _interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _address(root: str) -> str:
    """Abstract (no file, gone with the process), one per root directory."""
    return "\0multiuplink-try:" + hashlib.sha256(os.path.realpath(root).encode()).hexdigest()[:32]


class _Listener:
    """Where ``try --confirm`` reaches a waiting try."""

    def __init__(self, root: str) -> None:
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self.socket.bind(_address(root))
        except OSError as error:
            self.socket.close()
            raise HostError(f"cannot wait for a confirmation: {error.strerror}") from None
        self.socket.listen(8)

    def close(self) -> None:
        self.socket.close()

    def _confirmer(self) -> socket.socket | None:
        """The connection that asks to confirm, from root or our own user; None for anything else."""
        try:
            connection, _ = self.socket.accept()
        except OSError:  # it went away meanwhile
            return None
        connection.settimeout(1.0)
        _, uid, _ = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                               struct.calcsize("3i")))
        try:
            if uid in (0, os.getuid()) and connection.recv(len(CONFIRM)) == CONFIRM:
                return connection
        except OSError:
            pass
        connection.close()
        return None

    def wait(self, seconds: float, terminal: int | None, tick: Callable[[int], None]) -> socket.socket | bool:
        """Until confirmed: the confirming connection, or True for Enter on ``terminal``; False when time is up."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            tick(int(left + 0.999))
            watched = [self.socket.fileno()] + ([terminal] if terminal is not None else [])
            ready, _, _ = select.select(watched, [], [], min(1.0, left))
            if terminal is not None and terminal in ready:
                try:
                    typed = os.read(terminal, 4096)
                except OSError:  # hung up
                    typed = b""
                if b"\n" in typed:
                    return True
                if not typed:  # the terminal went away: only --confirm can confirm now
                    terminal = None
            if self.socket.fileno() in ready:
                confirmer = self._confirmer()
                if confirmer is not None:
                    return confirmer
        return False


class Outcome:
    """How a try ended: ``confirmed``, ``unchanged`` (nothing to try), ``timeout`` or the signal's name."""

    __slots__ = ("changed", "how", "networkd_down")

    def __init__(self, how: str, changed: list[str], networkd_down: str | None) -> None:
        self.how = how
        self.changed = changed
        self.networkd_down = networkd_down

    @property
    def kept(self) -> bool:
        return self.how in ("confirmed", "unchanged")


def attempt(root: str, files: dict[str, str], seconds: float, terminal: int | None,
            applied: Callable[[list[str], str | None], None], tick: Callable[[int], None]) -> Outcome:
    """Apply ``files`` and wait ``seconds`` for a confirmation; without one, restore what was there.

    ``terminal``: a terminal's file descriptor where Enter confirms; ``applied`` is told what changed before
    the wait, ``tick`` the seconds left, about once a second. Raises :class:`.apply.ApplyError` when applying
    fails (restored already).
    """
    with _signals_roll_back():
        try:
            return _attempt(root, files, seconds, terminal, applied, tick)
        except Interrupted as interrupted:  # anything applied is undone by now
            return Outcome(interrupted.name, [], None)


def _attempt(root: str, files: dict[str, str], seconds: float, terminal: int | None,
             applied: Callable[[list[str], str | None], None], tick: Callable[[int], None]) -> Outcome:
    with writer.locked(root):
        steps = apply.plan(root, writer.read_owned(root), files, boot=False)
        changed = [item for step in steps for item in step.describe()]
        if not steps:
            return Outcome("unchanged", changed, None)
        listener = _Listener(root)  # before anything changes: if it cannot listen, nothing is applied
        try:
            with apply.execute(steps) as undo:
                undo.callback(_ignore_signals)  # runs first when the stack unwinds
                down = next((str(s.networkd_down) for s in steps
                             if isinstance(s, apply.FilesStep) and s.networkd_down), None)
                applied(changed, down)
                confirmed = listener.wait(seconds, terminal, tick)
                listener.close()  # a late --confirm now hears that nobody waits, not "confirmed"
                if confirmed is not False:
                    undo.pop_all()
                    apply.settle(root)
                    _ignore_signals()  # kept: a signal now must not report a rollback that did not happen
                    if isinstance(confirmed, socket.socket):
                        _answer(confirmed)
                    return Outcome("confirmed", changed, down)
            return Outcome("timeout", changed, down)
        finally:
            listener.close()


def _answer(connection: socket.socket) -> None:
    try:
        connection.sendall(CONFIRMED)
    except OSError:
        pass  # the confirming process went away; the configuration stays all the same
    finally:
        connection.close()


def confirm(root: str) -> None:
    """Confirm the try waiting for ``root``; raises HostError when none waits or it ended before taking it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as connection:
        try:
            connection.connect(_address(root))
        except (ConnectionRefusedError, FileNotFoundError):
            raise HostError("no 'multiuplink try' is waiting for a confirmation (one that timed out has restored "
                            "the previous configuration)") from None
        connection.settimeout(REPLY_TIMEOUT)
        try:
            connection.sendall(CONFIRM)
            answer = connection.recv(len(CONFIRMED))
        except OSError as error:
            raise HostError(f"the waiting try did not answer: {error}") from None
    if answer != CONFIRMED:
        raise HostError("the try ended before it took the confirmation: the previous configuration is back")
