"""The installed generator run as systemd might sandbox it: everything read-only but its output directory.

netplan's generator tests do the same; newer systemd runs generators in
such a sandbox, so a generator that writes anywhere else would break there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .boot import BOOT_REQUIREMENTS, Guest
from .topology import Topology

pytestmark = BOOT_REQUIREMENTS

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples/two-isps/etc/netplan"
STANZA = "etc/netplan/multiuplink.d/uplinks.yaml"
GENERATOR = "/usr/lib/systemd/system-generators/multiuplink"


@pytest.mark.parametrize("stanza", [
    (EXAMPLE / "multiuplink.d/uplinks.yaml").read_text(),
    "network:\n  multiuplink:\n    uplinks:\n      isp1: {interface: eth9}\n",  # the unit's apply refuses it
], ids=["valid", "invalid"])
def test_generator_needs_nothing_writable_but_its_output_dir(stanza: str) -> None:
    with Guest() as guest:
        guest.install_project(REPO)
        guest.write("etc/netplan/50-uplinks.yaml", (EXAMPLE / "50-uplinks.yaml").read_text(), mode=0o600)
        guest.write(STANZA, stanza, mode=0o600)
        with Topology(configure_host=False) as topo, guest.boot(topo.host_ns) as booted:
            booted.run("mkdir", "-p", "/var/tmp/out")
            done = booted.run("systemd-run", "--wait", "--pipe", "--quiet", "-p", "ProtectSystem=strict",
                              "-p", "ReadWritePaths=/var/tmp/out", "-p", "PrivateNetwork=yes",
                              "-p", "InaccessiblePaths=-/run/dbus", GENERATOR, "/var/tmp/out", "/var/tmp/out",
                              "/var/tmp/out", check=False)
            assert done.returncode == 0, done.stdout + done.stderr
            linked = booted.run("ls", "/var/tmp/out/multi-user.target.wants").stdout.split()
            assert linked == ["multiuplink-configure.service"], linked
