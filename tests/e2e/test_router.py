"""Router mode: port forwards to a LAN server or a container answer via the uplink they arrived on.

The host of the BCP38 topology, with a real networkd, forwards to a LAN
(lan.py): a plain veth, or a container's veth on a Linux bridge. The
admin's own nft tables port-forward 8080 of both uplinks to the server and
masquerade outbound. Only what the client gets back counts: a reply that
leaves through the wrong ISP, or with the wrong source, is dropped there.
"""

from __future__ import annotations

import pytest

from . import netns
from .lan import SERVER_ADDR, Kind, Lan
from .product import RULE, Host
from .topology import CLIENT_ADDR, HOST_ADDR

BOTH = {"isp1": True, "isp2": True}
ISP1_ONLY = {"isp1": True, "isp2": False}
ISP2_LINE = "      isp2: {interface: eth2, mark: 2, table: 102}\n"


def conntrack_marks(host: Host, *selector: str) -> set[int]:
    """The connection marks of the tracked TCP connections that ``selector`` (conntrack -L options) picks."""
    listed = netns.run(host.topology.host_ns, "conntrack", "-L", "-p", "tcp", *selector, check=False).stdout
    return {int(word[len("mark="):]) for word in listed.split() if word.startswith("mark=")}


def set_global(host: Host, line: str) -> None:
    host.stanza.write_text(host.stanza.read_text().replace("  multiuplink:\n", f"  multiuplink:\n    {line}\n"))


@pytest.mark.parametrize("kind,backend", [("veth", "nft"), ("bridge", "nft"), ("veth", "iptables")])
def test_port_forwards_answer_via_both_isps(host: Host, kind: Kind, backend: str) -> None:
    set_global(host, f"backend: {backend}")
    with Lan(host.topology, kind) as lan:
        assert lan.forwards() == ISP1_ONLY, "netplan alone: forwarded replies leave by the main default route"
        assert host.reachable() == ISP1_ONLY
        assert lan.internet_sees() == HOST_ADDR["isp1"]

        host.multiuplink("apply")
        host.wait_uplinks("isp1", "isp2")
        assert lan.forwards() == BOTH
        assert host.reachable() == BOTH, "the host's own services too"
        assert lan.internet_sees() == HOST_ADDR["isp1"], "what the LAN opens still leaves by the main default route"
        assert conntrack_marks(host, "--src", SERVER_ADDR, "--dport", "80") == {0}, (
            "a connection the LAN opened is never marked, not even by its replies arriving on isp1")

        host.stanza.write_text(host.stanza.read_text().replace(ISP2_LINE, ""))
        host.multiuplink("apply")
        netns.wait_for(lambda: RULE["isp2"] not in host.rules(), 15, "networkd to drop isp2's rule",
                       diagnose=host.networkd.diagnose)
        assert lan.forwards() == ISP1_ONLY, "without the uplink in the stanza, the old behaviour"
        assert host.reachable() == ISP1_ONLY


def test_router_mode_off_leaves_forwarded_replies_to_the_main_table(host: Host) -> None:
    set_global(host, "router-mode: false")
    with Lan(host.topology, "veth") as lan:
        host.multiuplink("apply")
        host.wait_uplinks("isp1", "isp2")
        assert host.reachable() == BOTH
        assert lan.forwards() == ISP1_ONLY


def test_renumbered_uplink_keeps_its_open_connections(host: Host) -> None:
    """The mark is rewritten whenever it is not the arrival uplink's: a connection marked before isp2's mark
    changed (or not marked at all, opened before the ruleset was loaded) is answered right from its next packet."""
    with Lan(host.topology, "veth") as lan:
        host.multiuplink("apply")
        host.wait_uplinks("isp1", "isp2")
        with lan.keep_connection("isp2") as kept:
            answered = kept.get()
            assert answered == f"{SERVER_ADDR} {CLIENT_ADDR}"
            host.stanza.write_text(host.stanza.read_text().replace("mark: 2, table: 102", "mark: 3, table: 103"))
            host.multiuplink("apply")
            host.networkd.wait_configured("eth2", rules=["fwmark 0x3000000/0xff000000 lookup 103"],
                                          routes=[("103", "default via 192.0.2.1 dev eth2")])
            assert kept.get() == answered
            assert lan.forwards() == BOTH
