"""The names of the per-uplink counters, one scheme for both backends, so ``status`` reads them by name.

nft keeps them as named counter objects (``counter in_isp1 {}``), iptables as
the comment of the rule that counts; either way ``status`` finds them without
knowing the chain layout, which may change for speed.

* ``connections``: connections that took the uplink's mark (opened from it);
* ``in``: packets received on the uplink;
* ``out``: packets the uplink's mark had to be written into to leave by it: the host's replies that do not
  carry it yet (UDP, ICMP errors, RSTs; not those of a TCP socket that took it on accept) and, in router mode,
  the forwarded replies of LAN servers and containers.
"""

from __future__ import annotations

KINDS = ("connections", "in", "out")


def name(kind: str, uplink: str) -> str:
    """Unambiguous for any two uplinks: the kinds differ in their first letter, the names after ``_``."""
    return f"{kind}_{uplink}"
