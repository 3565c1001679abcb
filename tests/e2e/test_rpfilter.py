"""Strict reverse-path checks in the host's firewall: found in what the real nft and ip6tables list, and proven
to cut off an uplink's connections until loosened as the warning says.
"""

from __future__ import annotations

import json

import pytest

from multiuplink_networkd.host import rpfilter

from . import netns
from .product import Host

UPLINKS = {"eth1": {4, 6}, "eth2": {4, 6}, "lte0": {4}}


@pytest.mark.parametrize(("rules", "expected"), [
    pytest.param("fib saddr . iif oif missing drop",
                 [("fib saddr . iif oif missing drop", {4, 6}, ["eth1", "eth2", "lte0"])], id="strict"),
    pytest.param("meta nfproto ipv6 fib saddr . mark . iif oif missing drop",  # firewalld's IPv6_rpfilter
                 [("fib saddr . mark . iif oif missing drop", {6}, ["eth1", "eth2"])], id="firewalld"),
    pytest.param('iifname "eth2" fib saddr . iif oif missing counter drop',
                 [("fib saddr . iif oif missing drop", {4, 6}, ["eth2"])], id="one-interface"),
    pytest.param("jump rpf", [("fib saddr . iif oif missing drop", {4, 6}, ["eth1", "eth2", "lte0"])],
                 id="in-a-jumped-to-chain"),
    pytest.param("fib saddr oif missing drop", [], id="loose"),
    pytest.param('iifname != { "eth1", "eth2", "lte0" } fib saddr . iif oif missing drop', [], id="uplinks-exempt"),
    pytest.param("fib daddr . iif type != local drop", [], id="not-a-reverse-path-check"),
])
def test_strict_checks_in_real_nft_listings(namespace: str, rules: str, expected: list[object]) -> None:
    ruleset = f"""table inet hostfw {{
    chain prerouting {{
        type filter hook prerouting priority filter + 10; policy accept;
        {rules}
    }}
    chain rpf {{
        fib saddr . iif oif missing drop
    }}
}}
"""
    netns.run(namespace, "nft", "-f", "-", input=ruleset)
    listing = json.loads(netns.run(namespace, "nft", "-j", "list", "ruleset").stdout)
    found = rpfilter.strict_nft_rules(listing, UPLINKS)
    assert [(f.rule, f.families, f.interfaces) for f in found] == expected
    assert all(f.where.startswith("nft table inet hostfw, chain ") for f in found)


def test_strict_rpfilter_match_in_real_ip6tables(namespace: str) -> None:
    for rule in ("-A PREROUTING -m rpfilter --invert -j DROP",
                 "-A PREROUTING -i lte0 -m rpfilter --invert -j DROP",
                 "-A PREROUTING -m rpfilter --loose --invert -j DROP"):
        netns.run(namespace, "ip6tables-restore", "--noflush", input=f"*raw\n{rule}\nCOMMIT\n")
    saved = netns.run(namespace, "ip6tables-save", "-t", "raw").stdout
    found = rpfilter.strict_iptables_rules(saved, 6, "raw", UPLINKS)
    assert [(f.rule, f.interfaces) for f in found] == [
        ("-A PREROUTING -m rpfilter --invert -j DROP", ["eth1", "eth2"])], "lte0 serves IPv4 only; --loose is fine"


def test_apply_warns_of_a_strict_check_that_drops_the_second_isp(host: Host) -> None:
    """The seed topology: main routes the client via isp1, so a strict check drops everything arriving via isp2."""
    netns.run(host.topology.host_ns, "nft", "-f", "-", input="""table inet hostfw {
    chain prerouting {
        type filter hook prerouting priority filter; policy accept;
        fib saddr . iif oif missing drop
    }
}
""")
    done = host.multiuplink("apply")
    assert "warning: a strict reverse-path check in nft table inet hostfw, chain prerouting " \
           "(fib saddr . iif oif missing drop) drops IPv4 and IPv6 connections arriving on eth1, eth2" in done.stderr
    assert "hint: make it loose (fib saddr oif missing drop" in done.stderr
    host.wait_uplinks("isp1", "isp2")
    assert host.reachable() == {"isp1": True, "isp2": False}, "the host's own firewall drops isp2's connections"
    netns.run(host.topology.host_ns, "nft", "-f", "-", input="""flush chain inet hostfw prerouting
add rule inet hostfw prerouting fib saddr oif missing drop
""")
    assert host.reachable() == {"isp1": True, "isp2": True}, "loosened as the hint says"
    assert "reverse-path" not in host.multiuplink("apply").stderr
