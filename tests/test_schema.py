"""The fast boot-time checker must be exactly as strict as jsonschema on the same schema.

The corpus: every stanza file of the golden cases, plus, for every property
the schema defines, a document with that property set to each of a set of
awkward values (wrong types, bounds, patterns, injection attempts), plus
unknown keys at every level.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from multiuplink_networkd.config import schema
from multiuplink_networkd.config.yamlsource import load_text

RULES = schema.load_schema()
CASES = Path(__file__).parent / "cases"
AWKWARD = [None, True, False, 0, -1, 1, 2, 2.0, 2.5, 15, 255, 256, 4294967295, 4294967296, "", "x", "eth1",
           "loose", "nft", "iptables", "off", "203.0.113.1", "203.0.113.8/24", "1.2.3", "a b", 'e"th',
           "eth1\n[Network]", "eth1\n", "\neth1", "203.0.113.1\n", "2001:db8::1\n", "203.0.113.8/24\n",
           "../x", "0x10", [], ["203.0.113.8/24"], ["bad"], ["203.0.113.8/24"] * 65, {},
           {"interface": "eth1"}, {"k": 1}]
VALID = {"network": {"version": 2, "multiuplink": {"mark-mask": 255, "priority": 1000, "rp-filter": "loose",
                                                    "backend": "nft", "router-mode": True, "uplinks": {"isp1": {
                                                        "interface": "eth1", "mark": 1, "table": 101,
                                                        "gateway": "203.0.113.1",
                                                        "addresses": ["203.0.113.8/24"]}}}}}
PLACES = {
    "version": ("network", "version"),
    "mark-mask": ("network", "multiuplink", "mark-mask"),
    "priority": ("network", "multiuplink", "priority"),
    "rp-filter": ("network", "multiuplink", "rp-filter"),
    "backend": ("network", "multiuplink", "backend"),
    "router-mode": ("network", "multiuplink", "router-mode"),
    "uplinks": ("network", "multiuplink", "uplinks"),
    "uplink": ("network", "multiuplink", "uplinks", "isp1"),
    "interface": ("network", "multiuplink", "uplinks", "isp1", "interface"),
    "mark": ("network", "multiuplink", "uplinks", "isp1", "mark"),
    "table": ("network", "multiuplink", "uplinks", "isp1", "table"),
    "gateway": ("network", "multiuplink", "uplinks", "isp1", "gateway"),
    "addresses": ("network", "multiuplink", "uplinks", "isp1", "addresses"),
    "network": ("network",),
    "multiuplink": ("network", "multiuplink"),
}


def mutated(path: tuple[str, ...], value: object) -> object:
    document = copy.deepcopy(VALID)
    target: dict = document  # type: ignore[type-arg]
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return document


def corpus() -> list[tuple[str, object]]:
    documents: list[tuple[str, object]] = [("valid", VALID)]
    for name, path in PLACES.items():
        documents += [(f"{name}={value!r}"[:60], mutated(path, value)) for value in AWKWARD]
        documents.append((f"{name}+unknown", mutated(path[:-1] + ("unknown-key",), 1)))
    for bad_name in ["", "1isp", "a" * 33, "isp 1", "isp;1", "isp1\n", "isp1\r", "isp1\n\n", 7, None, True]:
        documents.append((f"uplink-name={bad_name!r}",
                          {"network": {"multiuplink": {"uplinks": {bad_name: {"interface": "eth1"}}}}}))
    documents.append(("too-many-uplinks", {"network": {"multiuplink": {"uplinks": {
        f"u{i}": {"interface": "eth1"} for i in range(256)}}}}))
    for case in sorted(CASES.glob("*/input/**/multiuplink.d/*.yaml")):
        try:
            documents.append((str(case.relative_to(CASES)), load_text(case.read_bytes(), str(case))))
        except Exception:  # YAML syntax cases never reach a schema checker
            pass
    return documents


@pytest.mark.parametrize("label,document", corpus(), ids=lambda x: x if isinstance(x, str) else "")
def test_fast_checker_agrees_with_jsonschema(label: str, document: object) -> None:
    fast = sorted(v.identity() for v in schema.fast_violations(document, RULES))
    reference = sorted(v.identity() for v in schema.jsonschema_violations(document, RULES))
    assert fast == reference


def test_corpus_has_both_verdicts() -> None:
    verdicts = {bool(schema.fast_violations(doc, RULES)) for _, doc in corpus()}
    assert verdicts == {True, False}


def test_both_checkers_word_errors_the_same() -> None:
    document = load_text(b"network:\n  multiuplink:\n    backend: pf\n    uplinks:\n      isp1: {mark: x}\n", "/f.yaml")
    fast = [e.format() for e in schema.check_document(document, RULES)]
    reference = [e.format() for e in schema.check_document(document, RULES, reference=True)]
    assert sorted(fast) == sorted(reference)
    assert "/f.yaml:3:14: invalid value 'pf' for 'backend'\nhint: accepted: 'nft', 'iptables'" in fast


def patterns(node: object) -> list[str]:
    if isinstance(node, dict):
        return ([node["pattern"]] if isinstance(node.get("pattern"), str) else []) + [
            found for value in node.values() for found in patterns(value)]
    return [found for value in node for found in patterns(value)] if isinstance(node, list) else []


@pytest.mark.parametrize("pattern", patterns(RULES))
def test_every_pattern_is_anchored_so_search_means_full_match(pattern: str) -> None:
    """jsonschema searches; the fast checker full-matches: the same only for patterns anchored at both ends,
    and Python's ``$`` alone also matches before a final newline."""
    assert pattern.startswith("^") and pattern.endswith("$(?!\\n)")


@pytest.mark.parametrize("value", ["isp1\n", "isp1\n\n", "isp1\r\n", "\nisp1", "is\np1"])
def test_a_line_break_in_an_uplink_name_is_refused_by_both_checkers(value: str) -> None:
    document = {"network": {"multiuplink": {"uplinks": {value: {"interface": "eth1\n"}}}}}
    for check in (schema.fast_violations, schema.jsonschema_violations):
        assert {(v.keyword, v.is_key) for v in check(document, RULES)} == {("pattern", True), ("pattern", False)}
