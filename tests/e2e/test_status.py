"""``multiuplink status`` against a real networkd, real rulesets and real traffic: clean after apply, every drift
named (and repaired by apply), the next boot's rp_filter traced to its file, counters per uplink.

Every ``--json`` output is validated against schema/status.schema.json.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from multiuplink_networkd.cli import EXIT_DRIFT

from . import netns
from .product import REPO, Host

SCHEMA = json.loads((REPO / "schema" / "status.schema.json").read_text())
RULE_MISSING = "isp2: policy rule '1000: from all fwmark 0x2000000/0xff000000 lookup 102' is missing"


def status(host: Host, code: int) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(host.multiuplink("status", "--json", check_code=code).stdout)
    jsonschema.validate(found, SCHEMA)
    return found


def test_clean_after_apply_then_a_deleted_rule_and_a_flushed_table_are_named_and_repaired(applied: Host) -> None:
    shown = applied.multiuplink("status").stdout
    assert "in sync: the live state is what the configuration asks for" in shown
    assert [line.split()[:8] for line in shown.splitlines()[1:3]] == [  # the example is dual stack
        ["isp1", "eth1", "routable", "203.0.113.8/24,", "2001:db8:1::8/64", "101", "live", "live"],
        ["isp2", "eth2", "routable", "192.0.2.31/24,", "2001:db8:2::31/64", "102", "live", "live"]]
    clean = status(applied, 0)
    assert (clean["drift"], clean["ruleset"], clean["networkd_running"], clean["problems"]) == (
        False, "loaded", True, [])
    assert all(r["live"] for u in clean["uplinks"] for r in u["rules"] + u["routes"])

    netns.ip(applied.topology.host_ns, "rule", "del", "priority", "1000", "fwmark", "0x2000000/0xff000000",
             "table", "102")
    netns.run(applied.topology.host_ns, "nft", "flush", "table", "inet", "multiuplink")
    assert not applied.topology.tcp_reachable("isp2")
    shown = applied.multiuplink("status", check_code=EXIT_DRIFT).stdout
    assert RULE_MISSING in shown
    assert "the nft table inet multiuplink is loaded, but rules are missing from it (flushed or edited)" in shown
    drifted = status(applied, EXIT_DRIFT)
    assert drifted["ruleset"] == "flushed"
    assert [(p["uplink"], p["subject"]) for p in drifted["problems"]] == [(None, "ruleset"), ("isp2", "rule")]

    repaired = applied.multiuplink("apply").stdout
    assert "changed netfilter" in repaired and "changed policy rules and routes of eth2" in repaired
    applied.wait_uplinks("isp1", "isp2")
    assert status(applied, 0)["problems"] == []
    assert applied.reachable() == {"isp1": True, "isp2": True}


def test_a_deleted_table_route_and_a_deleted_table_are_named_and_repaired(applied: Host) -> None:
    netns.ip(applied.topology.host_ns, "route", "del", "default", "table", "102")
    netns.run(applied.topology.host_ns, "nft", "delete", "table", "inet", "multiuplink")
    shown = applied.multiuplink("status", check_code=EXIT_DRIFT).stdout
    assert "isp2: route 'default via 192.0.2.1 dev eth2 table 102' is missing" in shown
    assert "the nft table inet multiuplink is not loaded" in shown
    assert status(applied, EXIT_DRIFT)["ruleset"] == "absent"
    repaired = applied.multiuplink("apply").stdout
    assert "changed netfilter" in repaired and "changed policy rules and routes of eth2" in repaired
    applied.wait_uplinks("isp2")
    assert status(applied, 0)["problems"] == []
    assert applied.reachable() == {"isp1": True, "isp2": True}


def test_a_later_sysctl_file_that_makes_an_uplink_strict_is_named_with_its_path(applied: Host) -> None:
    hardening = applied.root / "etc/sysctl.d/99-hardening.conf"
    hardening.parent.mkdir(parents=True)
    hardening.write_text("# CIS benchmark 3.3.7\nnet.ipv4.conf.eth2.rp_filter = 1\n")
    shown = applied.multiuplink("status", check_code=EXIT_DRIFT).stdout
    assert (f"isp2: at the next boot rp_filter on eth2 will be 1 (strict), not 2 (loose): "
            f"net.ipv4.conf.eth2.rp_filter = 1 ({hardening}:2)") in shown
    assert f"hint: change or remove {hardening}:2: it overrides {applied.root}/run/sysctl.d/50-multiuplink.conf" \
        in shown
    assert "2 (boot 1)" in shown.splitlines()[2]
    found = status(applied, EXIT_DRIFT)
    isp2 = found["uplinks"][1]["rp_filter"]
    assert (isp2["effective"], isp2["boot"]["effective"], isp2["boot"]["interface"]["source"]) == (
        2, 1, f"{hardening}:2")
    assert found["uplinks"][0]["rp_filter"]["boot"]["interface"]["source"] == \
        f"{applied.root}/run/sysctl.d/50-multiuplink.conf:3", "the header, a comment, then eth1"
    assert [p["subject"] for p in found["problems"]] == ["rp_filter_boot"]

    netns.sysctl(applied.topology.host_ns, {"net.ipv4.conf.eth1.rp_filter": 1})  # and strict now, by hand
    assert "isp1: rp_filter on eth1 is 1 (strict) now" in applied.multiuplink("status", check_code=EXIT_DRIFT).stdout
    applied.multiuplink("apply")
    assert applied.rp_filter("eth1") == "2"


def test_counters_count_each_uplinks_connections_and_packets(applied: Host) -> None:
    """An accepted TCP socket carries its uplink's mark (tcp_fwmark_accept): the restore, counted by ``out``, is
    never needed for its replies; set to 0 by hand, every reply needs it, and status says so."""
    before = {u["name"]: u["counters"] for u in status(applied, 0)["uplinks"]}
    for isp in ("isp2", "isp2", "isp2", "isp1"):
        assert applied.topology.tcp_reachable(isp)
    after = {u["name"]: u["counters"] for u in status(applied, 0)["uplinks"]}
    assert {isp: after[isp]["connections"] - before[isp]["connections"] for isp in after} == {"isp1": 1, "isp2": 3}
    for isp, connections in (("isp1", 1), ("isp2", 3)):
        assert after[isp]["packets_in"] - before[isp]["packets_in"] >= 3 * connections, isp  # SYN, ACK, FIN at least
        assert after[isp]["packets_out"] == before[isp]["packets_out"], f"{isp}: no reply needed a restore"
    metrics = applied.multiuplink("status", "--format=openmetrics").stdout
    assert f'multiuplink_connections_total{{uplink="isp2",interface="eth2"}} {after["isp2"]["connections"]}' \
        in metrics.splitlines()
    assert metrics.endswith("multiuplink_drift 0\n# EOF\n")

    netns.sysctl(applied.topology.host_ns, {"net.ipv4.tcp_fwmark_accept": 0})
    assert applied.topology.tcp_reachable("isp2"), "still answered via isp2, the slower way"
    found = status(applied, EXIT_DRIFT)
    assert found["uplinks"][1]["counters"]["packets_out"] - after["isp2"]["packets_out"] >= 2, "SYN-ACK, FIN-ACK"
    assert found["tcp_fwmark_accept"]["now"] == 0 and [p["subject"] for p in found["problems"]] == \
        ["tcp_fwmark_accept"]
    assert "run 'multiuplink apply'" in applied.multiuplink("status", check_code=EXIT_DRIFT).stdout
    assert "changed net.ipv4.tcp_fwmark_accept" in applied.multiuplink("apply").stdout
    assert status(applied, 0)["tcp_fwmark_accept"]["now"] == 1


def test_a_later_sysctl_file_that_turns_tcp_fwmark_accept_off_is_named(applied: Host) -> None:
    late = applied.root / "etc/sysctl.d/99-late.conf"
    late.parent.mkdir(parents=True)
    late.write_text("net.ipv4.tcp_fwmark_accept = 0\n")
    found = status(applied, EXIT_DRIFT)
    assert found["tcp_fwmark_accept"]["boot"] == {"value": 0, "source": f"{late}:1",
                                                  "key": "net.ipv4.tcp_fwmark_accept"}
    shown = applied.multiuplink("status", check_code=EXIT_DRIFT).stdout
    assert f"at the next boot net.ipv4.tcp_fwmark_accept will be 0 ({late}:1), not 1" in shown
    assert f"hint: change or remove {late}:1: it overrides {applied.root}/run/sysctl.d/50-multiuplink.conf" in shown


def test_iptables_backend_counts_by_rule_and_a_flushed_chain_is_named(host: Host) -> None:
    stanza = host.stanza.read_text()
    host.stanza.write_text(stanza.replace("  multiuplink:\n", "  multiuplink:\n    backend: iptables\n"))
    host.multiuplink("apply")
    host.wait_uplinks("isp1", "isp2")
    assert host.topology.tcp_reachable("isp2")
    found = status(host, 0)
    assert (found["backend"], found["ruleset"]) == ("iptables", "loaded")
    assert found["uplinks"][1]["counters"]["connections"] == 1
    netns.run(host.topology.host_ns, "iptables", "-t", "mangle", "-F", "MULTIUPLINK_PREROUTING")
    assert "the iptables chains MULTIUPLINK_* are loaded, but rules are missing" in \
        host.multiuplink("status", check_code=EXIT_DRIFT).stdout
    assert "changed netfilter" in host.multiuplink("apply").stdout
    assert status(host, 0)["ruleset"] == "loaded"


def test_stale_files_and_networkd_not_running_are_named(applied: Host) -> None:
    applied.stanza.write_text(applied.stanza.read_text().replace("table: 102", "table: 112"))
    shown = applied.multiuplink("status", bus=False, check_code=EXIT_DRIFT).stdout
    assert "the files on disk are not what the configuration renders: " in shown
    assert f"{applied.root}/run/multiuplink/manifest.json" in shown
    assert "systemd-networkd is not running" in shown
    assert "isp2: policy rule '1000: from all fwmark 0x2000000/0xff000000 lookup 112' is missing" in shown
    assert "policy rule '1000: from all fwmark 0x2000000/0xff000000 lookup 102' is live, but no uplink asks for it" \
        in shown
    found = json.loads(applied.multiuplink("status", "--json", bus=False, check_code=EXIT_DRIFT).stdout)
    jsonschema.validate(found, SCHEMA)
    assert found["networkd_running"] is False and found["uplinks"][0]["link"] is None


def test_a_link_without_carrier_is_named(applied: Host) -> None:
    isp_ns = applied.topology.isp_ns["isp2"]
    netns.ip(isp_ns, "link", "set", "tohost", "down")
    netns.wait_for(lambda: "isp2: eth2 has no carrier" in applied.multiuplink("status", check_code=None).stdout,
                   10, "networkd to see the carrier go")
    assert status(applied, EXIT_DRIFT)["uplinks"][1]["link"]["carrier"] == "no-carrier"
    netns.ip(isp_ns, "link", "set", "tohost", "up")
    applied.wait_uplinks("isp2")


def test_no_stanza_and_nothing_of_ours_is_in_sync(host: Host) -> None:
    host.stanza.unlink()
    assert "no uplinks configured" in host.multiuplink("status").stdout
    assert status(host, 0) == {"format": 1, "drift": False, "backend": None, "ruleset": None,
                               "networkd_running": None, "stale_files": [], "mark_mask": 0, "uplinks": [],
                               "problems": [], "tcp_fwmark_accept": None}
