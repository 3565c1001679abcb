"""What systemd-sysctl will set at the next boot, and which file line sets it: sysctl.d(5) read as systemd 252 does.

Files ``*.conf`` from /etc, /run, /usr/local/lib, /usr/lib and /lib
``sysctl.d`` (a name in an earlier directory masks the same name in a later
one; a link to /dev/null masks with nothing), read in name order. A later
assignment of a key replaces an earlier one with a different value; a key
written with ``/`` first keeps its dots, one written with ``.`` first has dots
and slashes swapped; a ``-key`` line without ``=`` takes the key away from
every glob (and drops an earlier assignment of it). A glob never overrides a
key assigned explicitly anywhere; among globs, the last one wins. An interface
that nothing matches inherits ``default`` when it appears (udev runs
systemd-sysctl for each new interface). configobj does not read this format:
it rejects repeated keys, ``;`` comments and ``-key`` lines, and turns commas
into lists, so this is a small reader of its own.
"""

from __future__ import annotations

import os
from collections import namedtuple
from fnmatch import fnmatchcase

DIRECTORIES = ("etc/sysctl.d", "run/sysctl.d", "usr/local/lib/sysctl.d", "usr/lib/sysctl.d", "lib/sysctl.d")
KERNEL_DEFAULT = 0
"""The kernel's own rp_filter for ``all`` and ``default`` when nothing sets them."""


class BootValue(namedtuple("BootValue", "value path line key")):
    """A value at the next boot and where it comes from: ``path:line`` assigns ``key`` (as written there).

    ``path`` is None for the kernel's default; ``key`` names ``default`` when an interface inherits it.
    """

    __slots__ = ()
    value: int
    path: str | None
    line: int | None
    key: str | None

    def source(self) -> str | None:
        return None if self.path is None else f"{self.path}:{self.line}"


class _Assignment(namedtuple("_Assignment", "value path line key")):
    __slots__ = ()
    value: str | None  # None: a "-key" line, which keeps every glob away from the key
    path: str
    line: int
    key: str


def normalize(key: str) -> str:
    """The slash form systemd-sysctl compares: ``net.ipv4.conf.eth0/100.rp_filter`` → ``net/ipv4/conf/eth0.100/...``."""
    first = next((c for c in key if c in "./"), "")
    if first == ".":
        key = key.translate(str.maketrans("./", "/."))
    return "/".join(part for part in key.split("/") if part not in ("", "."))


def _is_glob(key: str) -> bool:
    return any(c in key for c in "*?[")


def config_files(root: str, replaced: dict[str, str | None]) -> list[tuple[str, str]]:
    """``(path, text)`` of every file systemd-sysctl reads, in its order.

    ``replaced``: ``{path relative to root: text, or None for absent}``, for the files we are about to write.
    """
    chosen: dict[str, str] = {}
    for directory in DIRECTORIES:
        try:
            names = set(os.listdir(os.path.join(root, directory)))
        except OSError:
            names = set()
        names |= {os.path.basename(rel) for rel in replaced if os.path.dirname(rel) == directory}
        for name in names:
            if name.endswith(".conf") and not name.startswith(".") and name not in chosen:
                relative = f"{directory}/{name}"
                if relative in replaced:
                    if replaced[relative] is None:
                        continue
                elif not _is_file_or_link(os.path.join(root, relative)):
                    continue
                chosen[name] = relative
    files = []
    for name in sorted(chosen):
        relative = chosen[name]
        text = replaced[relative] if relative in replaced else _read(os.path.join(root, relative))
        files.append((os.path.join(root, relative), text or ""))
    return files


def _is_file_or_link(path: str) -> bool:
    """What systemd lists: a regular file or any symbolic link (one to /dev/null masks, a dangling one too)."""
    return os.path.islink(path) or os.path.isfile(path)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            return stream.read()
    except OSError:  # unreadable: systemd-sysctl skips it too
        return ""


def _assignments(files: list[tuple[str, str]]) -> dict[str, _Assignment]:
    """Every key's last assignment, in the order systemd-sysctl applies them (a re-assigned key moves last)."""
    found: dict[str, _Assignment] = {}
    for path, text in files:
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            key, equals, value = line.partition("=")
            if not equals and not line.startswith("-"):
                continue  # systemd-sysctl warns and ignores it
            key = key.strip()
            if key.startswith("-"):
                key = key[1:].strip()
            normalized = normalize(key)
            assignment = _Assignment(value.strip() if equals else None, path, number, key)
            existing = found.get(normalized)
            if existing is not None and existing.value == assignment.value:
                continue
            found.pop(normalized, None)
            found[normalized] = assignment
    return found


def _matches(pattern: str, key: str) -> bool:
    """glob(3) on /proc/sys: ``*`` never crosses a ``/``."""
    parts, wanted = pattern.split("/"), key.split("/")
    return len(parts) == len(wanted) and all(fnmatchcase(w, p) for p, w in zip(parts, wanted, strict=True))


def _value(assignments: dict[str, _Assignment], key: str) -> _Assignment | None:
    """The assignment that sets ``key``: its own, else the last glob matching it (None: nothing sets it)."""
    own = assignments.get(key)
    if own is not None:
        return own if own.value is not None else None
    found = None
    for pattern, assignment in assignments.items():
        if assignment.value is not None and _is_glob(pattern) and _matches(pattern, key):
            found = assignment
    return found


def _boot_value(assignment: _Assignment | None, fallback: BootValue) -> BootValue:
    if assignment is not None and assignment.value is not None:
        try:
            return BootValue(int(assignment.value), assignment.path, assignment.line, assignment.key)
        except ValueError:
            pass  # the kernel refuses it and keeps what it had
    return fallback


def at_boot(root: str, key: str, replaced: dict[str, str | None], kernel_default: int) -> BootValue:
    """``key`` (slash form) as the next boot sets it, with the line that does."""
    assignments = _assignments(config_files(root, replaced))
    return _boot_value(_value(assignments, key), BootValue(kernel_default, None, None, None))


def rp_filter_at_boot(root: str, interfaces: list[str], replaced: dict[str, str | None]
                      ) -> tuple[BootValue, dict[str, BootValue]]:
    """rp_filter of ``all`` and of each interface as the next boot sets them, each with the line that does."""
    assignments = _assignments(config_files(root, replaced))
    kernel = BootValue(KERNEL_DEFAULT, None, None, None)
    all_value = _boot_value(_value(assignments, "net/ipv4/conf/all/rp_filter"), kernel)
    default = _boot_value(_value(assignments, "net/ipv4/conf/default/rp_filter"), kernel)
    inherited = default._replace(key=default.key or "net.ipv4.conf.default.rp_filter")
    return all_value, {interface: _boot_value(_value(assignments, f"net/ipv4/conf/{interface}/rp_filter"), inherited)
                       for interface in interfaces}
