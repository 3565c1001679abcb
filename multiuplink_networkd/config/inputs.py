"""Which YAML files netplan's rules select, and their fingerprint for the boot generator's cache."""

from __future__ import annotations

import os

from .. import paths


def yaml_files(root: str, subdir: str = "") -> list[tuple[str, str]]:
    """``(real path, shown path)`` of the ``*.yaml`` files netplan's rules select, in reading order.

    Same basename: /run masks /etc masks /lib; the survivors are read in basename order.
    """
    chosen: dict[str, tuple[str, str]] = {}
    for directory in paths.NETPLAN_DIRS:
        relative = f"{directory}/{subdir}" if subdir else directory
        real_dir = os.path.join(root, relative)
        try:
            names = os.listdir(real_dir)
        except OSError:
            continue
        for name in names:
            if name.endswith(".yaml"):
                real = os.path.join(real_dir, name)
                if os.path.isfile(real):
                    chosen[name] = (real, shown_path(root, f"{relative}/{name}"))
    return [chosen[name] for name in sorted(chosen)]


def stanza_files(root: str) -> list[tuple[str, str]]:
    return yaml_files(root, paths.STANZA_SUBDIR)


def shown_path(root: str, relative: str) -> str:
    """How a file is named in messages: absolute on the real root, else under the given root."""
    return "/" + relative if os.path.abspath(root) == "/" else os.path.join(root, relative)


def fingerprint(root: str, version: str) -> str:
    """Names, sizes, mtimes and inodes of every input file: changes whenever any input may have changed."""
    lines = [f"multiuplink-networkd {version}"]
    for real, shown in yaml_files(root) + stanza_files(root):
        status = os.stat(real)
        lines.append(f"{status.st_mtime_ns} {status.st_size} {status.st_ino} {shown}")
    return "\n".join(lines) + "\n"


def validated_before(root: str, version: str) -> bool:
    """Whether the inputs are exactly those of the last successful apply (its fingerprint in the cache)."""
    try:
        with open(os.path.join(root, paths.GENERATOR_CACHE), encoding="utf-8") as stream:
            cached = stream.read()
    except (OSError, UnicodeDecodeError):
        return False
    return cached == fingerprint(root, version)
