"""``multiuplink explain`` on real connections made through the BCP38 topology, and on broken ones."""

from __future__ import annotations

from multiuplink_networkd.cli import EXIT_DRIFT

from . import netns
from .product import Host
from .topology import CLIENT_ADDR, GATEWAY, HOST_ADDR, HOST_IFNAME


def blocks(text: str) -> dict[str, str]:
    """explain's output by connection: ``{first line: the lines under it}``."""
    found: dict[str, str] = {}
    title = ""
    for line in text.splitlines():
        if line.startswith("  "):
            found[title] += line.strip() + "\n"
        else:
            title = line
            found[title] = ""
    return found


def test_a_connection_via_each_isp_names_its_uplink_table_gateway_and_source(applied: Host) -> None:
    assert applied.reachable() == {"isp1": True, "isp2": True}
    shown = blocks(applied.multiuplink("explain", CLIENT_ADDR).stdout)
    for isp, table in (("isp1", "101"), ("isp2", "102")):
        connections = [(t, b) for t, b in shown.items() if f"-> {HOST_ADDR[isp]}:80 " in t]
        assert len(connections) == 2, "the fixture's and this test's"
        interface = HOST_IFNAME[isp]
        mark = f"{int(table) - 100:#x}000000"
        for title, lines in connections:
            assert title.startswith(f"tcp {CLIENT_ADDR}:") and "assured" in title
            assert lines.splitlines() == [
                f"uplink  {isp}: arrived on {interface}, mark {mark}",
                f"rule    999: from all fwmark {mark}/0xff000000 lookup main suppress_prefixlength 0 (live)",
                f"rule    1000: from all fwmark {mark}/0xff000000 lookup {table} (live)",
                f"reply   via {GATEWAY[isp]} dev {interface}, table {table}, source {HOST_ADDR[isp]}",
                f"ok: answered out of {isp}"]


def test_a_missing_rule_and_strict_rp_filter_are_named(applied: Host) -> None:
    host_ns = applied.topology.host_ns
    netns.ip(host_ns, "rule", "del", "priority", "1000", "fwmark", "0x2000000/0xff000000", "table", "102")
    netns.sysctl(host_ns, {"net.ipv4.conf.eth2.rp_filter": 1})
    assert not applied.topology.tcp_reachable("isp2")
    done = applied.multiuplink("explain", CLIENT_ADDR, check_code=EXIT_DRIFT)
    [lines] = [b for t, b in blocks(done.stdout).items() if f"-> {HOST_ADDR['isp2']}:80 " in t]
    assert "rule    1000: from all fwmark 0x2000000/0xff000000 lookup 102 (MISSING)" in lines
    assert "reply   via 203.0.113.1 dev eth1, table main, source 192.0.2.31" in lines
    assert "problem: policy rule '1000: from all fwmark 0x2000000/0xff000000 lookup 102' is not live" in lines
    assert "problem: replies leave by eth1 (table main), not by eth2" in lines
    assert "problem: the peer's packets are dropped on arrival on eth2" in lines and "rp_filter 1" in lines


def test_a_connection_nothing_answered_names_the_chains_that_drop(applied: Host) -> None:
    """A reply dropped before conntrack sees it (raw priority): the connection stays unreplied."""
    netns.run(applied.topology.host_ns, "nft", "-f", "-", input=(
        "table inet fw {\n\tchain out { type filter hook output priority raw; policy drop; }\n}\n"))
    assert not applied.topology.tcp_reachable("isp1")
    done = applied.multiuplink("explain", CLIENT_ADDR, check_code=EXIT_DRIFT)
    [lines] = [b for t, b in blocks(done.stdout).items() if "unreplied" in t]
    assert ("problem: no reply has been seen: the service did not answer, or a firewall rule drops its packets; "
            "chains that drop by default: inet fw out (hook output, policy drop)") in lines


def test_with_no_connection_each_uplink_is_shown_and_a_port_narrows_the_connections(applied: Host) -> None:
    shown = applied.multiuplink("explain", "198.51.100.77").stdout
    assert shown.startswith("no connection with 198.51.100.77 is tracked; one arriving via each uplink would be")
    assert "reply   via 192.0.2.1 dev eth2, table 102, source 192.0.2.31\n  ok: answered out of isp2" in shown
    assert applied.topology.tcp_reachable("isp1")
    assert f"-> {HOST_ADDR['isp1']}:80" in applied.multiuplink("explain", f"{CLIENT_ADDR}:80").stdout
    other_port = applied.multiuplink("explain", f"{CLIENT_ADDR}:81").stdout
    assert f"no connection with {CLIENT_ADDR}:81 is tracked" in other_port
    wrong = applied.multiuplink("explain", "198.51.100", check_code=2)
    assert "does not appear to be an IPv4 or IPv6 address" in wrong.stderr
