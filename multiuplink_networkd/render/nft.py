"""The nftables ruleset: one ``inet multiuplink`` table, replaced atomically by ``nft -f``.

Marks are copied with masks so other software's mark bits survive. nft
cannot OR a non-constant value into a mark, so each uplink gets two tiny
chains with constant statements, reached through verdict maps: one lookup
per packet whatever the number of uplinks.
"""

from __future__ import annotations

from ..model import Settings

TABLE = "multiuplink"
_FULL = 0xFFFFFFFF


def render(settings: Settings) -> str:
    keep = _FULL & ~settings.mark_mask
    lines = [
        "# 'nft -f' runs this file as one transaction: create-then-delete makes reloading idempotent.",
        f"table inet {TABLE} {{}}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
    ]
    for uplink in settings.uplinks:
        set_mark = f"and {keep:#x} or {uplink.fwmark:#x}"
        lines += [
            f"\tchain mark_{uplink.name} {{",
            f"\t\tcounter ct mark set ct mark {set_mark}",
            "\t}",
            f"\tchain restore_{uplink.name} {{",
            f"\t\tcounter meta mark set meta mark {set_mark}",
            "\t}",
        ]
    by_interface = ", ".join(f'"{u.interface}" : jump mark_{u.name}' for u in settings.uplinks)
    by_mark = ", ".join(f"{u.fwmark:#x} : jump restore_{u.name}" for u in settings.uplinks)
    lines += [
        "\t# Step 1: remember on the connection which uplink it arrived on.",
        "\tchain prerouting {",
        "\t\ttype filter hook prerouting priority mangle; policy accept;",
        f"\t\tiifname vmap {{ {by_interface} }}",
        "\t}",
        "\t# Step 2: give the replies that mark; a route chain re-routes them by it.",
        "\tchain output {",
        "\t\ttype route hook output priority mangle; policy accept;",
        f"\t\tct mark and {settings.mark_mask:#x} vmap {{ {by_mark} }}",
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"
