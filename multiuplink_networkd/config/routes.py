"""Where each uplink's default route comes from, per address family: the stanza, netplan's files, DHCP, RAs, the device.

One uplink per (interface, address set, gateway). An interface usually carries
one uplink, which gets every connection arriving on it. Several uplinks may
share an interface (a NIC with addresses from two ISPs); then each is selected
by the addresses connections arrive for, so each needs static addresses of its
own. An interface whose declared default routes lead to gateways in the
networks of different addresses has several ISPs too, whatever the stanza says:
its uplinks are selected by address, and one that does not say which ISP it is
is an error, never a silent pick.

The order of precedence for one family: the stanza's ``gateway``/``gateway6``;
netplan's declared default routes (the main table first, then the lowest
metric; two different gateways where the kernel could not tell which wins are
an error); then the DHCPv4 lease's router (IPv4) or the routers that advertise
themselves (IPv6: SLAAC, and DHCPv6, whose default route comes from RAs),
followed by networkd at run time; then, for a tunnel or host-length addresses,
the device itself. A family is served where netplan or the stanza configures
it for the uplink (addresses, a default route, dhcp4, dhcp6 or accept-ra, or
``family``); one configured without any default route is an error.
"""

from __future__ import annotations

import ipaddress
from collections import namedtuple

from ..model import DEVICE, DHCP4, RA, STATIC, DefaultRoute

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..errors import Position
    from .netplan import DeclaredRoute, NetplanInterface
    from .yamlsource import Setting

    IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
    IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
    Report = Callable[[Position | None, str, str], None]
    Gateway = tuple[IPAddress, Position]

MAIN_TABLE = 254
FAMILIES = {"both": (4, 6), "ipv4": (4,), "ipv6": (6,)}
GATEWAY_KEYS = {4: "gateway", 6: "gateway6"}
EXAMPLES = {4: ("203.0.113.1", "203.0.113.8/24"), 6: ("2001:db8::1 or fe80::1", "2001:db8::8/64")}
TUNNEL_KINDS = frozenset(("tunnels",))
"""netplan sections whose devices have no link layer: no RAs, and a default route out of the device needs no gateway."""


class Resolved(namedtuple("Resolved", "routes addresses address_origins")):
    """An uplink's default routes (one per family it serves), its static addresses and where they are written."""

    __slots__ = ()
    routes: tuple[DefaultRoute, ...]
    addresses: tuple[IPInterface, ...]
    address_origins: tuple[tuple[int, Position | None], ...]


def several_isps(definition: NetplanInterface) -> bool:
    """Whether the interface's declared default routes of one family lead to gateways in the networks of different
    addresses (an IPv4 and an IPv6 gateway are one dual-stack ISP)."""
    networks = {address.network for route in definition.default_routes if route.gateway is not None
                for address in definition.addresses if route.gateway in address.network}
    return any(len([n for n in networks if n.version == family]) > 1 for family in (4, 6))


def router_advertisements(definition: NetplanInterface) -> tuple[bool, Position | None]:
    """Whether networkd may take an IPv6 default route from RAs on the interface, and what says so.

    networkd accepts them unless ``accept-ra: false``, IPv6 link-local addressing is off, or the
    device has no link layer; unset, it also requires that the host does not forward IPv6, which
    cannot be known here: a ``_ipv6ra`` route that never gets a router is simply absent.
    """
    if definition.accept_ra is False or not definition.ipv6_link_local or definition.kind in TUNNEL_KINDS:
        return False, None
    origins = definition.origins
    return True, origins.get("accept-ra") if definition.accept_ra else origins.get("dhcp6")


class RouteResolver:
    """Resolves one uplink against its netplan definition; reports every problem through ``error``."""

    def __init__(self, name: str, entry: dict[str, Setting], definition: NetplanInterface, by_address: bool,
                 error: Report) -> None:
        self.name = name
        self.entry = entry
        self.definition = definition
        self.by_address = by_address
        self.error = error
        self.where = entry["interface"].position
        self.failed = False

    def report(self, position: Position | None, message: str, hint: str) -> None:
        self.failed = True
        self.error(position, message, hint)

    def resolve(self) -> Resolved | None:
        stanza_addresses = self.parse_addresses()
        gateways = {family: self.stanza_gateway(family) for family in (4, 6)}
        family_setting = self.entry.get("family")
        wanted = FAMILIES[family_setting.value if family_setting else "both"]
        if self.failed:
            return None
        if self.by_address and not stanza_addresses and not any(gateways.values()):
            self.report(self.where, f"uplink '{self.name}' does not say which of the ISPs on interface "
                        f"'{self.definition.netplan_id}' it is", self.by_address_hint())
            return None
        routes: list[DefaultRoute] = []
        addresses: list[IPInterface] = []
        origins: list[tuple[int, Position | None]] = []
        for family in wanted:
            found, origin = self.addresses(family, stanza_addresses, gateways[family])
            if family_setting is None and not self.configured(family, found, gateways[family]):
                continue
            route = self.default_route(family, found, gateways[family], explicit=family_setting is not None)
            if route is not None:
                routes.append(route)
                addresses += found
                if found:
                    origins.append((family, origin))
        if self.failed:
            return None
        if self.by_address and routes and not addresses:
            self.report(self.where, f"uplink '{self.name}' has no static address on interface "
                        f"'{self.definition.netplan_id}' in the network of its gateway, and connections there are "
                        "told apart by the address they arrive for", self.by_address_hint())
            return None
        if not routes:
            self.report(self.where, f"uplink '{self.name}' has no default route (interface "
                        f"'{self.definition.netplan_id}')",
                        "declare one in netplan ('routes: [{to: default, via: ...}]'), use 'dhcp4: true' or "
                        "'accept-ra: true', or set 'gateway:' here")
            return None
        return Resolved(tuple(routes), tuple(addresses), tuple(origins))

    def configured(self, family: int, addresses: tuple[IPInterface, ...], gateway: Gateway | None) -> bool:
        """Whether the uplink is meant to serve the family: netplan or the stanza configures it there.

        Not merely networkd's default of accepting router advertisements: on a kernel without IPv6
        an IPv6 policy rule would fail the whole link, so IPv6 takes a word from netplan or the stanza.
        """
        if addresses or gateway is not None or self.by_address:
            return bool(addresses or gateway)
        definition = self.definition
        if any(route.family == family for route in definition.default_routes):
            return True
        return definition.dhcp4 if family == 4 else definition.dhcp6 or definition.accept_ra is True

    def by_address_hint(self) -> str:
        return (f"connections on '{self.definition.netplan_id}' are told apart by the address they arrive for: "
                "give each ISP its own uplink with 'addresses:' (its own static addresses), 'gateway:' or 'gateway6:'")

    def parse_addresses(self) -> tuple[IPInterface, ...]:
        """The stanza's ``addresses``, empty when unset; an invalid one is reported."""
        setting = self.entry.get("addresses")
        if setting is None:
            return ()
        parsed = []
        for index, text in enumerate(setting.value):
            try:
                parsed.append(ipaddress.ip_interface(text))
            except ValueError:
                self.report(setting.value.item_positions[index], f"invalid address '{text}' in 'addresses' of "
                            f"uplink '{self.name}'", "write an IPv4 or IPv6 address with prefix length such as "
                            "203.0.113.8/24 or 2001:db8::8/64")
        return tuple(parsed)

    def stanza_gateway(self, family: int) -> Gateway | None:
        """The stanza's gateway of one family and its position; None when unset or invalid (reported)."""
        key = GATEWAY_KEYS[family]
        setting = self.entry.get(key)
        if setting is None:
            return None
        try:
            return ipaddress.IPv4Address(setting.value) if family == 4 else ipaddress.IPv6Address(setting.value), \
                setting.position
        except ValueError:
            self.report(setting.position, f"invalid IPv{family} address '{setting.value}' for '{key}' of uplink "
                        f"'{self.name}'", f"write an IPv{family} address such as {EXAMPLES[family][0]}")
            return None

    def addresses(self, family: int, stanza: tuple[IPInterface, ...], gateway: Gateway | None
                  ) -> tuple[tuple[IPInterface, ...], Position | None]:
        """One family's static addresses: the stanza's if it names any, else netplan's (link-local ones left out);
        on a shared interface only those in the gateway's network."""
        named = tuple(a for a in stanza if a.version == family)
        if named:
            return named, self.entry["addresses"].position
        found = tuple(a for a in self.definition.addresses if a.version == family and not a.is_link_local)
        if self.by_address:
            found = tuple(a for a in found if gateway is not None and gateway[0] in a.network)
        return found, self.definition.origins.get("addresses") if found else None

    def default_route(self, family: int, addresses: tuple[IPInterface, ...], gateway: Gateway | None,
                      explicit: bool) -> DefaultRoute | None:
        """The family's default route; None (reported) when it has none."""
        if gateway is not None:
            address, position = gateway
            if addresses and not address.is_link_local and not any(address in a.network for a in addresses):
                self.report(position, f"gateway {address} of uplink '{self.name}' is not in the network of any "
                            "of its addresses", "use a gateway on the uplink's own subnet")
                return None
            return DefaultRoute(family, STATIC, address, position)
        declared = [route for route in self.definition.default_routes if route.family == family]
        if self.by_address:
            declared = [route for route in declared
                        if route.gateway is not None and any(route.gateway in a.network for a in addresses)]
        if declared:
            return self.pick(declared)
        if not self.by_address:
            if family == 4 and self.definition.dhcp4:
                return DefaultRoute(family, DHCP4, None, self.definition.origins.get("dhcp4"))
            if family == 6:
                advertised, origin = router_advertisements(self.definition)
                if advertised:
                    return DefaultRoute(family, RA, None, origin)
        if addresses and (self.definition.kind in TUNNEL_KINDS
                          or all(a.network.prefixlen == a.max_prefixlen for a in addresses)):
            return DefaultRoute(family, DEVICE, None, None)
        self.no_gateway(family, addresses, explicit)
        return None

    def no_gateway(self, family: int, addresses: tuple[IPInterface, ...], explicit: bool) -> None:
        netplan_id, key = self.definition.netplan_id, GATEWAY_KEYS[family]
        if self.by_address:
            self.report(self.where, f"no IPv{family} gateway found for uplink '{self.name}' in the network of "
                        f"{', '.join(str(a) for a in addresses)} (interface '{netplan_id}')",
                        "an ISP on a shared interface needs a static gateway: declare a default route via a "
                        f"gateway in that network in netplan, or set '{key}:' here")
            return
        dynamic = "use 'dhcp4: true'" if family == 4 else "accept router advertisements ('accept-ra: true')"
        other = {4: "ipv6", 6: "ipv4"}[family]
        leave_out = f"'family: {other}' here" if not explicit else "another 'family'"
        self.report(self.where, f"no IPv{family} gateway found for uplink '{self.name}' (interface '{netplan_id}')",
                    f"declare a default route for it in netplan ('routes: [{{to: default, via: ...}}]'), {dynamic}, "
                    f"set '{key}:' here, or serve the other family only with {leave_out}")

    def pick(self, declared: list[DeclaredRoute]) -> DefaultRoute | None:
        """The route main would use: the main table's lowest metric, else the only gateway of the other tables."""
        in_main = [route for route in declared if route.table == MAIN_TABLE]
        if in_main:
            best = min(route.metric for route in in_main)
            candidates = [route for route in in_main if route.metric == best]
        else:
            candidates = declared
        first = candidates[0]
        rival = next((route for route in candidates if route.gateway != first.gateway), None)
        if rival is not None:
            tables = sorted({route.table for route in candidates})
            where = f"metric {best} in the main table" if in_main else \
                f"in tables {', '.join(map(str, tables[:-1]))} and {tables[-1]}, none in main"
            self.report(rival.position, f"default routes of interface '{self.definition.netplan_id}' via "
                        f"{self.gateways(candidates)} are ambiguous ({where}), so the gateway of uplink "
                        f"'{self.name}' is unknown",
                        f"give the default routes different metrics, or set '{GATEWAY_KEYS[first.family]}:' for the "
                        "uplink; for two ISPs on one interface, define one uplink per ISP, each with its own "
                        "'addresses:'")
            return None
        return DefaultRoute(first.family, STATIC if first.gateway is not None else DEVICE, first.gateway,
                            first.position)

    @staticmethod
    def gateways(routes: list[DeclaredRoute]) -> str:
        return " and ".join(dict.fromkeys(str(route.gateway or "the device") for route in routes))
