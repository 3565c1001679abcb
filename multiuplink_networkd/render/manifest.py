"""The manifest: what the other rendered files ask of the host, in a form the host side reads back.

``apply`` compares the manifest it is about to write with the one written
last time: which links' drop-ins changed, which policy rules must appear or
go, which interfaces need rp_filter set or reset. So nothing ever parses a
drop-in or a sysctl.d file back, and the host side never reads the user's
configuration. JSON with sorted keys: byte-identical for the same model.
"""

from __future__ import annotations

import json
from collections import namedtuple

from .. import paths
from ..model import PolicyRule, Settings

FORMAT = 1


class AppliedUplink(namedtuple("AppliedUplink", "name interface dropin rp_filter rules")):
    """One uplink as the host sees it: its kernel interface, its drop-in, its rp_filter value, its rules."""

    __slots__ = ()
    name: str
    interface: str
    dropin: str
    rp_filter: int
    rules: tuple[PolicyRule, ...]


def render(settings: Settings) -> str:
    uplinks = [{"name": u.name, "interface": u.interface, "dropin": paths.networkd_dropin(u.netplan_id),
                "rp_filter": settings.rp_filter_value(),
                "rules": [rule._asdict() for rule in settings.policy_rules(u)]}
               for u in settings.uplinks]
    return json.dumps({"format": FORMAT, "uplinks": uplinks}, indent=1, sort_keys=True) + "\n"


def parse(text: str | None) -> tuple[AppliedUplink, ...]:
    """The uplinks of a manifest this module wrote; none for a missing, foreign or damaged one."""
    if not text:
        return ()
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            return ()
        return tuple(AppliedUplink(name=str(u["name"]), interface=str(u["interface"]), dropin=str(u["dropin"]),
                                   rp_filter=int(u["rp_filter"]),
                                   rules=tuple(_rule(r) for r in u["rules"]))
                     for u in data["uplinks"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return ()


def _rule(fields: dict[str, int | None]) -> PolicyRule:
    return PolicyRule(**{key: None if value is None else int(value) for key, value in fields.items()})
