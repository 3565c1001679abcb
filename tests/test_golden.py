"""Golden directories: ``tests/cases/<name>/input`` is a root, ``expected`` the exact output tree.

A case with ``expected.stderr`` instead must fail with exactly that message
(the temporary root shown as ``ROOT``) and write nothing. ``links``, where
present, lists symbolic links made in the root (``path -> target``, one a
line): masks to /dev/null, dangling links and loops, which a source package
must not hold. ``validate.stdout``,
where present, is what ``validate`` explains about the uplinks. Adding a case is
adding folders; ``MULTIUPLINK_UPDATE_GOLDEN=1`` rewrites the expectations.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from multiuplink_networkd import cli, paths
from multiuplink_networkd.host import writer

CASES = Path(__file__).parent / "cases"
UPDATE = os.environ.get("MULTIUPLINK_UPDATE_GOLDEN") == "1"


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()
            and p.name != ".empty"}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir()), ids=str)
@pytest.mark.parametrize("command", ["generate", "validate"])
def test_case(case: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = CASES / case
    root = tmp_path / "root"
    shutil.copytree(source / "input", root)
    for stanza in root.glob("*/netplan/multiuplink.d/*.yaml"):
        stanza.chmod(0o600)  # as netplan wants its files; git keeps 0644 (tests/test_cli.py covers the warning)
    links = source / "links"
    for line in links.read_text().splitlines() if links.exists() else ():
        link, target = line.split(" -> ")
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        (root / link).symlink_to(target)
    code, out, err = run_cli(capsys, command, "--root-dir", str(root))
    out, err = out.replace(str(root), "ROOT"), err.replace(str(root), "ROOT")
    expected_stderr = source / "expected.stderr"
    if expected_stderr.exists() or (UPDATE and code != 0):
        if UPDATE and command == "generate":
            expected_stderr.write_text(err)
        assert code == cli.EXIT_CONFIG
        assert err == expected_stderr.read_text()
        assert writer.owned_files(str(root)) == [], "nothing may be written for a bad config"
        return
    assert code == cli.EXIT_OK, err
    if command == "validate":
        explained = source / "validate.stdout"
        if UPDATE:
            explained.write_text(out)
        if explained.exists():
            assert out == explained.read_text()
        return
    produced = {rel: (root / rel).read_text() for rel in writer.owned_files(str(root))}
    if UPDATE:
        shutil.rmtree(source / "expected", ignore_errors=True)
        for rel, text in produced.items():
            (source / "expected" / rel).parent.mkdir(parents=True, exist_ok=True)
            (source / "expected" / rel).write_text(text)
        if not produced:
            (source / "expected").mkdir(parents=True, exist_ok=True)
            (source / "expected" / ".empty").write_text("")
    assert produced == tree(source / "expected")


def test_second_generate_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    shutil.copytree(CASES / "two-isps" / "input", root)
    assert run_cli(capsys, "generate", "--root-dir", str(root))[0] == 0
    before = {rel: os.stat(root / rel).st_mtime_ns for rel in writer.owned_files(str(root))}
    code, out, _ = run_cli(capsys, "generate", "--root-dir", str(root))
    assert code == 0 and out == ""
    assert before == {rel: os.stat(root / rel).st_mtime_ns for rel in writer.owned_files(str(root))}


def test_removed_uplink_leaves_nothing_behind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    shutil.copytree(CASES / "two-isps" / "input", root)
    run_cli(capsys, "generate", "--root-dir", str(root))
    stanza = root / "etc/netplan/multiuplink.d/uplinks.yaml"
    stanza.write_text(stanza.read_text().replace("      isp2: {interface: eth2, mark: 2, table: 102}\n", ""))
    code, out, _ = run_cli(capsys, "generate", "--root-dir", str(root))
    assert code == 0
    assert "removed run/systemd/network/10-netplan-eth2.network.d/50-multiuplink.conf" in out
    assert not (root / "run/systemd/network/10-netplan-eth2.network.d").exists()
    stanza.unlink()
    run_cli(capsys, "generate", "--root-dir", str(root))
    assert writer.owned_files(str(root)) == []


def test_bad_config_keeps_previous_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    shutil.copytree(CASES / "two-isps" / "input", root)
    run_cli(capsys, "generate", "--root-dir", str(root))
    before = {rel: (root / rel).read_text() for rel in writer.owned_files(str(root))}
    stanza = root / "etc/netplan/multiuplink.d/uplinks.yaml"
    stanza.write_text(stanza.read_text().replace("mark: 2", "mark: 1"))
    code, _, err = run_cli(capsys, "generate", "--root-dir", str(root))
    assert code == cli.EXIT_CONFIG and "already used" in err
    assert before == {rel: (root / rel).read_text() for rel in writer.owned_files(str(root))}


def test_owned_globs_cover_every_rendered_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Stale removal relies on it: a rendered file outside the globs would never be cleaned up."""
    import fnmatch

    for case in CASES.iterdir():
        for rel in tree(case / "expected").keys() if (case / "expected").exists() else ():
            assert any(fnmatch.fnmatch(rel, g) for g in paths.OWNED_GLOBS), rel
