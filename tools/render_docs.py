#!/usr/bin/python3
"""Render the stanza reference from the JSON Schema, the single source of truth for the stanza.

Writes ``man/multiuplink.d.5`` (the hand-written prose of ``man/multiuplink.d.5.in``
around a key reference generated from ``schema/multiuplink.schema.json``) and the section of
``README.md`` between ``<!-- BEGIN stanza-reference -->`` and
``<!-- END stanza-reference -->`` (skipped when README.md or the markers are
missing). ``--check`` writes nothing and exits 1 when a file is out of date.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "schema" / "multiuplink.schema.json"
MAN_PAGE = REPO / "man" / "multiuplink.d.5"
MAN_TEMPLATE = REPO / "man" / "multiuplink.d.5.in"
README = REPO / "README.md"
EXAMPLE_ROOT = REPO / "examples" / "two-isps"
EXAMPLE_STANZA = "etc/netplan/multiuplink.d/uplinks.yaml"
EXAMPLE_NETPLAN = "etc/netplan/50-uplinks.yaml"
BEGIN, END = "<!-- BEGIN stanza-reference -->", "<!-- END stanza-reference -->"
NAME = "NAME"
"""Stands for a key the user chooses (an uplink name) in key paths."""


@dataclass(frozen=True)
class Key:
    """One documented key: its name, a one-line summary of type, range and default, and its prose."""

    name: str
    summary: str
    description: str
    pattern: tuple[str, str] | None
    """``(what must match, regular expression)``."""
    section: str | None
    """Path of the section that documents the object this key holds, if any."""


@dataclass(frozen=True)
class Section:
    """An object of the stanza: its full path (``network.multiuplink``) and its keys."""

    path: str
    description: str
    keys: tuple[Key, ...]


def version() -> str:
    text = (REPO / "multiuplink_networkd" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"$', text, re.M)
    if not found:
        raise SystemExit("render_docs: no __version__ in multiuplink_networkd/__init__.py")
    return found.group(1)


def _number(value: int) -> str:
    """Big numbers are masks or marks: show them in hex too."""
    return f"{value:#x}" if value >= 0x10000 else str(value)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"external $ref {ref!r} is not supported")
        target: Any = schema
        for part in ref[2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _range(node: dict[str, Any], low: str, high: str, unit: str = "") -> str:
    lo, hi = node.get(low), node.get(high)
    if lo is not None and hi is not None:
        return f"{_number(lo)} to {_number(hi)}{unit}"
    if lo is not None:
        return f"at least {_number(lo)}{unit}"
    if hi is not None:
        return f"at most {_number(hi)}{unit}"
    return ""


def _kind(schema: dict[str, Any], node: dict[str, Any]) -> str:
    """``integer from 1 to 32765``, ``one of loose, off``, ``list of 1 to 64 strings``, ..."""
    if "const" in node:
        return f"always {json.dumps(node['const'])}"
    if "enum" in node:
        return "one of " + ", ".join(str(v) for v in node["enum"])
    kind = node.get("type")
    if kind == "integer":
        span = _range(node, "minimum", "maximum")
        return f"integer from {span}" if span else "integer"
    if kind == "array":
        items = _resolve(schema, node.get("items", {}))
        count = _range(node, "minItems", "maxItems")
        return f"list of {count + ' ' if count else ''}{_kind(schema, items)}s"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        count = _range(node, "minProperties", "maxProperties", " entries")
        value = node["additionalProperties"].get("$ref", "#/mapping").rsplit("/", 1)[-1]
        return f"mapping of {NAME} to {value}{', ' + count if count else ''}"
    if kind == "object":
        return "mapping"
    return str(kind)


def _summary(schema: dict[str, Any], node: dict[str, Any], required: bool) -> str:
    parts = [_kind(schema, node)]
    if "default" in node:
        default = node["default"]
        if isinstance(default, bool):
            default = json.dumps(default)  # as YAML writes it: true, false
        parts.append(f"default {_number(default) if isinstance(default, int) else default}")
    if required:
        parts.append("required")
    return "; ".join(parts)


def _pattern(schema: dict[str, Any], node: dict[str, Any]) -> tuple[str, str] | None:
    if node.get("type") == "array":
        items = _resolve(schema, node.get("items", {}))
        return ("each item", items["pattern"]) if "pattern" in items else None
    if node.get("type") == "object" and "propertyNames" in node:
        names = _resolve(schema, node["propertyNames"])
        return (f"each {NAME}", names["pattern"]) if "pattern" in names else None
    return ("the value", node["pattern"]) if "pattern" in node else None


def sections(schema: dict[str, Any]) -> list[Section]:
    """The schema's objects in document order, each with its keys in schema order."""
    found: list[Section] = []

    def visit(node: dict[str, Any], path: str) -> None:
        node = _resolve(schema, node)
        keys: list[Key] = []
        children: list[tuple[dict[str, Any], str]] = []
        for name, child in node.get("properties", {}).items():
            child = _resolve(schema, child)
            child_path = f"{path}.{name}" if path else name
            target: str | None = None
            if "properties" in child:
                target = child_path
                children.append((child, child_path))
            elif isinstance(child.get("additionalProperties"), dict):
                target = f"{child_path}.{NAME}"
                children.append((child["additionalProperties"], target))
            keys.append(Key(name, _summary(schema, child, name in node.get("required", ())),
                            child.get("description", ""), _pattern(schema, child), target))
        found.append(Section(path, node.get("description", ""), tuple(keys)))
        for child, child_path in children:
            visit(child, child_path)

    visit(schema, "")
    return found


# --- roff -----------------------------------------------------------------

def roff(text: str) -> str:
    """Escape text for a roff line: backslashes, hyphen-minus (literal keys and options), leading dot/quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text.startswith((".", "'")) else text


def roff_code(text: str) -> str:
    """A literal block: one output line per input line, nothing filled or adjusted."""
    lines = [roff(line) if line else "" for line in text.rstrip("\n").split("\n")]
    return "\n".join([".PP", ".RS 4", ".nf", *lines, ".fi", ".RE"])


def roff_reference(schema: dict[str, Any]) -> str:
    out: list[str] = []
    for section in sections(schema):
        title = section.path or "top level"
        out.append(f'.SS "{roff(title)}"')
        if not section.path and section.description:
            out.append(roff(section.description))
        for key in section.keys:
            out += [".TP", f"\\fB{roff(key.name)}\\fR ({roff(key.summary)})", roff(key.description)]
            if key.pattern:
                out += [".br", f"Pattern ({roff(key.pattern[0])}): \\fB{roff(key.pattern[1])}\\fR"]
            if key.section:
                out += [".br", f"See \\fB{roff(key.section)}\\fR below."]
    return "\n".join(out)




def render_man(schema: dict[str, Any]) -> str:
    """The template's prose with the version, the key reference and the example filled in."""
    fills = {
        "@VERSION@": roff(version()),
        "@KEYS@": roff_reference(schema),
        "@NETPLAN@": roff_code((EXAMPLE_ROOT / EXAMPLE_NETPLAN).read_text(encoding="utf-8")),
        "@STANZA@": roff_code((EXAMPLE_ROOT / EXAMPLE_STANZA).read_text(encoding="utf-8")),
    }
    return re.sub("|".join(fills), lambda found: fills[found.group(0)], MAN_TEMPLATE.read_text(encoding="utf-8"))


# --- Markdown ---------------------------------------------------------------

def markdown(text: str) -> str:
    """Escape prose: schema descriptions say things like 'lookup <table>' and '*.yaml'."""
    text = re.sub(r"([\\`*_\[\]])", r"\\\1", text)
    return text.replace("<", "&lt;").replace(">", "&gt;")


def render_markdown(schema: dict[str, Any]) -> str:
    out = ["<!-- Generated by tools/render_docs.py from schema/multiuplink.schema.json; do not edit. -->", ""]
    for section in sections(schema):
        out.append(f"#### `{section.path}`" if section.path else "#### Top level")
        out.append("")
        if not section.path and section.description:
            out += [markdown(section.description), ""]
        for key in section.keys:
            line = f"- `{key.name}` ({markdown(key.summary)}): {markdown(key.description)}"
            if key.pattern:
                line += f" Pattern ({key.pattern[0]}): `{key.pattern[1]}`."
            if key.section:
                line += f" See `{key.section}`."
            out.append(line)
        out.append("")
    return "\n".join(out)


def readme_with_reference(readme: str, schema: dict[str, Any]) -> str | None:
    """README.md with its marked section regenerated; None when the markers are missing."""
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        return None
    return readme[:start + len(BEGIN)] + "\n" + render_markdown(schema) + readme[end:]


def load_schema() -> dict[str, Any]:
    with open(SCHEMA, encoding="utf-8") as stream:
        return dict(json.load(stream))


def outputs() -> tuple[dict[Path, str], list[str]]:
    """``{file: wanted text}`` and notes about what was skipped."""
    schema = load_schema()
    wanted = {MAN_PAGE: render_man(schema)}
    notes = []
    if not README.exists():
        notes.append(f"{README.name} does not exist: its stanza reference was skipped")
    else:
        readme = readme_with_reference(README.read_text(encoding="utf-8"), schema)
        if readme is None:
            notes.append(f"{README.name} lacks the {BEGIN} / {END} markers: its stanza reference was skipped")
        else:
            wanted[README] = readme
    return wanted, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    wanted, notes = outputs()
    for note in notes:
        print(f"render_docs: {note}", file=sys.stderr)
    stale = [path for path, text in wanted.items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    for path in stale:
        shown = path.relative_to(REPO)
        if args.check:
            print(f"render_docs: {shown} is out of date; run tools/render_docs.py", file=sys.stderr)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(wanted[path], encoding="utf-8")
            print(f"wrote {shown}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
