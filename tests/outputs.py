"""Roots for the writer's tests: a netplan config with three interfaces, stanzas that move between output sets.

``footprint`` is everything a run leaves under ``run/`` and ``var/`` (our whole
reach), so a test compares it with exactly the set it expects: stray temporary
files, a journal left over or an empty drop-in directory all show up. Only
apply's marker (``run/multiuplink/applying``) is left out: it says whether
the host follows the files, which the tests of apply check.
"""

from __future__ import annotations

import os
from pathlib import Path

from multiuplink_networkd import paths
from multiuplink_networkd.config import stanza
from multiuplink_networkd.render import render

NETPLAN = """\
network:
  version: 2
  renderer: networkd
  ethernets:
    eth1: {addresses: [203.0.113.8/24], routes: [{to: default, via: 203.0.113.1}]}
    eth2: {addresses: [192.0.2.31/24], routes: [{to: default, via: 192.0.2.1, metric: 200}]}
    eth3: {addresses: [198.18.0.5/24], routes: [{to: default, via: 198.18.0.1, metric: 300}]}
"""
_UPLINKS = "network:\n  version: 2\n  multiuplink:\n{backend}    uplinks:\n{uplinks}"
STANZAS: dict[str, str | None] = {
    "none": None,
    "two": _UPLINKS.format(backend="", uplinks="      isp1: {interface: eth1, mark: 1, table: 101}\n"
                                               "      isp2: {interface: eth2, mark: 2, table: 102}\n"),
    "moved": _UPLINKS.format(backend="", uplinks="      isp1: {interface: eth1, mark: 3, table: 110}\n"
                                                 "      isp3: {interface: eth3}\n"),
    "iptables": _UPLINKS.format(backend="    backend: iptables\n",
                                uplinks="      isp2: {interface: eth2}\n      isp3: {interface: eth3}\n"),
}
"""Each pair differs: files written, rewritten, removed, a drop-in directory made or emptied, the backend swapped."""
TRANSITIONS = [("none", "two"), ("two", "moved"), ("moved", "iptables"), ("iptables", "two"), ("two", "none")]
STANZA = "etc/netplan/multiuplink.d/uplinks.yaml"


def make_root(root: Path, name: str) -> Path:
    (root / "etc/netplan").mkdir(parents=True, exist_ok=True)
    (root / "etc/netplan/50-uplinks.yaml").write_text(NETPLAN)
    set_stanza(root, name)
    return root


def set_stanza(root: Path, name: str) -> None:
    path = root / STANZA
    text = STANZAS[name]
    if text is None:
        path.unlink(missing_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o600)  # as netplan wants: a stanza others may read is warned about


def rendered(root: Path) -> dict[str, str]:
    """The output set the root's stanza asks for."""
    settings = stanza.load(str(root))
    return render(settings) if settings else {}


def footprint(root: Path) -> dict[str, str]:
    """Every file and symlink under ``run/`` and ``var/``, and every empty drop-in directory (as ``DIR/``)."""
    found = {}
    for top in ("run", "var"):
        for directory, dirs, files in os.walk(root / top):
            for name in files + [d for d in dirs if (Path(directory) / d).is_symlink()]:
                path = Path(directory) / name
                relative = str(path.relative_to(root))
                if relative == paths.APPLYING:
                    continue
                found[relative] = f"-> {os.readlink(path)}" if path.is_symlink() else path.read_text(
                    errors="surrogateescape")
            if directory.endswith(".network.d") and not dirs and not files:
                found[str(Path(directory).relative_to(root)) + "/"] = ""
    return found


def expected_footprint(files: dict[str, str]) -> dict[str, str]:
    """What a generate leaves: the set and the (empty) lock file."""
    return {**files, paths.LOCK_FILE: ""}
