"""The same marking in ``iptables-restore`` format, for hosts that manage netfilter with iptables.

Loaded with ``--noflush`` into chains of our own, so the host's other rules
stay; declaring a chain flushes just that chain, which makes reloads
idempotent. The jumps from the built-in chains are added by the loader only
when missing (iptables-restore has no "add if absent").
"""

from __future__ import annotations

from ..model import Settings

HOOKS = (("PREROUTING", "MULTIUPLINK_PREROUTING"), ("OUTPUT", "MULTIUPLINK_OUTPUT"))


def render(settings: Settings) -> str:
    mask = f"{settings.mark_mask:#x}"
    lines = ["*mangle"] + [f":{chain} - [0:0]" for _, chain in HOOKS]
    lines += [f"-A MULTIUPLINK_PREROUTING -i {u.interface} -j CONNMARK --set-mark {u.fwmark:#x}/{mask}"
              for u in settings.uplinks]
    lines.append(f"-A MULTIUPLINK_OUTPUT -m connmark ! --mark 0x0/{mask} "
                 f"-j CONNMARK --restore-mark --nfmask {mask} --ctmask {mask}")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"
