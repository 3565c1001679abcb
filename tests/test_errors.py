"""What an error shows the user: nothing a terminal would interpret, the caret under its character, bounded size."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from multiuplink_networkd.errors import ConfigError, Position


def shown(message: str, source: str, column: int) -> list[str]:
    return ConfigError(Position("f.yaml", 1, column), message, "fix it").format(lambda position: source).split("\n")


def test_control_characters_in_message_and_source_are_escaped() -> None:
    lines = shown("invalid value 'x\x1b[2J\n' for 'interface'", "a: \x1b[2J\x7f\x85", 4)
    assert lines[0] == "f.yaml:1:4: invalid value 'x\\x1b[2J\\n' for 'interface'"
    assert lines[1:3] == ["a: \\x1b[2J\\x7f\\x85", "   ^"]
    assert all(char.isprintable() for line in lines for char in line)


def test_the_caret_follows_tabs_escapes_and_wide_characters() -> None:
    assert shown("m", "\t\tkey: x", 3)[1:3] == ["\t\tkey: x", "\t\t^"]
    assert shown("m", "\x1bab", 3)[1:3] == ["\\x1bab", "     ^"]
    assert shown("m", "日本: x", 4)[1:3] == ["日本: x", "     ^"]


def test_a_long_line_is_cut_around_the_caret() -> None:
    source = "x" * 3000 + "!" + "y" * 3000
    line, caret = shown("m", source, 3001)[1:3]
    assert len(line) <= 166 and line.startswith("...") and line.endswith("...")
    assert line[caret.index("^")] == "!"


def test_a_long_message_is_cut() -> None:
    assert len(shown("invalid uplink name '" + "a" * 10**6 + "'", "", 1)[0]) < 500


def test_a_binary_line_is_never_echoed() -> None:
    assert shown("m", "SECRET=1\0PATH=/bin", 9) == ["f.yaml:1:9: m", "hint: fix it"]


def test_a_stanza_linked_to_the_environment_does_not_print_it(tmp_path: Path) -> None:
    stanza_dir = tmp_path / "etc/netplan/multiuplink.d"
    stanza_dir.mkdir(parents=True)
    (stanza_dir / "env.yaml").symlink_to("/proc/self/environ")
    done = subprocess.run([sys.executable, "-m", "multiuplink_networkd", "validate", "--root-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "A_SECRET": "hunter2-hunter2", "ZZ_SECRET": "correct-horse"})
    assert done.returncode == 1
    assert "env.yaml:1:" in done.stderr and "unacceptable character #x0000" in done.stderr
    assert "hunter2" not in done.stderr and "correct-horse" not in done.stderr and "PATH=" not in done.stderr
