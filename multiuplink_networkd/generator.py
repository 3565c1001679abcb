"""systemd generator (systemd.generator(7)): decide at boot whether multiuplink-configure.service runs.

It only reads and validates, and writes nothing but one ``.wants`` symlink
into its output directory: the unit, ordered before systemd-networkd, does
the rendering and loading. No D-Bus, never fails boot: a bad stanza is
logged to the kernel log with file:line:col and the host boots with
netplan's plain networking. Inputs unchanged since the last successful
apply are recognised by their stat fingerprint, without loading YAML.
"""

from __future__ import annotations

import os
import sys

from . import __version__, paths

UNIT = "multiuplink-configure.service"
UNIT_PATH = "/usr/lib/systemd/system/" + UNIT
WANTED_BY = "multi-user.target.wants"
ROOT_ENV = "MULTIUPLINK_ROOT_DIR"
"""Moves every read under another root, for tests; then messages go to stderr instead of /dev/kmsg."""


def _log(root: str, level: int, message: str) -> None:
    line = f"multiuplink-generator: {message}"
    if root == "/":
        try:
            with open("/dev/kmsg", "w", encoding="utf-8") as kmsg:
                for part in line.splitlines():
                    kmsg.write(f"<{level}>{part}\n")
            return
        except OSError:
            pass
    print(line, file=sys.stderr)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read()
    except OSError:
        return None


def validated(root: str) -> bool:
    """True when the stanza is valid: from the cache if the inputs are unchanged, else by parsing."""
    if _read(os.path.join(root, paths.GENERATOR_CACHE)) == paths.fingerprint(root, __version__):
        return True
    from . import stanza
    from .errors import ConfigErrors

    try:
        return stanza.load(root) is not None
    except ConfigErrors as errors:
        for error in errors.errors:
            _log(root, 3, error.format())
        _log(root, 3, f"{len(errors.errors)} error(s); {UNIT} is not started, the host keeps netplan's "
                      "plain networking. Check with: multiuplink validate")
        return False


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 3):
        print("usage: multiuplink-generator NORMAL_DIR [EARLY_DIR LATE_DIR]", file=sys.stderr)
        return 2
    root = os.environ.get(ROOT_ENV, "/")
    try:
        if not validated(root):
            return 0
        wants = os.path.join(argv[0], WANTED_BY)
        os.makedirs(wants, exist_ok=True)
        link = os.path.join(wants, UNIT)
        if not os.path.islink(link):
            os.symlink(UNIT_PATH, link)
    except Exception as error:  # never fail boot over our own bug; say what happened
        _log(root, 3, f"internal error, {UNIT} is not started: {error!r}")
        return 1
    return 0
