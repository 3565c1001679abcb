"""DHCP uplinks: leases from a real systemd-networkd DHCP server at each ISP, a real networkd client on the host.

The uplinks' tables get their default routes from the leases (``Gateway=_dhcp4``)
and networkd keeps them following every lease change, with nothing for us to
run: proven with TCP through ISPs that drop spoofed sources (BCP38), and with
the outage a lease change costs, measured by connecting every 20 ms.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import netns
from .product import MAIN_FIRST_RULE, Host
from .topology import HOST_ADDR, NEIGHBOUR

DHCP_NETPLAN = """\
network:
  version: 2
  renderer: networkd
  ethernets:
    eth1:
      dhcp4: true
    eth2:
      dhcp4: true
      dhcp4-overrides:
        route-metric: 200
"""
NEW_ROUTER = "192.0.2.254"
RENUMBERED = ("192.0.2.99", 99)  # the address the second ISP leases after renumbering, its pool offset


@pytest.fixture
def dhcp_host(tmp_path: Path, need_networkd: None) -> Iterator[Host]:
    with Host(tmp_path / "root", netplan=DHCP_NETPLAN, served=True) as running:
        yield running


def longest_outage(probes: list[tuple[float, bool]]) -> float:
    """Seconds from the last answered probe before a run of unanswered ones to the first answered after it."""
    longest, last_answered = 0.0, None
    for when, answered in probes:
        if answered:
            if last_answered is not None:
                longest = max(longest, when - last_answered)
            last_answered = when
    return longest


def test_dhcp_uplinks_answer_after_apply_and_follow_a_new_router_without_apply(dhcp_host: Host) -> None:
    host, topology = dhcp_host, dhcp_host.topology
    assert host.reachable() == {"isp1": True, "isp2": False}, "netplan alone answers only via the main default"
    host.multiuplink("apply")
    host.wait_uplinks("isp1", "isp2")
    assert "default via 192.0.2.1 dev eth2 proto dhcp" in host.table("102")
    assert host.reachable() == {"isp1": True, "isp2": True}

    # The lease's router changes; the ISP's server hands it out on renewal. Nobody runs apply.
    topology.reconfigure_isp("isp2", topology.isp_network("isp2", router=NEW_ROUTER))
    with topology.probing(HOST_ADDR["isp2"]) as probes:
        time.sleep(0.3)
        host.networkd.run("networkctl", "renew", "eth2")
        netns.wait_for(lambda: f"default via {NEW_ROUTER} dev eth2 proto dhcp" in host.table("102"), 15,
                       "table 102 to follow the new router", diagnose=host.networkd.diagnose)
        time.sleep(0.3)
    outage = longest_outage(probes)
    print(f"\nnew router by renewal: longest outage {outage * 1000:.0f} ms over {len(probes)} probes")
    assert probes and probes[-1][1], "isp2 answers after the router changed"
    # The old router address is gone: only a table that followed the lease still reaches the ISP.
    netns.ip(topology.isp_ns["isp2"], "addr", "del", "192.0.2.1/24", "dev", "tohost")
    assert host.reachable() == {"isp1": True, "isp2": True}


def test_a_renumbered_lease_is_followed_without_apply(dhcp_host: Host) -> None:
    host, topology = dhcp_host, dhcp_host.topology
    host.multiuplink("apply")
    host.wait_uplinks("isp1", "isp2")
    new_address, offset = RENUMBERED
    topology.reconfigure_isp("isp2", topology.isp_network("isp2", pool_offset=offset))
    with topology.probing(new_address) as probes:
        flapped = time.monotonic()
        netns.ip(topology.isp_ns["isp2"], "link", "set", "hostport", "down")
        time.sleep(1)  # a carrier loss networkd sees (a down-up in one go is not): it drops the lease
        netns.ip(topology.isp_ns["isp2"], "link", "set", "hostport", "up")
        leased = netns.wait_for(
            lambda: new_address in netns.ip(topology.host_ns, "-4", "addr", "show", "dev", "eth2").stdout
            and time.monotonic(), 20, "the renumbered lease", diagnose=host.networkd.diagnose)
        netns.wait_for(lambda: any(answered for _, answered in probes) or topology.tcp_reachable(
            "isp2", address=new_address, timeout=0.5), 15, "the new address to answer via isp2")
        time.sleep(0.3)
    first = next(when for when, answered in probes if answered)
    print(f"\nrenumbered by a carrier flap: lease {(leased - flapped) * 1000:.0f} ms after the flap, "
          f"first answer via isp2 {(first - flapped) * 1000:.0f} ms after it "
          f"({(first - leased) * 1000:.0f} ms after the lease)")
    assert f"default via {topology.isp_network('isp2').split('Address=')[1].split('/')[0]} dev eth2" in host.table(
        "102")
    assert host.multiuplink("apply").stdout.strip() == "unchanged: nothing to do"


def test_marked_replies_reach_a_neighbour_on_the_leased_subnet_directly(dhcp_host: Host) -> None:
    """Main's link route answers the neighbour, although our table knows no subnet of a DHCP uplink."""
    host, topology = dhcp_host, dhcp_host.topology
    host.multiuplink("apply")
    host.wait_uplinks("isp1", "isp2")
    assert "192.0.2.0/24" not in host.table("102"), "a DHCP uplink's table holds its default route only"
    assert topology.neighbour_reachable("isp2")
    assert topology.hairpins("isp2") == 0
    # Without main's specific routes first, the reply goes to the router, which drops it as a hairpin.
    netns.ip(topology.host_ns, "rule", "del", "priority", "999", *MAIN_FIRST_RULE["isp2"].split())
    assert not topology.neighbour_reachable("isp2", timeout=1.0)
    assert topology.hairpins("isp2") > 0
    assert "policy rules and routes of eth2" in host.multiuplink("apply").stdout, "apply repairs the missing rule"
    host.wait_uplinks("isp2")
    assert topology.neighbour_reachable("isp2")
    assert NEIGHBOUR["isp2"] not in host.table("102")
