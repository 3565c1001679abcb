"""The installed generator script, run as systemd runs it (argv per systemd.generator(7))."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from multiuplink_networkd import __version__, generator, paths
from multiuplink_networkd.config import inputs

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "units" / "multiuplink-generator"
EXAMPLE = REPO / "examples" / "two-isps"


def run(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True,
                          env={**os.environ, generator.ROOT_ENV: str(root)})


def wanted(out: Path) -> list[str]:
    wants = out / generator.WANTED_BY
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
def test_valid_stanza_pulls_in_the_configure_unit(root: Path, tmp_path: Path, dirs: int) -> None:
    out = tmp_path / "out"
    done = run(root, *[str(out)] * dirs)
    assert done.returncode == 0 and done.stderr == ""
    assert wanted(out) == [generator.UNIT]
    assert os.readlink(out / generator.WANTED_BY / generator.UNIT) == generator.UNIT_DIR + generator.UNIT
    assert sorted(p.name for p in out.iterdir()) == [generator.WANTED_BY], "writes only into its output dir"


def test_no_stanza_writes_nothing(root: Path, tmp_path: Path) -> None:
    shutil.rmtree(root / "etc/netplan/multiuplink.d")
    out = tmp_path / "out"
    out.mkdir()
    assert run(root, str(out)).returncode == 0
    assert list(out.iterdir()) == []


def test_invalid_stanza_pulls_in_the_report_unit_and_says_where(root: Path, tmp_path: Path) -> None:
    stanza = root / "etc/netplan/multiuplink.d/uplinks.yaml"
    stanza.write_text(stanza.read_text().replace("mark: 2", "mark: 1"))
    out = tmp_path / "out"
    done = run(root, str(out))
    assert done.returncode == 0, "never fails boot"
    assert wanted(out) == [generator.REPORT_UNIT]
    assert f"{stanza}:7:37: mark 1 of uplink 'isp2' is already used by uplink 'isp1'" in done.stderr


def test_unchanged_inputs_are_trusted_without_parsing(root: Path, tmp_path: Path) -> None:
    """Proof that the cache path skips YAML: it accepts a broken file whose fingerprint is the cached one."""
    stanza = root / "etc/netplan/multiuplink.d/uplinks.yaml"
    stanza.write_text(stanza.read_text().replace("mark: 2", "mark: 1"))
    cache = root / paths.GENERATOR_CACHE
    cache.parent.mkdir(parents=True)
    cache.write_text(inputs.fingerprint(str(root), __version__))
    run(root, str(tmp_path / "a"))
    assert wanted(tmp_path / "a") == [generator.UNIT]
    stanza.touch()  # any change of mtime: parsed again, and refused
    run(root, str(tmp_path / "b"))
    assert wanted(tmp_path / "b") == [generator.REPORT_UNIT]


def test_an_edit_in_place_with_its_mtime_put_back_is_seen(root: Path, tmp_path: Path) -> None:
    """Same inode, size and mtime: only the ctime, which userspace cannot set, tells."""
    cache = root / paths.GENERATOR_CACHE
    cache.parent.mkdir(parents=True)
    cache.write_text(inputs.fingerprint(str(root), __version__))
    stanza = root / "etc/netplan/multiuplink.d/uplinks.yaml"
    before = stanza.stat()
    with open(stanza, "r+") as handle:
        handle.write(stanza.read_text().replace("mark: 2", "mark: 1"))
    os.utime(stanza, ns=(before.st_atime_ns, before.st_mtime_ns))
    while stanza.stat().st_ctime_ns == before.st_ctime_ns:  # the edit fell into the clock tick of the fingerprint
        os.utime(stanza, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = stanza.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    run(root, str(tmp_path / "out"))
    assert wanted(tmp_path / "out") == [generator.REPORT_UNIT]


def test_script_checks_the_stanza_directories_of_paths() -> None:
    """The script keeps its own copy of the list (it must not import anything when no stanza exists)."""
    tree = ast.parse(SCRIPT.read_text())
    copies = [node.value for node in tree.body if isinstance(node, ast.Assign)
              and any(isinstance(t, ast.Name) and t.id == "STANZA_DIRS" for t in node.targets)]
    assert len(copies) == 1 and ast.literal_eval(copies[0]) == paths.STANZA_DIRS


def test_unusable_netplan_input_pulls_in_the_report_unit(root: Path, tmp_path: Path) -> None:
    """A 5000-digit metric raised an uncaught ValueError: neither unit ran and the error never reached the journal."""
    netplan = root / "etc/netplan/50-uplinks.yaml"
    netplan.write_text(netplan.read_text().replace("metric: 100", "metric: " + "9" * 5000))
    out = tmp_path / "out"
    done = run(root, str(out))
    assert done.returncode == 0 and wanted(out) == [generator.REPORT_UNIT]
    assert f"{netplan}:13:19: invalid unsigned int value '99999999999999999999...'" in done.stderr


@pytest.mark.parametrize("where", ["etc/netplan/multiuplink.d", "run/netplan/multiuplink.d"])
def test_dangling_stanza_pulls_in_the_report_unit(root: Path, tmp_path: Path, where: str) -> None:
    (root / where).mkdir(parents=True, exist_ok=True)
    (root / where / "uplinks.yaml").unlink(missing_ok=True)
    (root / where / "uplinks.yaml").symlink_to("/nonexistent")
    out = tmp_path / "out"
    done = run(root, str(out))
    assert done.returncode == 0 and wanted(out) == [generator.REPORT_UNIT]
    assert "uplinks.yaml:1:1: cannot read the file: it is a symbolic link to '/nonexistent'" in done.stderr


def test_hidden_stanza_files_alone_import_nothing(root: Path, tmp_path: Path) -> None:
    stanza_dir = root / "etc/netplan/multiuplink.d"
    (stanza_dir / "uplinks.yaml").rename(stanza_dir / ".uplinks.yaml")
    out = tmp_path / "out"
    out.mkdir()
    done = run(root, str(out))
    assert (done.returncode, done.stderr, list(out.iterdir())) == (0, "", [])
