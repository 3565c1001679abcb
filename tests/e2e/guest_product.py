"""What the boot tests observe in a booted guest running the product.

Shared by test_boot.py (the project installed into the guest) and
test_deb_boot.py (the Debian package installed into it): the example's
netplan YAML and stanza, booting a guest as the host of a fresh topology,
and what a client and the guest's kernel show of our configuration.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

from tests.debian_build import build_environment

from . import topology
from .boot import Booted, Guest
from .product import MAIN_FIRST_RULE, REPO, RULE, STANZA, TABLE_ROUTE as _TABLE_ROUTE_BY_ISP
from .topology import HOST_ADDR, HOST_ADDR6, Topology

EXAMPLE = REPO / "examples/two-isps/etc/netplan"
NETPLAN_FILE = "etc/netplan/50-uplinks.yaml"
NETPLAN_YAML = (EXAMPLE / "50-uplinks.yaml").read_text()
STANZA_YAML = (EXAMPLE / "multiuplink.d/uplinks.yaml").read_text()
UNIT = "multiuplink-configure.service"
WANTS_LINK = f"/run/systemd/generator/multi-user.target.wants/{UNIT}"
TABLE_ROUTE = dict(_TABLE_ROUTE_BY_ISP.values())  # {"101": "default via 203.0.113.1 dev eth1", "102": ...}
BOTH = {"isp1": True, "isp2": True}
ISP1_ONLY = {"isp1": True, "isp2": False}
SETTLE = 15.0  # seconds for networkd to (re)configure after a boot or a fault (it takes < 1 s here)
PROBE_TIMEOUT = 1.0  # a connect on these veths answers in milliseconds; a dropped SYN costs this much


# --- the guest and booting ------------------------------------------------------

@contextlib.contextmanager
def host_guest(*debs: Path, netplan: str = NETPLAN_YAML) -> Iterator[Guest]:
    """A guest without the package: netplan's YAML, our stanza, an HTTP service; the .debs in /var/tmp."""
    with Guest() as guest:
        guest.write(NETPLAN_FILE, netplan, mode=0o600)
        guest.write(STANZA, STANZA_YAML, mode=0o600)
        guest.enable_http()
        for deb in debs:
            shutil.copy(deb, guest.root / "var/tmp" / deb.name)  # nspawn mounts a tmpfs on /tmp
        yield guest


def install_offline(guest: Guest, deb: Path) -> None:
    """``chroot ROOT dpkg -i``, as an image builder installs into a tree that never booted."""
    installed = subprocess.run(["chroot", str(guest.root), "dpkg", "-i", f"/var/tmp/{deb.name}"],
                               capture_output=True, text=True, env=build_environment(Path("/tmp")),
                               check=False, timeout=180)
    assert installed.returncode == 0, installed.stdout + installed.stderr


@contextlib.contextmanager
def power_on(guest: Guest, served: bool = False) -> Iterator[tuple[Topology, Booted]]:
    """Boot ``guest`` as the host of a fresh topology; a failed check shows the guest's journal tail.

    Fresh namespaces for every boot: a real reboot starts with empty kernel
    state, while a namespace kept from the previous boot would still hold
    that boot's nft table, rules and sysctls. ``served``: the ISPs run networkd, which hands out
    leases and advertises prefixes.
    """
    with Topology(configure_host=False, served=served) as topo, guest.boot(topo.host_ns) as booted:
        try:
            yield topo, booted
        except AssertionError as error:  # every failed check while the guest runs shows its journal
            raise AssertionError(f"{error}\n{booted.diagnostics()}") from None


# --- observing ----------------------------------------------------------------

def reachable(topo: Topology, timeout: float = PROBE_TIMEOUT, addresses: dict[str, str] | None = None
              ) -> dict[str, bool]:
    """Which ISPs the client completes a TCP handshake with the guest through, each probe bounded by ``timeout``;
    to the guest's IPv4 address on each uplink, or to ``addresses`` (e.g. HOST_ADDR6)."""
    return {isp: topo.tcp_reachable(isp, timeout=timeout, address=(addresses or {}).get(isp))
            for isp in ("isp1", "isp2")}


def http_get(topo: Topology, isp: str, timeout: float = 3.0, address: str | None = None) -> str:
    """The client's GET / of the guest's HTTP service via ``isp`` (at ``address``, e.g. an IPv6 one):
    "200 <body length>", or "no answer"."""
    host = address or HOST_ADDR[isp]
    body = topology.http_get(topo.client_ns, f"[{host}]" if ":" in host else host, timeout)
    return "no answer" if body is None else f"200 {len(body)}"


def exists(booted: Booted, path: str) -> bool:
    return booted.run("test", "-e", path, check=False).returncode == 0


def existing(booted: Booted, globs: Iterable[str]) -> list[str]:
    """The guest's paths that ``globs`` match (the guest's shell expands them)."""
    return booted.run("sh", "-c", f"ls -d {' '.join(globs)} 2>/dev/null", check=False).stdout.split()


def configured(booted: Booted, topo: Topology, addresses6: dict[str, str] | None = HOST_ADDR6) -> bool:
    """networkd installed both rules and table routes, our table is loaded, and both ISPs answer, over IPv4 and
    over IPv6 (to ``addresses6``, by default the example's static ones; None: IPv4 only)."""
    rules = booted.run("ip", "rule").stdout
    if not all(f"{rule} proto static" in rules for rule in (*RULE.values(), *MAIN_FIRST_RULE.values())):
        return False
    for number, route in TABLE_ROUTE.items():
        if route not in booted.run("ip", "route", "show", "table", number, check=False).stdout:
            return False
    if booted.run("nft", "list", "table", "inet", "multiuplink", check=False).returncode != 0:
        return False
    return reachable(topo) == BOTH and (addresses6 is None or reachable(topo, addresses=addresses6) == BOTH)


def wait_configured(booted: Booted, topo: Topology, after: str,
                    addresses6: dict[str, str] | None = HOST_ADDR6) -> None:
    booted.wait_for(lambda: configured(booted, topo, addresses6), SETTLE, f"both ISPs answer {after}")


def wait_isp1_only(booted: Booted, topo: Topology, after: str, probe_timeout: float = PROBE_TIMEOUT) -> None:
    """Until a default route is in and isp1 answers; then only isp1 may answer, each probe ``probe_timeout`` long."""
    booted.wait_for(lambda: booted.run("ip", "route", "show", "default").stdout.strip()
                    and topo.tcp_reachable("isp1", timeout=PROBE_TIMEOUT), SETTLE, f"isp1 answers {after}")
    assert reachable(topo, timeout=probe_timeout) == ISP1_ONLY, f"only isp1 may answer {after}"
