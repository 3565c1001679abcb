"""Load YAML into plain values that remember where they came from.

Mappings become :class:`Node` dicts and sequences :class:`Seq` lists carrying the
position of the collection and of each key and item, so every later check can
point at ``file:line:col``. This runs on the boot path: :mod:`.cyaml` loads only
PyYAML's C parser; the node classes it composes are re-exported here for netplan's reader.
"""

from __future__ import annotations

from ..errors import ConfigError, Position
from . import cyaml
from .cyaml import MappingNode as MappingNode, ScalarNode as ScalarNode, SequenceNode as SequenceNode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .cyaml import Node as YAMLNode

MAX_FILE_BYTES = 1 << 20
"""Refuse larger files: a config this size is a mistake, and parsing it would stall boot."""

MAX_NESTING_OPENERS = 10000
"""libyaml's composer recurses in C: ``[`` or ``- `` nested some 30000 deep crash the process (SIGSEGV).

Counting the characters that can open a level cheaply bounds the depth (indented
block mappings cannot nest that deep within :data:`MAX_FILE_BYTES`).
"""
_NESTING_OPENERS = (b"[", b"{", b"- ", b"? ")

_STR_TAG = "tag:yaml.org,2002:str"


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


def position_of(container: Any, key: Any) -> Position:
    """Where ``container[key]`` stands, or the container itself when the key is absent."""
    if isinstance(container, Node):
        return container.value_positions.get(key, container.position)
    if isinstance(container, Seq) and isinstance(key, int) and 0 <= key < len(container):
        return container.item_positions[key]
    position: Position = container.position
    return position


def load_file(path: str, shown_path: str) -> Any:
    """Parse one file; ``shown_path`` is the name errors use. Empty files load as ``None``."""
    return load_text(_read_limited(path, shown_path), shown_path)


def load_text(data: bytes, shown_path: str) -> Any:
    """Parse YAML bytes; a syntax error becomes a :class:`ConfigError` at its line and column."""
    root = compose_text(data, shown_path)
    return None if root is None else _convert(root, shown_path)


def compose_file(path: str, shown_path: str) -> YAMLNode | None:
    """Raw YAML nodes of one file: scalars stay text and repeated keys stay, as netplan's parser sees them."""
    return compose_text(_read_limited(path, shown_path), shown_path)


def _read_limited(path: str, shown_path: str) -> bytes:
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:  # e.g. removed since the directory was listed
        raise ConfigError(Position(shown_path, 1, 1), f"cannot read the file: {exc.strerror}", "") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(Position(shown_path, 1, 1),
                          f"file is larger than {MAX_FILE_BYTES} bytes",
                          "a multiuplink or netplan config is a few kilobytes; check the file")
    return data


def compose_text(data: bytes, shown_path: str) -> YAMLNode | None:
    """Compose YAML bytes into nodes; a syntax error becomes a :class:`ConfigError` at its line and column."""
    if sum(data.count(opener) for opener in _NESTING_OPENERS) > MAX_NESTING_OPENERS:
        raise ConfigError(Position(shown_path, 1, 1),
                          f"file has more than {MAX_NESTING_OPENERS} list items and brackets",
                          "a multiuplink or netplan config has a few dozen; check the file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(Position(shown_path, line, column), "file is not valid UTF-8",
                          "save the file as UTF-8") from None
    try:
        root = cyaml.compose(text)
    except cyaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        position = Position(shown_path, mark.line + 1, mark.column + 1) if mark else Position(shown_path, 1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(position, f"invalid YAML: {problem}",
                          "check indentation, colons and quoting around this place") from None
    except cyaml.YAMLError as exc:
        raise ConfigError(Position(shown_path, 1, 1), f"invalid YAML: {exc}", "") from None
    return root


def _position(node: YAMLNode, path: str) -> Position:
    mark = node.start_mark
    return Position(path, mark.line + 1, mark.column + 1)


MAX_DEPTH = 32
"""A stanza is 5 levels deep; deeper means a mistake or an alias that contains itself."""


def _convert(node: YAMLNode, path: str, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise ConfigError(_position(node, path), f"values nest deeper than {MAX_DEPTH} levels",
                          "check for an alias (*name) that refers to the mapping or list containing it")
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
        with open(position.path, "rb") as stream:
            for number, raw in enumerate(stream, 1):
                if number == position.line:
                    return raw.decode("utf-8", "replace").rstrip("\r\n")
    except OSError:
        return None
    return None
