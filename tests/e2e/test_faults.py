"""What must keep working after the events a real host goes through, proven with traffic.

The boot-level versions (real ``netplan apply``, ``daemon-reload``,
``systemctl restart nftables``) are in test_boot.py; these drive the same
events against networkd in a namespace, which is quicker to diagnose.
"""

from __future__ import annotations

from . import netns
from .product import RULE, Host, netplan_generate


def test_netplan_generate_again_keeps_our_dropins(applied: Host) -> None:
    """netplan unlinks /run/systemd/network/10-netplan-*: files go, our .network.d directories cannot."""
    netplan_generate(applied.root)
    assert (applied.root / "run/systemd/network/10-netplan-eth2.network.d/50-multiuplink.conf").exists()
    applied.networkd.reload()
    for ifname in ("eth1", "eth2"):
        applied.networkd.reconfigure(ifname)
    applied.wait_uplinks("isp1", "isp2")
    assert applied.reachable() == {"isp1": True, "isp2": True}
    assert applied.multiuplink("apply").stdout.strip() == "unchanged: nothing to do"


def test_networkd_restart(applied: Host) -> None:
    applied.networkd.restart()
    applied.wait_uplinks("isp1", "isp2")
    assert applied.reachable() == {"isp1": True, "isp2": True}


def test_uplink_down_and_up(applied: Host) -> None:
    host_ns = applied.topology.host_ns
    netns.ip(host_ns, "link", "set", "eth2", "down")
    netns.wait_for(lambda: RULE["isp2"] not in applied.rules() or not applied.table("102").strip(), 10,
                   "the down link's table route to go")
    assert not applied.topology.tcp_reachable("isp2")
    netns.ip(host_ns, "link", "set", "eth2", "up")
    applied.wait_uplinks("isp2")
    assert applied.reachable() == {"isp1": True, "isp2": True}


def test_flushed_ruleset_is_reloaded_by_apply(applied: Host) -> None:
    """Debian's /etc/nftables.conf starts with 'flush ruleset'; files are unchanged, the kernel is not."""
    netns.run(applied.topology.host_ns, "nft", "-f", "-", input="flush ruleset\ntable inet filter {\n"
              "\tchain input { type filter hook input priority 0; }\n}\n")
    assert not applied.topology.tcp_reachable("isp2")
    assert "changed netfilter" in applied.multiuplink("apply", "--boot").stdout
    assert applied.reachable() == {"isp1": True, "isp2": True}


def test_other_softwares_mark_bits_survive(applied: Host) -> None:
    """A Tailscale-style ct mark bit and a kube-proxy-style packet mark bit stay set beside ours."""
    netns.run(applied.topology.host_ns, "nft", "-f", "-", input=(
        "table inet other {\n"
        "\tchain pre { type filter hook prerouting priority -160; ct mark set ct mark or 0x40000; }\n"
        "\tchain out { type route hook output priority -160; meta mark set meta mark or 0x4000; }\n"
        "\tchain post { type filter hook postrouting priority 0; meta mark 0x2004000 counter; }\n"
        "}\n"))
    assert applied.reachable() == {"isp1": True, "isp2": True}
    counted = netns.run(applied.topology.host_ns, "nft", "list", "chain", "inet", "other", "post").stdout
    assert "counter packets 0 " not in counted, "replies via isp2 carry our mark and the foreign bit"
    tracked = netns.run(applied.topology.host_ns, "conntrack", "-L", "-p", "tcp", "--dport", "80",
                        check=False).stdout
    assert "mark=33816576" in tracked, tracked  # 0x2040000: isp2's mark plus the foreign bit
