"""Read the ``multiuplink:`` stanza files, merge them, check them, and build the model.

Files: ``/{lib,etc,run}/netplan/multiuplink.d/*.yaml`` under netplan's own
override rules. Each file is checked against the schema on its own (so an
error points into the file that has it); the merged result is then checked
for what a schema cannot see: duplicates, marks inside the mask, interfaces
that netplan really defines, a gateway to route through.
"""

from __future__ import annotations

from ..errors import ConfigError, ConfigErrors, Position
from ..model import Settings, Uplink
from . import netplan, routes, schema
from .inputs import stanza_files
from .yamlsource import Setting, load_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .netplan import NetplanFacts, NetplanInterface

    Merged = dict[str, dict[str, Setting]]
    Problem = tuple[str, str] | None

RESERVED_TABLES = {0: "unspec", 253: "default", 254: "main", 255: "local"}
KERNEL_NAME_MAX = 15
_WILDCARD = "+"
"""iptables matches ``-i eth+`` on every name starting with ``eth``; nft's wildcard ``*`` is not a kernel name
character we accept at all."""
_KERNEL_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@+-")


def load(root: str, reference: bool = False) -> Settings | None:
    """The model for ``root``, or ``None`` when no stanza file exists. Raises :class:`ConfigErrors`.

    netplan's files are read even then, to catch a stanza put where netplan
    would choke on it. ``reference`` checks the schema with jsonschema
    instead of the fast checker.
    """
    errors: list[ConfigError] = []
    try:
        files = stanza_files(root)
    except ConfigError as error:  # an unreadable directory: never taken as "no stanza"
        errors.append(error)
        files = []
    rules = schema.load_schema()
    merged_globals: dict[str, Setting] = {}
    merged_uplinks: dict[str, dict[str, Setting]] = {}
    uplink_positions: dict[str, Position] = {}
    documents = {}
    for real, shown in files:
        try:
            documents[shown] = load_file(real, shown)
        except ConfigError as error:
            errors.append(error)
    defaults = rules["$defs"]["multiuplink"]["properties"]
    mark_hint = _mark_hint(list(documents.values()), defaults["mark-mask"]["default"])
    for shown, document in documents.items():
        if document is None:
            continue  # an empty file sets nothing, as in netplan
        file_errors = schema.check_document(document, rules, reference, mark_hint)
        for file_error in file_errors:  # a bare scalar has no position of its own
            file_error.position = file_error.position or Position(shown, 1, 1)
        if file_errors:
            errors.extend(file_errors)
            continue
        stanza = document.get("network", {}).get("multiuplink")
        if stanza is None:
            continue
        for key, value in stanza.items():
            if key != "uplinks":
                merged_globals[key] = Setting(value, stanza.value_positions[key])
        for name, body in stanza.get("uplinks", {}).items():
            uplink_positions[name] = stanza["uplinks"].key_positions[name]
            entry = merged_uplinks.setdefault(name, {})
            for key, value in body.items():
                entry[key] = Setting(value, body.value_positions[key])
    try:
        facts = netplan.read_netplan(root)
    except ConfigError as error:
        errors.append(error)
        raise ConfigErrors(errors) from None
    for position in facts.misplaced:
        errors.append(ConfigError(position, "netplan does not accept a 'multiuplink' key in its own files",
                                  "move the stanza to /etc/netplan/multiuplink.d/<name>.yaml; "
                                  "netplan would fail to generate any network config with it here"))
    most = defaults["uplinks"]["maxProperties"]
    if len(uplink_positions) > most:  # each file is within the schema's limit; together they must be too
        name, position = list(uplink_positions.items())[most]
        errors.append(ConfigError(position, f"uplink '{name}' is one more than the {most} uplinks all files "
                                  "together may define", f"the stanza files define {len(uplink_positions)} uplinks"))
    if errors:
        raise ConfigErrors(errors)
    if not files:
        return None
    def setting(key: str) -> Any:
        return merged_globals[key].value if key in merged_globals else defaults[key]["default"]
    builder = _Builder(facts, int(setting("mark-mask")), merged_globals.get("mark-mask"))
    uplinks = builder.build(merged_uplinks, uplink_positions)
    if builder.errors:
        raise ConfigErrors(builder.errors)
    return Settings(uplinks=uplinks, mark_mask=builder.mask, priority=int(setting("priority")),
                    rp_filter=setting("rp-filter"), backend=setting("backend"),
                    router_mode=setting("router-mode"))


def _lowest_bit(mask: int) -> int:
    return (mask & -mask).bit_length() - 1


def _capacity(mask: int) -> int | None:
    """The largest uplink number ``mask`` holds, or None when its bits are not one contiguous run."""
    capacity = mask >> _lowest_bit(mask)
    return None if capacity & (capacity + 1) else capacity


def _mark_hint(documents: list[Any], default_mask: int) -> str:
    """The range a 'mark' out of the schema's bounds must fit: the last mark-mask any file sets (files are checked
    one by one, so the mask may sit in another file), else the default."""
    mask = default_mask
    for document in documents:
        value = document.get("network") if isinstance(document, dict) else None
        value = value.get("multiuplink") if isinstance(value, dict) else None
        value = value.get("mark-mask") if isinstance(value, dict) else None
        if type(value) is int and 0 < value <= 0xFFFFFFFF:
            mask = value
    capacity = _capacity(mask)
    return f"accepted: 1 to {capacity}, the numbers mark-mask {mask:#x} holds" if capacity else ""


class _Builder:
    """Resolves merged uplinks against netplan's facts, allocating defaults and collecting every error."""

    def __init__(self, facts: NetplanFacts, mask: int, mask_setting: Setting | None) -> None:
        self.facts = facts
        self.mask = mask
        self.errors: list[ConfigError] = []
        self.shift = _lowest_bit(mask)
        capacity = _capacity(mask)
        if capacity is None:
            position = mask_setting.position if mask_setting else None
            self.error(position, f"mark-mask {mask:#x} is not one contiguous run of bits",
                       "use a mask such as 0xff000000 or 0x3f00")
        self.capacity = capacity or 0

    def error(self, position: Position | None, message: str, hint: str = "") -> None:
        self.errors.append(ConfigError(position, message, hint))

    def build(self, merged: Merged, positions: dict[str, Position]) -> tuple[Uplink, ...]:
        names = sorted(merged)
        resolved = {name: self.resolve_interface(name, merged[name], positions[name]) for name in names}
        self.reject_two_definitions_of_one_interface(resolved, merged)
        sharing = [definition.netplan_id for definition in resolved.values() if definition is not None]
        marks = self.allocate_marks(names, merged, positions)
        tables = self.allocate_tables(names, merged, marks)
        uplinks = []
        for name in names:
            definition = resolved[name]
            if definition is None or name not in marks or name not in tables:
                continue
            by_address = sharing.count(definition.netplan_id) > 1 or routes.several_isps(definition)
            found = routes.RouteResolver(name, merged[name], definition, by_address, self.error).resolve()
            if found is None:
                continue
            uplinks.append(Uplink(name=name, netplan_id=definition.netplan_id, interface=definition.name,
                                  mark=marks[name], fwmark=marks[name] << self.shift, table=tables[name],
                                  routes=found.routes, addresses=found.addresses,
                                  address_origins=found.address_origins, by_address=by_address))
        self.reject_shared_addresses(uplinks, merged)
        return tuple(uplinks)

    def resolve_interface(self, name: str, entry: dict[str, Setting], position: Position) -> NetplanInterface | None:
        """The netplan definition the uplink names: by netplan ID, else by unambiguous kernel name."""
        if "interface" not in entry:
            self.error(position, f"uplink '{name}' has no 'interface'",
                       "add 'interface: <netplan ID>' naming the netplan interface it arrives on")
            return None
        wanted = entry["interface"]
        interfaces = self.facts.interfaces
        definition = interfaces.get(wanted.value)
        if definition is None:
            by_name = [d for d in interfaces.values() if d.name == wanted.value]
            if len(by_name) > 1:
                ids = ", ".join(sorted(d.netplan_id for d in by_name))
                self.error(wanted.position, f"interface '{wanted.value}' of uplink '{name}' is ambiguous",
                           f"netplan definitions {ids} all name it; use one netplan ID")
                return None
            definition = by_name[0] if by_name else None
        if definition is None:
            known = ", ".join(sorted(interfaces)) or "none"
            self.error(wanted.position, f"interface '{wanted.value}' of uplink '{name}' is not defined in netplan",
                       f"netplan defines: {known}")
            return None
        if definition.renderer != "networkd":
            self.error(wanted.position, f"interface '{wanted.value}' of uplink '{name}' is rendered by "
                       f"{definition.renderer}, not systemd-networkd",
                       f"netplan writes no 10-netplan-{definition.netplan_id}.network for our rules and routes to "
                       "extend; set 'renderer: networkd' on it in netplan (or on its section, or network:), "
                       "or leave this uplink out")
            return None
        if not _safe_name(definition.netplan_id, 64):
            self.error(wanted.position, f"netplan ID '{definition.netplan_id}' cannot be used in a file name",
                       "rename the netplan definition with letters, digits, '_', '.', '@', '+' or '-'")
            return None
        if definition.name == "":
            self.error(wanted.position, f"netplan interface '{definition.netplan_id}' of uplink '{name}' has an "
                       f"empty set-name (at {definition.position!r})",
                       "netplan then writes 'Name=' with no name, which matches every link; set 'set-name' to the "
                       "kernel name the interface gets, or remove it")
            return None
        if definition.name is None:
            self.error(wanted.position, f"the kernel name of interface '{wanted.value}' is not known",
                       "its netplan 'match' uses a pattern or a MAC address; add 'set-name:' to the definition")
            return None
        if not _safe_name(definition.name, KERNEL_NAME_MAX):
            self.error(wanted.position, f"interface name '{definition.name}' of uplink '{name}' is not usable",
                       "kernel names have 1 to 15 letters, digits, '_', '.', '@', '+' or '-' and are not '.' or '..'")
            return None
        if definition.name.endswith(_WILDCARD):
            self.error(wanted.position, f"interface name '{definition.name}' of uplink '{name}' ends in "
                       f"'{_WILDCARD}', which iptables reads as a wildcard",
                       f"'-i {definition.name}' would match every interface whose name starts with "
                       f"'{definition.name[:-1]}'; rename the interface with 'set-name:'")
            return None
        return definition

    def reject_two_definitions_of_one_interface(self, resolved: dict[str, NetplanInterface | None],
                                                merged: Merged) -> None:
        """Uplinks on one kernel interface must name one netplan ID: networkd applies one definition's
        .network file to it, so the drop-in of the other would be ignored, and the ruleset would list it twice."""
        owner: dict[str, tuple[str, str]] = {}
        for name, definition in resolved.items():
            if definition is None or definition.name is None:
                continue
            first, first_id = owner.setdefault(definition.name, (name, definition.netplan_id))
            if first_id != definition.netplan_id:
                self.error(merged[name]["interface"].position,
                           f"uplink '{name}' names netplan ID '{definition.netplan_id}' and uplink '{first}' "
                           f"names '{first_id}': both are kernel interface '{definition.name}'",
                           "systemd-networkd configures an interface from one netplan definition only; name the "
                           "same netplan ID in both uplinks (several ISPs on one interface)")
                resolved[name] = None

    def reject_shared_addresses(self, uplinks: list[Uplink], merged: Merged) -> None:
        """Uplinks selected by address on one interface must not share an address: it could not tell them apart."""
        owner: dict[tuple[str, object], str] = {}
        for uplink in uplinks:
            for address in uplink.addresses if uplink.by_address else ():
                first = owner.setdefault((uplink.interface, address.ip), uplink.name)
                if first != uplink.name:
                    entry = merged[uplink.name]
                    self.error((entry.get("addresses") or entry["interface"]).position,
                               f"address {address.ip} of uplink '{uplink.name}' is also an address of uplink "
                               f"'{first}' on interface '{uplink.interface}'",
                               "each ISP on a shared interface needs addresses of its own: connections are "
                               "told apart by the address they arrive for")

    def allocate_marks(self, names: list[str], merged: Merged, positions: dict[str, Position]) -> dict[str, int]:
        """Explicit marks first, then the smallest free numbers in name order."""
        def check(name: str, value: int) -> Problem:
            if value > self.capacity:
                return (f"mark {value} of uplink '{name}' does not fit in mark-mask {self.mask:#x}",
                        f"use a mark from 1 to {self.capacity}, or widen mark-mask")
            return None

        def first_free(name: str, used: dict[int, str]) -> int | None:
            candidate = next(number for number in range(1, len(used) + 2) if number not in used)
            if candidate <= self.capacity:
                return candidate
            self.error(positions[name], f"no free mark left for uplink '{name}' in mark-mask {self.mask:#x}",
                       "widen mark-mask")
            return None

        return self.allocate("mark", names, merged, check, first_free)

    def allocate_tables(self, names: list[str], merged: Merged, marks: dict[str, int]) -> dict[str, int]:
        """Explicit tables first, then ``100 + mark`` or the next free one."""
        def check(name: str, value: int) -> Problem:
            if value in RESERVED_TABLES:
                return (f"table {value} of uplink '{name}' is the kernel's '{RESERVED_TABLES[value]}' table",
                        "use a table from 1 to 252 or above 255")
            return None

        def first_free(name: str, used: dict[int, str]) -> int | None:
            if name not in marks:
                return None  # its mark is in error already
            candidate = 100 + marks[name]
            while candidate in used or candidate in RESERVED_TABLES:
                candidate += 1
            return candidate

        return self.allocate("table", names, merged, check, first_free)

    def allocate(self, key: str, names: list[str], merged: Merged, check: Callable[[str, int], Problem],
                 first_free: Callable[[str, dict[int, str]], int | None]) -> dict[str, int]:
        """Numbers no two uplinks share: the explicit ones (each ``check``-ed), then ``first_free`` for the rest."""
        chosen: dict[str, int] = {}
        used: dict[int, str] = {}
        for name in names:
            setting = merged[name].get(key)
            if setting is None:
                continue
            value = int(setting.value)
            problem = check(name, value)
            if problem is None and value in used:
                problem = (f"{key} {value} of uplink '{name}' is already used by uplink '{used[value]}'",
                           f"give each uplink its own {key}, or leave '{key}' out to have one allocated")
            if problem:
                self.error(setting.position, *problem)
            else:
                chosen[name], used[value] = value, name
        for name in names:
            if key not in merged[name]:
                allocated = first_free(name, used)
                if allocated is not None:
                    chosen[name], used[allocated] = allocated, name
        return chosen


def _safe_name(name: str, longest: int) -> bool:
    """Kernel-legal and inert in nft strings, INI values, sysctl keys and file names."""
    return (0 < len(name) <= longest and name not in (".", "..")
            and not name.startswith("-") and set(name) <= _KERNEL_NAME_CHARS)

