"""A cloud VM's netplan, as cloud-init writes it, in a real boot of the installed .deb.

Two NICs matched by MAC address, renamed with ``set-name``, both addressed by
DHCP (the ISP routers run a real networkd DHCP server, topology.py
``dhcp=True``); the stanza names the uplinks by their kernel names. After the
first boot, the guest's HTTP service answers through both ISPs, each of which
drops replies with a foreign source (BCP38), with default routes that come
from the leases at run time.

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
from .topology import HOST_IFNAME, HOST_MAC

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
        with power_on(guest, dhcp=True) as (topo, booted):
            wait_configured(booted, topo, "after the first boot with DHCP uplinks")
            for isp, table in (("isp1", "101"), ("isp2", "102")):
                assert "proto dhcp" in booted.run("ip", "route", "show", "table", table).stdout, \
                    f"{isp}'s table follows its lease"
                assert http_get(topo, isp).startswith("200 "), f"GET / via {isp}"
            validate = booted.run("multiuplink", "validate").stdout
            assert "IPv4 gateway: the DHCPv4 lease's router, followed at run time" in validate
            assert reachable(topo) == BOTH
            assert booted.system_state() == "running", booted.run("systemctl", "--failed", check=False).stdout
