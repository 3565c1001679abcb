"""The sysctl.d file loosening reverse-path filtering on the uplinks.

Keys use sysctl.d's slash form, so interface names with dots (VLANs such as
``eth0.100``) are not split into path components.
"""

from __future__ import annotations

from ..model import Settings


def render(settings: Settings) -> str:
    value = settings.rp_filter_value()
    lines = ["# Strict reverse-path filtering would drop the replies routed by mark."]
    lines += [f"net/ipv4/conf/{interface}/rp_filter = {value}"
              for interface in dict.fromkeys(u.interface for u in settings.uplinks)]
    return "\n".join(lines) + "\n"
