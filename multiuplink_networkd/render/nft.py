"""The nftables ruleset: one ``inet multiuplink`` table, replaced atomically by ``nft -f``.

A connection opened from an uplink (its original direction arrives there)
carries that uplink's mark as connection mark. The packets that must be
routed by it get it as packet mark: the host's own replies (output hook)
and, in router mode, every packet arriving on an interface that is not an
uplink (a LAN, a bridge), which is how forwarded replies come in. Marks are
copied with masks so other software's mark bits survive. nft cannot OR a
non-constant value into a mark, so each uplink gets tiny chains with
constant statements, reached through verdict maps: one lookup per packet
and hook whatever the number of uplinks.

The work is per connection, not per packet: the packet that marks a
connection (its first, or the next one after a renumbering) also takes the
mark itself when it is for the host, so ``net.ipv4.tcp_fwmark_accept`` hands
it to the accepted TCP socket, whose replies are then routed by it from the
SYN-ACK on. A restore writes only into packets whose bits are not their
connection's (UDP replies, ICMP errors, RSTs, helper connections, forwarded
replies, a socket accepted before a renumbering), so a TCP reply costs one
map lookup and a compare, and no second route lookup.

Each uplink's counters are named objects (:mod:`.counters`), so ``status``
reads them without depending on the chains: ``in`` counts every packet from
the uplink, ``connections`` each connection when it takes the mark (a
repeated SYN does not count twice, as it would with ``ct state new``), ``out``
each packet the mark had to be written into.
"""

from __future__ import annotations

import json

from ..model import Settings
from . import counters

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..model import Uplink

TABLE = "multiuplink"
_FULL = 0xFFFFFFFF


def render(settings: Settings) -> str:
    mask = f"{settings.mark_mask:#x}"
    keep = _FULL & ~settings.mark_mask
    lines = [
        "# 'nft -f' runs this file as one transaction: create-then-delete makes reloading idempotent.",
        f"table inet {TABLE} {{}}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
    ]
    for uplink in settings.uplinks:
        lines += [f"\tcounter {counters.name(kind, uplink.name)} {{}}" for kind in counters.KINDS]
    for uplink in settings.uplinks:
        set_mark = f"and {keep:#x} or {uplink.fwmark:#x}"
        lines += [
            f"\tchain mark_{uplink.name} {{",
            f'\t\tcounter name "{counters.name("in", uplink.name)}" ct direction original ct mark and {mask} != '
            f"{uplink.fwmark:#x} goto take_{uplink.name}",
            "\t}",
            f"\tchain take_{uplink.name} {{",
            f'\t\tcounter name "{counters.name("connections", uplink.name)}" ct mark set ct mark {set_mark}',
            f"\t\tfib daddr type local meta mark set meta mark {set_mark}",
            "\t}",
            f"\tchain restore_{uplink.name} {{",
            f'\t\tmeta mark and {mask} != {uplink.fwmark:#x} counter name "{counters.name("out", uplink.name)}" '
            f"meta mark set meta mark {set_mark}",
            "\t}",
        ]
    by_mark = ", ".join(f"{u.fwmark:#x} : goto restore_{u.name}" for u in settings.uplinks)
    restore = f"ct mark and {mask} vmap {{ {by_mark} }}"
    lines += [
        "\t# Step 1: a connection opened from an uplink remembers which one. Replies never mark it, so",
        "\t# connections the host or a LAN opens follow the main table.",
        "\tchain prerouting {",
        "\t\ttype filter hook prerouting priority mangle; policy accept;",
        *_marking(settings.uplinks),
    ]
    if settings.router_mode:
        lines += [
            "\t\t# Step 2 for forwarded connections: what arrives elsewhere (a LAN server's or a container's",
            "\t\t# replies) gets its connection's mark before the routing decision.",
            f"\t\t{restore}",
        ]
    lines += [
        "\t}",
        "\t# Step 2: the host's own replies get the mark; a route chain re-routes them by it.",
        "\tchain output {",
        "\t\ttype route hook output priority mangle; policy accept;",
        f"\t\t{restore}",
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def read_counters(listed: str) -> dict[str, tuple[int, int]]:
    """``{name: (packets, bytes)}`` from ``nft -j list counters table inet multiuplink``."""
    found = {}
    for item in json.loads(listed).get("nftables", []):
        counter = item.get("counter")
        if counter and counter.get("table") == TABLE:
            found[str(counter["name"])] = (int(counter["packets"]), int(counter["bytes"]))
    return found


def _shape(ruleset: str) -> dict[str, int]:
    """``{chain: number of rules}`` of a ruleset :func:`render` wrote."""
    chains: dict[str, int] = {}
    chain = None
    for line in ruleset.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "chain":
            chain = words[1]
            chains[chain] = 0
        elif words[0] == "}":
            chain = None
        elif chain is not None and words[0] != "type":
            chains[chain] += 1
    return chains


def loaded_as_rendered(ruleset: str, listed: str) -> bool:
    """Whether ``nft -j list table inet multiuplink`` shows the chains of ``ruleset`` with as many rules each.

    A flushed table (``nft flush table``) or a deleted rule shows; a rule changed in place does not.
    """
    return _live_shape(listed) == _shape(ruleset)


def _live_shape(listed: str) -> dict[str, int]:
    chains: dict[str, int] = {}
    for item in json.loads(listed).get("nftables", []):
        if "chain" in item:
            chains.setdefault(str(item["chain"]["name"]), 0)
        elif "rule" in item:
            name = str(item["rule"]["chain"])
            chains[name] = chains.get(name, 0) + 1
    return chains


def _marking(uplinks: tuple[Uplink, ...]) -> list[str]:
    """Verdict maps by interface (for uplinks of one family, that family's packets only), and for interfaces
    several ISPs share, by interface and address.

    A few lookups per packet whatever the number of uplinks; an uplink appears in one map per family it serves.
    A packet that matches goes to its uplink's chain for good (goto): what follows is for packets of no uplink.
    """
    lines = []
    for families, match in (((4, 6), ""), ((4,), "meta nfproto ipv4 "), ((6,), "meta nfproto ipv6 ")):
        whole = ", ".join(f'"{u.interface}" : goto mark_{u.name}' for u in uplinks
                          if not u.by_address and u.families() == families)
        if whole:
            lines.append(f"\t\t{match}iifname vmap {{ {whole} }}")
    for family, selector in ((4, "ip daddr"), (6, "ip6 daddr")):
        pairs = ", ".join(f'"{u.interface}" . {a.ip} : goto mark_{u.name}'
                          for u in uplinks if u.by_address for a in u.addresses if a.version == family)
        if pairs:
            lines.append(f"\t\tiifname . {selector} vmap {{ {pairs} }}")
    return lines
