"""The manifest: what the other rendered files ask of the host, in a form the host side reads back.

``apply`` compares the manifest it is about to write with the one written
last time: which links' drop-ins changed, which policy rules and table routes
must appear or go, which interfaces need rp_filter set or reset. ``status``
and ``explain`` compare it with the live state. So nothing ever parses a
drop-in or a sysctl.d file back, and the host side never reads the user's
configuration. JSON with sorted keys: byte-identical for the same model.
"""

from __future__ import annotations

import json
from collections import namedtuple

from .. import paths
from ..model import PolicyRule, Settings, TableRoute

FORMAT = 2


class AppliedUplink(namedtuple("AppliedUplink", "name interface dropin rp_filter rules table fwmark routes")):
    """One uplink as the host sees it: its kernel interface, drop-in, rp_filter value, rules, table, mark, routes."""

    __slots__ = ()
    name: str
    interface: str
    dropin: str
    rp_filter: int
    rules: tuple[PolicyRule, ...]
    table: int
    fwmark: int
    routes: tuple[TableRoute, ...]


class Manifest(namedtuple("Manifest", "mark_mask uplinks")):
    """Every uplink, and the mark bits they share."""

    __slots__ = ()
    mark_mask: int
    uplinks: tuple[AppliedUplink, ...]


EMPTY = Manifest(0, ())


def render(settings: Settings) -> str:
    uplinks = [{"name": u.name, "interface": u.interface, "dropin": paths.networkd_dropin(u.netplan_id),
                "rp_filter": settings.rp_filter_value(), "table": u.table, "fwmark": u.fwmark,
                "rules": [rule._asdict() for rule in settings.policy_rules(u)],
                "routes": [route._asdict() for route in settings.table_routes(u)]}
               for u in settings.uplinks]
    return json.dumps({"format": FORMAT, "mark_mask": settings.mark_mask, "uplinks": uplinks},
                      indent=1, sort_keys=True) + "\n"


def parse(text: str | None) -> Manifest:
    """The manifest this module wrote; no uplinks for a missing, foreign, older or damaged one."""
    if not text:
        return EMPTY
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            return EMPTY
        return Manifest(int(data["mark_mask"]), tuple(
            AppliedUplink(name=str(u["name"]), interface=_interface(u["interface"]), dropin=str(u["dropin"]),
                          rp_filter=int(u["rp_filter"]), rules=tuple(_rule(r) for r in u["rules"]),
                          table=int(u["table"]), fwmark=int(u["fwmark"]),
                          routes=tuple(TableRoute(int(r.get("family", 4)), int(r["table"]), str(r["destination"]),
                                                  None if r["gateway"] is None else str(r["gateway"]))
                                       for r in u["routes"]))
            for u in data["uplinks"]))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return EMPTY


def _rule(fields: dict[str, int | None]) -> PolicyRule:
    """A rule; one written before rules had a family is IPv4's."""
    return PolicyRule(**{"family": 4, **{key: None if value is None else int(value) for key, value in fields.items()}})


def _interface(value: object) -> str:
    """A name the kernel accepts (dev_valid_name): one from a damaged manifest must not become a /proc path."""
    name = str(value)
    if not 0 < len(name.encode()) < 16 or name in (".", "..") or any(c in "/:" or c.isspace() for c in name):
        raise ValueError(f"not an interface name: {name!r}")
    return name
