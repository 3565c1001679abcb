"""The command line of status, explain and try, where no host is needed."""

from __future__ import annotations

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
