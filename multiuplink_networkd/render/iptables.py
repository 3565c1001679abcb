"""The same marking in ``iptables-restore`` format, for hosts that manage netfilter with iptables.

One file per address family (``ip6tables-restore`` reads the same format), each
with the uplinks that serve that family.

Loaded with ``--noflush`` into chains of our own, so the host's other rules
stay; declaring a chain flushes just that chain, which makes reloads
idempotent. iptables-restore has no "add if absent", so the jumps from the
built-in chains are added to the loader's input only where ``iptables-save``
shows them missing (:func:`restore_input`). Each uplink's counters are the
rules whose comment is the counter's name (:mod:`.counters`), one rule per
uplink and hook (and per address, for an uplink selected by address):
iptables matches rule after rule anyway.
"""

from __future__ import annotations

import re

from ..model import Settings
from . import counters

HOOKS = (("PREROUTING", "MULTIUPLINK_PREROUTING"), ("OUTPUT", "MULTIUPLINK_OUTPUT"))
TABLE = "mangle"


def render(settings: Settings, family: int) -> str:
    """The nft ruleset's marking rule for rule, for the uplinks that serve ``family``. iptables has no verdict maps:
    a packet walks three rules per uplink in PREROUTING and one per uplink where the mark is restored (the nft
    backend stays O(1) in uplinks). The packet mark is set before the connection mark, while the guard they share
    still holds."""
    mask = f"{settings.mark_mask:#x}"
    lines = [f"*{TABLE}"] + [f":{chain} - [0:0]" for _, chain in HOOKS]
    serving = [u for u in settings.uplinks if family in u.families()]
    for u in serving:
        mark = f"{u.fwmark:#x}/{mask}"
        for selector in [f" -d {a.ip}" for a in u.addresses if a.version == family] if u.by_address else [""]:
            taking = (f"-A MULTIUPLINK_PREROUTING -i {u.interface}{selector} -m conntrack --ctdir ORIGINAL "
                      f"-m connmark ! --mark {mark}")
            arrived = (f"-A MULTIUPLINK_PREROUTING -i {u.interface}{selector} -m comment --comment "
                       f"{counters.name('in', u.name)}")
            lines += [
                f"{taking} -m addrtype --dst-type LOCAL -j MARK --set-mark {mark}",
                f"{taking} -m comment --comment {counters.name('connections', u.name)} -j CONNMARK --set-mark {mark}",
                arrived + (" -j RETURN" if settings.router_mode else ""),  # what arrives on an uplink is never restored
            ]
    restoring = [chain for builtin, chain in HOOKS if settings.router_mode or builtin == "OUTPUT"]
    lines += [f"-A {chain} -m connmark --mark {u.fwmark:#x}/{mask} -m mark ! --mark {u.fwmark:#x}/{mask} -m comment "
              f"--comment {counters.name('out', u.name)} -j CONNMARK --restore-mark --nfmask {mask} --ctmask {mask}"
              for chain in restoring for u in serving]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


_COUNTED = re.compile(r"^\[(\d+):(\d+)\] -A MULTIUPLINK_\w+ .*-m comment --comment (\S+)")


def read_counters(saved: str) -> dict[str, tuple[int, int]]:
    """``{name: (packets, bytes)}`` from ``iptables-save -c -t mangle``, summed over the rules that share a name
    (``out_*`` counts in PREROUTING and OUTPUT; an uplink on a shared interface counts one rule per address)."""
    found: dict[str, tuple[int, int]] = {}
    for line in saved.splitlines():
        counted = _COUNTED.match(line)
        if counted:
            packets, octets = found.get(counted.group(3), (0, 0))
            found[counted.group(3)] = (packets + int(counted.group(1)), octets + int(counted.group(2)))
    return found


def _jumps(saved: str) -> set[str]:
    return {f"{builtin} {chain}" for builtin, chain in HOOKS if f"-A {builtin} -j {chain}" in saved.splitlines()}


def chains_present(saved: str) -> bool:
    """Whether ``iptables-save -t mangle`` output holds our chains."""
    return any(line.startswith(f":{HOOKS[0][1]} ") for line in saved.splitlines())


def _shape(text: str) -> dict[str, int]:
    """``{our chain: number of rules}`` in our ruleset or in ``iptables-save -t mangle`` output."""
    chains = {chain: 0 for _, chain in HOOKS if f":{chain} " in text}
    for line in text.splitlines():
        words = line.split()
        if len(words) > 1 and words[0] == "-A" and words[1] in chains:
            chains[words[1]] += 1
    return chains


def loaded_as_rendered(ruleset: str, saved: str) -> bool:
    """Whether ``saved`` has our chains with as many rules as ``ruleset`` (:func:`render`), and the jumps to them.

    A flushed chain or a deleted rule shows; a rule changed in place does not.
    """
    return _shape(saved) == _shape(ruleset) and len(_jumps(saved)) == len(HOOKS)


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
