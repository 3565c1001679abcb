"""``multiuplink explain PEER``: how the host answers a remote peer, connection by connection, and what would drop it.

For each connection conntrack tracks with the peer: the uplink its mark names,
the policy rule that mark meets, and the route the kernel itself picks for
the packets back to the peer (``ip route get PEER from LOCAL mark MARK``):
interface, gateway, table, source. Then whatever would lose them: a rule that
is not live, a route that leaves by another interface, a source address that
is not the uplink's (the ISP drops it as spoofed), reverse-path filtering that
drops the peer's packets on arrival (``ip route get LOCAL from PEER iif IF``,
the kernel's own check), or no reply seen at all, with the firewall chains
that drop by default. With no connection tracked, the same for a connection
that would arrive via each uplink.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import xml.etree.ElementTree as ElementTree
from collections import namedtuple

from ..errors import HostError
from ..model import PolicyRule
from ..render import nft as nft_format
from . import networkd, status, sysctl
from .commands import CommandFailed, run

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..render.manifest import AppliedUplink, Manifest


class Tracked(namedtuple("Tracked", "protocol peer_port local local_port state mark assured unreplied incoming")):
    """A conntrack entry with the peer, seen from this host: ``local`` is the address the peer talks to."""

    __slots__ = ()
    protocol: str
    peer_port: int | None
    local: str
    local_port: int | None
    state: str | None
    mark: int
    assured: bool
    unreplied: bool
    incoming: bool


class Reply(namedtuple("Reply", "interface gateway table source")):
    """The route the kernel picks for packets to the peer."""

    __slots__ = ()
    interface: str
    gateway: str | None
    table: str
    source: str


class Finding(namedtuple("Finding", "connection uplink rules reply problems")):
    """One connection (or, when ``connection`` is None, one uplink's would-be connection) and what drops it.

    ``rules``: the uplink's policy rules its mark meets, each with whether it is live.
    """

    __slots__ = ()
    connection: Tracked | None
    uplink: AppliedUplink | None
    rules: tuple[tuple[PolicyRule, bool], ...]
    reply: Reply | None
    problems: tuple[str, ...]


def parse_peer(text: str) -> tuple[str, int | None]:
    """``ADDRESS``, ``ADDRESS:PORT``, ``IPV6`` or ``[IPV6]:PORT``; raises ValueError."""
    address, port = text, None
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else None
        if rest and port is None:
            raise ValueError(f"{text}: expected [ADDRESS]:PORT")
    elif text.count(":") == 1:
        address, _, number = text.partition(":")
        port = int(number)
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"{text}: the port must be from 1 to 65535")
    return str(ipaddress.ip_address(address)), port


def _flows(xml: str) -> Iterable[dict[str, ElementTree.Element]]:
    if not xml.strip():
        return
    for flow in ElementTree.fromstring(xml).iter("flow"):
        yield {meta.get("direction", ""): meta for meta in flow.iter("meta")}


def _text(element: ElementTree.Element, path: str) -> str | None:
    found = element.find(path)
    return None if found is None or found.text is None else found.text


def _port(element: ElementTree.Element, path: str) -> int | None:
    text = _text(element, path)
    return None if text is None else int(text)


def tracked(peer: str, port: int | None) -> list[Tracked]:
    """conntrack's entries with ``peer`` at either end (and ``port`` at either end, if given)."""
    if shutil.which("conntrack") is None:
        raise HostError("explain reads the connections with the conntrack program: apt install conntrack")
    family = "ipv6" if ":" in peer else "ipv4"
    found: dict[str, Tracked] = {}
    for direction in ("--orig-src", "--orig-dst"):
        for meta in _flows(run(["conntrack", "-L", "-f", family, "-o", "xml", direction, peer])):
            original, independent = meta["original"], meta["independent"]
            incoming = _text(original, "layer3/src") == peer
            ends = ("src", "dst") if incoming else ("dst", "src")
            layer4 = original.find("layer4")
            entry = Tracked(
                protocol=layer4.get("protoname", "?") if layer4 is not None else "?",
                peer_port=_port(original, f"layer4/{ends[0][0]}port"),
                local=_text(original, f"layer3/{ends[1]}") or "",
                local_port=_port(original, f"layer4/{ends[1][0]}port"), state=_text(independent, "state"),
                mark=int(_text(independent, "mark") or 0), assured=independent.find("assured") is not None,
                unreplied=independent.find("unreplied") is not None, incoming=incoming)
            if port is None or port in (entry.peer_port, entry.local_port):
                found[_text(independent, "id") or repr(entry)] = entry
    return list(found.values())


def _route_get(*args: str) -> dict[str, str]:
    """``ip route get``'s answer; raises CommandFailed with the kernel's words (``said``)."""
    family = "-6" if ":" in args[0] else "-4"
    answer = json.loads(run(["ip", family, "-j", "route", "get", *args]) or "[{}]")
    return {key: str(value) for key, value in answer[0].items()}


def _in_networks(address: str, networks: Iterable[networkd.Address]) -> bool:
    return any(ipaddress.ip_address(address) in ipaddress.ip_interface(net.address).network for net in networks)


def _drop_policies() -> list[str]:
    """Base chains of other tables that drop whatever no rule accepts: where a lost reply may have gone."""
    try:
        listed = json.loads(run(["nft", "-j", "list", "chains"]))
    except (CommandFailed, ValueError):
        return []
    return [f"{chain['family']} {chain['table']} {chain['name']} (hook {chain['hook']}, policy drop)"
            for chain in (item.get("chain", {}) for item in listed.get("nftables", []))
            if chain.get("policy") == "drop" and chain.get("table") != nft_format.TABLE]


def _uplink_of(mark: int, wanted: Manifest) -> AppliedUplink | None:
    ours = mark & wanted.mark_mask
    return next((u for u in wanted.uplinks if ours and u.fwmark == ours), None)


def _analyse(peer: str, local: str, mark: int, uplink: AppliedUplink | None, incoming: bool,
             live_rules: set[PolicyRule], addresses: dict[str, tuple[networkd.Address, ...]]
             ) -> tuple[tuple[tuple[PolicyRule, bool], ...], Reply | None, list[str]]:
    family = 6 if ":" in peer else 4
    rules = tuple((rule, rule in live_rules) for rule in sorted(uplink.rules, key=lambda r: r.priority)
                  if mark & rule.mask == rule.fwmark and rule.family == family) if uplink else ()
    problems = [f"policy rule '{networkd.describe_rule(rule)}' is not live" for rule, live in rules if not live]
    reply = None
    try:
        answer = _route_get(peer, "from", local, *(("mark", f"{mark:#x}") if mark else ()))
        reply = Reply(answer.get("dev", "?"), answer.get("gateway"), answer.get("table", "main"),
                      answer.get("prefsrc", local))
    except CommandFailed as error:
        problems.append(f"no route back to {peer} from {local}: {error.said}")
    if uplink is not None and reply is not None:
        if reply.interface != uplink.interface:
            problems.append(f"replies leave by {reply.interface} (table {reply.table}), not by {uplink.interface}: "
                            f"the other ISP drops them as spoofed, or the peer ignores them")
        if not _in_networks(reply.source, addresses.get(uplink.interface, ())):
            problems.append(f"the source {reply.source} is not an address of {uplink.interface}: "
                            f"the ISP of {uplink.name} drops such replies as spoofed (BCP38)")
    if uplink is not None and incoming:
        try:
            _route_get(local, "from", peer, "iif", uplink.interface)
        except CommandFailed as error:
            strict = max(sysctl.read_rp_filter(uplink.interface) or 0, sysctl.read_rp_filter("all") or 0) == 1
            problems.append(f"the peer's packets are dropped on arrival on {uplink.interface}: {error.said}" + (
                f" (strict reverse-path filtering, rp_filter 1: the route back to {peer} does not leave by "
                f"{uplink.interface})" if strict else ""))
    return rules, reply, problems


def explain(wanted: Manifest, peer: str, port: int | None) -> list[Finding]:
    """A finding per tracked connection with ``peer``; with none, one per uplink for a would-be connection."""
    status.need_root("explain")
    live_rules, addresses = networkd.live_rules(), networkd.live_addresses()
    findings = []
    for entry in tracked(peer, port):
        uplink = _uplink_of(entry.mark, wanted)
        rules, reply, problems = _analyse(peer, entry.local, entry.mark, uplink, entry.incoming, live_rules, addresses)
        if entry.unreplied:
            chains = _drop_policies()
            problems.append("no reply has been seen: the service did not answer, or a firewall rule drops its "
                            "packets" + (f"; chains that drop by default: {', '.join(chains)}" if chains else ""))
        findings.append(Finding(entry, uplink, rules, reply, tuple(problems)))
    if findings:
        return findings
    for uplink in wanted.uplinks:
        local = next((a.address.split("/")[0] for a in addresses.get(uplink.interface, ())
                      if (":" in a.address) == (":" in peer)), None)
        if local is None:
            missing = f"{uplink.interface} has no address of the peer's family"
            findings.append(Finding(None, uplink, (), None, (missing,)))
            continue
        rules, reply, problems = _analyse(peer, local, uplink.fwmark, uplink, True, live_rules, addresses)
        findings.append(Finding(None, uplink, rules, reply, tuple(problems)))
    return findings
