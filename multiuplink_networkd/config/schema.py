"""Check a stanza document against ``schema/multiuplink.schema.json``.

The schema is the single source of truth. Two checkers read it:

* :func:`fast_violations` interprets the small subset of JSON Schema the file
  uses. It runs at boot, where importing jsonschema would cost more than all
  the rest of the parse and validation.
* :func:`jsonschema_violations` runs the real Draft 2020-12 validator for
  ``multiuplink validate``; a test proves both find the same violations.

Both yield :class:`Violation` records, and :func:`to_error` turns either into
the same ``file:line:col`` message, so the user sees one wording.
"""

from __future__ import annotations

import json
import os

from ..errors import ConfigError
from .yamlsource import Node, position_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "multiuplink.schema.json")
"""Package data (a link to ``schema/`` in the source tree, a copy in a wheel or the .deb). Found beside the
package rather than through importlib.resources, whose import alone costs the boot ~20 ms."""


def load_schema() -> Any:
    with open(SCHEMA_PATH, encoding="utf-8") as stream:
        return json.load(stream)


class Violation:
    """One failed schema keyword: where (``path``), which keyword, and what it expected."""

    __slots__ = ("expected", "instance", "is_key", "keyword", "path", "schema")

    def __init__(self, path: tuple[Any, ...], keyword: str, expected: Any, instance: Any,
                 schema: dict[str, Any], is_key: bool = False) -> None:
        self.path = path
        self.keyword = keyword
        self.expected = expected
        self.instance = instance
        self.schema = schema
        self.is_key = is_key

    def identity(self) -> tuple[tuple[str, ...], str, bool]:
        """What two checkers must agree on (values as text: YAML keys may be any scalar)."""
        return tuple(repr(p) for p in self.path), self.keyword, self.is_key


# --- the fast checker -------------------------------------------------------

_TYPE_CHECKS = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    # JSON Schema counts 2.0 as an integer; jsonschema does too, so we must.
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


def _equal(one: Any, two: Any) -> bool:
    """JSON equality: true is not 1, 2.0 is 2."""
    if isinstance(one, bool) or isinstance(two, bool):
        return type(one) is type(two) and one == two
    return bool(one == two)


def fast_violations(document: Any, schema: dict[str, Any]) -> list[Violation]:
    found: list[Violation] = []
    _check(document, schema, schema, (), found)
    return found


def _check(value: Any, node: dict[str, Any], root: dict[str, Any], path: tuple[Any, ...],
           found: list[Violation], is_key: bool = False) -> None:
    if "$ref" in node:
        node = _resolve(root, node["$ref"])
    def fail(keyword: str) -> None:
        found.append(Violation(path, keyword, node[keyword], value, node, is_key))
    if "type" in node and not _TYPE_CHECKS[node["type"]](value):
        fail("type")
    if "const" in node and not _equal(value, node["const"]):
        fail("const")
    if "enum" in node and not any(_equal(value, option) for option in node["enum"]):
        fail("enum")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in node and value < node["minimum"]:
            fail("minimum")
        if "maximum" in node and value > node["maximum"]:
            fail("maximum")
    if isinstance(value, str) and "pattern" in node and not _full_match(node["pattern"], value):
        fail("pattern")
    if isinstance(value, list):
        if "minItems" in node and len(value) < node["minItems"]:
            fail("minItems")
        if "maxItems" in node and len(value) > node["maxItems"]:
            fail("maxItems")
        if "items" in node:
            for index, item in enumerate(value):
                _check(item, node["items"], root, path + (index,), found)
    if isinstance(value, dict):
        if "maxProperties" in node and len(value) > node["maxProperties"]:
            fail("maxProperties")
        properties = node.get("properties", {})
        for key, item in value.items():
            if "propertyNames" in node:
                _check(key, node["propertyNames"], root, path + (key,), found, is_key=True)
            if key in properties:
                _check(item, properties[key], root, path + (key,), found)
            elif node.get("additionalProperties") is False:
                found.append(Violation(path + (key,), "additionalProperties", False, key, node, True))
            elif isinstance(node.get("additionalProperties"), dict):
                _check(item, node["additionalProperties"], root, path + (key,), found)


def _resolve(root: dict[str, Any], reference: str) -> dict[str, Any]:
    target: Any = root
    for part in reference.lstrip("#/").split("/"):
        target = target[part]
    return target  # type: ignore[no-any-return]


_patterns: dict[str, Any] = {}


def _full_match(pattern: str, text: str) -> bool:
    """The whole text matches: Python's ``$`` also matches before a final newline, so search could not be trusted.

    The schema's patterns are anchored (``^...$(?!\\n)``, a test holds them to it), so jsonschema's search
    agrees; the ``(?!\\n)`` keeps its ``$`` from accepting ``"isp1\\n"``, which would end up in rendered files."""
    import re  # already loaded by yaml; imported here to keep it off the no-stanza path

    compiled = _patterns.get(pattern)
    if compiled is None:
        compiled = _patterns[pattern] = re.compile(pattern)
    return compiled.fullmatch(text) is not None


# --- the reference checker (jsonschema, not on the boot path) --------------

def jsonschema_violations(document: Any, schema: dict[str, Any]) -> list[Violation]:
    import jsonschema

    found: list[Violation] = []
    validator = jsonschema.Draft202012Validator(schema)
    for error in validator.iter_errors(document):
        path = tuple(error.absolute_path)
        keyword = str(error.validator)
        if "propertyNames" in error.absolute_schema_path:
            found.append(Violation(path + (error.instance,), keyword, error.validator_value,
                                   error.instance, error.schema, True))
        elif keyword == "additionalProperties":
            known = error.schema.get("properties", {})
            for key in error.instance:
                if key not in known:
                    found.append(Violation(path + (key,), keyword, False, key, error.schema, True))
        else:
            found.append(Violation(path, keyword, error.validator_value, error.instance, error.schema))
    return found


# --- one wording for both ---------------------------------------------------

def _describe_place(path: tuple[Any, ...]) -> str:
    """``'mark' of uplink 'isp1'`` rather than a JSON pointer."""
    if len(path) >= 4 and path[:3] == ("network", "multiuplink", "uplinks"):
        if len(path) == 4:
            return f"uplink '{path[3]}'"
        return f"'{path[4]}' of uplink '{path[3]}'"
    return f"'{path[-1]}'" if path else "the file"


def _type_name(value: Any) -> str:
    for name in ("boolean", "integer", "number", "string", "array", "object", "null"):
        if _TYPE_CHECKS[name](value):
            return "a mapping" if name == "object" else ("a list" if name == "array" else f"a {name}")
    return f"a {type(value).__name__}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"'{value}'" if isinstance(value, str) else str(value)


_YAML11_BOOLEANS = frozenset(("on", "off", "yes", "no", "y", "n"))
INTEGER_HINT = "write the number without quotes; 0x... hex is accepted"


def to_error(violation: Violation, document: Any, mark_hint: str = "") -> ConfigError:
    """The user-facing error for a violation, placed at the offending key or value.

    ``mark_hint`` replaces the schema's bounds for an uplink's 'mark', which the mark-mask narrows."""
    path, keyword, expected = violation.path, violation.keyword, violation.expected
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    if not path:
        position = getattr(document, "position", None)
    elif violation.is_key and isinstance(parent, Node):
        position = parent.key_positions.get(path[-1], parent.position)
    else:
        position = position_of(parent, path[-1])
    place = _describe_place(path)
    hint = violation.schema.get("x-hint", "")
    value = violation.instance
    if keyword == "additionalProperties":
        known = ", ".join(violation.schema.get("properties", {}))
        where = _describe_place(path[:-1])
        return ConfigError(position, f"unknown key '{path[-1]}' in {where}", f"known keys: {known}")
    if keyword == "pattern" and violation.is_key:
        return ConfigError(position, f"invalid uplink name {_show(value)}", hint)
    if keyword == "type":
        article = "an" if expected[0] in "aeiou" else "a"
        wanted = {"object": "a mapping", "array": "a list"}.get(expected, f"{article} {expected}")
        if violation.is_key:
            return ConfigError(position, f"invalid uplink name {_show(value)}: must be {wanted}", hint)
        return ConfigError(position, f"{place} must be {wanted}, not {_type_name(value)} {_show(value)}".rstrip(),
                           hint or (INTEGER_HINT if expected == "integer" else ""))
    if keyword in ("enum", "const"):
        options = expected if keyword == "enum" else [expected]
        accepted = "accepted: " + ", ".join(_show(o) for o in options)
        if isinstance(value, bool) and any(o in _YAML11_BOOLEANS for o in options):
            accepted += "; quote the word: YAML reads a bare on/off/yes/no as a boolean"
        return ConfigError(position, f"invalid value {_show(value)} for {place}", accepted)
    if keyword in ("minimum", "maximum"):
        low, high = violation.schema.get("minimum"), violation.schema.get("maximum")
        is_mark = len(path) == 5 and path[:3] == ("network", "multiuplink", "uplinks") and path[4] == "mark"
        return ConfigError(position, f"{place} is out of range: {_show(value)}",
                           mark_hint if is_mark and mark_hint else f"accepted: {low} to {high}")
    if keyword == "pattern":
        return ConfigError(position, f"invalid value {_show(value)} for {place}", hint)
    if keyword in ("minItems", "maxItems", "maxProperties"):
        bound = "at least" if keyword == "minItems" else "at most"
        return ConfigError(position, f"{place} has {len(value)} entries, {bound} {expected} allowed", hint)
    return ConfigError(position, f"{place} is invalid ({keyword})", hint)  # pragma: no cover - new keyword


def check_document(document: Any, schema: dict[str, Any], reference: bool = False,
                   mark_hint: str = "") -> list[ConfigError]:
    """Every schema error of one parsed stanza file."""
    violations = (jsonschema_violations if reference else fast_violations)(document, schema)
    return [to_error(v, document, mark_hint) for v in violations]

