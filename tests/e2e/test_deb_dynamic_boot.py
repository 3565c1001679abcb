"""Real boots of the installed .deb whose uplinks get their gateways at run time, from DHCP and RAs.

The ISP routers run a real systemd-networkd that hands out leases and
advertises their IPv6 prefixes (topology.py ``served=True``); each drops
replies with a foreign source (BCP38). After the first boot, the guest's HTTP
service answers through both ISPs:

* a cloud VM, its netplan as cloud-init writes it: two NICs matched by MAC
  address, renamed with ``set-name``, both addressed by DHCP; the stanza names
  the uplinks by their kernel names;
* a dual-stack host: a static uplink whose IPv6 gateway is the router's
  link-local address (on-link), and a DHCP uplink with SLAAC, over IPv4 and
  IPv6 via both ISPs.

One adaptation to the test machine: netplan compiles ``match: macaddress``
to networkd's ``PermanentMACAddress=``, and the virtual NICs a test can
create (veth) have no permanent MAC, so networkd would manage neither link.
A drop-in in the guest's /etc resets that one match key; netplan's
``Name=`` match (its ``set-name``) stays, and so does everything of ours.
"""

from __future__ import annotations

from pathlib import Path

from .boot import BOOT_REQUIREMENTS
from .guest_product import BOTH, host_guest, http_get, install_offline, power_on, reachable, wait_configured
from .product import dual_stack_netplan
from .topology import HOST_ADDR, HOST_ADDR6, HOST_IFNAME, HOST_MAC, LINK_LOCAL_GATEWAY, Topology

pytestmark = BOOT_REQUIREMENTS

CLOUD_NETPLAN = "".join(
    ["# Written by cloud-init for a VM with a second NIC.\nnetwork:\n  version: 2\n  ethernets:\n"]
    + [f"    {HOST_IFNAME[isp]}:\n      match:\n        macaddress: '{HOST_MAC[isp]}'\n"
       f"      set-name: {HOST_IFNAME[isp]}\n      dhcp4: true\n"
       f"      dhcp4-overrides:\n        route-metric: {100 * number}\n"
       for number, isp in enumerate(("isp1", "isp2"), 1)])
NO_PERMANENT_MAC = "# test machine: veths have no permanent MAC address\n[Match]\nPermanentMACAddress=\n"


def test_cloud_style_dhcp_uplinks_answer_after_the_first_boot(deb: Path) -> None:
    with host_guest(deb, netplan=CLOUD_NETPLAN) as guest:
        for ifname in HOST_IFNAME.values():
            guest.write(f"etc/systemd/network/10-netplan-{ifname}.network.d/00-test-no-permanent-mac.conf",
                        NO_PERMANENT_MAC)
        install_offline(guest, deb)
        with power_on(guest, served=True) as (topo, booted):
            wait_configured(booted, topo, "after the first boot with DHCP uplinks", addresses6=None)
            for isp, table in (("isp1", "101"), ("isp2", "102")):
                assert "proto dhcp" in booted.run("ip", "route", "show", "table", table).stdout, \
                    f"{isp}'s table follows its lease"
                assert http_get(topo, isp).startswith("200 "), f"GET / via {isp}"
            validate = booted.run("multiuplink", "validate").stdout
            assert "IPv4 gateway: the DHCPv4 lease's router, followed at run time" in validate
            assert reachable(topo) == BOTH
            assert booted.system_state() == "running", booted.run("systemctl", "--failed", check=False).stdout


DUAL_STACK_NETPLAN = dual_stack_netplan(LINK_LOCAL_GATEWAY,
                                        "      dhcp4: true\n      dhcp4-overrides: {route-metric: 200}\n")
ADDRESSES6 = {"isp1": HOST_ADDR6["isp1"], "isp2": Topology.slaac_address("isp2")}


def test_dual_stack_link_local_gateway_and_slaac_answer_both_families_after_the_first_boot(deb: Path) -> None:
    with host_guest(deb, netplan=DUAL_STACK_NETPLAN) as guest:
        install_offline(guest, deb)
        with power_on(guest, served=True) as (topo, booted):
            wait_configured(booted, topo, "after the first dual-stack boot", addresses6=ADDRESSES6)
            for isp in ("isp1", "isp2"):
                for address in (HOST_ADDR[isp], ADDRESSES6[isp]):
                    assert http_get(topo, isp, address=address).startswith("200 "), f"GET / at {address}"
            routes6 = {table: booted.run("ip", "-6", "route", "show", "table", table).stdout
                       for table in ("101", "102")}
            assert f"default via {LINK_LOCAL_GATEWAY} dev eth1 proto static" in routes6["101"], routes6
            assert "proto ra" in routes6["102"], routes6
            validate = booted.run("multiuplink", "validate").stdout
            assert f"IPv6 gateway {LINK_LOCAL_GATEWAY}, from /etc/netplan/50-uplinks.yaml" in validate
            assert "IPv6 gateway: the routers advertising themselves, followed at run time (enabled at" in validate
            assert booted.system_state() == "running", booted.run("systemctl", "--failed", check=False).stdout
