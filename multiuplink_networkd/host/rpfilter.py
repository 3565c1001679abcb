"""Strict reverse-path checks in the host's own firewall, which drop connections an uplink should serve.

IPv4's ``rp_filter`` sysctl is the kernel's and we loosen it; a firewall can do
the same check itself, for both families: nftables' ``fib saddr . iif oif
missing drop`` (firewalld's ``IPv6_rpfilter`` is one) or iptables'
``-m rpfilter --invert -j DROP``. Strict, they drop a connection that arrives on
an uplink whose source the main table routes out of another interface: the
very connections this plugin exists for. We never change the host's firewall;
``validate`` and ``apply`` find such rules and say what to change.
"""

from __future__ import annotations

import json
import shutil
from collections import namedtuple

from .commands import CommandFailed, run

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Uplinks = dict[str, set[int]]
    """Each uplink interface and the families it serves."""

_FAMILIES = {"ip": {4}, "ip6": {6}, "inet": {4, 6}}
_NFPROTO = {"ipv4": {4}, "ipv6": {6}}
_VERDICTS = ("jump", "goto")


class Finding(namedtuple("Finding", "where rule families interfaces hint")):
    """One strict check: where it is, its text, and the families and uplink interfaces it can cut off."""

    __slots__ = ()
    where: str
    rule: str
    families: set[int]
    interfaces: list[str]
    hint: str

    def format(self) -> str:
        families = " and ".join(f"IPv{family}" for family in sorted(self.families))
        return (f"warning: a strict reverse-path check in {self.where} ({self.rule}) drops {families} connections "
                f"arriving on {', '.join(self.interfaces)} whenever the main table routes their source out of "
                f"another interface\nhint: {self.hint}")


def findings(uplinks: Uplinks) -> list[Finding]:
    """The strict checks of the running host's nftables and iptables rulesets; none where they cannot be read."""
    found = []
    if shutil.which("nft"):
        try:
            found += strict_nft_rules(json.loads(run(["nft", "-j", "list", "ruleset"]) or "{}"), uplinks)
        except (CommandFailed, ValueError):
            pass  # not permitted (validate as a user) or no ruleset: nothing to say
    for family, tool in ((4, "iptables-save"), (6, "ip6tables-save")):
        if shutil.which(tool):
            for table in ("raw", "mangle"):
                try:
                    found += strict_iptables_rules(run([tool, "-t", table]), family, table, uplinks)
                except CommandFailed:
                    pass
    return found


def strict_nft_rules(listing: dict[str, Any], uplinks: Uplinks) -> list[Finding]:
    """Rules of ``nft -j list ruleset`` reached from a prerouting hook that drop on a strict ``fib`` lookup."""
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for item in listing.get("nftables", []):
        if "chain" in item:
            chain = item["chain"]
            chains[(chain["family"], chain["table"], chain["name"])] = chain
        elif "rule" in item:
            rule = item["rule"]
            rules.setdefault((rule["family"], rule["table"], rule["chain"]), []).append(rule)
    pending = [key for key, chain in chains.items() if chain.get("hook") == "prerouting"]
    reached: set[tuple[str, str, str]] = set()
    found = []
    while pending:
        key = pending.pop()
        if key in reached:
            continue
        reached.add(key)
        for rule in rules.get(key, []):
            expressions = rule.get("expr", [])
            for expression in expressions:
                for verdict in _VERDICTS:
                    if verdict in expression:
                        pending.append((key[0], key[1], expression[verdict]["target"]))
            flags = _strict_fib(expressions)
            if flags is None or not any("drop" in e or "reject" in e for e in expressions):
                continue
            families = set(_FAMILIES.get(key[0], set()))
            for expression in expressions:
                match = expression.get("match", {})
                if match.get("left") == {"meta": {"key": "nfproto"}} and match.get("op") == "==":
                    families &= _NFPROTO.get(match.get("right"), families)
            interfaces = _affected(uplinks, families, _nft_interfaces(expressions))
            if interfaces:
                found.append(Finding(
                    f"nft table {key[0]} {key[1]}, chain {key[2]}", f"fib {' . '.join(flags)} oif missing drop",
                    families, interfaces,
                    f"make it loose (fib {' . '.join(f for f in flags if f != 'iif')} oif missing drop: any route "
                    "back will do), or exempt the uplinks before it (iifname { "
                    + ", ".join(f'"{i}"' for i in interfaces) + " } accept); with firewalld: "
                    "IPv6_rpfilter=loose (firewalld 2.0 and later) or IPv6_rpfilter=no in "
                    "/etc/firewalld/firewalld.conf"))
    return found


def _strict_fib(expressions: list[dict[str, Any]]) -> list[str] | None:
    """The flags of a ``fib saddr ... iif oif missing`` match, if the rule has one."""
    for expression in expressions:
        match = expression.get("match", {})
        fib = match.get("left", {}).get("fib") if isinstance(match.get("left"), dict) else None
        if fib and fib.get("result") == "oif" and match.get("right") is False and match.get("op") == "==" \
                and {"saddr", "iif"} <= set(fib.get("flags", [])):
            return list(fib["flags"])
    return None


def _nft_interfaces(expressions: list[dict[str, Any]]) -> tuple[set[str] | None, set[str]]:
    """The ``iifname`` names a rule is limited to (None: any) and those it leaves out."""
    only: set[str] | None = None
    excluded: set[str] = set()
    for expression in expressions:
        match = expression.get("match", {})
        if match.get("left") != {"meta": {"key": "iifname"}}:
            continue
        right = match.get("right")
        names = set(right["set"]) if isinstance(right, dict) and "set" in right else {right}
        names = {name for name in names if isinstance(name, str)}
        if match.get("op") == "!=":
            excluded |= names
        else:
            only = names if only is None else only & names
    return only, excluded


def strict_iptables_rules(saved: str, family: int, table: str, uplinks: Uplinks) -> list[Finding]:
    """``-m rpfilter --invert`` rules without ``--loose`` that drop, in ``iptables-save`` output of one table."""
    found = []
    tool = "iptables" if family == 4 else "ip6tables"
    for line in saved.splitlines():
        words = line.split()
        if not words or words[0] != "-A" or "rpfilter" not in words or "--loose" in words or "--invert" not in words:
            continue
        if "DROP" not in words and "REJECT" not in words:
            continue
        only: set[str] | None = None
        excluded: set[str] = set()
        for index, word in enumerate(words[:-1]):
            if word in ("-i", "--in-interface"):
                if words[index - 1] == "!":
                    excluded.add(words[index + 1])
                else:
                    only = {words[index + 1]}
        interfaces = _affected(uplinks, {family}, (only, excluded))
        if interfaces:
            found.append(Finding(f"{tool} table {table}, chain {words[1]}", line, {family}, interfaces,
                                 "add --loose to it (any route back will do), or exempt the uplinks with a rule "
                                 f"before it (-i {interfaces[0]} -j ACCEPT, one per uplink)"))
    return found


def _affected(uplinks: Uplinks, families: set[int], limits: tuple[set[str] | None, set[str]]) -> list[str]:
    """The uplink interfaces, serving one of ``families``, that a rule limited by ``limits`` applies to."""
    only, excluded = limits
    return sorted(interface for interface, served in uplinks.items()
                  if served & families and interface not in excluded and (only is None or interface in only))
