"""The same marking in ``iptables-restore`` format, for hosts that manage netfilter with iptables.

Loaded with ``--noflush`` into chains of our own, so the host's other rules
stay; declaring a chain flushes just that chain, which makes reloads
idempotent. iptables-restore has no "add if absent", so the jumps from the
built-in chains are added to the loader's input only where ``iptables-save``
shows them missing (:func:`restore_input`).
"""

from __future__ import annotations

from ..model import Settings

HOOKS = (("PREROUTING", "MULTIUPLINK_PREROUTING"), ("OUTPUT", "MULTIUPLINK_OUTPUT"))
TABLE = "mangle"


def render(settings: Settings) -> str:
    mask = f"{settings.mark_mask:#x}"
    lines = [f"*{TABLE}"] + [f":{chain} - [0:0]" for _, chain in HOOKS]
    lines += [f"-A MULTIUPLINK_PREROUTING -i {u.interface} -j CONNMARK --set-mark {u.fwmark:#x}/{mask}"
              for u in settings.uplinks]
    lines.append(f"-A MULTIUPLINK_OUTPUT -m connmark ! --mark 0x0/{mask} "
                 f"-j CONNMARK --restore-mark --nfmask {mask} --ctmask {mask}")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def _jumps(saved: str) -> set[str]:
    return {f"{builtin} {chain}" for builtin, chain in HOOKS if f"-A {builtin} -j {chain}" in saved.splitlines()}


def chains_present(saved: str) -> bool:
    """Whether ``iptables-save -t mangle`` output holds our chains."""
    return any(line.startswith(f":{HOOKS[0][1]} ") for line in saved.splitlines())


def restore_input(ruleset: str, saved: str) -> str:
    """``ruleset`` (as :func:`render` wrote it) plus the jumps into our chains that ``saved`` lacks."""
    present = _jumps(saved)
    jumps = [f"-I {builtin} 1 -j {chain}" for builtin, chain in HOOKS if f"{builtin} {chain}" not in present]
    lines = ruleset.splitlines()
    commit = lines.index("COMMIT")
    return "\n".join(lines[:commit] + jumps + lines[commit:]) + "\n"


def removal_input(saved: str) -> str | None:
    """What makes ``iptables-restore --noflush`` remove our jumps and chains; None when none are there."""
    present = _jumps(saved)
    lines = [f"-D {builtin} -j {chain}" for builtin, chain in HOOKS if f"{builtin} {chain}" in present]
    if chains_present(saved):
        lines += [f"{op} {chain}" for _, chain in HOOKS for op in ("-F", "-X")]
    return "\n".join([f"*{TABLE}", *lines, "COMMIT"]) + "\n" if lines else None
