"""systemd generator (systemd.generator(7)): decide at boot whether multiuplink-configure.service runs.

It only reads and validates, and writes nothing but one ``.wants`` symlink
into its output directory: the unit, ordered before systemd-networkd, does
the rendering and loading. No D-Bus, never fails boot. A bad stanza pulls in
multiuplink-report.service instead, which prints every error with
file:line:col into the journal and fails visibly, while the host boots with
netplan's plain networking (a generator's own output may be lost: systemd
discards its stderr and a container has no /dev/kmsg). Inputs unchanged
since the last successful apply are recognised by their stat fingerprint,
without loading YAML. The installed script (units/multiuplink-generator)
returns before importing this module when there is no stanza file at all.
"""

from __future__ import annotations

import os
import sys

from . import __version__

UNIT = "multiuplink-configure.service"
REPORT_UNIT = "multiuplink-report.service"
UNIT_DIR = "/usr/lib/systemd/system/"
WANTED_BY = "multi-user.target.wants"
ROOT_ENV = "MULTIUPLINK_ROOT_DIR"
"""Moves every read under another root, for tests; then messages go to stderr instead of /dev/kmsg."""


def _log(root: str, level: int, message: str) -> None:
    line = f"multiuplink-generator: {message}"
    if root == "/":
        try:  # never O_CREAT: where /dev/kmsg is missing we must not make a file of it
            kmsg = os.open("/dev/kmsg", os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            pass
        else:
            try:
                for part in line.splitlines():
                    os.write(kmsg, f"<{level}>{part}\n".encode())
            finally:
                os.close(kmsg)
            return
    print(line, file=sys.stderr)


def validated(root: str) -> bool:
    """True when the stanza is valid: from the cache if the inputs are unchanged, else by parsing."""
    from .config import inputs

    if inputs.validated_before(root, __version__):
        return True
    from .config import stanza
    from .errors import ConfigErrors

    try:
        stanza.load(root)
        return True
    except ConfigErrors as errors:
        for error in errors.errors:
            _log(root, 3, error.format())
        _log(root, 3, f"{len(errors.errors)} error(s); {UNIT} is not started, the host keeps netplan's "
                      f"plain networking; {REPORT_UNIT} reports them in the journal")
        return False


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 3):
        print("usage: multiuplink-generator NORMAL_DIR [EARLY_DIR LATE_DIR]", file=sys.stderr)
        return 2
    root = os.environ.get(ROOT_ENV, "/")
    try:  # the script that calls us returned already if there is no stanza file
        unit = UNIT if validated(root) else REPORT_UNIT
        wants = os.path.join(argv[0], WANTED_BY)
        os.makedirs(wants, exist_ok=True)
        link = os.path.join(wants, unit)
        if not os.path.islink(link):
            os.symlink(UNIT_DIR + unit, link)
    except Exception as error:  # never fail boot over our own bug; say what happened
        _log(root, 3, f"internal error, {UNIT} is not started: {error!r}")
        return 1
    return 0
