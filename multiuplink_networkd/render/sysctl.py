"""The sysctl.d file: loose reverse-path filtering on the uplinks, and accepted TCP sockets taking the SYN's mark.

Keys use sysctl.d's slash form, so interface names with dots (VLANs such as
``eth0.100``) are not split into path components.
"""

from __future__ import annotations

from ..model import Settings

TCP_FWMARK_ACCEPT = "net/ipv4/tcp_fwmark_accept"
"""Per network namespace, for IPv4 and IPv6 alike; a listener with a mark of its own keeps it."""


def rp_filter_key(interface: str) -> str:
    return f"net/ipv4/conf/{interface}/rp_filter"


def render(settings: Settings) -> str:
    value = settings.rp_filter_value()
    lines = ["# Strict reverse-path filtering would drop the replies routed by mark."]
    lines += [f"{rp_filter_key(interface)} = {value}"
              for interface in dict.fromkeys(u.interface for u in settings.uplinks)]
    lines += ["# An accepted TCP socket carries the mark of its SYN, so its replies are routed by it from the",
              "# start, without a restore and a second route lookup per packet. This applies to every",
              "# listening socket without a mark of its own, and to all the bits of the SYN's mark.",
              f"{TCP_FWMARK_ACCEPT} = 1"]
    return "\n".join(lines) + "\n"
