"""IPv6 next to IPv4: a static IPv6 uplink and a SLAAC one, proven with HTTP through ISPs that drop spoofed sources.

The ISP routers run a real systemd-networkd that advertises each ISP's prefix
(RAs); the host's eth1 has a static IPv6 address and default route, eth2
takes its address and default route from isp2's RAs (``accept-ra: true``).
Main routes IPv6 via isp1 (metric 100 against the RA's 1024), so before
``apply`` only isp1 answers over IPv6; after it, both ISPs answer over both
families. Kernel-generated IPv6 replies (echo replies, port unreachable,
RSTs) follow their connection's mark too, and neighbour discovery, which
conntrack does not track, is left alone.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import netns
from .product import Host, dual_stack_netplan
from .topology import GATEWAY, GATEWAY6, HOST_ADDR, HOST_ADDR6, Topology, http_get

DUAL_STACK = dual_stack_netplan(GATEWAY6["isp1"], f"""\
      addresses: [{HOST_ADDR['isp2']}/24]
      routes: [{{to: default, via: {GATEWAY['isp2']}, metric: 200}}]
""")
SLAAC = Topology.slaac_address("isp2")
ADDRESS6 = {"isp1": HOST_ADDR6["isp1"], "isp2": SLAAC}
RULE6 = "from all fwmark 0x2000000/0xff000000 lookup 102"

_UDP_REFUSED = """\
import socket, sys
probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
probe.settimeout(float(sys.argv[2]))
probe.connect((sys.argv[1], 9))
probe.send(b"x")
try:
    probe.recv(1)
except ConnectionRefusedError:
    sys.exit(0)  # the host's ICMPv6 port unreachable came back
except OSError:
    sys.exit(1)
"""

_TCP_REFUSED = """\
import socket, sys
try:
    socket.create_connection((sys.argv[1], 81), timeout=float(sys.argv[2])).close()
except ConnectionRefusedError:
    sys.exit(0)  # the host's RST came back
except OSError:
    sys.exit(1)
"""


@pytest.fixture
def dual_host(tmp_path: Path, need_networkd: None) -> Iterator[Host]:
    with Host(tmp_path / "root", netplan=DUAL_STACK, served=True) as running:
        topology = running.topology
        netns.wait_for(lambda: slaac_ready(topology.host_ns)
                       and topology.tcp_reachable("isp1", address=HOST_ADDR6["isp1"], timeout=1.0),
                       30, "SLAAC on eth2 and IPv6 via isp1", diagnose=running.networkd.diagnose)
        yield running


def reachable6(topology: Topology) -> dict[str, bool]:
    return {isp: topology.tcp_reachable(isp, address=ADDRESS6[isp], timeout=1.0) for isp in ("isp1", "isp2")}


def client_says(topology: Topology, script: str, address: str) -> bool:
    return netns.run(topology.client_ns, sys.executable, "-c", script, address, "1.0", check=False).returncode == 0


def pings(namespace: str, address: str) -> bool:
    return netns.run(namespace, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", address, check=False).returncode == 0


def slaac_ready(namespace: str) -> bool:
    """The SLAAC address is on eth2 and usable (networkd re-acquires it when it reconfigures the link: DAD again)."""
    listed = netns.ip(namespace, "-6", "-o", "addr", "show", "dev", "eth2").stdout
    return any(SLAAC in line and "tentative" not in line for line in listed.splitlines())


def apply_and_wait(host: Host) -> None:
    host.multiuplink("apply")
    host.wait_uplinks("isp1", "isp2")
    namespace = host.topology.host_ns
    netns.wait_for(lambda: RULE6 in netns.ip(namespace, "-6", "rule").stdout
                   and "proto ra" in netns.ip(namespace, "-6", "route", "show", "table", "102").stdout
                   and slaac_ready(namespace),
                   15, "IPv6 rule, RA default route and address of isp2", diagnose=host.networkd.diagnose)


def test_both_families_answer_via_both_isps(dual_host: Host) -> None:
    host, topology = dual_host, dual_host.topology
    assert reachable6(topology) == {"isp1": True, "isp2": False}, "netplan alone answers IPv6 via isp1 only"
    assert host.reachable() == {"isp1": True, "isp2": False}
    assert not pings(topology.client_ns, SLAAC), "echo replies leave via isp1 too"
    assert not client_says(topology, _UDP_REFUSED, SLAAC), "so do ICMPv6 errors"
    validate = host.multiuplink("validate").stdout
    assert "IPv6 gateway 2001:db8:1::1, from" in validate
    assert "IPv6 gateway: the routers advertising themselves, followed at run time (enabled at" in validate

    apply_and_wait(host)
    assert "2001:db8:1::/64 dev eth1" in netns.ip(topology.host_ns, "-6", "route", "show", "table", "101").stdout
    for isp in ("isp1", "isp2"):
        assert http_get(topology.client_ns, f"[{ADDRESS6[isp]}]") is not None, f"GET / over IPv6 via {isp}"
    assert host.reachable() == {"isp1": True, "isp2": True}, "IPv4 at the same time"
    # Replies the kernel makes itself belong to the connection they answer, and follow its mark.
    assert pings(topology.client_ns, SLAAC), "ICMPv6 echo replies via isp2"
    assert client_says(topology, _UDP_REFUSED, SLAAC), "ICMPv6 port unreachable via isp2"
    assert client_says(topology, _TCP_REFUSED, SLAAC), "RST via isp2"
    # Neighbour discovery is untracked, so never marked: forgotten neighbours are found again, on-link
    # peers answered directly.
    for namespace, device in ((topology.host_ns, "eth2"), (topology.isp_ns["isp2"], "tohost")):
        netns.ip(namespace, "-6", "neigh", "flush", "dev", device)
    assert reachable6(topology) == {"isp1": True, "isp2": True}
    assert pings(topology.isp_ns["isp2"], SLAAC), "the router reaches the host on-link"
    neighbours = netns.ip(topology.host_ns, "-6", "neigh", "show", "dev", "eth2").stdout
    assert "fe80::" in neighbours and "router" in neighbours, neighbours
    assert topology.bcp38_drops("isp2") == 0


def test_iptables_backend_marks_ipv6_too(dual_host: Host) -> None:
    host = dual_host
    stanza = host.stanza.read_text()
    host.stanza.write_text(stanza.replace("  multiuplink:\n", "  multiuplink:\n    backend: iptables\n"))
    apply_and_wait(host)
    saved = netns.run(host.topology.host_ns, "ip6tables-save", "-t", "mangle").stdout
    assert "MULTIUPLINK_PREROUTING -i eth2" in saved
    assert reachable6(host.topology) == {"isp1": True, "isp2": True}
    assert host.reachable() == {"isp1": True, "isp2": True}
