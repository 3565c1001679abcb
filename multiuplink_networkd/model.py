"""The validated, immutable model every renderer reads.

Built only by :mod:`.config.stanza` after all checks passed, so renderers
never see an invalid value. Named tuples rather than dataclasses:
``dataclasses`` costs more import time than the whole generator may spend at
boot.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ipaddress import IPv4Address, IPv4Interface


class Uplink(namedtuple("Uplink", "name netplan_id interface mark fwmark table gateway addresses")):
    """One uplink, fully resolved.

    ``name``: the stanza's name for it; ``netplan_id``: the netplan definition
    whose ``.network`` file our drop-in extends; ``interface``: the kernel name;
    ``mark``: the number inside the mask; ``fwmark``: that number shifted into
    the mask, as the kernel sees it; ``table``: its routing table;
    ``gateway``: its IPv4 default gateway, on the link;
    ``addresses``: its IPv4 addresses (their networks are its link routes).
    """

    __slots__ = ()
    name: str
    netplan_id: str
    interface: str
    mark: int
    fwmark: int
    table: int
    gateway: IPv4Address
    addresses: tuple[IPv4Interface, ...]

    def link_networks(self) -> tuple[str, ...]:
        """The distinct networks of its addresses, in order."""
        return tuple(dict.fromkeys(str(a.network) for a in self.addresses))


MAIN_TABLE = 254


class PolicyRule(namedtuple("PolicyRule", "priority fwmark mask table suppress_prefixlength")):
    """A routing policy rule as the kernel lists it:
    ``priority: from all fwmark fwmark/mask lookup table [suppress_prefixlength N]``."""

    __slots__ = ()
    priority: int
    fwmark: int
    mask: int
    table: int
    suppress_prefixlength: int | None


class TableRoute(namedtuple("TableRoute", "table destination gateway")):
    """A route in an uplink's table, on the uplink's interface: ``destination`` is ``default`` or a network;
    ``gateway`` is None for a link route."""

    __slots__ = ()
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
        gateway.
        """
        return (PolicyRule(self.priority - 1, uplink.fwmark, self.mark_mask, MAIN_TABLE, 0),
                PolicyRule(self.priority, uplink.fwmark, self.mark_mask, uplink.table, None))

    def table_routes(self, uplink: Uplink) -> tuple[TableRoute, ...]:
        """The routes of an uplink's table: a link route per network of its addresses, then the default route."""
        return tuple(TableRoute(uplink.table, network, None) for network in uplink.link_networks()) + (
            TableRoute(uplink.table, "default", str(uplink.gateway)),)

    def rp_filter_value(self) -> int:
        return RP_FILTER_VALUES[self.rp_filter]


RP_FILTER_VALUES = {"loose": 2, "off": 0}
