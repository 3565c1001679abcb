"""The one way this package runs a program: output captured, failures raised as :class:`HostError`."""

from __future__ import annotations

import subprocess

from ..errors import HostError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

TIMEOUT = 60.0
"""Seconds any loader may take; nft or ip hanging longer is a host problem we report rather than wait out."""


class CommandFailed(HostError):
    """A program exited non-zero, or could not be started; the message carries its own words, ``said`` only them."""

    def __init__(self, message: str, said: str = "") -> None:
        super().__init__(message)
        self.said = said or message


def run(argv: Sequence[str], text: str | None = None) -> str:
    """Run ``argv`` (with ``text`` on stdin) and return its stdout."""
    try:
        done = subprocess.run(list(argv), input=text, capture_output=True, text=True, check=False, timeout=TIMEOUT)
    except FileNotFoundError:
        raise CommandFailed(f"{argv[0]} is not installed") from None
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CommandFailed(f"{' '.join(argv)}: {error}") from None
    if done.returncode != 0:
        said = done.stderr.strip() or done.stdout.strip()
        raise CommandFailed(f"{' '.join(argv)} failed: {said}", said)
    return done.stdout


def succeeds(argv: Sequence[str]) -> bool:
    """Whether ``argv`` runs and exits 0: for questions such as "is this table loaded?"."""
    try:
        run(argv)
    except CommandFailed:
        return False
    return True
