"""Pathological input files get a clean error with a place, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from multiuplink_networkd import cli
from multiuplink_networkd.host import writer

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "two-isps"
STANZA = "etc/netplan/multiuplink.d/uplinks.yaml"


@pytest.mark.parametrize("content,message", [
    (b"network:\n" + b"#" * (2 << 20) + b"\n", "uplinks.yaml:1:1: file is larger than 2 MiB"),
    (b"a: " + b"[" * 60000 + b"]" * 60000 + b"\n", "uplinks.yaml:1:1003: values nest deeper than 1000 levels"),
    (b"- " * 60000 + b"x\n", "uplinks.yaml:1:2001: values nest deeper than 1000 levels"),
    (b"a: &x [*x]\n", "uplinks.yaml:1:4: an alias (*name) refers to the list or mapping containing it"),
    (b"a: " + b"[" * 40 + b"]" * 40 + b"\n", "uplinks.yaml:1:36: values nest deeper than 32 levels"),
    (b"network:\n  multiuplink: {uplinks: {isp1: {interface: \xff}}}\n", "uplinks.yaml:2:45: file is not valid UTF-8"),
    (b"network:\n  multiuplink: !!bool maybe\n", "uplinks.yaml:2:16: invalid bool value 'maybe'"),
    (b"\t- tab\n", "uplinks.yaml:1:1: invalid YAML"),
], ids=lambda value: repr(value)[:40])  # ids end up in the environment (PYTEST_CURRENT_TEST): keep them short
def test_bad_file_is_a_clean_error(content: bytes, message: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    shutil.copytree(EXAMPLE, root)
    (root / STANZA).write_bytes(content)
    for command in ("generate", "validate"):
        assert cli.main([command, "--root-dir", str(root)]) == cli.EXIT_CONFIG
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert not (root / "run").exists()


def make_unusable(root: Path, relative: str, kind: str) -> None:
    """Put an entry netplan fails on (or that cannot be read) where a YAML file would be."""
    path = root / relative
    path.unlink(missing_ok=True)
    if kind == "dangling symlink":
        path.symlink_to("/nonexistent/uplinks.yaml")
    elif kind == "symlink loop":
        path.symlink_to(path.name + ".other")
        path.with_name(path.name + ".other").symlink_to(path.name)
    elif kind == "FIFO":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()


UNUSABLE = {
    "dangling symlink": "cannot read the file: it is a symbolic link to '/nonexistent/uplinks.yaml', which does not "
                        "exist",
    "symlink loop": "cannot read the file: Too many levels of symbolic links",
    "FIFO": "cannot read the file: it is a FIFO",
    "directory": "cannot read the file: it is a directory",
}


@pytest.mark.parametrize("relative", [STANZA, "etc/netplan/50-uplinks.yaml", "run/netplan/multiuplink.d/uplinks.yaml"])
@pytest.mark.parametrize("kind", sorted(UNUSABLE))
def test_unusable_input_is_an_error_that_keeps_the_previous_output(
        relative: str, kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """netplan fails on each (a FIFO makes it hang); never taken as "no stanza", which would remove every output.

    In /run the entry masks the good file of the same name in /etc, so it is the one read.
    """
    root = tmp_path / "root"
    shutil.copytree(EXAMPLE, root)
    assert cli.main(["generate", "--root-dir", str(root)]) == cli.EXIT_OK
    before = outputs(root)
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    make_unusable(root, relative, kind)
    capsys.readouterr()
    for command in ("generate", "validate"):
        assert cli.main([command, "--root-dir", str(root)]) == cli.EXIT_CONFIG
        err = capsys.readouterr().err
        assert f"{root}/{relative}:1:1: {UNUSABLE[kind]}" in err and "Traceback" not in err, err
    assert outputs(root) == before


def outputs(root: Path) -> dict[str, bytes]:
    return {rel: (root / rel).read_bytes() for rel in writer.owned_files(str(root))}


def test_unreadable_stanza_directory_is_an_error(tmp_path: Path) -> None:
    """Without the capability to bypass file modes (as any user but root), multiuplink.d cannot be listed."""
    root = tmp_path / "root"
    shutil.copytree(EXAMPLE, root)
    stanza_dir = root / STANZA.rsplit("/", 1)[0]
    stanza_dir.chmod(0)
    as_a_user = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    done = subprocess.run([*as_a_user, sys.executable, "-m", "multiuplink_networkd", "validate",
                           "--root-dir", str(root)], capture_output=True, text=True, check=False,
                          cwd=Path(__file__).parents[1])
    stanza_dir.chmod(0o755)
    assert done.returncode == cli.EXIT_CONFIG, done.stderr
    assert f"{stanza_dir}:1:1: cannot list the directory: Permission denied" in done.stderr


def test_hidden_and_masked_stanza_files_are_not_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    shutil.copytree(EXAMPLE, root)
    (root / "etc/netplan/multiuplink.d/.uplinks.yaml.swp.yaml").write_text("network: [")
    (root / "lib/netplan/multiuplink.d").mkdir(parents=True)
    (root / "lib/netplan/multiuplink.d/vendor.yaml").write_text("network: {multiuplink: {uplinks: {x: {}}}}\n")
    (root / "etc/netplan/multiuplink.d/vendor.yaml").symlink_to("/dev/null")
    assert cli.main(["validate", "--root-dir", str(root)]) == cli.EXIT_OK, capsys.readouterr().err


def test_the_largest_real_config_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every VLAN ID on a trunk, each with two addresses, a default route in its own table and a policy rule:
    0.95 MB and 32,000 list items and brackets (which the old bound, 10,000 of them, refused), well within
    the 2 MiB limit."""
    root = tmp_path / "root"
    shutil.copytree(EXAMPLE, root)
    vlan = ("    vlan{0}:\n      id: {0}\n      link: eth1\n"
            "      addresses: [10.{1}.{2}.1/24, \"2001:db8:{0:x}::1/64\"]\n"
            "      routes:\n        - {{to: default, via: 10.{1}.{2}.254, table: {3}}}\n"
            "      routing-policy:\n        - {{from: 10.{1}.{2}.0/24, table: {3}}}\n")
    text = "network:\n  vlans:\n" + "".join(vlan.format(i, i // 250, i % 250, 1000 + i) for i in range(1, 4095))
    assert 900_000 < len(text) < (2 << 20)
    (root / "etc/netplan/60-vlans.yaml").write_text(text)
    assert cli.main(["validate", "--root-dir", str(root)]) == cli.EXIT_OK, capsys.readouterr().err
