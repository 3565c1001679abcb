"""Self-test of the boot harness, with no product installed in the guest.

It proves the harness can show what the product is for: a real systemd
boots, netplan's generator and systemd-networkd configure both uplinks, and
yet only isp1 answers.  Without policy routing a connection via isp2 fails
(the host's strict rp_filter drops its SYN, and a reply would leave via isp1
with isp2's source, which isp1 drops as spoofed).  If isp2 ever answers
here, product tests built on this harness prove nothing.
"""

import subprocess
import time
from pathlib import Path

import pytest

from .boot import BOOT_REQUIREMENTS, Booted, Guest, base_rootfs
from .topology import Topology

pytestmark = BOOT_REQUIREMENTS

REPO = Path(__file__).resolve().parents[2]

UPLINKS_YAML = """\
network:
  version: 2
  renderer: networkd
  ethernets:
    eth1:
      addresses: [203.0.113.8/24]
      routes:
        - to: default
          via: 203.0.113.1
    eth2:
      addresses: [192.0.2.31/24]
"""


def _uplinks_addressed(booted: Booted) -> bool:
    addresses = booted.run("ip", "-4", "-o", "addr", "show").stdout
    return "eth1    inet 203.0.113.8/24" in addresses and "eth2    inet 192.0.2.31/24" in addresses


def _boot_unconfigured_host(guest: Guest, topo: Topology) -> None:
    """Boot `guest` as the multi-uplink host and check what it can and cannot do."""
    guest.write("etc/netplan/50-uplinks.yaml", UPLINKS_YAML, mode=0o600)
    guest.enable_http()
    with guest.boot(topo.host_ns) as booted:
        # Addresses, not networkd's "configured": static links stay
        # "configuring" for ~14 s waiting for an IPv6 router advertisement.
        booted.wait_for(lambda: _uplinks_addressed(booted), 20, "networkd addressed eth1 and eth2")
        booted.wait_for(lambda: topo.tcp_reachable("isp1", timeout=1), 20, "client reaches the host via isp1")
        reachable_seconds = time.monotonic() - booted.started
        assert not topo.tcp_reachable("isp2"), (
            "isp2 answered without policy routing: the topology does not enforce BCP38\n" + booted.diagnostics())
        assert booted.system_state() == "running", booted.run("systemctl", "--failed", check=False).stdout
        journal = booted.journal()
        assert "systemd-networkd" in journal and "Reached target multi-user.target" in journal, journal
    print(f"\nboot to running {booted.boot_seconds:.1f} s, to isp1 reachable {reachable_seconds:.1f} s, "
          f"halt {booted.halt_seconds:.1f} s")
    # The journal survives the halt, for reports written after the guest is gone.
    assert "Reached target multi-user.target" in guest.journal()


def test_guest_without_product_answers_only_via_isp1() -> None:
    with Topology(configure_host=False) as topo, Guest() as guest:
        _boot_unconfigured_host(guest, topo)


def test_second_guest_boots_from_cache_untouched_by_the_first() -> None:
    base = base_rootfs()
    inode = base.stat().st_ino
    started = time.monotonic()
    assert base_rootfs() == base
    lookup_seconds = time.monotonic() - started
    assert lookup_seconds < 1 and base.stat().st_ino == inode, "the cached base tree was rebuilt"
    # A guest's writes land in its own overlay, never in the shared base.
    assert not (base / "etc/netplan/50-uplinks.yaml").exists()
    assert not (base / "etc/systemd/system/mu-test-http.service").exists()
    print(f"\ncached base lookup {lookup_seconds * 1000:.1f} ms")
    with Topology(configure_host=False) as topo, Guest() as guest:
        _boot_unconfigured_host(guest, topo)


def test_boot_into_missing_netns_fails_fast_with_nspawn_message() -> None:
    """A broken boot must end the test at once with nspawn's reason, not hang until a timeout."""
    with Guest() as guest:
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="did not start the guest") as failure, guest.boot("mu-no-such-netns"):
            pass
        assert time.monotonic() - started < 5
        assert "mu-no-such-netns" in str(failure.value)


def test_install_project_puts_files_where_the_package_would() -> None:
    with Guest() as guest:
        guest.install_project(REPO)
        root = guest.root
        assert (root / "usr/lib/python3/dist-packages/multiuplink_networkd/__init__.py").exists()
        assert not list(root.glob("usr/lib/python3/dist-packages/multiuplink_networkd/**/__pycache__"))
        for schema in (REPO / "schema").glob("*.json"):
            assert (root / "usr/share/multiuplink-networkd" / schema.name).read_text() == schema.read_text()
            if (REPO / "multiuplink_networkd" / schema.name).exists():  # the stanza's, not status's
                assert (root / "usr/lib/python3/dist-packages/multiuplink_networkd" / schema.name).read_text() == \
                    schema.read_text(), "the package's own copy, which the code reads"
        for unit in (REPO / "units").glob("*.service"):
            assert (root / "usr/lib/systemd/system" / unit.name).exists()
        if (REPO / "units/multiuplink-generator").exists():
            assert (root / "usr/lib/systemd/system-generators/multiuplink").stat().st_mode & 0o777 == 0o755
        # The guest's own python finds the package (chroot: no boot needed; -B: no .pyc).
        subprocess.run(["chroot", str(root), "/usr/bin/python3", "-B", "-c", "import multiuplink_networkd"], check=True)
        if (REPO / "multiuplink_networkd/cli.py").exists():
            assert (root / "usr/sbin/multiuplink").stat().st_mode & 0o777 == 0o755
