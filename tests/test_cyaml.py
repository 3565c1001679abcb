"""The boot path's PyYAML (multiuplink_networkd.cyaml) gives exactly what plain PyYAML gives.

Each comparison runs one dump in two fresh ``python3 -I -S`` interpreters: in
one, cyaml loads only PyYAML's C parser; in the other
(MULTIUPLINK_PLAIN_PYYAML=1) it imports yaml the ordinary way. Both print node
trees, loaded values and errors as JSON, which must be equal.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "netplan-corpus"
PYTHON = "/usr/bin/python3"  # Debian's interpreter and python3-yaml, as the generator's #! line says
PLAIN_ENV = "MULTIUPLINK_PLAIN_PYYAML"
PRELUDE = ("import site, sys\nsys.path.extend(site.getsitepackages())\n"
           f"sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'tests')!r}]\n")
SKIPPED = ("yaml.reader", "yaml.scanner", "yaml.parser", "yaml.composer", "yaml.constructor", "yaml.loader",
           "yaml.emitter", "yaml.serializer", "yaml.representer", "yaml.dumper", "yaml.cyaml")
"""What ``import yaml`` loads and the boot path does not need."""

BAD_TEXTS = [  # every kind of error: reader, scanner, parser, composer
    "a: [1", "a: b: c", "a:\n  - b\n c: d", "key: 'unterminated", "- a\nb: c", "[a, b}", "{a: 1", "\t a: 1",
    "@a", "a: \x01", "a: &x 1\nb: &x 2", "a: *nope", "--- 1\n--- 2", "%YAML 1.1\n%YAML 1.1\n--- a",
    "a: !<> x", "a: b\n  c: d\n",
]
TEXTS = BAD_TEXTS + [  # every implicit tag, explicit tags, aliases, merge keys, odd documents
    "a: 0x1F\nb: 017\nc: 1:30\nd: -.inf\ne: .NaN\nf: on\ng: ~\nh: 1_000\ni: 0b101\nj: +12.5e-3\nk: -0\nl: 0o17",
    "a: 2001-12-14\nb: 2001-12-14t21:59:43.10-05:00\nc: !!binary aGVsbG8=\nd: !!set {x}\ne: !!omap [a: 1]",
    "f: !!str 12\ng: !foo bar\nh: <<\ni: =\nj: !!python/object:os.system x\nk: !!timestamp 2001-13-01",
    "base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2", "a: &r [*r]", "a: &s {b: *s}",
    "a: !!bool maybe", "a: !!int ''", "a: !!timestamp x", "a: !!float ''", "a: !!null x", "a: !!int '0x1f'",
    "%TAG !e! tag:example.com,2000:\n---\na: !e!thing 1", "1: one\n2.5: two\nnull: three\ntrue: four",
    "[a]: five", "{a: 1}: b", "a: 1\na: 2", "", "# only a comment\n", "---\n...\n", "a: b\n---\n", "--- |\n  text\n",
    "a: [1, {b: [2, {c: 3}]}]\n'q': \"\\u263a\"\nключ: значение", "? complex\n: value",
    "a: |\n x\n  y\n z", "a: 'multi\n  line'",
]


def run(code: str, plain: bool = False, stdin: str = "", extra_path: str = "") -> str:
    env = {name: value for name, value in os.environ.items() if name != PLAIN_ENV}
    if plain:
        env[PLAIN_ENV] = "1"
    prelude = PRELUDE + (f"sys.path.insert(0, {extra_path!r})\n" if extra_path else "")
    done = subprocess.run([PYTHON, "-I", "-S", "-c", prelude + code], input=stdin, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def dump_both(request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same dump from the fast path and from plain PyYAML."""
    code = "import test_cyaml\ntest_cyaml.dump()\n"
    stdin = json.dumps(request)
    fast, plain = (json.loads(run(code, plain, stdin)) for plain in (False, True))
    assert fast.pop("fast") is True
    assert plain.pop("fast") is False
    return fast, plain


# --- the subprocess side: nothing here may import yaml before cyaml does ---

def dump() -> None:
    """Read {"documents": [path or text], "scalars": [text]} on stdin; print what is made of them."""
    from multiuplink_networkd.config import cyaml

    request = json.load(sys.stdin)
    documents = []
    for item in request.get("documents", []):
        data = Path(item["path"]).read_bytes() if "path" in item else item["text"].encode()
        documents.append({"item": item, "yaml_loader_loaded": "yaml.loader" in sys.modules, **_document(data)})
    scalars = [_scalar(text) for text in request.get("scalars", [])]
    json.dump({"fast": cyaml.FAST, "documents": documents, "scalars": scalars}, sys.stdout)


def _document(data: bytes) -> dict[str, Any]:
    from multiuplink_networkd.config import cyaml, yamlsource
    from multiuplink_networkd.errors import ConfigError

    result: dict[str, Any] = {}
    try:
        result["nodes"] = _tree(cyaml.compose(data.decode("utf-8")), {})
    except cyaml.YAMLError as exc:
        result["nodes"] = _error(exc)
    try:
        result["loaded"] = _value(yamlsource.load_text(data, "f.yaml"))
    except ConfigError as exc:
        result["loaded"] = ["ConfigError", repr(exc.position), exc.message, exc.hint]
    return result


def _tree(node: Any, seen: dict[int, int]) -> Any:
    """A node as JSON: class, tag, marks, style and value; a node met again (an alias) by its number."""
    from multiuplink_networkd.config import cyaml

    if node is None:
        return None
    if id(node) in seen:
        return ["*", seen[id(node)]]
    seen[id(node)] = len(seen)
    kind = next(kind for kind in (cyaml.ScalarNode, cyaml.SequenceNode, cyaml.MappingNode) if isinstance(node, kind))
    head = [kind.__module__, kind.__name__, node.tag, _mark(node.start_mark), _mark(node.end_mark)]
    if kind is cyaml.ScalarNode:
        return [*head, node.style, node.value]
    if kind is cyaml.SequenceNode:
        return [*head, node.flow_style, [_tree(item, seen) for item in node.value]]
    return [*head, node.flow_style, [[_tree(key, seen), _tree(value, seen)] for key, value in node.value]]


def _mark(mark: Any) -> list[int] | None:
    return None if mark is None else [mark.line, mark.column, mark.index]


def _error(exc: Exception) -> list[Any]:
    kind = type(exc)
    marks = [_mark(getattr(exc, name, None)) for name in ("context_mark", "problem_mark")]
    return ["error", kind.__module__, kind.__qualname__, str(exc), marks]


def _value(value: Any) -> Any:
    """What yamlsource.load_text made, positions included."""
    from multiuplink_networkd.config import yamlsource

    if isinstance(value, yamlsource.Node):
        return ["map", repr(value.position), [[_value(key), repr(value.key_positions[key]),
                                               repr(value.value_positions[key]), _value(item)]
                                              for key, item in value.items()]]
    if isinstance(value, yamlsource.Seq):
        return ["seq", repr(value.position), [[repr(position), _value(item)]
                                              for position, item in zip(value.item_positions, value, strict=True)]]
    return [type(value).__name__, repr(value)]


def _scalar(text: str) -> list[Any]:
    """Tag and value of a one-scalar document: cyaml on the fast side, ``yaml.load(CSafeLoader)`` on the other."""
    from multiuplink_networkd.config import cyaml

    if not cyaml.FAST:
        import yaml
    try:
        node = cyaml.compose(text) if cyaml.FAST else yaml.compose(text, Loader=yaml.CSafeLoader)
    except cyaml.YAMLError as exc:
        return _error(exc)
    if not isinstance(node, cyaml.ScalarNode):
        return ["not a scalar", type(node).__name__]
    try:
        if not cyaml.FAST:
            value = yaml.load(text, Loader=yaml.CSafeLoader)
        elif node.tag == "tag:yaml.org,2002:str":
            value = node.value
        else:
            value = cyaml.construct_scalar(node)
    except Exception as exc:  # explicit tags on bad values: whatever PyYAML raises, the fast side must too
        return [node.tag, "raises", type(exc).__name__, str(exc)]
    return [node.tag, type(value).__name__, repr(value)]


# --- the tests ---

pytestmark = pytest.mark.skipif(not os.path.exists(PYTHON), reason=f"{PYTHON} (Debian's interpreter) not found")


def compare_documents(items: list[dict[str, str]]) -> None:
    fast, plain = dump_both({"documents": items})
    for got, expected in zip(fast["documents"], plain["documents"], strict=True):
        got.pop("yaml_loader_loaded")
        expected.pop("yaml_loader_loaded")
        assert got == expected, got["item"]


def test_corpus_documents_match() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"netplan corpus not found at {CORPUS} (CI copies shared/ beside the repo)")
    files = sorted(CORPUS.glob("*/*.yaml"))
    assert len(files) > 200
    compare_documents([{"path": str(path)} for path in files])


def test_golden_case_inputs_match() -> None:
    files = sorted(path for path in (REPO / "tests" / "cases").glob("*/input/**/*.yaml")
                   if path.is_file())  # not error-unusable-inputs' directory named old.yaml
    assert files
    compare_documents([{"path": str(path)} for path in files])


def test_crafted_documents_match() -> None:
    fast, plain = dump_both({"documents": [{"text": text} for text in TEXTS]})
    bad = fast["documents"][:len(BAD_TEXTS)]  # raised while the C parser still uses the stand-in classes:
    assert all(document["nodes"][0] == "error" and not document["yaml_loader_loaded"] for document in bad)
    for got, expected in zip(fast["documents"], plain["documents"], strict=True):
        got.pop("yaml_loader_loaded")
        expected.pop("yaml_loader_loaded")
        assert got == expected, got["item"]


def scalar_corpus() -> list[str]:
    """Thousands of one-scalar documents: every YAML 1.1 number, bool and null form, timestamps, junk."""
    rng = random.Random(1729)

    def digits(alphabet: str, low: int = 1, high: int = 8) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))

    fixed = ["0", "-0", "+0", "00", "0_", "_0", "07", "-017", "+0_7", "08", "019", "0o17", "0x", "0x_", "0x1F",
             "-0x1f", "+0xdead_BEEF", "0X1F", "0xg", "0b", "0b_", "0b101", "-0b1_0", "0b2", "0B1", "1_000",
             "-1__000_", "1:30", "-1:30", "+1:59:59", "1:60", "1:5:9", "190:20:30", "0:30", "1:0x", "1.5", "+.5",
             ".5", "1.", "-1.", "1.0e+5", "1.0e5", "1e5", "1.0E-3", "1_0.0_1", "1:30.5", "-190:20:30.15", "1:30.",
             ".inf", "-.inf", "+.INF", ".Inf", ".iNf", ".nan", ".NaN", ".NAN", "-.nan", "nan", "inf", "yEs", "tRUE",
             "oN", "y", "Y", "n", "N", "~", "nULL", "", "''", '""', "'123'", '"0x1f"', "'yes'", "<<", "=", "!", "&",
             "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2001-12-15T02:59:43.1Z",
             "2001-13-45", "2001-02-29", "2001-12-14 21:59:43", "1-2-3", "99999999999999999999999", "1" * 5000]
    words = [case(word) for word in ("yes", "no", "true", "false", "on", "off", "null")
             for case in (str.lower, str.title, str.upper)]
    tagged = [f"!!{tag} {value}" for tag in ("int", "float", "bool", "null", "str", "timestamp", "binary", "set")
              for value in ("0x1F", "1:30", "yes", "maybe", "''", "~", "1.5", "2001-12-14", "aGk=", "abc", "-.inf")]
    numbers = []
    for _ in range(2500):
        sign = rng.choice(("", "", "-", "+"))
        form = rng.randrange(7)
        if form == 0:
            body = digits("0123456789_", 1, 12)
        elif form == 1:
            body = "0x" + digits("0123456789abcdefABCDEF_")
        elif form == 2:
            body = "0b" + digits("01_", 1, 12)
        elif form == 3:
            body = digits("123456789", 1, 3) + "".join(":" + digits("0123456789", 1, 2)
                                                       for _ in range(rng.randint(1, 3)))
        elif form == 4:
            body = (digits("0123456789_", 0, 5) + "." + digits("0123456789_", 0, 5)
                    + rng.choice(("", "e+" + digits("0123456789", 1, 3), "E-" + digits("0123456789", 1, 3))))
        elif form == 5:
            body = digits("123456789", 1, 3) + ":" + digits("0123456789", 1, 2) + "." + digits("0123456789_", 0, 4)
        else:
            body = "0o" + digits("01234567_")
        numbers.append(sign + body)
    dates = []
    for _ in range(300):
        time = f" {rng.randint(0, 29)}:{rng.randint(0, 69):02d}:{rng.randint(0, 69):02d}.{rng.randint(0, 99)}"
        dates.append(f"{rng.randint(0, 9999):04d}-{rng.randint(0, 19):02d}-{rng.randint(0, 39):02d}"
                     + rng.choice(("", time + rng.choice(("", "Z", " -5", "+05:30")))))
    junk = [digits("0123456789_:.+-xbeEoOinfaNlsTruY~ ") for _ in range(1500)]
    return fixed + words + tagged + numbers + dates + junk


def test_scalars_match_yaml_load_with_csafeloader() -> None:
    texts = scalar_corpus()
    assert len(texts) > 4000
    fast, plain = dump_both({"scalars": texts})
    mismatches = [(text, got, expected) for text, got, expected in zip(texts, fast["scalars"], plain["scalars"],
                                                                       strict=True) if got != expected]
    assert not mismatches, mismatches[:10]
    tags = {result[0] for result in plain["scalars"]}
    assert {f"tag:yaml.org,2002:{tag}" for tag in ("int", "float", "bool", "null", "str", "timestamp")} <= tags


def test_boot_path_loads_only_the_c_parser_and_yaml_stays_complete(tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(REPO / "examples" / "two-isps", root)
    run(f"""
from multiuplink_networkd.config import cyaml, stanza
assert cyaml.FAST
assert stanza.load({str(root)!r}) is not None
assert not set({SKIPPED!r}) & set(sys.modules), sorted(set({SKIPPED!r}) & set(sys.modules))
try:
    cyaml.compose("a: [1")
except cyaml.MarkedYAMLError as exc:
    stand_in = type(exc)
import yaml
assert yaml.safe_load("a: 1") == {{"a": 1}}
assert yaml.load("a: [1, 0x10]", Loader=yaml.CSafeLoader) == {{"a": [1, 16]}}
assert yaml.dump({{"a": [1]}}, Dumper=yaml.CSafeDumper) == "a:\\n- 1\\n"
assert yaml.__version__ and yaml.__with_libyaml__ and yaml.reader.Reader and yaml.cyaml.CParser
assert yaml.ScalarNode is yaml.nodes.ScalarNode is cyaml.ScalarNode and yaml.YAMLError is cyaml.YAMLError
assert stand_in.__name__ == "ParserError" and stand_in is not yaml.parser.ParserError
for loader in (yaml.CSafeLoader, yaml.SafeLoader):  # now the C parser raises PyYAML's own classes
    try:
        yaml.load("a: [1", Loader=loader)
    except yaml.parser.ParserError:
        pass
    else:
        raise AssertionError
""")


def test_plain_pyyaml_when_forced_or_already_imported() -> None:
    for plain, code in ((True, ""), (False, "import yaml\n")):
        run(code + """
from multiuplink_networkd.config import cyaml, yamlsource
assert not cyaml.FAST
assert "yaml.constructor" in sys.modules and "yaml.cyaml" in sys.modules
assert yamlsource.load_text(b"a: [0x10, on]", "f.yaml") == {"a": [16, True]}
""", plain=plain)


@pytest.mark.parametrize("change", ["other version", "no C extension"])
def test_plain_pyyaml_when_the_fast_path_does_not_apply(change: str, tmp_path: Path) -> None:
    import yaml

    copy = tmp_path / "yaml"
    shutil.copytree(Path(yaml.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    if change == "other version":
        init = copy / "__init__.py"
        init.write_text(init.read_text().replace(f"__version__ = '{yaml.__version__}'", "__version__ = '9.9'"))
    else:
        for extension in copy.glob("_yaml*.so"):
            extension.unlink()
    run(f"""
from multiuplink_networkd.config import cyaml, yamlsource
import yaml
assert not cyaml.FAST and yaml.__file__.startswith({str(copy)!r})
assert yaml.__with_libyaml__ is {change != "no C extension"}
assert yamlsource.load_text(b"a: [0x10, on]", "f.yaml") == {{"a": [16, True]}}
""", extra_path=str(tmp_path))


def test_plain_pyyaml_after_the_c_extension_failed_to_initialise() -> None:
    """A yaml.tokens without token classes the first time: _yaml fails inside its init, then loads normally."""
    run("""
import importlib.machinery

class EmptyTokensOnce:
    used = False

    def find_spec(self, name, path=None, target=None):
        if name != "yaml.tokens" or self.used:
            return None
        self.used = True
        return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        pass

sys.meta_path.insert(0, EmptyTokensOnce())
from multiuplink_networkd.config import cyaml, yamlsource
import yaml
assert not cyaml.FAST and sys.meta_path[0].used
assert yaml._yaml.ScalarNode is yaml.ScalarNode and yaml._yaml.ScalarToken is yaml.tokens.ScalarToken
assert yamlsource.load_text(b"a: [0x10, on]", "f.yaml") == {"a": [16, True]}
""")
