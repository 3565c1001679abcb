"""The command line of status, explain and try, where no host is needed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from multiuplink_networkd import cli


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exit:  # argparse
        code = int(exit.code or 0)
    return code, capsys.readouterr().err


def test_status_and_explain_refuse_to_guess_without_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """As anyone else nft and conntrack say nothing, which would read as 'not loaded'."""
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    for argv in (["status"], ["explain", "192.0.2.1"]):
        code, err = run(capsys, *argv, "--root-dir", str(tmp_path))
        assert (code, "which only root may; run it as root" in err) == (cli.EXIT_RUNTIME, True), err


@pytest.mark.parametrize("argv", [["try", "--timeout", "0"], ["try", "--timeout", "-3"], ["try", "--timeout", "1e9"],
                                  ["try", "--timeout", "soon"], ["status", "--json", "--format", "openmetrics"],
                                  ["status", "--format", "yaml"], ["explain"], ["explain", "host.example"]])
def test_wrong_arguments_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, *argv)[0] == cli.EXIT_USAGE


def test_confirming_with_no_try_waiting_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "try", "--confirm", "--root-dir", str(tmp_path))
    assert code == cli.EXIT_RUNTIME
    assert "no 'multiuplink try' is waiting for a confirmation" in err


@pytest.mark.parametrize("command", ["generate", "validate", "apply", "status", "try"])
def test_a_missing_root_dir_is_a_usage_error(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, command, "--root-dir", str(tmp_path / "typo"))
    assert code == cli.EXIT_USAGE
    assert f"{tmp_path}/typo: no such directory" in err


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "two-isps"
TOO_OPEN = "are too open. Netplan configuration should NOT be accessible by others."


@pytest.mark.parametrize("mode,warned", [(0o600, False), (0o400, False), (0o644, True), (0o640, True),
                                         (0o620, True), (0o602, True), (0o610, False), (0o601, False)])
def test_a_stanza_others_may_read_is_warned_about_as_netplan_does(
        mode: int, warned: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    shutil.copytree(EXAMPLE, root)
    stanza = root / "etc/netplan/multiuplink.d/uplinks.yaml"
    stanza.chmod(mode)
    code, err = run(capsys, "generate", "--root-dir", str(root))
    assert code == cli.EXIT_OK, "a warning, not an error"
    assert (f"multiuplink: Permissions for {stanza} {TOO_OPEN}\n" in err) is warned, err
