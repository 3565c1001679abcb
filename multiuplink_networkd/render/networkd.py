"""The networkd drop-in that adds an uplink's policy rule and table routes to netplan's ``.network``.

networkd owns the rules and routes this way, so it keeps them across link
flaps and does not delete them as foreign (ManageForeignRoutingPolicyRules).
"""

from __future__ import annotations

from ..model import MAIN_TABLE, PolicyRule, Settings, Uplink


def dropin(uplink: Uplink, settings: Settings) -> str:
    mark = f"{uplink.fwmark:#x}/{settings.mark_mask:#x}"
    comment = (f"# uplink {uplink.name}: replies to connections that arrived on {uplink.interface} "
               f"carry mark {mark} and use table {uplink.table}\n")
    sections = [_rule(rule) for rule in settings.policy_rules(uplink)]
    for route in settings.table_routes(uplink):
        if route.gateway is None:
            sections.append(f"[Route]\nDestination={route.destination}\nScope=link\nTable={route.table}\n")
        else:
            # On-link: the gateway is on the uplink's own subnet (checked) or declared on-link in netplan. Without
            # it the kernel checks the gateway against the routes present, and when networkd adds this route
            # before the link routes (seen on link up) the whole link fails with "Nexthop has invalid gateway".
            sections.append(f"[Route]\nGateway={route.gateway}\nGatewayOnLink=yes\nTable={route.table}\n")
    return comment + "\n".join(sections)


def _rule(rule: PolicyRule) -> str:
    table = "main" if rule.table == MAIN_TABLE else str(rule.table)
    suppress = "" if rule.suppress_prefixlength is None else f"SuppressPrefixLength={rule.suppress_prefixlength}\n"
    return (f"[RoutingPolicyRule]\nFirewallMark={rule.fwmark:#x}/{rule.mask:#x}\nTable={table}\n{suppress}"
            f"Priority={rule.priority}\n")
