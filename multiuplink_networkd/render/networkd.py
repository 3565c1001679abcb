"""The networkd drop-in that adds its uplinks' policy rules and table routes to netplan's ``.network``.

networkd owns the rules and routes this way, so it keeps them across link
flaps and does not delete them as foreign (ManageForeignRoutingPolicyRules).
A gateway from DHCP or router advertisements is written as networkd's
``_dhcp4``/``_ipv6ra``: networkd then follows every lease and RA itself.
"""

from __future__ import annotations

from ..model import DHCP4, MAIN_TABLE, RA, PolicyRule, Settings, TableRoute, Uplink

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

_FAMILY = {(4,): "ipv4", (6,): "ipv6", (4, 6): "both"}
_DYNAMIC_GATEWAY = {DHCP4: "_dhcp4", RA: "_ipv6ra"}
_ANY = {4: "0.0.0.0/0", 6: "::/0"}


def dropin(uplinks: Iterable[Uplink], settings: Settings) -> str:
    """The drop-in of one netplan definition: the sections of every uplink on it (several ISPs may share it)."""
    return "\n".join(_uplink(uplink, settings) for uplink in uplinks)


def _uplink(uplink: Uplink, settings: Settings) -> str:
    mark = f"{uplink.fwmark:#x}/{settings.mark_mask:#x}"
    arriving = f"connections for {', '.join(str(a.ip) for a in uplink.addresses)} that arrived on " \
        if uplink.by_address else "connections that arrived on "
    comment = (f"# uplink {uplink.name}: replies to {arriving}{uplink.interface} carry mark {mark} "
               f"and use table {uplink.table}\n")
    sections = _rules(settings.policy_rules(uplink))
    sections += [_route(route) for route in settings.table_routes(uplink)]
    sections += [f"[Route]\nGateway={_DYNAMIC_GATEWAY[route.source]}\nTable={uplink.table}\n"
                 for route in uplink.routes if route.source in _DYNAMIC_GATEWAY]
    return comment + "\n".join(sections)


def _rules(rules: Iterable[PolicyRule]) -> list[str]:
    """One section per rule, its families merged (``Family=both``); ipv4, networkd's default, left unsaid."""
    families: dict[PolicyRule, tuple[int, ...]] = {}
    for rule in rules:
        key = rule._replace(family=0)
        families[key] = (*families.get(key, ()), rule.family)
    sections = []
    for rule, found in families.items():
        table = "main" if rule.table == MAIN_TABLE else str(rule.table)
        suppress = "" if rule.suppress_prefixlength is None else f"SuppressPrefixLength={rule.suppress_prefixlength}\n"
        family = "" if found == (4,) else f"Family={_FAMILY[found]}\n"
        sections.append(f"[RoutingPolicyRule]\nFirewallMark={rule.fwmark:#x}/{rule.mask:#x}\nTable={table}\n"
                        f"{suppress}Priority={rule.priority}\n{family}")
    return sections


def _route(route: TableRoute) -> str:
    """A route known before run time: a link route, a default route out of the device, or via a gateway."""
    destination = _ANY[route.family] if route.destination == "default" else route.destination
    if route.gateway is None:
        scope = "Scope=link\n" if route.family == 4 else ""  # networkd ignores a scope on IPv6 routes, with a warning
        return f"[Route]\nDestination={destination}\n{scope}Table={route.table}\n"
    # On-link: the gateway is on the uplink's own subnet (checked), link-local, or declared on-link in netplan.
    # Without it the kernel checks the gateway against the routes present, and when networkd adds this route
    # before the link routes (seen on link up) the whole link fails with "Nexthop has invalid gateway".
    return f"[Route]\nGateway={route.gateway}\nGatewayOnLink=yes\nTable={route.table}\n"
