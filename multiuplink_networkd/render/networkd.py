"""The networkd drop-in that adds an uplink's policy rule and table routes to netplan's ``.network``.

networkd owns the rules and routes this way, so it keeps them across link
flaps and does not delete them as foreign (ManageForeignRoutingPolicyRules).
"""

from __future__ import annotations

from ..model import Settings, Uplink


def dropin(uplink: Uplink, settings: Settings) -> str:
    mark = f"{uplink.fwmark:#x}/{settings.mark_mask:#x}"
    sections = [
        f"# uplink {uplink.name}: replies to connections that arrived on {uplink.interface} "
        f"carry mark {mark} and use table {uplink.table}\n"
        f"[RoutingPolicyRule]\nFirewallMark={mark}\nTable={uplink.table}\nPriority={settings.priority}\n"
    ]
    for network in uplink.link_networks():
        sections.append(f"[Route]\nDestination={network}\nScope=link\nTable={uplink.table}\n")
    gateway = f"[Route]\nGateway={uplink.gateway}\n"
    if uplink.gateway_on_link:
        gateway += "GatewayOnLink=yes\n"
    sections.append(gateway + f"Table={uplink.table}\n")
    return "\n".join(sections)
