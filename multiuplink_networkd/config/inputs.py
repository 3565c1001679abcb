"""Which YAML files netplan's rules select, and how messages name them."""

from __future__ import annotations

import errno
import os
import stat

from .. import paths
from ..errors import ConfigError, Position

_ABSENT = (errno.ENOENT, errno.ENOTDIR)
"""A directory that is missing (or a file, or a dangling link) holds nothing, as for netplan's glob."""


def yaml_files(root: str, subdir: str = "") -> list[tuple[str, str]]:
    """``(real path, shown path)`` of the ``*.yaml`` files netplan's rules select, in reading order.

    Same basename: /run masks /etc masks /lib, whatever the entry is (an unusable one is an error when
    it is read); a link to /dev/null masks and is skipped (systemd's convention; netplan reads it as
    empty). Hidden files are skipped, as by netplan's glob. The survivors are read in basename order.
    An unreadable directory is a :class:`ConfigError`: its files would be read at boot, as root.
    """
    chosen: dict[str, tuple[str, str]] = {}
    for directory in paths.NETPLAN_DIRS:
        relative = f"{directory}/{subdir}" if subdir else directory
        real_dir = os.path.join(root, relative)
        try:
            names = os.listdir(real_dir)
        except OSError as error:
            if error.errno in _ABSENT:
                continue
            raise ConfigError(Position(shown_path(root, relative), 1, 1),
                              f"cannot list the directory: {error.strerror}",
                              "make it readable (mode 0755): the files in it are read at boot") from None
        for name in names:
            if name.endswith(".yaml") and not name.startswith("."):
                chosen[name] = (os.path.join(real_dir, name), shown_path(root, f"{relative}/{name}"))
    return [chosen[name] for name in sorted(chosen) if not _masked(chosen[name][0])]


def _masked(path: str) -> bool:
    """Whether the entry resolves to /dev/null (compared by device number, so also under a ``--root-dir``)."""
    try:
        status = os.stat(path)
    except OSError:
        return False  # reported when it is read
    return stat.S_ISCHR(status.st_mode) and status.st_rdev == os.makedev(1, 3)


def stanza_files(root: str) -> list[tuple[str, str]]:
    return yaml_files(root, paths.STANZA_SUBDIR)


TOO_OPEN = stat.S_IRGRP | stat.S_IWGRP | stat.S_IROTH | stat.S_IWOTH
"""The mode bits netplan 0.106 warns about in its own files (measured: 0640 and 0604 warn, 0610 and 0601 not)."""


def too_open(root: str) -> list[str]:
    """Shown paths of the stanza files that users other than the owner may read or write."""
    found = []
    try:
        files = stanza_files(root)
    except ConfigError:
        return []  # reading the files reports it
    for real, shown in files:
        try:
            mode = os.stat(real).st_mode
        except OSError:
            continue  # reading it reports the problem
        if mode & TOO_OPEN:
            found.append(shown)
    return found


def shown_path(root: str, relative: str) -> str:
    """How a file is named in messages: absolute on the real root, else under the given root."""
    return "/" + relative if os.path.abspath(root) == "/" else os.path.join(root, relative)
