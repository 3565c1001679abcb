"""The validated, immutable model every renderer reads.

Built only by :mod:`.config.stanza` after all checks passed, so renderers
never see an invalid value. Named tuples rather than dataclasses:
``dataclasses`` costs more import time than the whole parse and validation
may spend at boot.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

    from .errors import Position

STATIC, DEVICE, DHCP4, RA = "static", "device", "dhcp4", "ra"
"""Where the default route in an uplink's table points: a gateway written in a file, the device itself,
the DHCPv4 lease's router or the routers that advertise themselves (both followed by networkd at run time)."""


class DefaultRoute(namedtuple("DefaultRoute", "family source gateway origin")):
    """The default route of one address family (4 or 6) in an uplink's table.

    ``source``: one of STATIC, DEVICE, DHCP4, RA; ``gateway``: the address, for STATIC only;
    ``origin``: the value in netplan's files or the stanza it comes from (None when deduced).
    """

    __slots__ = ()
    family: int
    source: str
    gateway: IPv4Address | IPv6Address | None
    origin: Position | None


class Uplink(namedtuple("Uplink", "name netplan_id interface mark fwmark table routes addresses address_origins "
                                  "by_address")):
    """One uplink, fully resolved.

    ``name``: the stanza's name for it; ``netplan_id``: the netplan definition
    whose ``.network`` file our drop-in extends; ``interface``: the kernel name;
    ``mark``: the number inside the mask; ``fwmark``: that number shifted into
    the mask, as the kernel sees it; ``table``: its routing table;
    ``routes``: its default routes, one per address family it serves, IPv4 first;
    ``addresses``: its static addresses (their networks are its link routes), in the families it serves;
    ``address_origins``: ``(family, where they are written)`` for each family that has some;
    ``by_address``: other uplinks share the interface, so a connection belongs to this one
    only when it arrives for one of ``addresses``.
    """

    __slots__ = ()
    name: str
    netplan_id: str
    interface: str
    mark: int
    fwmark: int
    table: int
    routes: tuple[DefaultRoute, ...]
    addresses: tuple[IPv4Interface | IPv6Interface, ...]
    address_origins: tuple[tuple[int, Position | None], ...]
    by_address: bool

    def families(self) -> tuple[int, ...]:
        return tuple(route.family for route in self.routes)

    def link_networks(self) -> tuple[str, ...]:
        """The distinct networks of its addresses in the families it serves, in order."""
        families = self.families()
        return tuple(dict.fromkeys(str(a.network) for a in self.addresses if a.version in families))


MAIN_TABLE = 254


class PolicyRule(namedtuple("PolicyRule", "family priority fwmark mask table suppress_prefixlength")):
    """A routing policy rule as the kernel lists it (``ip -4 rule`` or ``ip -6 rule``):
    ``priority: from all fwmark fwmark/mask lookup table [suppress_prefixlength N]``."""

    __slots__ = ()
    family: int
    priority: int
    fwmark: int
    mask: int
    table: int
    suppress_prefixlength: int | None


class TableRoute(namedtuple("TableRoute", "family table destination gateway")):
    """A route in an uplink's table, on the uplink's interface, as the kernel lists it (``ip -4``/``ip -6 route``):
    ``destination`` is ``default`` or a network; ``gateway`` is None for a link route or one out of the device."""

    __slots__ = ()
    family: int
    table: int
    destination: str
    gateway: str | None


class Settings(namedtuple("Settings", "uplinks mark_mask priority rp_filter backend router_mode")):
    """Everything the renderers need: uplinks sorted by name, plus the global settings.

    ``router_mode``: forwarded connections (port forwards, containers, VMs) are answered out of their uplink too.
    """

    __slots__ = ()
    uplinks: tuple[Uplink, ...]
    mark_mask: int
    priority: int
    rp_filter: str
    backend: str
    router_mode: bool

    def policy_rules(self, uplink: Uplink) -> tuple[PolicyRule, ...]:
        """The rules that send an uplink's marked replies to its table.

        First the main table without its default routes (``suppress_prefixlength 0``): a marked reply to the
        uplink's own subnet, a LAN, a VPN or any other network main routes specifically takes that route; only
        what main would send to a default route goes on to the uplink's table, whose default is the uplink's
        gateway. One pair per address family the uplink serves.
        """
        return tuple(rule for family in uplink.families() for rule in (
            PolicyRule(family, self.priority - 1, uplink.fwmark, self.mark_mask, MAIN_TABLE, 0),
            PolicyRule(family, self.priority, uplink.fwmark, self.mark_mask, uplink.table, None)))

    def table_routes(self, uplink: Uplink) -> tuple[TableRoute, ...]:
        """The routes of an uplink's table known before run time, which the host can check: a link route per
        network of its addresses, then each default route to a static gateway or out of the device. A gateway
        from DHCP or router advertisements comes (or not) at run time."""
        links = tuple(TableRoute(6 if ":" in network else 4, uplink.table, network, None)
                      for network in uplink.link_networks())
        return links + tuple(TableRoute(route.family, uplink.table, "default",
                                        None if route.gateway is None else str(route.gateway))
                             for route in uplink.routes if route.source in (STATIC, DEVICE))

    def rp_filter_value(self) -> int:
        return RP_FILTER_VALUES[self.rp_filter]


RP_FILTER_VALUES = {"loose": 2, "off": 0}
