"""Load YAML into plain values that remember where they came from.

Mappings become :class:`Node` dicts and sequences :class:`Seq` lists carrying the
position of the collection and of each key and item, so every later check can
point at ``file:line:col``. This runs on the boot path: :mod:`.cyaml` loads only
PyYAML's C parser; the node classes it composes are re-exported here for netplan's reader.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from ..errors import ConfigError, Position
from . import cyaml
from .cyaml import MappingNode as MappingNode, ScalarNode as ScalarNode, SequenceNode as SequenceNode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

    from .cyaml import Node as YAMLNode

MAX_FILE_BYTES = 2 << 20
"""Refuse larger files (netplan has no limit): twice the largest real config we could make up, which
bounds memory and time on the boot path.

A trunk with every VLAN ID (4094), each with an IPv4 and an IPv6 address, a default route and a
policy rule, is 0.95 MB of netplan YAML. Composing costs at most about 160 bytes of memory per byte
(a flow list of one-letter scalars; netplan-shaped YAML about 60): measured, 2 MiB compose in at most
~330 MiB and a few seconds, files are composed one at a time.
"""

MAX_NESTING = 1000
"""Collections nested deeper are refused before composing (see :func:`.cyaml.too_deep`): netplan's deepest
keys sit about 7 levels down, a stanza's 5, and libyaml's composer crashes at some 30000."""

_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"


class Node(dict):  # type: ignore[type-arg]
    """A YAML mapping; ``position`` is the mapping's, ``key_positions``/``value_positions`` per key."""

    __slots__ = ("key_positions", "position", "value_positions")

    def __init__(self, position: Position) -> None:
        super().__init__()
        self.position = position
        self.key_positions: dict[Any, Position] = {}
        self.value_positions: dict[Any, Position] = {}


class Seq(list):  # type: ignore[type-arg]
    """A YAML sequence; ``item_positions[i]`` is where item ``i`` starts."""

    __slots__ = ("item_positions", "position")

    def __init__(self, position: Position) -> None:
        super().__init__()
        self.position = position
        self.item_positions: list[Position] = []


class Setting:
    """A merged value and the place that set it last."""

    __slots__ = ("position", "value")

    def __init__(self, value: Any, position: Position) -> None:
        self.value = value  # a Seq keeps its item positions
        self.position = position


def position_of(container: Any, key: Any) -> Position:
    """Where ``container[key]`` stands, or the container itself when the key is absent."""
    if isinstance(container, Node):
        return container.value_positions.get(key, container.position)
    if isinstance(container, Seq) and isinstance(key, int) and 0 <= key < len(container):
        return container.item_positions[key]
    position: Position = container.position
    return position


def load_file(path: str, shown_path: str) -> Any:
    """Parse one stanza file; ``shown_path`` is the name errors use. Empty files load as ``None``."""
    return load_text(_read_limited(path, shown_path), shown_path)


def load_text(data: bytes, shown_path: str) -> Any:
    """Parse stanza YAML bytes; a syntax error becomes a :class:`ConfigError` at its line and column.

    Only the first document is read, as netplan does; a later one that is not empty is an error,
    since it would be ignored.
    """
    root = compose_text(data, shown_path, later_documents=True)
    return None if root is None else _convert(root, shown_path)


def compose_file(path: str, shown_path: str) -> YAMLNode | None:
    """Raw YAML nodes of a netplan file: scalars stay text and repeated keys stay, as netplan's parser sees them."""
    return compose_text(_read_limited(path, shown_path), shown_path)


def _read_limited(path: str, shown_path: str) -> bytes:
    """The file's bytes; anything but a regular file (a FIFO, a directory...) is an error, never a hang."""
    def refuse(message: str, hint: str = _UNUSABLE_HINT) -> ConfigError:
        return ConfigError(Position(shown_path, 1, 1), message, hint)

    try:
        stream, kind = _open_input(path)
        if stream is None:
            raise refuse(f"cannot read the file: it is {kind}")
        with stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        if exc.errno == errno.ENOENT and os.path.islink(path):
            raise refuse(f"cannot read the file: it is a symbolic link to '{os.readlink(path)}', which does not "
                         "exist") from None
        raise refuse(f"cannot read the file: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise refuse(f"file is larger than {MAX_FILE_BYTES >> 20} MiB",
                     "a multiuplink or netplan config is a few kilobytes, even with every VLAN ID in use; "
                     "check the file")
    return data


def _open_input(path: str) -> tuple[BinaryIO | None, str]:
    """The file opened for reading, or None and what it is instead; never blocks on a FIFO."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        kind = _FILE_KINDS.get(stat.S_IFMT(os.fstat(descriptor).st_mode), "not a regular file")
        if not kind:
            return os.fdopen(descriptor, "rb"), ""
    except BaseException:
        os.close(descriptor)
        raise
    os.close(descriptor)
    return None, kind


_FILE_KINDS = {stat.S_IFREG: "", stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
               stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}
_UNUSABLE_HINT = ("make it a regular file, remove it, or link it to /dev/null to mask a file of the same name "
                  "(netplan fails on such an entry too)")


def compose_text(data: bytes, shown_path: str, later_documents: bool = False) -> YAMLNode | None:
    """Compose the first YAML document; a syntax error becomes a :class:`ConfigError` at its line and column.

    Later documents are not parsed, as netplan does, unless ``later_documents`` asks for an error at
    the first of them that is not empty.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(Position(shown_path, line, column), "file is not valid UTF-8",
                          "save the file as UTF-8") from None
    try:
        deep = cyaml.too_deep(text, MAX_NESTING, first_only=not later_documents)
        if deep is not None:
            raise ConfigError(Position(shown_path, deep.line + 1, deep.column + 1),
                              f"values nest deeper than {MAX_NESTING} levels",
                              "a multiuplink or netplan config nests a few levels; check the file")
        with contextlib.closing(cyaml.documents(text)) as nodes:
            root = next(nodes, None)
            later = next((node for node in nodes if node.tag != _NULL_TAG), None) if later_documents else None
    except cyaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        position = Position(shown_path, mark.line + 1, mark.column + 1) if mark else Position(shown_path, 1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if _is_indenting_tab(text, mark):
            raise ConfigError(position, "invalid YAML: tabs are not allowed for indentation",
                              "indent with spaces") from None
        raise ConfigError(position, f"invalid YAML: {problem}",
                          "check indentation, colons and quoting around this place") from None
    except cyaml.YAMLError as exc:  # the reader's: a character YAML does not allow, at an offset
        offset, character, reason = (getattr(exc, name, None) for name in ("position", "character", "reason"))
        if not (isinstance(offset, int) and isinstance(character, int)):
            raise ConfigError(Position(shown_path, 1, 1), f"invalid YAML: {exc}", "") from None
        index = len(data[:offset].decode("utf-8", "replace")) if cyaml.BYTE_OFFSETS else offset
        line_start = text.rfind("\n", 0, index) + 1
        raise ConfigError(Position(shown_path, text.count("\n", 0, index) + 1, index - line_start + 1),
                          f"invalid YAML: unacceptable character #x{character:04x}: {reason}",
                          "remove the character; a YAML file is text") from None
    if later is not None:
        raise ConfigError(_position(later, shown_path), "only the first YAML document of a file is read",
                          "remove the '---' before this place, or move what follows to a file of its own")
    if root is not None and "*" in text:  # no alias without '*': then the size limit bounds the values
        _check_expansion(root, shown_path)
    return root


def _is_indenting_tab(text: str, mark: Any) -> bool:
    """Whether libyaml stopped at a tab with only blanks before it on its line (its message is generic)."""
    if mark is None:
        return False
    lines = text.split("\n", mark.line + 1)
    line = lines[mark.line] if mark.line < len(lines) else ""
    return line[mark.column:mark.column + 1] == "\t" and not line[:mark.column].strip(" \t")


MAX_VALUES = 1_000_000
"""Most values one file may hold, counting an alias (``*name``) as a copy of what it refers to.

About what the largest file without aliases holds (:data:`MAX_FILE_BYTES` of a flow list of one-letter
scalars), so aliases cannot make a file cost more than that bound allows; the largest real config (every
VLAN ID on a trunk, tests/test_inputs.py) holds about 110,000. 300 bytes of aliases nested 8 levels of 10
deep hold 10**8, which would take minutes and gigabytes to convert (a boot that never ends)."""


def _check_expansion(root: YAMLNode, path: str) -> None:
    """Refuse aliases that expand beyond :data:`MAX_VALUES` or contain themselves, before anything expands them.

    An alias is the anchor's node object again, so the expanded size of every
    distinct node is computed once (linear in the file, iteratively: no depth
    limit of its own). The error points at the first list or mapping, in
    document order, that grows beyond the limit. Only run for a text with a
    '*' (about 0.1 ms for netplan's file of the example)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[YAMLNode, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > MAX_VALUES:
                raise ConfigError(_position(node, path),
                                  f"this list or mapping holds more than {MAX_VALUES} values, counting each "
                                  "alias (*name) as a copy of what it refers to",
                                  "a multiuplink or netplan config has a few hundred; check the file for aliases "
                                  "that repeat each other")
        elif key in open_nodes:  # reached again from inside itself
            raise ConfigError(_position(node, path), "an alias (*name) refers to the list or mapping containing it",
                              "the value would be infinitely deep; write the values out instead")
        elif key not in sizes:
            if isinstance(node, ScalarNode):
                sizes[key] = 1
                continue
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(_children(node)))


def _children(node: YAMLNode) -> list[YAMLNode]:
    if isinstance(node, SequenceNode):
        return node.value  # type: ignore[no-any-return]
    if isinstance(node, MappingNode):
        return [item for pair in node.value for item in pair]
    return []


def _position(node: YAMLNode, path: str) -> Position:
    mark = node.start_mark
    return Position(path, mark.line + 1, mark.column + 1)


MAX_DEPTH = 32
"""A stanza is 5 levels deep; deeper means a mistake (an alias that contains itself is refused before)."""


def _convert(node: YAMLNode, path: str, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise ConfigError(_position(node, path), f"values nest deeper than {MAX_DEPTH} levels",
                          "a stanza is 5 levels deep; check the brackets and indentation")
    if isinstance(node, ScalarNode):
        if node.tag == _STR_TAG:
            return node.value
        try:
            return cyaml.construct_scalar(node)
        except Exception:  # an explicit tag on a bad value: ValueError, KeyError (!!bool maybe), IndexError...
            raise ConfigError(_position(node, path), f"invalid {node.tag.rsplit(':', 1)[-1]} value '{node.value}'",
                              "quote the value to make it a string") from None
    if isinstance(node, SequenceNode):
        seq = Seq(_position(node, path))
        for item in node.value:
            seq.item_positions.append(_position(item, path))
            seq.append(_convert(item, path, depth + 1))
        return seq
    mapping = Node(_position(node, path))
    for key_node, value_node in node.value:
        key_position = _position(key_node, path)
        if not isinstance(key_node, ScalarNode):
            raise ConfigError(key_position, "a mapping key must be a plain scalar", "")
        key = _convert(key_node, path)
        if key in mapping:
            raise ConfigError(key_position, f"duplicate key '{key}'",
                              f"'{key}' is already set at line {mapping.key_positions[key].line}; keep one")
        mapping.key_positions[key] = key_position
        mapping.value_positions[key] = _position(value_node, path)
        mapping[key] = _convert(value_node, path, depth + 1)
    return mapping


def read_source_line(position: Position) -> str | None:
    """The text of the line an error points at, for the caret display (shown paths are real paths)."""
    try:
        stream, _ = _open_input(position.path)
        if stream is None:
            return None  # a FIFO, a directory...: the message says so
        with stream:
            for number, raw in enumerate(stream, 1):
                if number == position.line:
                    return raw.decode("utf-8", "replace").rstrip("\r\n")
    except OSError:
        return None
    return None
