"""Have systemd-networkd pick up changed drop-ins, then check on the live rules that it did.

networkd 252 reconfigures the links whose ``.network`` files changed on
``Reload`` alone: measured with a 5 ms ping across an apply, 1-2 replies are
lost, against 7-14 when ``ReconfigureLink`` follows. So we ``Reload``, read
the policy rules and table routes back (nmstate's "verify after apply"), and call
``ReconfigureLink`` only for links that have not converged (an older
networkd, or rules a networkd restart left behind). Links without carrier
are not waited for: networkd configures them when they come up.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections import namedtuple

from ..errors import HostError
from ..model import PolicyRule, TableRoute
from .commands import run, succeeds

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

FIRST_WAIT = 2.0
"""Seconds for networkd to act on Reload; it takes about 0.1 s here."""
SECOND_WAIT = 5.0
_TABLE_NUMBERS = {"main": 254, "default": 253, "local": 255}


class NetworkdDown(HostError):
    """Nobody runs networkd: the drop-ins wait for it."""


class NetworkdFailed(HostError):
    """networkd refused, or did not install what the drop-ins say."""


class LiveRoute(namedtuple("LiveRoute", "interface route")):
    """A route the kernel has in a numbered table, on ``interface``."""

    __slots__ = ()
    interface: str
    route: TableRoute


class Link:
    """One link whose policy rules and table routes must change: those it must now have, and those it must lose.

    ``rewritten``: its drop-in changed, so ``Reload`` alone may do; else only ``ReconfigureLink`` helps.
    """

    __slots__ = ("interface", "rewritten", "stale", "stale_routes", "wanted", "wanted_routes")

    def __init__(self, interface: str, wanted: Iterable[PolicyRule], stale: Iterable[PolicyRule],
                 rewritten: bool = True, wanted_routes: Iterable[TableRoute] = (),
                 stale_routes: Iterable[TableRoute] = ()) -> None:
        self.interface = interface
        self.wanted = frozenset(wanted)
        self.stale = frozenset(stale) - self.wanted
        self.wanted_routes = frozenset(LiveRoute(interface, route) for route in wanted_routes)
        self.stale_routes = frozenset(LiveRoute(interface, route) for route in stale_routes) - self.wanted_routes
        self.rewritten = rewritten

    def converged(self, live: set[PolicyRule], routes: set[LiveRoute]) -> bool:
        return (self.wanted <= live and not (self.stale & live)
                and self.wanted_routes <= routes and not (self.stale_routes & routes))


def _table_number(table: object) -> int | None:
    name = str(table)
    return _TABLE_NUMBERS.get(name) or (int(name) if name.isdigit() else None)


def kernel_families() -> tuple[int, ...]:
    """The address families this kernel has: a kernel booted with ipv6.disable=1 cannot even list IPv6 rules."""
    return (4, 6) if os.path.exists("/proc/net/if_inet6") else (4,)


def live_rules() -> set[PolicyRule]:
    """The fwmark rules the kernel has now, in every family it has."""
    rules = set()
    for family in kernel_families():
        for rule in json.loads(run(["ip", f"-{family}", "-j", "rule", "show"]) or "[]"):
            table_number = _table_number(rule.get("table", ""))
            if "fwmark" in rule and table_number is not None:
                suppress = rule.get("suppress_prefixlen")
                rules.add(PolicyRule(family=family, priority=int(rule.get("priority", 0)),
                                     fwmark=int(rule["fwmark"], 0), mask=int(rule.get("fwmask", "0xffffffff"), 0),
                                     table=table_number,
                                     suppress_prefixlength=None if suppress is None else int(suppress)))
    return rules


def describe_rule(rule: PolicyRule) -> str:
    """As ``ip rule`` (``ip -6 rule``) lists it."""
    table = next((name for name, number in _TABLE_NUMBERS.items() if number == rule.table), str(rule.table))
    suppress = "" if rule.suppress_prefixlength is None else f" suppress_prefixlength {rule.suppress_prefixlength}"
    family = "" if rule.family == 4 else "IPv6 "
    return f"{family}{rule.priority}: from all fwmark {rule.fwmark:#x}/{rule.mask:#x} lookup {table}{suppress}"


def live_routes() -> set[LiveRoute]:
    """The unicast routes the kernel has now in tables other than main, local and default, in every family."""
    routes = set()
    for family in kernel_families():
        for route in json.loads(run(["ip", f"-{family}", "-j", "route", "show", "table", "all"]) or "[]"):
            table = _table_number(route.get("table", "main"))
            if table is not None and table not in _TABLE_NUMBERS.values() and "dev" in route \
                    and route.get("type", "unicast") == "unicast":
                routes.add(LiveRoute(str(route["dev"]),
                                     TableRoute(family, table, str(route["dst"]), route.get("gateway"))))
    return routes


class Address(namedtuple("Address", "address dynamic")):
    """An address with its prefix length: ``dynamic`` when it has a lifetime (DHCP, router advertisement)."""

    __slots__ = ()
    address: str
    dynamic: bool


def live_addresses() -> dict[str, tuple[Address, ...]]:
    """Every interface's global addresses, both families."""
    found: dict[str, list[Address]] = {}
    for link in json.loads(run(["ip", "-j", "address", "show"]) or "[]"):
        for info in link.get("addr_info", []):
            if info.get("scope") == "global":
                dynamic = info.get("dynamic", False) or info.get("valid_life_time", 0xFFFFFFFF) != 0xFFFFFFFF
                found.setdefault(str(link["ifname"]), []).append(
                    Address(f"{info['local']}/{info['prefixlen']}", bool(dynamic)))
    return {name: tuple(items) for name, items in found.items()}


def running() -> bool:
    """Whether systemd says networkd runs; asked without D-Bus, which may not be up during boot."""
    return succeeds(["systemctl", "is-active", "--quiet", "systemd-networkd.service"])


def has_carrier(interface: str) -> bool:
    try:
        with open(f"/sys/class/net/{interface}/carrier", encoding="ascii") as stream:
            return stream.read().strip() == "1"
    except OSError:  # absent, or down (reading carrier of a down link fails with EINVAL)
        return False


def _wait(links: list[Link], seconds: float) -> list[Link]:
    """The links still not converged after waiting up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        live, routes = live_rules(), live_routes()
        pending = [link for link in links if not link.converged(live, routes)]
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(0.05)


def _bus(method: str, *args: object) -> Any:
    from . import bus  # dbus-next: only when networkd must really be asked

    try:
        return getattr(bus, method)(*args)
    except bus.NetworkdNotRunning as error:
        raise NetworkdDown(str(error)) from None
    except bus.NetworkdError as error:
        raise NetworkdFailed(str(error)) from None


class LinkState(namedtuple("LinkState", "administrative operational carrier")):
    """networkd's view of a link: e.g. ``configured``, ``routable``, ``carrier`` (see networkctl(1))."""

    __slots__ = ()
    administrative: str
    operational: str
    carrier: str


def link_states(interfaces: Iterable[str]) -> dict[str, LinkState]:
    """networkd's state of each interface that exists; raises :class:`NetworkdDown` when nobody runs networkd."""
    indexes = {}
    for interface in interfaces:
        try:
            indexes[interface] = socket.if_nametoindex(interface)
        except OSError:
            pass  # no such link: networkd knows nothing of it either
    described = _bus("describe_links", list(indexes.values())) if indexes else []
    states = {}
    for interface, text in zip(indexes, described, strict=True):
        link = json.loads(text)
        states[interface] = LinkState(str(link.get("AdministrativeState", "")), str(link.get("OperationalState", "")),
                                      str(link.get("CarrierState", "")))
    return states


def pick_up(links: list[Link]) -> None:
    """Reload; reconfigure only the links that did not converge; fail if they still do not."""
    rewritten = [link for link in links if link.rewritten]
    pending = [link for link in links if not link.rewritten]
    if rewritten:
        _bus("reload")
        pending += _wait([link for link in rewritten if has_carrier(link.interface)], FIRST_WAIT)
    if not pending:
        return
    indexes = []
    for link in pending:
        try:
            indexes.append(socket.if_nametoindex(link.interface))
        except OSError:
            pass  # gone meanwhile; nothing to reconfigure
    _bus("reconfigure", indexes)
    still = _wait(pending, SECOND_WAIT)
    if still:
        names = ", ".join(link.interface for link in still)
        raise NetworkdFailed(f"systemd-networkd did not install the policy rules and table routes of {names}")
