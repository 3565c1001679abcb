"""The installed generator script, run as systemd runs it (argv per systemd.generator(7))."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from multiuplink_networkd import paths
from tests.generator_script import ROOT_ENV, SCRIPT, TREE, UNIT, UNIT_DIR, WANTED_BY, constant

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "two-isps"


def run(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True, env={**os.environ, ROOT_ENV: str(root)})


def wanted(out: Path) -> list[str]:
    wants = out / WANTED_BY
    return sorted(p.name for p in wants.iterdir()) if wants.exists() else []


@pytest.fixture
def root(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLE, tmp_path / "root")
    return tmp_path / "root"


@pytest.mark.parametrize("argv", [(), ("a", "b"), ("a", "b", "c", "d")])
def test_wrong_argv_exits_2(root: Path, argv: tuple[str, ...]) -> None:
    done = run(root, *argv)
    assert done.returncode == 2 and "usage" in done.stderr


@pytest.mark.parametrize("dirs", [1, 3])
def test_stanza_pulls_in_the_configure_unit(root: Path, tmp_path: Path, dirs: int) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for _ in range(2):  # systemd may run it again (daemon-reload) over its own output
        done = run(root, *[str(out)] * dirs)
        assert done.returncode == 0 and done.stderr == ""
    assert wanted(out) == [UNIT]
    assert os.readlink(out / WANTED_BY / UNIT) == UNIT_DIR + UNIT
    assert sorted(p.name for p in out.iterdir()) == [WANTED_BY], "writes only into its normal output dir"


def test_no_stanza_writes_nothing(root: Path, tmp_path: Path) -> None:
    stanza_dir = root / "etc/netplan/multiuplink.d"
    (stanza_dir / "uplinks.yaml").rename(stanza_dir / "uplinks.yaml.disabled")  # only *.yaml counts
    out = tmp_path / "out"
    out.mkdir()
    assert run(root, str(out)).returncode == 0
    assert list(out.iterdir()) == []


def test_broken_stanza_pulls_in_the_configure_unit_without_parsing(root: Path, tmp_path: Path) -> None:
    """The unit's 'apply --boot' parses and reports; the generator never reads the files (this one is no YAML)."""
    (root / "etc/netplan/multiuplink.d/uplinks.yaml").write_bytes(b"\xff\x00 {[ not YAML")
    out = tmp_path / "out"
    out.mkdir()
    done = run(root, str(out))
    assert (done.returncode, done.stderr, wanted(out)) == (0, "", [UNIT])


def test_an_output_dir_it_cannot_write_is_logged_and_does_not_fail_boot(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("a file where the output directory should be\n")
    done = run(root, str(out))
    assert done.returncode == 1 and done.stderr.startswith(f"multiuplink-generator: {UNIT} is not started: ")


def test_script_imports_only_what_the_interpreter_already_loaded() -> None:
    """No YAML, no validation, no package import: the configure unit does all of that."""
    imported = {alias.name for node in ast.walk(TREE) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names}
    assert imported == {"posix", "sys"}


def test_script_checks_the_stanza_directories_of_paths() -> None:
    """The script keeps its own copy of the list (it must not import anything)."""
    assert constant("STANZA_DIRS") == paths.STANZA_DIRS


def _five_thousand_digit_metric(root: Path) -> str:
    netplan = root / "etc/netplan/50-uplinks.yaml"
    netplan.write_text(netplan.read_text().replace("metric: 100", "metric: " + "9" * 5000))
    return f"{netplan}:13:19: invalid unsigned int value '99999999999999999999...'"


def _dangling_stanza(root: Path) -> str:
    stanza = root / "run/netplan/multiuplink.d/uplinks.yaml"
    stanza.parent.mkdir(parents=True)
    stanza.symlink_to("/nonexistent")
    return f"{stanza}:1:1: cannot read the file: it is a symbolic link to '/nonexistent'"


@pytest.mark.parametrize("spoil", [_five_thousand_digit_metric, _dangling_stanza])
def test_unusable_inputs_pull_in_the_unit_whose_parse_reports_them(root: Path, tmp_path: Path,
                                                                     spoil: Callable[[Path], str]) -> None:
    """The unit's 'apply --boot' parses as 'generate' does: exit 1, the error on stderr (the journal)."""
    error = spoil(root)
    out = tmp_path / "out"
    out.mkdir()
    done = run(root, str(out))
    assert (done.returncode, done.stderr, wanted(out)) == (0, "", [UNIT])
    parsed = subprocess.run([sys.executable, "-m", "multiuplink_networkd", "generate", "--root-dir", str(root)],
                            capture_output=True, text=True)
    assert parsed.returncode == 1 and error in parsed.stderr and not (root / "run/multiuplink").exists()


def test_hidden_stanza_files_alone_link_nothing(root: Path, tmp_path: Path) -> None:
    stanza_dir = root / "etc/netplan/multiuplink.d"
    (stanza_dir / "uplinks.yaml").rename(stanza_dir / ".uplinks.yaml")
    out = tmp_path / "out"
    out.mkdir()
    done = run(root, str(out))
    assert (done.returncode, done.stderr, list(out.iterdir())) == (0, "", [])
