"""``multiuplink status``: the live state of every uplink, and each way it differs from what the configuration asks.

The desired state is the files the configuration renders now (``cli`` hands
them over): their manifest names each uplink's interface, rules, table routes
and rp_filter. The live state comes from the kernel (``ip``, ``nft``,
``iptables-save``, /proc/sys), from networkd over D-Bus, and for the next
boot from the sysctl.d files. Every difference is a :class:`Problem` that says
what is wrong and what to do; the shape of :meth:`Status.as_json` is
``schema/status.schema.json`` (a stable interface: fields are only added).
"""

from __future__ import annotations

import os
from collections import namedtuple

from .. import paths
from ..errors import HostError
from ..model import PolicyRule, TableRoute
from ..render import counters as counter_names, manifest
from ..render.sysctl import TCP_FWMARK_ACCEPT
from . import netfilter, networkd, sysctl, sysctl_d, writer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FORMAT = 1
RP_FILTER_MODES = {0: "off", 1: "strict", 2: "loose"}


class Problem(namedtuple("Problem", "uplink subject message hint")):
    """One difference between the configuration and the live state; ``uplink`` is None for the host as a whole."""

    __slots__ = ()
    uplink: str | None
    subject: str
    message: str
    hint: str


class RpFilter(namedtuple("RpFilter", "wanted interface all boot_interface boot_all")):
    """rp_filter now (the interface's and ``all``'s, None where absent) and at the next boot, with sources."""

    __slots__ = ()
    wanted: int
    interface: int | None
    all: int | None
    boot_interface: sysctl_d.BootValue
    boot_all: sysctl_d.BootValue

    @property
    def effective(self) -> int | None:
        """What the kernel applies: the larger of ``all`` and the interface's."""
        return None if self.interface is None else max(self.interface, self.all or 0)

    @property
    def boot_effective(self) -> int:
        return max(self.boot_interface.value, self.boot_all.value)


class UplinkStatus(namedtuple("UplinkStatus", "name interface table fwmark link addresses rules routes counters "
                                              "rp_filter")):
    """One uplink, live: ``rules`` and ``routes`` pair each wanted one with whether the kernel has it."""

    __slots__ = ()
    name: str
    interface: str
    table: int
    fwmark: int
    link: networkd.LinkState | None
    addresses: tuple[networkd.Address, ...]
    rules: tuple[tuple[PolicyRule, bool], ...]
    routes: tuple[tuple[TableRoute, bool], ...]
    counters: dict[str, tuple[int, int]] | None
    rp_filter: RpFilter


class FwmarkAccept(namedtuple("FwmarkAccept", "now boot")):
    """net.ipv4.tcp_fwmark_accept now (None where the kernel lacks it) and at the next boot; we want 1."""

    __slots__ = ()
    now: int | None
    boot: sysctl_d.BootValue


class Status(namedtuple("Status", "backend ruleset networkd_running stale_files mark_mask uplinks problems "
                                  "fwmark_accept")):
    __slots__ = ()
    backend: str | None
    ruleset: str | None
    networkd_running: bool | None
    stale_files: tuple[str, ...]
    mark_mask: int
    uplinks: tuple[UplinkStatus, ...]
    problems: tuple[Problem, ...]
    fwmark_accept: FwmarkAccept | None

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "drift": bool(self.problems),
            "backend": self.backend,
            "ruleset": self.ruleset,
            "networkd_running": self.networkd_running,
            "stale_files": list(self.stale_files),
            "mark_mask": self.mark_mask,
            "uplinks": [_uplink_json(u) for u in self.uplinks],
            "problems": [p._asdict() for p in self.problems],
            "tcp_fwmark_accept": None if self.fwmark_accept is None else {
                "wanted": 1, "now": self.fwmark_accept.now, "boot": _boot_json(self.fwmark_accept.boot)},
        }


def _uplink_json(u: UplinkStatus) -> dict[str, Any]:
    rp = u.rp_filter
    return {
        "name": u.name, "interface": u.interface, "table": u.table, "fwmark": u.fwmark,
        "link": u.link._asdict() if u.link else None,
        "addresses": [a._asdict() for a in u.addresses],
        "rules": [{**rule._asdict(), "live": live} for rule, live in u.rules],
        "routes": [{**route._asdict(), "live": live} for route, live in u.routes],
        "counters": None if u.counters is None else {
            "connections": u.counters["connections"][0],
            "packets_in": u.counters["in"][0], "bytes_in": u.counters["in"][1],
            "packets_out": u.counters["out"][0], "bytes_out": u.counters["out"][1]},
        "rp_filter": {"wanted": rp.wanted, "interface": rp.interface, "all": rp.all, "effective": rp.effective,
                      "boot": {"interface": _boot_json(rp.boot_interface), "all": _boot_json(rp.boot_all),
                               "effective": rp.boot_effective}},
    }


def _boot_json(value: sysctl_d.BootValue) -> dict[str, Any]:
    return {"value": value.value, "source": value.source(), "key": value.key}


def need_root(command: str) -> None:
    """nft, iptables-save and conntrack answer only root: as anyone else the ruleset would look absent."""
    if os.geteuid() != 0:
        raise HostError(f"{command} reads the netfilter ruleset and the tracked connections, which only root may; "
                        "run it as root")


def collect(root: str, files: dict[str, str]) -> Status:
    """The live state against ``files``, the configuration rendered for ``root``."""
    need_root("status")
    wanted = manifest.parse(files.get(paths.MANIFEST))
    on_disk = writer.read_owned(root)
    stale_files = tuple(sorted(path for path in set(files) | set(on_disk) if files.get(path) != on_disk.get(path)))
    ruleset = netfilter.Ruleset.of(files)
    backend = ruleset.backend()
    state = ruleset.state(backend) if backend else None
    loaded = {"nft": netfilter.nft_loaded(), "iptables": netfilter.iptables_loaded()}
    live_counters = netfilter.counters() if state == netfilter.LOADED else {}
    interfaces = [u.interface for u in wanted.uplinks]
    try:
        links: dict[str, networkd.LinkState] | None = networkd.link_states(interfaces) if interfaces else {}
    except (networkd.NetworkdDown, networkd.NetworkdFailed):  # both: networkd cannot be asked
        links = None
    replaced = {paths.SYSCTL_FILE: files.get(paths.SYSCTL_FILE)}
    boot_all, boot = sysctl_d.rp_filter_at_boot(root, interfaces, replaced)
    live_rules, live_routes = networkd.live_rules(), networkd.live_routes()
    addresses = networkd.live_addresses()
    uplinks = tuple(UplinkStatus(
        u.name, u.interface, u.table, u.fwmark, None if links is None else links.get(u.interface),
        addresses.get(u.interface, ()),
        tuple((rule, rule in live_rules) for rule in u.rules),
        tuple((route, networkd.LiveRoute(u.interface, route) in live_routes) for route in u.routes),
        _uplink_counters(u.name, live_counters),
        RpFilter(u.rp_filter, sysctl.read_rp_filter(u.interface), sysctl.read_rp_filter("all"), boot[u.interface],
                 boot_all)) for u in wanted.uplinks)
    fwmark_accept = FwmarkAccept(sysctl.read(TCP_FWMARK_ACCEPT), sysctl_d.at_boot(root, TCP_FWMARK_ACCEPT, replaced, 0)
                                 ) if wanted.uplinks else None
    problems = _host_problems(root, stale_files, backend, state, loaded, links is not None or not interfaces)
    problems += _fwmark_accept_problems(root, fwmark_accept)
    problems += _stale_rules(wanted, manifest.parse(on_disk.get(paths.MANIFEST)), live_rules)
    for uplink in uplinks:
        problems += _uplink_problems(root, uplink)
    return Status(backend, state, None if not interfaces else links is not None,
                  stale_files, wanted.mark_mask, uplinks, tuple(problems), fwmark_accept)


def _uplink_counters(name: str, live: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]] | None:
    """``{kind: (packets, bytes)}``; None unless the loaded ruleset has every counter of the uplink."""
    names = {kind: counter_names.name(kind, name) for kind in counter_names.KINDS}
    return {kind: live[counter] for kind, counter in names.items()} if set(names.values()) <= set(live) else None


def _host_problems(root: str, stale_files: tuple[str, ...], backend: str | None, state: str | None,
                   loaded: dict[str, bool], networkd_reached: bool) -> list[Problem]:
    problems = []
    if stale_files:
        problems.append(Problem(None, "files", "the files on disk are not what the configuration renders: "
                                + ", ".join(os.path.join(root, path) for path in stale_files),
                                "run 'multiuplink apply' (or 'multiuplink try') to apply the configuration"))
    for name, what in (("nft", "the nft table inet multiuplink is"),
                       ("iptables", "the iptables chains MULTIUPLINK_* are")):
        if backend == name and state == netfilter.ABSENT:
            problems.append(Problem(None, "ruleset", f"{what} not loaded, so no connection is marked "
                                    "(a 'flush ruleset' removes it)", "run 'multiuplink apply'"))
        elif backend == name and state == netfilter.FLUSHED:
            problems.append(Problem(None, "ruleset", f"{what} loaded, but rules are missing from it (flushed or "
                                    "edited), so connections are not marked as they should", "run 'multiuplink apply'"))
        elif backend != name and loaded[name]:
            problems.append(Problem(None, "ruleset", f"{what} loaded, but the configuration does not ask for it",
                                    "run 'multiuplink apply'"))
    if not networkd_reached:
        problems.append(Problem(None, "networkd", "systemd-networkd is not running, or does not answer on D-Bus: it "
                                "installs and keeps the policy rules and table routes",
                                "systemctl start systemd-networkd; see 'journalctl -u systemd-networkd'"))
    return problems


def _fwmark_accept_problems(root: str, value: FwmarkAccept | None) -> list[Problem]:
    """Without it every accepted TCP connection is still answered by its uplink, each reply re-routed: slower."""
    if value is None:
        return []
    problems = []
    key = TCP_FWMARK_ACCEPT.replace("/", ".")
    if value.now not in (None, 1):
        problems.append(Problem(None, "tcp_fwmark_accept", f"{key} is {value.now} now, the configuration asks for 1: "
                                "accepted TCP sockets lack their uplink's mark, so the ruleset re-routes each reply",
                                "run 'multiuplink apply'"))
    if value.boot.value != 1:
        ours = os.path.join(root, paths.SYSCTL_FILE)
        source = value.boot.source()
        hint = (f"change or remove {source}: it overrides {ours}" if value.boot.path not in (None, ours) else
                f"nothing sets it at boot: a file named {os.path.basename(ours)} in /etc/sysctl.d masks ours, or a "
                f"'-{key}' line drops it")
        problems.append(Problem(None, "tcp_fwmark_accept_boot", f"at the next boot {key} will be {value.boot.value} "
                                f"({source or 'kernel default'}), not 1", hint))
    return problems


def _stale_rules(wanted: manifest.Manifest, applied: manifest.Manifest, live: set[PolicyRule]) -> list[Problem]:
    """Live rules with our mark bits that no uplink asks for any more."""
    ours = {rule for rule in live if rule.mask in (wanted.mark_mask, applied.mark_mask)}
    ours |= {rule for uplink in applied.uplinks for rule in uplink.rules if rule in live}
    ours -= {rule for uplink in wanted.uplinks for rule in uplink.rules}
    return [Problem(None, "rule", f"policy rule '{networkd.describe_rule(rule)}' is live, but no uplink asks for it",
                    f"remove it: ip rule del priority {rule.priority} fwmark {rule.fwmark:#x}/{rule.mask:#x}")
            for rule in sorted(ours, key=_rule_order)]


def _rule_order(rule: PolicyRule) -> tuple[int, int, int]:
    return rule.priority, rule.fwmark, rule.table



def describe_route(route: TableRoute, interface: str) -> str:
    via = f" via {route.gateway}" if route.gateway else ""
    return f"'{route.destination}{via} dev {interface} table {route.table}'"


def _uplink_problems(root: str, uplink: UplinkStatus) -> list[Problem]:
    name, interface = uplink.name, uplink.interface
    problems = []
    if uplink.rp_filter.interface is None:
        return [Problem(name, "link", f"interface {interface} does not exist",
                        "check the cable, the driver or the netplan definition it comes from")]
    link = uplink.link
    down = link is not None and link.carrier in ("no-carrier", "off")
    if link is not None and link.administrative in ("unmanaged", "failed", "linger"):
        problems.append(Problem(name, "link", f"systemd-networkd reports {interface} as {link.administrative}",
                                "see 'networkctl status " + interface + "' and netplan's configuration"))
    elif down:
        problems.append(Problem(name, "link", f"{interface} has no carrier: nothing arrives or leaves on it",
                                "networkd installs its rules and routes again when the link comes back"))
    if not down:
        repair = "run 'multiuplink apply' (systemd-networkd installs it again)"
        problems += [Problem(name, "rule", f"policy rule '{networkd.describe_rule(rule)}' is missing", repair)
                     for rule, live in uplink.rules if not live]
        problems += [Problem(name, "route", f"route {describe_route(route, interface)} is missing", repair)
                     for route, live in uplink.routes if not live]
    return problems + _rp_filter_problems(root, uplink)


def _mode(value: int | None) -> str:
    return f"{value} ({RP_FILTER_MODES.get(value, 'unknown')})" if value is not None else "unset"


def _rp_filter_problems(root: str, uplink: UplinkStatus) -> list[Problem]:
    rp, name, interface = uplink.rp_filter, uplink.name, uplink.interface
    problems = []
    if rp.effective != rp.wanted:
        hint = (f"run 'multiuplink apply' (it sets {interface} to {rp.wanted})" if rp.interface != rp.wanted else
                "set net.ipv4.conf.all.rp_filter = 0 in a sysctl.d file, or use 'rp-filter: loose'")
        problems.append(Problem(name, "rp_filter", f"rp_filter on {interface} is {_mode(rp.effective)} now, the "
                                f"larger of all = {rp.all} and {interface} = {rp.interface}; the configuration "
                                f"asks for {_mode(rp.wanted)}", hint))
    if rp.boot_effective != rp.wanted:
        ours = os.path.join(root, paths.SYSCTL_FILE)
        # Raising 'all' above the wanted value spoils it; the interface's own value must be the wanted one.
        culprits = [value for value in (rp.boot_interface, rp.boot_all)
                    if value.value > rp.wanted or (value is rp.boot_interface and value.value != rp.wanted)]
        said = "; ".join(f"{value.key or 'net.ipv4.conf.all.rp_filter'} = {value.value} "
                         f"({value.source() or 'kernel default'})" for value in culprits)
        foreign = [value.source() for value in culprits if value.path not in (None, ours)]
        hint = (f"change or remove {' and '.join(str(s) for s in foreign)}: it overrides {ours}" if foreign else
                f"nothing sets {interface} at boot: a file named {os.path.basename(ours)} in /etc/sysctl.d masks "
                f"ours, or a '-net.ipv4.conf.{interface}.rp_filter' line drops it")
        problems.append(Problem(name, "rp_filter_boot", f"at the next boot rp_filter on {interface} will be "
                                f"{_mode(rp.boot_effective)}, not {_mode(rp.wanted)}: {said}", hint))
    return problems
