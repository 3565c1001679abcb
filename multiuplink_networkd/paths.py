"""Every file name the product reads or owns, relative to a root directory.

All I/O goes through a root (``--root-dir``, default ``/``) so tests and the
generator never touch the host by accident.
"""

from __future__ import annotations

import os

NETPLAN_DIRS = ("lib/netplan", "etc/netplan", "run/netplan")
"""netplan's search order: a later directory masks a file of the same name in an earlier one."""

STANZA_SUBDIR = "multiuplink.d"
"""Our stanza lives beside netplan's files, because netplan rejects unknown keys in its own."""

NETWORKD_DIR = "run/systemd/network"
DROPIN_NAME = "50-multiuplink.conf"
SYSCTL_FILE = "run/sysctl.d/50-multiuplink.conf"
STATE_DIR = "run/multiuplink"
NFT_RULESET = STATE_DIR + "/ruleset.nft"
IPTABLES_RULESET = STATE_DIR + "/ruleset.iptables"

OWNED_GLOBS = (
    NETWORKD_DIR + "/10-netplan-*.network.d/" + DROPIN_NAME,
    SYSCTL_FILE,
    NFT_RULESET,
    IPTABLES_RULESET,
)
"""Everything we write matches one of these; anything matching that we did not just render is stale."""


def networkd_dropin(netplan_id: str) -> str:
    """The drop-in that networkd merges into netplan's ``10-netplan-<id>.network``."""
    return f"{NETWORKD_DIR}/10-netplan-{netplan_id}.network.d/{DROPIN_NAME}"


def yaml_files(root: str, subdir: str = "") -> list[tuple[str, str]]:
    """``(real path, shown path)`` of the ``*.yaml`` files netplan's rules select, in reading order.

    Same basename: /run masks /etc masks /lib; the survivors are read in basename order.
    """
    chosen: dict[str, tuple[str, str]] = {}
    for directory in NETPLAN_DIRS:
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


def shown_path(root: str, relative: str) -> str:
    """How a file is named in messages: absolute on the real root, else under the given root."""
    return "/" + relative if os.path.abspath(root) == "/" else os.path.join(root, relative)


GENERATOR_CACHE = "var/lib/multiuplink/validated"
"""Fingerprint of the last inputs that validated; lets the boot generator skip parsing unchanged files."""


def fingerprint(root: str, version: str) -> str:
    """Names, sizes, mtimes and inodes of every input file: changes whenever any input may have changed."""
    lines = [f"multiuplink-networkd {version}"]
    for real, shown in yaml_files(root) + yaml_files(root, STANZA_SUBDIR):
        status = os.stat(real)
        lines.append(f"{status.st_mtime_ns} {status.st_size} {status.st_ino} {shown}")
    return "\n".join(lines) + "\n"
