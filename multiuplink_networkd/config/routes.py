"""Where each uplink's default route comes from, per address family: the stanza, netplan's files, DHCP or the device.

One uplink per (interface, address set, gateway). An interface usually carries
one uplink, which gets every connection arriving on it. Several uplinks may
share an interface (a NIC with addresses from two ISPs); then each is selected
by the addresses connections arrive for, so each needs static addresses of its
own. An interface whose declared default routes lead to gateways in the
networks of different addresses has several ISPs too, whatever the stanza says:
its uplinks are selected by address, and one that does not say which ISP it is
is an error, never a silent pick.

The order of precedence for one family: the stanza's ``gateway``; netplan's
declared default routes (the main table first, then the lowest metric; two
different gateways where the kernel could not tell which wins are an error);
then the DHCPv4 lease's router, followed by networkd at run time; then, for a
tunnel or host-length addresses, the device itself.
"""

from __future__ import annotations

import ipaddress
from collections import namedtuple

from ..model import DEVICE, DHCP4, STATIC, DefaultRoute

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..errors import Position
    from .netplan import DeclaredRoute, NetplanInterface
    from .stanza import Setting

    IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
    IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
    Report = Callable[[Position | None, str, str], None]

MAIN_TABLE = 254
POINT_TO_POINT_KINDS = frozenset(("tunnels",))
"""netplan sections whose devices have no link layer: a default route out of the device needs no gateway."""


class Resolved(namedtuple("Resolved", "routes addresses addresses_origin")):
    """An uplink's default routes (one per family it serves) and its static addresses, with their origin."""

    __slots__ = ()
    routes: tuple[DefaultRoute, ...]
    addresses: tuple[IPInterface, ...]
    addresses_origin: Position | None


def several_isps(definition: NetplanInterface) -> bool:
    """Whether the interface's declared default routes lead to gateways in the networks of different addresses."""
    networks = {address.network for route in definition.default_routes if route.gateway is not None
                for address in definition.addresses if route.gateway in address.network}
    return len(networks) > 1


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
        gateway = self.stanza_gateway()
        if self.failed:
            return None
        if self.by_address and not stanza_addresses and gateway is None:
            self.report(self.where, f"uplink '{self.name}' does not say which of the ISPs on interface "
                       f"'{self.definition.netplan_id}' it is", self.by_address_hint())
            return None
        addresses, origin = self.addresses(stanza_addresses, gateway)
        route = self.default_route(4, addresses, gateway)
        if route is None:
            return None
        if self.by_address and not addresses:
            self.report(self.where, f"uplink '{self.name}' has no static address on interface "
                       f"'{self.definition.netplan_id}', which carries several ISPs", self.by_address_hint())
            return None
        return Resolved((route,), addresses, origin)

    def by_address_hint(self) -> str:
        return (f"connections on '{self.definition.netplan_id}' are told apart by the address they arrive for: "
                "give each ISP its own uplink with 'addresses:' (its own static addresses) or 'gateway:'")

    def parse_addresses(self) -> tuple[IPInterface, ...]:
        """The stanza's ``addresses``, empty when unset; an invalid one is reported."""
        setting = self.entry.get("addresses")
        if setting is None:
            return ()
        parsed = []
        for index, text in enumerate(setting.value):
            try:
                parsed.append(ipaddress.IPv4Interface(text))
            except ValueError:
                self.report(setting.value.item_positions[index], f"invalid IPv4 address '{text}' in "
                           f"'addresses' of uplink '{self.name}'",
                           "write an address with prefix length such as 203.0.113.8/24")
        return tuple(parsed)

    def stanza_gateway(self) -> tuple[IPAddress, Position] | None:
        """The stanza's ``gateway`` and its position; None when unset or invalid (reported)."""
        setting = self.entry.get("gateway")
        if setting is None:
            return None
        try:
            return ipaddress.IPv4Address(setting.value), setting.position
        except ValueError:
            self.report(setting.position, f"invalid IPv4 address '{setting.value}' for 'gateway' of uplink "
                       f"'{self.name}'", "write an IPv4 address such as 203.0.113.1")
            return None

    def addresses(self, stanza: tuple[IPInterface, ...], gateway: tuple[IPAddress, Position] | None
                  ) -> tuple[tuple[IPInterface, ...], Position | None]:
        """The stanza's addresses; else netplan's, only those on the gateway's network when selecting by address."""
        if stanza:
            return stanza, self.entry["addresses"].position
        found = tuple(a for a in self.definition.addresses if a.version == 4)
        if self.by_address and gateway is not None:
            found = tuple(a for a in found if gateway[0] in a.network)
        return found, self.definition.origins.get("addresses") if found else None

    def default_route(self, family: int, addresses: tuple[IPInterface, ...],
                      gateway: tuple[IPAddress, Position] | None) -> DefaultRoute | None:
        netplan_id = self.definition.netplan_id
        if gateway is not None:
            address, position = gateway
            if addresses and not any(address in a.network for a in addresses):
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
        if family == 4 and self.definition.dhcp4 and not self.by_address:
            return DefaultRoute(family, DHCP4, None, self.definition.origins.get("dhcp4"))
        if addresses and (self.definition.kind in POINT_TO_POINT_KINDS
                          or all(a.network.prefixlen == a.max_prefixlen for a in addresses)):
            return DefaultRoute(family, DEVICE, None, None)
        if self.by_address:
            self.report(self.where, f"no IPv4 gateway found for uplink '{self.name}' in the network of "
                       f"{', '.join(str(a) for a in addresses)} (interface '{netplan_id}')",
                       "an ISP on a shared interface needs a static gateway: declare a default route via a "
                       "gateway in that network in netplan, or set 'gateway:' here")
        else:
            self.report(self.where, f"no IPv4 gateway found for uplink '{self.name}' (interface '{netplan_id}')",
                       "declare a default route for it in netplan ('routes: [{to: default, via: ...}]'), "
                       "use 'dhcp4: true', or set 'gateway:' here")
        return None

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
                       "give the default routes different metrics, or set 'gateway:' for the uplink; for two ISPs "
                       "on one interface, define one uplink per ISP, each with its own 'addresses:'")
            return None
        return DefaultRoute(first.family, STATIC if first.gateway is not None else DEVICE, first.gateway,
                            first.position)

    @staticmethod
    def gateways(routes: list[DeclaredRoute]) -> str:
        return " and ".join(dict.fromkeys(str(route.gateway or "the device") for route in routes))
