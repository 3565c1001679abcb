"""Where an uplink's default route comes from: the order of precedence, rule by rule.

Whole configurations, their files and their errors are golden cases (tests/cases);
these pin each rule of config/routes.py on the smallest input that shows it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from multiuplink_networkd.config import stanza
from multiuplink_networkd.errors import ConfigErrors
from multiuplink_networkd.model import DEVICE, DHCP4, RA, STATIC, Uplink


def load(tmp_path: Path, interfaces: str, uplinks: str = "up: {interface: eth0}") -> dict[str, Uplink]:
    netplan = tmp_path / "etc/netplan/50.yaml"
    netplan.parent.mkdir(parents=True)
    netplan.write_text("network:\n  version: 2\n  ethernets:\n" + textwrap.indent(textwrap.dedent(interfaces), "    "))
    stanza_file = tmp_path / "etc/netplan/multiuplink.d/u.yaml"
    stanza_file.parent.mkdir()
    stanza_file.write_text("network:\n  multiuplink:\n    uplinks:\n" + textwrap.indent(uplinks, "      ") + "\n")
    settings = stanza.load(str(tmp_path))
    assert settings is not None
    return {u.name: u for u in settings.uplinks}


def route(tmp_path: Path, interfaces: str, uplinks: str = "up: {interface: eth0}") -> tuple[str, str | None]:
    found = load(tmp_path, interfaces, uplinks)["up"].routes
    assert len(found) == 1
    return found[0].source, None if found[0].gateway is None else str(found[0].gateway)


@pytest.mark.parametrize(("routes", "gateway"), [
    ("[{to: default, via: 10.0.0.1, metric: 200}, {to: 0.0.0.0/0, via: 10.0.0.2, metric: 100}]", "10.0.0.2"),
    ("[{to: default, via: 10.0.0.1, metric: 1}]\n  gateway4: 10.0.0.3", "10.0.0.3"),  # gateway4: the kernel's 0
    ("[{to: default, via: 10.0.0.1, table: 100, metric: 1}, {to: default, via: 10.0.0.2, metric: 500}]", "10.0.0.2"),
    ("[{to: default, via: 10.0.0.1, table: 100}, {to: default, via: 10.0.0.1, table: 101}]", "10.0.0.1"),
    ("[{to: default, via: 10.0.0.1, metric: 5}, {to: default, via: 10.0.0.1, metric: 5, table: 7}]", "10.0.0.1"),
])
def test_the_route_main_would_use(tmp_path: Path, routes: str, gateway: str) -> None:
    """The main table first, then the lowest metric; other tables only when main has none."""
    assert route(tmp_path, f"eth0:\n  addresses: [10.0.0.9/24]\n  routes: {routes}\n") == (STATIC, gateway)


def test_a_declared_gateway_beats_the_lease(tmp_path: Path) -> None:
    assert route(tmp_path, "eth0:\n  dhcp4: true\n  routes: [{to: default, via: 10.0.0.1, metric: 300}]\n") == (
        STATIC, "10.0.0.1")


def test_the_lease_when_nothing_is_declared(tmp_path: Path) -> None:
    up = load(tmp_path, "eth0:\n  dhcp4: true\n  dhcp4-overrides: {use-routes: false}\n")["up"]
    assert [(r.source, r.gateway, r.origin.line if r.origin else None) for r in up.routes] == [(DHCP4, None, 5)]
    assert (up.addresses, up.link_networks()) == ((), ())


def test_the_stanza_gateway_beats_everything(tmp_path: Path) -> None:
    assert route(tmp_path, "eth0:\n  dhcp4: true\n  routes: [{to: default, via: 10.0.0.1}]\n",
                 "up: {interface: eth0, gateway: 192.0.2.1}") == (STATIC, "192.0.2.1")


@pytest.mark.parametrize("interface", [
    "eth0:\n  addresses: [100.64.0.9/32]\n",
    "eth0:\n  addresses: [10.0.0.9/24]\n  routes: [{to: 0.0.0.0/0, scope: link}]\n",
])
def test_no_gateway_the_device(tmp_path: Path, interface: str) -> None:
    assert route(tmp_path, interface) == (DEVICE, None)


def test_a_tunnel_needs_no_gateway(tmp_path: Path) -> None:
    netplan = tmp_path / "etc/netplan/50.yaml"
    netplan.parent.mkdir(parents=True)
    netplan.write_text("network:\n  tunnels:\n    gre1: {mode: gre, local: 192.0.2.1, remote: 198.51.100.1, "
                       "addresses: [10.99.0.1/30]}\n")
    (tmp_path / "etc/netplan/multiuplink.d").mkdir()
    (tmp_path / "etc/netplan/multiuplink.d/u.yaml").write_text(
        "network:\n  multiuplink:\n    uplinks:\n      up: {interface: gre1}\n")
    settings = stanza.load(str(tmp_path))
    assert settings is not None and [(r.source, r.gateway) for r in settings.uplinks[0].routes] == [(DEVICE, None)]


COLO = """\
eth0:
  addresses: [198.51.100.162/29, 192.0.2.186/30, 192.0.2.187/30]
  routes:
    - {to: default, via: 198.51.100.161}
    - {to: default, via: 192.0.2.185, table: 2}
"""


def test_isps_sharing_an_interface_are_selected_by_address(tmp_path: Path) -> None:
    """The gateway follows from the addresses, and the addresses from the gateway: both are on one network."""
    uplinks = load(tmp_path, COLO, "a: {interface: eth0, addresses: [198.51.100.162/29]}\n"
                                   "b: {interface: eth0, gateway: 192.0.2.185}")
    assert [(u.by_address, str(u.routes[0].gateway), [str(a) for a in u.addresses]) for u in uplinks.values()] == [
        (True, "198.51.100.161", ["198.51.100.162/29"]),
        (True, "192.0.2.185", ["192.0.2.186/30", "192.0.2.187/30"])]


def test_one_isp_of_a_shared_interface_may_be_left_to_main(tmp_path: Path) -> None:
    """Selected by address even alone: connections for the other ISP's address must not get its mark."""
    uplinks = load(tmp_path, COLO, "b: {interface: eth0, addresses: [192.0.2.186/30]}")
    assert (uplinks["b"].by_address, str(uplinks["b"].routes[0].gateway)) == (True, "192.0.2.185")


@pytest.mark.parametrize(("interfaces", "uplinks", "message"), [
    (COLO, "up: {interface: eth0}", "does not say which of the ISPs"),
    ("eth0:\n  dhcp4: true\n", "a: {interface: eth0}\nb: {interface: eth0}", "does not say which of the ISPs"),
    ("eth0:\n  addresses: [10.0.0.9/24]\n", "up: {interface: eth0}", "no IPv4 gateway found"),
    ("eth0:\n  addresses: [10.0.0.9/24]\n  routes: [{to: default, via: 10.0.0.1}, {to: default, via: 10.0.0.2}]\n",
     "up: {interface: eth0}", "are ambiguous (metric 0 in the main table)"),
])
def test_never_a_silent_pick(tmp_path: Path, interfaces: str, uplinks: str, message: str) -> None:
    with pytest.raises(ConfigErrors) as caught:
        load(tmp_path, interfaces, uplinks)
    assert message in caught.value.format()


# --- IPv6 and both families ---------------------------------------------------------------------

def sources(uplink: Uplink) -> list[tuple[int, str, str | None]]:
    return [(r.family, r.source, None if r.gateway is None else str(r.gateway)) for r in uplink.routes]


def test_an_ipv4_and_an_ipv6_gateway_are_one_dual_stack_isp(tmp_path: Path) -> None:
    up = load(tmp_path, "eth0:\n  addresses: [10.0.0.9/24, '2001:db8::9/64']\n"
                        "  routes: [{to: default, via: 10.0.0.1}, {to: '::/0', via: '2001:db8::1'}]\n")["up"]
    assert (up.by_address, sources(up)) == (False, [(4, STATIC, "10.0.0.1"), (6, STATIC, "2001:db8::1")])


@pytest.mark.parametrize(("interface", "expected"), [
    ("eth0:\n  dhcp4: true\n", [(4, DHCP4, None)]),  # networkd may accept RAs, but nothing asks for IPv6
    ("eth0:\n  dhcp4: true\n  accept-ra: true\n", [(4, DHCP4, None), (6, RA, None)]),
    ("eth0:\n  dhcp4: true\n  dhcp6: true\n", [(4, DHCP4, None), (6, RA, None)]),  # DHCPv6 routes come from RAs
    ("eth0:\n  addresses: ['2001:db8::9/64']\n", [(6, RA, None)]),  # networkd's default: RAs accepted
    ("eth0:\n  addresses: ['2001:db8::9/64']\n  routes: [{to: '::/0', via: fe80::1, on-link: true}]\n",
     [(6, STATIC, "fe80::1")]),
    ("eth0:\n  addresses: ['2001:db8::9/128']\n  accept-ra: false\n", [(6, DEVICE, None)]),
])
def test_ipv6_sources(tmp_path: Path, interface: str, expected: list[tuple[int, str, str | None]]) -> None:
    assert sources(load(tmp_path, interface)["up"]) == expected


@pytest.mark.parametrize(("family", "expected"), [
    ("ipv4", [(4, DHCP4, None)]),
    ("ipv6", [(6, RA, None)]),
    ("both", [(4, DHCP4, None), (6, RA, None)]),  # 'both' asks for RAs where netplan leaves them to networkd
])
def test_family_limits_or_asks(tmp_path: Path, family: str, expected: list[tuple[int, str, str | None]]) -> None:
    up = load(tmp_path, "eth0:\n  dhcp4: true\n", f"up: {{interface: eth0, family: {family}}}")["up"]
    assert sources(up) == expected


def test_no_router_advertisements_without_link_local_addressing(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as caught:
        load(tmp_path, "eth0:\n  addresses: ['2001:db8::9/64']\n  link-local: []\n")
    assert "no IPv6 gateway found for uplink 'up'" in caught.value.format()
