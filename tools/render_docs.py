#!/usr/bin/python3
"""Render the stanza reference from the JSON Schema, the single source of truth for the stanza.

Writes ``man/multiuplink.d.5`` (hand-written prose around a key reference
generated from ``schema/multiuplink.schema.json``) and the section of
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


MAN_HEAD = r""".\" Generated by tools/render_docs.py from schema/multiuplink.schema.json; do not edit.
.\" Edit the schema (key reference) or tools/render_docs.py (prose), then run tools/render_docs.py.
.TH MULTIUPLINK.D 5 "" "multiuplink\-networkd @VERSION@" "File Formats"
.nh
.ad l
.SH NAME
multiuplink.d \- stanza files of multiuplink\-networkd, multi\-uplink policy routing for netplan
.SH SYNOPSIS
.nf
\fI/etc/netplan/multiuplink.d/*.yaml\fR
\fI/run/netplan/multiuplink.d/*.yaml\fR
\fI/lib/netplan/multiuplink.d/*.yaml\fR
.fi
.SH DESCRIPTION
A host with several uplinks (ISPs) answers every connection through the main
routing table's default route, whatever uplink the connection arrived on; the
other providers drop those replies.
The files described here name the uplinks whose connections must be answered
out of the interface, gateway and source address they arrived on.
.PP
The stanza lives beside netplan's own files, not in them: netplan rejects any
key it does not know, and a \fBmultiuplink:\fR key in a file netplan reads would
make \fBnetplan generate\fR fail and leave the host without network.
Like netplan's files, a stanza file is YAML with a top\-level \fBnetwork:\fR
mapping; the uplinks' interfaces, addresses and gateways come from netplan's
own configuration in \fI/{lib,etc,run}/netplan/*.yaml\fR, so a stanza only names
what netplan cannot express.
.SH "FILES AND OVERRIDES"
Files ending in \fI.yaml\fR are read from \fI/lib/netplan/multiuplink.d/\fR,
\fI/etc/netplan/multiuplink.d/\fR and \fI/run/netplan/multiuplink.d/\fR
(no subdirectories), with netplan's rules:
.IP \(bu 2
a file in \fI/run\fR masks a file of the same name in \fI/etc\fR, which masks
one of the same name in \fI/lib\fR;
.IP \(bu 2
the remaining files are read in the order of their names, whatever their directory;
.IP \(bu 2
a later file overrides the keys an earlier file set, key by key: a global
setting such as \fBpriority\fR, and each key of an uplink of the same name,
so a file can change an uplink's \fBtable\fR and keep the rest.
.PP
Each file is checked against the schema on its own, so an error names the
file, line and column that have it; the merged result must then be complete
(every uplink has an \fBinterface\fR).
Packages ship files in \fI/lib\fR, the administrator writes \fI/etc\fR, and
\fI/run\fR is for run\-time overrides that end with the next boot.
.SH KEYS
This reference is generated from the JSON Schema the files are checked with,
\fI/usr/share/multiuplink\-networkd/multiuplink.schema.json\fR.
Every key is optional unless marked required; unknown keys are errors.
Write \fBrp\-filter: "off"\fR with quotes: YAML reads a bare \fBoff\fR as false.
Integers may be written in hex, such as \fB0xff000000\fR.
"""

MAN_TAIL = r""".SH MARKS
Each uplink has a number, its \fBmark\fR, inside \fBmark\-mask\fR: the
firewall mark bits this plugin owns, one contiguous run of bits.
The mark written into packets and connections is the number shifted to the
lowest set bit of the mask:
.PP
.RS 4
.nf
fwmark = mark << (position of the lowest set bit of mark\-mask)
.fi
.RE
.PP
With the default mask \fB0xff000000\fR (lowest set bit 24), mark 1 is
\fB0x1000000/0xff000000\fR and mark 2 is \fB0x2000000/0xff000000\fR; the mask
holds marks 1 to 255.
With \fBmark\-mask: 0x3000\fR, mark 1 is \fB0x1000/0x3000\fR and the mask holds
marks 1 to 3.
Every other bit of the packet and connection marks is left to other software
(WireGuard, Tailscale, kube\-proxy, Cilium, mwan3); choose another mask when
some software on the host uses the default bits.
.SH DEFAULTS
.TP
.B mark
the smallest number no other uplink uses, given in uplink\-name order after
the explicit marks are taken.
.TP
.B table
100 + mark, or the next free table after it: tables other uplinks set, and
the kernel's reserved tables 0, 253 (default), 254 (main) and 255 (local), are
skipped.
.TP
.BR gateway ", " addresses
from netplan's definition of the interface: its default route (\fBgateway4\fR,
or a route to \fBdefault\fR or \fB0.0.0.0/0\fR) and its static addresses.
.TP
.BR priority ", " rp\-filter ", " backend
1000, loose and nft.
.SH "GENERATED FILES"
\fBmultiuplink generate\fR, \fBmultiuplink apply\fR and, at boot,
\fBmultiuplink\-configure.service\fR render the stanza into these files.
Each starts with an "Automatically generated" comment; files of this list
that the stanza no longer needs are removed.
.TP
.I /run/systemd/network/10\-netplan\-<id>.network.d/50\-multiuplink.conf
A drop\-in that systemd\-networkd merges into netplan's
\fI10\-netplan\-<id>.network\fR: the \fB[RoutingPolicyRule]\fR
"fwmark \fImark\fR/\fImask\fR lookup \fItable\fR" with \fBpriority\fR, and the
uplink's link and default routes in its \fBtable\fR.
.TP
.I /run/multiuplink/ruleset.nft
With \fBbackend: nft\fR: \fBtable inet multiuplink\fR, loaded with
\fBnft \-f\fR in one transaction.
Connections arriving on an uplink get its mark as connection mark; their
replies get it as packet mark, so the policy rule routes them out of the same
uplink.
.TP
.I /run/multiuplink/ruleset.iptables
With \fBbackend: iptables\fR: the same in chains of the mangle table, loaded
with \fBiptables\-restore \-\-noflush\fR.
.TP
.I /run/sysctl.d/50\-multiuplink.conf
\fBrp_filter\fR of each uplink interface: 2 (loose) or 0 (off).
.TP
.I /var/lib/multiuplink/validated
Fingerprint of the input files of the last successful \fBmultiuplink apply\fR;
lets the boot generator skip parsing unchanged files.
.SH EXAMPLE
Two static uplinks in netplan's own file, \fI/etc/netplan/50\-uplinks.yaml\fR:
@NETPLAN@
.PP
The stanza, \fI/etc/netplan/multiuplink.d/uplinks.yaml\fR: connections that
arrive on eth2 are answered through 192.0.2.1, although the main default
route goes through 203.0.113.1.
@STANZA@
.PP
Check it with \fBmultiuplink validate\fR; it takes effect at the next boot,
or at once with \fBmultiuplink apply\fR.
More examples are in \fI/usr/share/doc/multiuplink\-networkd/examples/\fR.
.SH "SEE ALSO"
.BR multiuplink (8),
.BR netplan (5),
.BR systemd.network (5),
.BR systemd.generator (7),
.BR sysctl.d (5),
.BR nft (8),
.BR ip\-rule (8)
"""


def render_man(schema: dict[str, Any]) -> str:
    head = MAN_HEAD.replace("@VERSION@", roff(version()))
    tail = (MAN_TAIL.replace("@NETPLAN@", roff_code((EXAMPLE_ROOT / EXAMPLE_NETPLAN).read_text(encoding="utf-8")))
            .replace("@STANZA@", roff_code((EXAMPLE_ROOT / EXAMPLE_STANZA).read_text(encoding="utf-8"))))
    return head + roff_reference(schema) + "\n" + tail


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
