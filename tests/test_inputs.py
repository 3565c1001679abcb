"""Pathological input files get a clean error with a place, never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from multiuplink_networkd import cli

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "two-isps"
STANZA = "etc/netplan/multiuplink.d/uplinks.yaml"


@pytest.mark.parametrize("content,message", [
    (b"network:\n" + b"#" * (1 << 20) + b"\n", "uplinks.yaml:1:1: file is larger than 1048576 bytes"),
    (b"a: " + b"[" * 20000 + b"]" * 20000 + b"\n", "uplinks.yaml:1:1: file has more than 10000 list items"),
    (b"a: &x [*x]\n", "uplinks.yaml:1:4: values nest deeper than 32 levels"),
    (b"network:\n  multiuplink: {uplinks: {isp1: {interface: \xff}}}\n", "uplinks.yaml:2:45: file is not valid UTF-8"),
    (b"network:\n  multiuplink: !!bool maybe\n", "uplinks.yaml:2:16: invalid bool value 'maybe'"),
    (b"\t- tab\n", "uplinks.yaml:1:1: invalid YAML"),
])
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
