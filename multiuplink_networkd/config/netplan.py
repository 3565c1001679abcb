"""Read netplan's own YAML for the facts the stanza needs about each interface.

Validating these files is netplan's job: a key of the wrong type is skipped, never
an error. Only a YAML syntax error (a :class:`ConfigError` from yamlsource) stops
the read, because then we cannot know what netplan will do either.

How netplan combines definitions (netplan 0.106, checked against ``src/parse.c``
and ``/lib/netplan/generate`` on this host; documented in netplan-generate(8)
"HANDLING MULTIPLE FILES" and ``doc/structure-id.md``):

* Files are read in basename order whatever their directory; a definition ID
  seen again updates the same definition (``handle_network_type`` looks the ID up
  in ``parsed_defs``). A key repeated inside one mapping is processed again in
  the same way, so duplicate keys merge exactly like later files do.
* Scalars: the later value wins. Exception: ``gateway4``/``gateway6`` use
  ``set_str_if_null`` and netplan aborts on a second, different value; we keep
  the later one.
* Sequences are concatenated: ``addresses`` are appended without repeats
  (``handle_generic_addresses``), ``routes`` appended unless an equal route is
  already there (``is_route_present``). Mappings such as ``match`` merge key by key.
* Renderer: a definition's own ``renderer`` wins; else the section ``renderer``
  in force where the ID is *first* defined (order inside the section matters,
  ``npp->current.backend``); else the last ``network: renderer`` of all files
  (``finish_iterator``); else networkd.
* Kernel name (``[Match] Name=`` of the ``.network``): ``set-name``; else a
  ``match: name``; else, for a physical device (ethernets, wifis, modems) whose
  ID was once defined without ``match``, the ID: netplan sets it then
  (``set_str_if_null``) and a later ``match`` without ``name`` keeps it. A MAC
  or driver match alone leaves it unknown. ``set-name: ""`` writes an empty
  ``Name=``, which matches every link.
* Integers (``metric``, ``table``) are C's ``strtoull`` in base 10: leading
  white space and a sign are accepted, ``""`` is 0, anything else or a value
  above 4294967295 makes netplan fail, and so it is an error here too.
* Addresses: netplan writes the plain ones (IPv4, then IPv6), then those with
  options (``- 10.0.0.1/24: {label: ...}``, of which only the first key counts);
  an entry with options repeated ends the list it is in.
"""

from __future__ import annotations

import ipaddress
from collections import namedtuple

from ..errors import ConfigError, Position
from .inputs import yaml_files
from .yamlsource import MappingNode, ScalarNode, SequenceNode, compose_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .cyaml import Node

    IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
    IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

SECTIONS = frozenset(("ethernets", "wifis", "modems", "bonds", "bridges", "vlans", "tunnels", "vrfs",
                      "dummy-devices", "virtual-ethernets", "nm-devices"))
"""Keys under ``network:`` whose entries are interface definitions keyed by netplan ID."""

DEFAULT_RENDERER = "networkd"
MAIN_TABLE = 254
MISPLACED_KEY = "multiuplink"
_GLOB_CHARACTERS = frozenset("*?[")
_TRUE = frozenset(("true", "yes", "on", "y"))
_FALSE = frozenset(("false", "no", "off", "n"))
_KERNEL_DEFAULT_METRIC = {4: 0, 6: 1024}
"""Metric the kernel gives a route that networkd adds without ``Metric=``."""
_PHYSICAL = frozenset(("ethernets", "wifis", "modems"))
"""Sections whose devices exist before netplan: ``match`` and ``set-name`` apply, the ID names them only by default."""
_C_SPACE = " \t\n\v\f\r"
_ULLONG_MAX = (1 << 64) - 1
_UINT_MAX = (1 << 32) - 1
_METRIC_UNSPEC = _UINT_MAX
"""netplan's "no metric" sentinel: ``metric: 4294967295`` writes no ``Metric=``."""
_MAX_DEPTH = 16
"""Deeper YAML is not netplan's (its deepest keys sit about 7 levels down): the walk stops there (alias cycles are
refused before, by :func:`.yamlsource.compose_text`)."""


class Located(str):
    """A scalar of netplan's YAML that remembers where it was written, so messages can point there."""

    position: Position


class DeclaredRoute(namedtuple("DeclaredRoute", "family gateway on_link table metric position")):
    """A default route netplan declares: ``gateway4``/``gateway6``, or a route to default, 0.0.0.0/0 or ::/0.

    ``gateway`` is None for a device route (``scope: link`` without ``via``); ``table`` is the main
    table, a VRF's or the route's own; ``metric`` the kernel's (0 for IPv4, 1024 for IPv6) when unset;
    ``position`` where its gateway (or destination) is written.
    """

    __slots__ = ()
    family: int
    gateway: IPAddress | None
    on_link: bool
    table: int
    metric: int
    position: Position | None


class NetplanInterface(namedtuple("NetplanInterface", (
        "netplan_id", "kind", "name", "renderer", "addresses", "dhcp4", "dhcp6", "accept_ra", "ipv6_link_local",
        "default_routes", "origins", "position"))):
    """What netplan makes of one definition after merging every file that mentions its ID.

    ``name`` is the kernel name when netplan's YAML fixes it, else None (a match by
    MAC, driver or glob; an ``nm-devices`` connection). ``accept_ra`` is None when unset (networkd
    then accepts router advertisements unless the link forwards IPv6); ``ipv6_link_local`` whether
    ``link-local`` keeps IPv6 link-local addressing, without which there are no RAs.
    ``default_routes``: every default route declared, both families, every table, in written order.
    ``origins``: where ``dhcp4``, ``dhcp6``, ``accept-ra`` and the first of ``addresses`` are written.
    ``position`` is the ID's key in the last file defining it.
    """

    __slots__ = ()
    netplan_id: str
    kind: str
    name: str | None
    renderer: str
    addresses: tuple[IPInterface, ...]
    dhcp4: bool
    dhcp6: bool
    accept_ra: bool | None
    ipv6_link_local: bool
    default_routes: tuple[DeclaredRoute, ...]
    origins: dict[str, Position]
    position: Position | None


class NetplanFacts(namedtuple("NetplanFacts", ("interfaces", "files", "misplaced", "default_renderer"))):
    """All definitions by netplan ID, the files read (in order),
    where a ``multiuplink`` key sits in netplan's own files (netplan rejects it), and
    the network-wide renderer."""

    __slots__ = ()
    interfaces: dict[str, NetplanInterface]
    files: tuple[str, ...]
    misplaced: tuple[Position, ...]
    default_renderer: str


class _Definition:
    """One netplan ID while files are still being read."""

    __slots__ = ("implicit_name", "keys", "kind", "position", "section_renderer")

    def __init__(self, kind: str, section_renderer: str | None) -> None:
        self.kind = kind
        self.section_renderer = section_renderer
        self.keys: dict[str, Any] = {}
        self.position: Position | None = None
        self.implicit_name: str | None = None
        """The ID, once a body of a physical device came without ``match``: its name unless ``match`` names one."""


def read_netplan(root: str) -> NetplanFacts:
    """Facts about every interface netplan defines under ``root``."""
    definitions: dict[str, _Definition] = {}
    misplaced: list[Position] = []
    files: list[str] = []
    network_renderer = None
    for real, shown in yaml_files(root):
        files.append(real)
        document = compose_file(real, shown)
        for key, value in _pairs(document):
            if key.value == MISPLACED_KEY:
                misplaced.append(_position(key, shown))
            elif key.value == "network":
                for network_key, section in _pairs(value):
                    name = network_key.value
                    if name == MISPLACED_KEY:
                        misplaced.append(_position(network_key, shown))
                    elif name == "renderer" and isinstance(section, ScalarNode):
                        network_renderer = section.value
                    elif name in SECTIONS:
                        _read_section(name, section, shown, definitions, misplaced)
    default_renderer = network_renderer or DEFAULT_RENDERER
    vrf_tables = _vrf_tables(definitions)
    interfaces = {netplan_id: _interface(netplan_id, definition, default_renderer, vrf_tables.get(netplan_id))
                  for netplan_id, definition in definitions.items()}
    return NetplanFacts(interfaces, tuple(files), tuple(misplaced), default_renderer)


def _read_section(kind: str, section: Node, shown: str, definitions: dict[str, _Definition],
                  misplaced: list[Position]) -> None:
    section_renderer = None
    for id_node, body in _pairs(section):
        netplan_id = id_node.value
        if netplan_id == "renderer":
            if isinstance(body, ScalarNode):
                section_renderer = body.value
            continue
        if not isinstance(body, MappingNode):
            continue
        definition = definitions.get(netplan_id)
        if definition is None:
            definition = definitions[netplan_id] = _Definition(kind, section_renderer)
        elif definition.kind != kind:
            continue  # netplan refuses: "Updated definition changes device type"
        definition.position = _position(id_node, shown)
        _merge(definition.keys, body, shown, 0)
        if kind in _PHYSICAL and "match" not in definition.keys and definition.implicit_name is None:
            definition.implicit_name = netplan_id
        misplaced.extend(_position(key, shown) for key, _ in _pairs(body) if key.value == MISPLACED_KEY)


def _pairs(node: Node | None) -> list[tuple[ScalarNode, Node]]:
    """A mapping's entries with plain keys, repeats included; nothing for any other node."""
    if not isinstance(node, MappingNode):
        return []
    return [(key, value) for key, value in node.value if isinstance(key, ScalarNode)]


def _position(node: Node, shown: str) -> Position:
    mark = node.start_mark
    return Position(shown, mark.line + 1, mark.column + 1)


def _merge(target: dict[str, Any], mapping: Node, shown: str, depth: int) -> dict[str, Any]:
    """Apply one YAML mapping onto ``target`` by netplan's rules: scalars replace, sequences append, mappings merge."""
    if depth > _MAX_DEPTH:
        return target
    for key_node, value in _pairs(mapping):
        key = _located(key_node, shown)  # a dict keeps the first key object: an address with options keeps its place
        old = target.get(key)
        if isinstance(value, MappingNode):
            target[key] = _merge(old if isinstance(old, dict) else {}, value, shown, depth + 1)
        elif isinstance(value, SequenceNode):
            items = [_plain(item, shown, depth + 1) for item in value.value]
            if key == "addresses" and depth == 0:
                items = _until_repeated_option(old if isinstance(old, list) else [], items)
            target[key] = old + items if isinstance(old, list) else items
        else:
            target[key] = _located(value, shown)
    return target


def _until_repeated_option(old: list[Any], items: list[Any]) -> list[Any]:
    """netplan 0.106 stops reading an ``addresses`` list at an entry with options whose address (the first key)
    already has options: the rest of that list is not configured (checked with ``/lib/netplan/generate``)."""
    seen = {next(iter(item)) for item in old if isinstance(item, dict) and item}
    for index, item in enumerate(items):
        if isinstance(item, dict) and item:
            address = next(iter(item))
            if address in seen:
                return items[:index]
            seen.add(address)
    return items


def _plain(node: Node, shown: str, depth: int) -> Any:
    """A YAML node as str, list or dict; scalars stay text, as netplan reads them, and remember their place."""
    if isinstance(node, ScalarNode):
        return _located(node, shown)
    if depth > _MAX_DEPTH:
        return None
    if isinstance(node, SequenceNode):
        return [_plain(item, shown, depth + 1) for item in node.value]
    return _merge({}, node, shown, depth)


def _located(node: Node, shown: str) -> Located:
    text = Located(node.value)
    text.position = _position(node, shown)
    return text


def _vrf_tables(definitions: dict[str, _Definition]) -> dict[str, int]:
    """Routing table by netplan ID, for VRFs and their members.

    netplan writes a VRF's table into the VRF's own routes; networkd puts a member's
    routes without ``Table=`` into its VRF's table (``route_section_verify``).
    """
    tables: dict[str, int] = {}
    for netplan_id, definition in definitions.items():
        table = _unsigned(definition.keys.get("table")) if definition.kind == "vrfs" else None
        if table:
            tables[netplan_id] = table
            members = definition.keys.get("interfaces")
            for member in members if isinstance(members, list) else ():
                if isinstance(member, str):
                    tables.setdefault(member, table)
    return tables


def _interface(netplan_id: str, definition: _Definition, default_renderer: str,
               vrf_table: int | None) -> NetplanInterface:
    keys = definition.keys
    own_renderer = keys.get("renderer")
    renderer = (own_renderer if isinstance(own_renderer, str) else None) or definition.section_renderer
    link_local = keys.get("link-local")
    addresses = keys.get("addresses")
    origins = {key: keys[key].position for key in ("dhcp4", "dhcp6", "accept-ra") if isinstance(keys.get(key), Located)}
    first_address = next((next(iter(item), None) if isinstance(item, dict) else item for item in addresses
                          if isinstance(item, (Located, dict))), None) if isinstance(addresses, list) else None
    if isinstance(first_address, Located):
        origins["addresses"] = first_address.position
    return NetplanInterface(
        netplan_id=netplan_id, kind=definition.kind, name=_kernel_name(netplan_id, definition),
        renderer=renderer or default_renderer, addresses=_addresses(addresses),
        dhcp4=_boolean(keys.get("dhcp4")) is True, dhcp6=_boolean(keys.get("dhcp6")) is True,
        accept_ra=_boolean(keys.get("accept-ra")),
        ipv6_link_local="ipv6" in link_local if isinstance(link_local, list) else True,
        default_routes=_default_routes(keys, vrf_table or MAIN_TABLE), origins=origins,
        position=definition.position)


def _kernel_name(netplan_id: str, definition: _Definition) -> str | None:
    """The literal ``[Match] Name=`` netplan writes (``""`` for an empty one), else None (a pattern, a MAC...)."""
    if definition.kind == "nm-devices":
        return None  # the ID names a NetworkManager connection, not a device
    if definition.kind not in _PHYSICAL:
        return netplan_id  # netplan creates it under that name; it refuses 'match' and 'set-name' here
    keys = definition.keys
    set_name = keys.get("set-name")
    if isinstance(set_name, str):
        return set_name
    match = keys.get("match")
    name = match.get("name") if isinstance(match, dict) else None
    if not isinstance(name, str):
        name = definition.implicit_name
    return None if name is None or _GLOB_CHARACTERS.intersection(name) else name


def _addresses(value: Any) -> tuple[IPInterface, ...]:
    """Static addresses without repeats, in netplan's order: plain IPv4, plain IPv6, then those with options.

    An entry with options is a mapping (``- 10.0.0.1/24: {label: ...}``) of which netplan reads the first key.
    """
    groups: dict[Any, dict[Any, None]] = {4: {}, 6: {}, "options": {}}
    for item in value if isinstance(value, list) else ():
        options = isinstance(item, dict)
        if options:
            item = next(iter(item), None)
        if isinstance(item, str) and "/" in item:
            try:
                address = ipaddress.ip_interface(item)
            except ValueError:
                continue
            groups["options" if options else address.version][address] = None
    return tuple(dict.fromkeys(address for group in groups.values() for address in group))


def _default_routes(keys: dict[str, Any], default_table: int) -> tuple[DeclaredRoute, ...]:
    """Every default route the definition declares, ``gateway4``/``gateway6`` first, then ``routes`` in order."""
    found = []
    for version in (4, 6):
        legacy = keys.get(f"gateway{version}")
        gateway = _address(legacy, version)
        if gateway is not None:
            found.append(DeclaredRoute(version, gateway, False, default_table, _KERNEL_DEFAULT_METRIC[version],
                                       getattr(legacy, "position", None)))
    routes = keys.get("routes")
    for route in routes if isinstance(routes, list) else ():
        if not isinstance(route, dict):
            continue
        metric, table = _unsigned(route.get("metric")), _unsigned(route.get("table"))  # checked on every route
        family = _default_route_family(route)
        if family is None:
            continue
        via = route.get("via")
        gateway = _address(via, family)
        if gateway is None and (via is not None or route.get("scope") != "link"):
            continue  # netplan refuses a unicast route without a usable 'via' unless it is scope link
        where = via if via is not None else route.get("to")
        found.append(DeclaredRoute(family, gateway, _boolean(route.get("on-link")) is True,
                                   table or default_table,  # netplan: table 0 means unset
                                   _KERNEL_DEFAULT_METRIC[family] if metric in (None, _METRIC_UNSPEC) else metric,
                                   getattr(where, "position", None)))
    return tuple(found)


def _default_route_family(route: dict[str, Any]) -> int | None:
    """4 or 6 for a unicast default route (``to: default`` takes its family from ``via``), else None."""
    kind = route.get("type", "unicast")
    if not isinstance(kind, str) or kind.lower() != "unicast":
        return None
    to = route.get("to")
    if to == "default":
        via = route.get("via")
        return 6 if isinstance(via, str) and ":" in via else 4 if isinstance(via, str) else None
    if not isinstance(to, str) or "/" not in to:
        return None  # networkd reads a bare "0.0.0.0" as 0.0.0.0/32
    try:
        network = ipaddress.ip_network(to, strict=False)
    except ValueError:
        return None
    return network.version if network.prefixlen == 0 else None


def _address(value: Any, version: int) -> IPAddress | None:
    if not isinstance(value, str):
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    return address if address.version == version else None


def _boolean(value: Any) -> bool | None:
    """netplan's booleans, case-insensitive: true/yes/on/y and false/no/off/n."""
    if not isinstance(value, str):
        return None
    lowered = value.lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else None


def _unsigned(value: Any) -> int | None:
    """An integer as netplan reads it (``g_ascii_strtoull`` in base 10, at most 4294967295); None when unset.

    Raises :class:`ConfigError` where netplan fails, so that no route is read as another (a ``table: +200``
    taken as unset would make a main-table default).
    """
    if not isinstance(value, str):
        return None
    text = value.lstrip(_C_SPACE)
    negative = text.startswith("-")
    digits = text[1:] if text[:1] in ("+", "-") else text
    significant = digits.lstrip("0")
    if (value and not (digits.isascii() and digits.isdigit())) or len(significant) > 20:  # 21 digits: > 2**64
        raise _invalid_unsigned(value)
    number = int(significant or "0")
    if number > _ULLONG_MAX:  # strtoull's ERANGE
        raise _invalid_unsigned(value)
    number = -number & _ULLONG_MAX if negative else number  # strtoull negates in unsigned arithmetic
    if number > _UINT_MAX:
        raise _invalid_unsigned(value)
    return number


def _invalid_unsigned(value: str) -> ConfigError:
    shown = value if len(value) <= 24 else value[:20] + "..."
    return ConfigError(getattr(value, "position", None), f"invalid unsigned int value '{shown}'",
                       "netplan fails on it too; write a number from 0 to 4294967295")
