"""Tests of the e2e harness itself: the topology really reproduces the
multi-uplink problem (and the seed's method really fixes it), the real
networkd really applies, reloads and re-reads our drop-ins, and netplan
really leaves our drop-in directories alone.

If these fail, product e2e results mean nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from . import netns
from .networkd import Networkd
from .topology import CLIENT_ADDR, HOST_ADDR, Topology

NETPLAN_GENERATE = "/lib/netplan/generate"

NETPLAN_YAML = """\
network:
  version: 2
  renderer: networkd
  ethernets:
    eth1:
      addresses: [203.0.113.8/24]
      routes: [{to: default, via: 203.0.113.1}]
    eth2:
      addresses: [192.0.2.31/24]
"""

# The seed's steps 1-2 in nft: iptables' mangle OUTPUT re-routes implicitly,
# nft needs a `type route` chain for the restored mark to change the route.
SEED_NFT = """\
table inet seed {
    chain prerouting {
        type filter hook prerouting priority mangle; policy accept;
        iifname "eth1" ct mark set 0x1
        iifname "eth2" ct mark set 0x2
    }
    chain output {
        type route hook output priority mangle; policy accept;
        ct mark { 0x1, 0x2 } meta mark set ct mark
    }
}
"""


def netplan_generate(root: Path) -> Path:
    """Render NETPLAN_YAML under ``root`` exactly as netplan does at boot;
    return the rendered /run/systemd/network."""
    yaml = root / "etc/netplan/50-e2e.yaml"
    if not yaml.exists():
        yaml.parent.mkdir(parents=True)
        yaml.write_text(NETPLAN_YAML)
        yaml.chmod(0o600)  # netplan warns about world-readable config
    netns.run_cmd([NETPLAN_GENERATE, "--root-dir", str(root)])
    return root / "run/systemd/network"


def write_dropin(network_dir: Path, priority: int, table: int) -> Path:
    dropin = network_dir / "10-netplan-eth1.network.d" / "50-x.conf"
    dropin.parent.mkdir(exist_ok=True)
    dropin.write_text(
        "[RoutingPolicyRule]\n"
        "FirewallMark=0x1000000/0xff000000\n"
        f"Table={table}\n"
        f"Priority={priority}\n"
        "\n"
        "[Route]\n"
        "Gateway=203.0.113.1\n"
        f"Table={table}\n"
    )
    return dropin


def rule_line(priority: int, table: int) -> str:
    return f"{priority}:\tfrom all fwmark 0x1000000/0xff000000 lookup {table} proto static"


def test_topology_reproduces_problem_and_seed_fixes_it(need_netns: None) -> None:
    """BCP38 makes the problem real, and both halves of the seed's fix are needed.

    1. As configured (main default via isp1): only isp1 answers.
    2. Loose rp_filter alone: the SYN via isp2 now gets in, but the reply
       leaves via isp1 with source 192.0.2.31 and isp1 drops it as spoofed
       (its BCP38 counter proves it).
    3. Seed steps 1-4 by hand (ct mark, route-hook restore, fwmark rules,
       tables 101/102): both answer, nothing more is dropped as spoofed.
    4. Strict rp_filter on eth2 again: isp2 fails (the SYN's unmarked
       reverse-path lookup points at eth1), so step 5 is needed too.
    """
    with Topology() as topo, topo.serve_http():
        for key in ("all", "default", "eth1", "eth2"):
            assert netns.read_sysctl(topo.host_ns, f"net.ipv4.conf.{key}.rp_filter") == "1"
        assert topo.tcp_reachable("isp1")
        assert not topo.tcp_reachable("isp2", timeout=1)

        topo.run_host("sysctl", "-q", "-w", "net.ipv4.conf.eth1.rp_filter=2",
                      "net.ipv4.conf.eth2.rp_filter=2")
        assert not topo.tcp_reachable("isp2", timeout=1)
        assert topo.bcp38_drops("isp1") > 0

        topo.run_host("nft", "-f", "-", input=SEED_NFT)
        for mark, table, ifname, gateway, prefix in (
            (1, 101, "eth1", "203.0.113.1", "203.0.113.0/24"),
            (2, 102, "eth2", "192.0.2.1", "192.0.2.0/24"),
        ):
            topo.run_host("ip", "route", "add", "default", "via", gateway, "dev", ifname,
                          "table", str(table))
            topo.run_host("ip", "route", "add", prefix, "dev", ifname, "scope", "link",
                          "table", str(table))
            topo.run_host("ip", "rule", "add", "fwmark", str(mark), "table", str(table))
        drops = topo.bcp38_drops("isp1")
        assert topo.tcp_reachable("isp1")
        assert topo.tcp_reachable("isp2")
        # A full HTTP exchange, not just the handshake, answered from eth2's address to the client's.
        body = netns.run(topo.client_ns, "curl", "-sS", "--max-time", "3",
                         f"http://{HOST_ADDR['isp2']}/").stdout
        assert body == f"{HOST_ADDR['isp2']} {CLIENT_ADDR}"
        assert topo.bcp38_drops("isp1") == drops

        topo.run_host("sysctl", "-q", "-w", "net.ipv4.conf.eth2.rp_filter=1")
        assert not topo.tcp_reachable("isp2", timeout=1)
        assert topo.tcp_reachable("isp1")


def test_networkd_applies_and_reloads_dropin(need_networkd: None, tmp_path: Path) -> None:
    """A drop-in next to netplan's own .network is applied by the real
    networkd, and a changed drop-in is applied after Reload +
    ReconfigureLink without restarting it (old rule and route removed).

    Reload goes through ``dbus_address`` from the host's mount namespace,
    the way the product's D-Bus client will reach the private bus.
    """
    network_dir = netplan_generate(tmp_path)
    write_dropin(network_dir, priority=1000, table=101)
    with Topology(configure_host=False) as topo, Networkd(topo.host_ns, str(network_dir)) as nd:
        nd.wait_configured(
            "eth1",
            rules=[rule_line(1000, 101)],
            routes=[("101", "default via 203.0.113.1 dev eth1 proto static"),
                    ("main", "default via 203.0.113.1 dev eth1 proto static")],
        )
        nd.wait_configured("eth2")
        assert re.search(r"inet 192\.0\.2\.31/24 .*eth2",
                         topo.run_host("ip", "-4", "addr", "show", "dev", "eth2").stdout)

        write_dropin(network_dir, priority=1001, table=111)
        topo.run_host("env", f"DBUS_SYSTEM_BUS_ADDRESS={nd.dbus_address}", "busctl",
                      "--system", "call", "org.freedesktop.network1",
                      "/org/freedesktop/network1", "org.freedesktop.network1.Manager",
                      "Reload")
        nd.reconfigure("eth1")

        def switched() -> bool:
            rules = topo.run_host("ip", "rule").stdout
            return (rule_line(1001, 111) in rules and rule_line(1000, 101) not in rules
                    and "default via 203.0.113.1 dev eth1"
                    in topo.run_host("ip", "route", "show", "table", "111").stdout
                    and not topo.run_host("ip", "route", "show", "table", "101").stdout)

        netns.wait_for(switched, 15, "the changed drop-in to replace the old one",
                       diagnose=nd.diagnose)
        # netplan's own configuration is untouched by the reconfigure.
        assert "default via 203.0.113.1 dev eth1" in topo.run_host("ip", "route").stdout


def test_networkd_restart_rereads_config_but_keeps_stale_rules(need_networkd: None, tmp_path: Path) -> None:
    """``restart()`` gives a new networkd process that reads the directory
    afresh: a drop-in changed while it was down is applied without Reload.

    Finding (networkd 252): the rule and table route of the *old* drop-in
    survive the restart -- at startup networkd configures links before it
    has enumerated the kernel's rules and routes, so its drop of foreign
    config finds nothing yet. Only the next ReconfigureLink removes them.
    """
    network_dir = netplan_generate(tmp_path)
    write_dropin(network_dir, priority=1000, table=101)
    with Topology(configure_host=False) as topo, Networkd(topo.host_ns, str(network_dir)) as nd:
        nd.wait_configured("eth1", rules=[rule_line(1000, 101)],
                           routes=[("101", "default via 203.0.113.1 dev eth1")])
        old_pid = nd.networkd_pid
        write_dropin(network_dir, priority=1002, table=112)
        nd.restart()
        assert nd.networkd_pid != old_pid
        nd.wait_configured("eth1", rules=[rule_line(1002, 112)],
                           routes=[("112", "default via 203.0.113.1 dev eth1")])
        assert rule_line(1000, 101) in topo.run_host("ip", "rule").stdout
        assert topo.run_host("ip", "route", "show", "table", "101").stdout

        nd.reconfigure("eth1")
        netns.wait_for(
            lambda: (rule_line(1000, 101) not in topo.run_host("ip", "rule").stdout
                     and not topo.run_host("ip", "route", "show", "table", "101").stdout),
            15, "ReconfigureLink to drop the stale rule and route", diagnose=nd.diagnose)
        assert rule_line(1002, 112) in topo.run_host("ip", "rule").stdout


def test_netplan_generate_keeps_dropin_directories(tmp_path: Path) -> None:
    """Finding (netplan 0.106): ``generate`` cleans up by calling unlink()
    on every ``run/systemd/network/10-netplan-*``; on a directory that fails
    with EISDIR, which it ignores. So our ``10-netplan-<id>.network.d/``
    survives a regenerate -- non-empty, empty, and even when <id> is no
    longer in the YAML (a stale drop-in dir stays: removing it is up to
    us). netplan's own .network files are rewritten, its stale ones deleted.
    """
    if not os.access(NETPLAN_GENERATE, os.X_OK):
        pytest.skip(f"needs {NETPLAN_GENERATE} (package netplan.io)")
    network_dir = netplan_generate(tmp_path)
    dropin = write_dropin(network_dir, priority=1000, table=101)
    empty = network_dir / "10-netplan-eth2.network.d"
    stale = network_dir / "10-netplan-gone.network.d"
    for d in (empty, stale):
        d.mkdir()
    (stale / "50-x.conf").write_text("[Route]\nTable=199\n")
    stale_network = network_dir / "10-netplan-gone.network"
    stale_network.write_text("[Match]\nName=gone\n")
    (network_dir / "10-netplan-eth1.network").write_text("garbage\n")

    netplan_generate(tmp_path)

    assert dropin.read_text().startswith("[RoutingPolicyRule]")
    assert empty.is_dir() and not any(empty.iterdir())
    assert (stale / "50-x.conf").exists()
    assert not stale_network.exists()
    assert "Address=203.0.113.8/24" in (network_dir / "10-netplan-eth1.network").read_text()
