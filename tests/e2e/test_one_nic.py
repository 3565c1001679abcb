"""Two ISPs on one NIC: a subnet from each on a shared segment, one uplink per ISP selected by address.

The host's eth0 sits on a switch with both ISP routers; each router drops
packets whose source is not its own customer prefix (BCP38). A colocated
server often already answers correctly through netplan's source rules, which
the product must not break; without them, only the product makes the second
ISP answer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from . import netns
from .product import Host
from .topology import GATEWAY, HOST_ADDR

ETH0 = f"""\
network:
  version: 2
  renderer: networkd
  ethernets:
    eth0:
      addresses: [{HOST_ADDR['isp1']}/24, {HOST_ADDR['isp2']}/24]
"""
WITH_SOURCE_RULES = ETH0 + f"""\
      routes:
        - {{to: default, via: {GATEWAY['isp1']}}}
        - {{to: default, via: {GATEWAY['isp1']}, table: 1}}
        - {{to: default, via: {GATEWAY['isp2']}, table: 2}}
      routing-policy:
        - {{from: {HOST_ADDR['isp1']}, table: 1}}
        - {{from: {HOST_ADDR['isp2']}, table: 2}}
"""
MAIN_DEFAULT_ONLY = ETH0 + f"      routes: [{{to: default, via: {GATEWAY['isp1']}}}]\n"
STANZA = f"""\
network:
  version: 2
  multiuplink:
    uplinks:
      isp1: {{interface: eth0, addresses: [{HOST_ADDR['isp1']}/24], mark: 1, table: 101}}
      isp2: {{interface: eth0, {{}}mark: 2, table: 102}}
"""


@pytest.mark.parametrize(("netplan", "isp2_selector", "before"), [
    pytest.param(WITH_SOURCE_RULES, f"gateway: {GATEWAY['isp2']}, ", {"isp1": True, "isp2": True},
                 id="with-source-rules"),
    pytest.param(MAIN_DEFAULT_ONLY, f"addresses: [{HOST_ADDR['isp2']}/24], gateway: {GATEWAY['isp2']}, ",
                 {"isp1": True, "isp2": False}, id="main-default-only"),
])
def test_both_isps_answer_on_one_nic(tmp_path: Path, need_networkd: None, netplan: str, isp2_selector: str,
                                     before: dict[str, bool]) -> None:
    with Host(tmp_path / "root", netplan=netplan, stanza=STANZA.replace("{}", isp2_selector),
              shared_nic=True) as host:
        # A SYN-ACK lost before apply is not sent again later, where it would count as a drop of the after phase.
        netns.sysctl(host.topology.host_ns, {"net.ipv4.tcp_synack_retries": 0})
        assert host.reachable() == before
        host.multiuplink("apply")
        host.wait_uplinks("isp1", "isp2")
        assert host.reachable() == {"isp1": True, "isp2": True}
        assert f'iifname . ip daddr vmap {{ "eth0" . {HOST_ADDR["isp1"]} : goto mark_isp1' in host.nft()
        drops = host.topology.bcp38_drops("isp1")
        assert host.reachable() == {"isp1": True, "isp2": True}
        assert host.topology.bcp38_drops("isp1") == drops, "no reply to isp2's address left via isp1"
        assert host.multiuplink("apply").stdout.strip() == "unchanged: nothing to do"
