"""YAML that attacks the reader: alias bombs, self-containing aliases, control characters, tabs.

Each runs the real CLI (at boot, the configure unit's parse) in a subprocess under a time and address-space bound,
with both loaders (libyaml through :mod:`.cyaml`, and plain PyYAML), so a regression fails by
timing out or running out of memory instead of hanging the test run.
"""

from __future__ import annotations

import itertools
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from multiuplink_networkd.config import cyaml, yamlsource
from multiuplink_networkd.errors import ConfigError, Position
from tests.generator_script import ROOT_ENV, SCRIPT, UNIT, WANTED_BY

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "two-isps"
SECONDS = 20
"""Far above the ~0.1 s a bounded run takes; the unbounded one ran minutes."""
MEMORY = 1 << 30


def alias_bomb(levels: int = 8, width: int = 10, indent: str = "") -> str:
    """``a: &a [x,...]``, ``b: &b [*a,...]``...: ``width ** levels`` values in about 300 bytes."""
    names = "abcdefghijklmnop"[:levels]
    lines = [f"{indent}a: &a [{','.join('x' * width)}]"]
    lines += [f"{indent}{name}: &{name} [{','.join([f'*{previous}'] * width)}]"
              for previous, name in itertools.pairwise(names)]
    return "\n".join(lines) + "\n"


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def bounded(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=SECONDS, preexec_fn=limited,
                              env={**os.environ, **env})
    except subprocess.TimeoutExpired:
        pytest.fail(f"{argv[-1]} ran over {SECONDS} s")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLE, tmp_path / "root")
    return tmp_path / "root"


PLACES = {"stanza": "etc/netplan/multiuplink.d/bomb.yaml", "netplan": "etc/netplan/60-bomb.yaml"}


@pytest.mark.parametrize("plain", ["0", "1"], ids=["libyaml-direct", "plain-pyyaml"])
@pytest.mark.parametrize("place", sorted(PLACES))
def test_alias_bomb_is_refused_quickly_by_the_cli(root: Path, place: str, plain: str) -> None:
    bomb = alias_bomb() if place == "stanza" else "network:\n  version: 2\n  ethernets:\n    eth9:\n" + alias_bomb(
        indent="      ")
    assert len(bomb) < 400
    (root / PLACES[place]).write_text(bomb)
    done = bounded([sys.executable, "-m", "multiuplink_networkd", "validate", "--root-dir", str(root)],
                   {cyaml.PLAIN_ENV: plain})
    assert done.returncode == 1, done.stderr
    assert f"{root}/{PLACES[place]}:" in done.stderr
    assert "holds more than 1000000 values, counting each alias" in done.stderr


@pytest.mark.parametrize("place", sorted(PLACES))
def test_alias_bomb_is_refused_quickly_at_boot(root: Path, tmp_path: Path, place: str) -> None:
    """The generator never reads it and pulls in the unit, whose parse (as 'generate') refuses it, writing nothing."""
    (root / PLACES[place]).write_text(alias_bomb())
    out = tmp_path / "out"
    out.mkdir()
    done = bounded([str(SCRIPT), str(out)], {ROOT_ENV: str(root)})
    assert (done.returncode, done.stderr) == (0, "")
    assert sorted(p.name for p in (out / WANTED_BY).iterdir()) == [UNIT]
    done = bounded([sys.executable, "-m", "multiuplink_networkd", "generate", "--root-dir", str(root)], {})
    assert done.returncode == 1 and "holds more than 1000000 values" in done.stderr, done.stderr
    assert not (root / "run").exists()


def error_of(text: str) -> tuple[ConfigError, Position]:
    with pytest.raises(ConfigError) as caught:
        yamlsource.load_text(text.encode(), "f.yaml")
    assert caught.value.position is not None
    return caught.value, caught.value.position


def test_the_error_points_at_the_first_collection_over_the_limit() -> None:
    _, position = error_of(alias_bomb())
    assert (position.line, position.column) == (6, 4)  # f: 1,111,111 values; e: 111,111


def test_many_aliases_within_the_limit_load() -> None:
    assert len(yamlsource.load_text(alias_bomb(levels=4).encode(), "f.yaml")["d"]) == 10


@pytest.mark.parametrize("text", ["a: &a [1, *a]\n", "a: &a {b: *a}\n", "a: &a [[[*a]]]\n"])
def test_an_alias_inside_its_own_anchor_is_refused(text: str) -> None:
    error, position = error_of(text)
    assert error.message == "an alias (*name) refers to the list or mapping containing it"
    assert position.line == 1


def test_deep_nesting_without_aliases_is_not_an_expansion() -> None:
    nested = "[" * 900 + "]" * 900
    assert yamlsource.compose_text(f"a: {nested}\n".encode(), "f.yaml") is not None


@pytest.mark.parametrize("plain", ["0", "1"], ids=["libyaml-direct", "plain-pyyaml"])
@pytest.mark.parametrize("text,line,column", [
    ('é: "x\0y"\n', 1, 6),  # multi-byte before it: libyaml counts bytes, PyYAML characters
    ("network:\n  version: 2\x1b\n", 2, 13),
    ("a: b\n\x00\n", 2, 1),
])
def test_control_characters_are_reported_where_they_are(text: str, line: int, column: int, plain: str) -> None:
    code = ("import sys; from multiuplink_networkd.config import yamlsource\n"
            "try:\n    yamlsource.load_text(sys.stdin.buffer.read(), 'f')\n"
            "except Exception as e:\n    print(e.position, e.message)\n")
    done = subprocess.run([sys.executable, "-c", code], input=text.encode(), capture_output=True, timeout=SECONDS,
                          env={**os.environ, cyaml.PLAIN_ENV: plain})
    shown = done.stdout.decode()
    assert shown.startswith(f"f:{line}:{column} invalid YAML: unacceptable character #x00"), shown


@pytest.mark.parametrize("text,line,column", [
    ("network:\n\tversion: 2\n", 2, 1),
    ("network:\n  \tversion: 2\n", 2, 3),
    ("é:\n  b:\n  \t c: 1\n", 3, 3),
])
def test_a_tab_in_indentation_says_so(text: str, line: int, column: int) -> None:
    error, position = error_of(text)
    assert (error.message, error.hint) == ("invalid YAML: tabs are not allowed for indentation", "indent with spaces")
    assert (position.line, position.column) == (line, column)
