"""The writer under a hostile or broken root: planted symlinks, files in the way, leftovers, journals, umasks.

A full or read-only file system needs a mount: tests/e2e/test_filesystems.py.
Killed runs: test_killed_runs.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from multiuplink_networkd import cli, paths
from multiuplink_networkd.host import writer
from tests import killing
from tests.outputs import TRANSITIONS, expected_footprint, footprint, make_root, rendered, set_stanza

REPO = Path(__file__).resolve().parents[1]
DROPIN_DIR = "run/systemd/network/10-netplan-eth2.network.d"


def generate(capsys: pytest.CaptureFixture[str], root: Path, command: str = "generate") -> tuple[int, str]:
    code = cli.main([command, "--root-dir", str(root)])
    return code, capsys.readouterr().err


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the root that nothing may touch, holding a file named like ours."""
    (tmp_path / "outside").mkdir()
    victim = tmp_path / "outside" / paths.DROPIN_NAME
    victim.write_text("not yours\n")
    victim.chmod(0o600)
    return tmp_path / "outside"


def untouched(outside: Path) -> bool:
    victim = outside / paths.DROPIN_NAME
    return [p.name for p in outside.iterdir()] == [victim.name] and victim.read_text() == "not yours\n" and (
        victim.stat().st_mode & 0o777 == 0o600)


# --- planted symlinks -------------------------------------------------------------------------------------

@pytest.mark.parametrize("planted", ["run/multiuplink", "run/systemd", "run/sysctl.d", DROPIN_DIR])
def test_a_symlinked_directory_is_refused_in_one_line(planted: str, tmp_path: Path, outside: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path / "root", "two")
    (root / planted).parent.mkdir(parents=True, exist_ok=True)
    (root / planted).symlink_to(outside)
    code, err = generate(capsys, root)
    assert code == cli.EXIT_FILESYSTEM
    assert f"cannot write into {root / planted}: a symbolic link (never followed), not a directory" in one_line(err)
    assert untouched(outside)
    left = footprint(root)
    assert left.pop(planted) == f"-> {outside}"
    assert left == ({} if planted == "run/multiuplink" else {paths.LOCK_FILE: ""}), "nothing staged stays behind"


def test_stale_removal_never_follows_a_symlinked_dropin_directory(tmp_path: Path, outside: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path / "root", "two")
    assert generate(capsys, root)[0] == cli.EXIT_OK
    (root / DROPIN_DIR / paths.DROPIN_NAME).unlink()
    (root / DROPIN_DIR).rmdir()
    (root / DROPIN_DIR).symlink_to(outside)
    set_stanza(root, "moved")  # eth2's drop-in is stale now: the one "in" the symlinked directory must stay
    assert generate(capsys, root)[0] == cli.EXIT_OK
    assert untouched(outside)
    assert footprint(root) == {**expected_footprint(rendered(root)), DROPIN_DIR: f"-> {outside}"}


@pytest.mark.parametrize("target", [paths.NFT_RULESET, paths.SYSCTL_FILE, paths.networkd_dropin("eth1")])
def test_a_symlink_on_one_of_our_file_names_is_replaced_not_followed(target: str, tmp_path: Path, outside: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path / "root", "two")
    (root / target).parent.mkdir(parents=True)
    (root / target).symlink_to(outside / paths.DROPIN_NAME)
    assert generate(capsys, root)[0] == cli.EXIT_OK
    assert untouched(outside)
    assert footprint(root) == expected_footprint(rendered(root))


def test_a_symlink_on_a_temporary_name_is_never_written_through(tmp_path: Path, outside: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Temporary names are random and created with O_EXCL|O_NOFOLLOW; here the "random" part is known."""
    monkeypatch.setattr(os, "urandom", lambda size: bytes(size))
    root = make_root(tmp_path / "root", "two")
    (root / paths.STATE_DIR).mkdir(parents=True)
    for guess in ("0" * 12, str(os.getpid())):  # what the random part is here, and what it was before
        (root / paths.STATE_DIR / f".manifest.json.{guess}.tmp").symlink_to(outside / paths.DROPIN_NAME)
    code, err = generate(capsys, root)
    assert code == cli.EXIT_FILESYSTEM
    assert f"cannot write {root / paths.MANIFEST}: File exists" in one_line(err)
    assert untouched(outside)


def test_a_symlinked_lock_is_refused(tmp_path: Path, outside: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path / "root", "two")
    (root / paths.STATE_DIR).mkdir(parents=True)
    (root / paths.LOCK_FILE).symlink_to(outside / paths.DROPIN_NAME)
    code, err = generate(capsys, root)
    assert code == cli.EXIT_FILESYSTEM
    assert f"cannot open {root / paths.LOCK_FILE}: a symbolic link (never followed)" in one_line(err)
    assert untouched(outside)


def test_the_root_itself_may_be_a_symlink(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The administrator named it; only what is below it is ours to judge."""
    root = make_root(tmp_path / "root", "two")
    (tmp_path / "link").symlink_to(root)
    assert generate(capsys, tmp_path / "link")[0] == cli.EXIT_OK
    assert footprint(root) == expected_footprint(rendered(root))


def test_reading_never_follows_a_symlink(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "root"
    (root / paths.STATE_DIR).mkdir(parents=True)
    (root / paths.MANIFEST).symlink_to(outside / paths.DROPIN_NAME)
    (root / "run/sysctl.d").symlink_to(outside)
    assert writer.read_owned(str(root)) == {}
    assert writer.owned_files(str(root)) == []


# --- files and directories in the way -----------------------------------------------------------------

def test_a_file_where_a_directory_must_be(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path / "root", "two")
    generate(capsys, root)
    before = footprint(root)
    (root / "run/systemd/network/10-netplan-eth3.network.d").write_text("in the way\n")
    set_stanza(root, "moved")
    code, err = generate(capsys, root)
    assert code == cli.EXIT_FILESYSTEM
    assert one_line(err) == (f"multiuplink: generate failed: cannot write into {root}/run/systemd/network/"
                             "10-netplan-eth3.network.d: it is a file, not a directory; the previous files are "
                             "in place\n")
    assert footprint(root) == {**before, "run/systemd/network/10-netplan-eth3.network.d": "in the way\n"}


def test_a_directory_where_a_file_must_be(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path / "root", "two")
    generate(capsys, root)
    before = footprint(root)
    (root / paths.IPTABLES_RULESET).mkdir()
    set_stanza(root, "iptables")
    code, err = generate(capsys, root)
    assert code == cli.EXIT_FILESYSTEM
    assert one_line(err) == (f"multiuplink: generate failed: cannot write {root / paths.IPTABLES_RULESET}: "
                             "it is a directory; the previous files are in place\n")
    assert footprint(root) == before


def test_a_fifo_on_our_name_neither_hangs_nor_stays(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root", "two")
    (root / paths.STATE_DIR).mkdir(parents=True)
    os.mkfifo(root / paths.MANIFEST)
    done = subprocess.run([sys.executable, "-m", "multiuplink_networkd", "generate", "--root-dir", str(root)],
                          capture_output=True, text=True, timeout=30, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert footprint(root) == expected_footprint(rendered(root))


def test_bytes_that_are_not_utf8_read_back_and_restore_exactly(tmp_path: Path) -> None:
    """apply's undo writes back what it read: a hand-edited Latin-1 file must come back byte for byte."""
    root = tmp_path / "root"
    (root / "run/sysctl.d").mkdir(parents=True)
    (root / paths.SYSCTL_FILE).write_bytes(b"# caf\xe9\nnet/ipv4/conf/eth1/rp_filter=2\n")
    before = writer.read_owned(str(root))
    with writer.locked(str(root)):
        writer.write_tree(str(root), {})
        assert not (root / paths.SYSCTL_FILE).exists()
        writer.write_tree(str(root), before)
    assert (root / paths.SYSCTL_FILE).read_bytes() == b"# caf\xe9\nnet/ipv4/conf/eth1/rp_filter=2\n"


# --- leftovers and the journal ------------------------------------------------------------------------

def test_leftovers_of_killed_runs_are_removed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path / "root", "two")
    generate(capsys, root)
    expected = footprint(root)
    leftovers = ["run/sysctl.d/.50-multiuplink.conf.4242.tmp", f"{DROPIN_DIR}/.50-multiuplink.conf.1.tmp",
                 "run/multiuplink/.ruleset.nft.0123456789ab.tmp", "run/multiuplink/.journal.77.tmp"]
    for leftover in leftovers:
        (root / leftover).write_text("half")
    (root / "run/systemd/network/10-netplan-eth9.network.d").mkdir()  # made, then killed before its file
    (root / "run/systemd/network/10-netplan-eth8.network.d").mkdir()
    (root / "run/systemd/network/10-netplan-eth8.network.d/60-admin.conf").write_text("[Network]\n")
    (root / "run/multiuplink/.admin-notes.tmp").write_text("not ours\n")
    assert generate(capsys, root)[0] == cli.EXIT_OK
    assert footprint(root) == {**expected, "run/systemd/network/10-netplan-eth8.network.d/60-admin.conf":
                               "[Network]\n", "run/multiuplink/.admin-notes.tmp": "not ours\n"}


def test_a_committed_switch_is_completed_by_the_next_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path / "root", "two")
    generate(capsys, root)
    old = footprint(root)
    staged = {paths.NFT_RULESET: "new ruleset\n", paths.networkd_dropin("eth3"): "new drop-in\n"}
    renames = []
    for relative, text in staged.items():
        directory, _, name = relative.rpartition("/")
        (root / directory).mkdir(exist_ok=True)
        (root / directory / f".{name}.abc.tmp").write_text(text)
        renames.append([directory, f".{name}.abc.tmp", name])
    (root / paths.JOURNAL).write_text(json.dumps({"rename": renames, "remove": [paths.networkd_dropin("eth2")]}))
    assert writer.recover(str(root)) is True
    new = {**old, **staged}
    del new[paths.networkd_dropin("eth2")]
    assert footprint(root) == new, "eth2's emptied directory goes too"
    assert writer.recover(str(root)) is False


@pytest.mark.parametrize("journal", [
    "{not json", "[" * 100000, '{"rename": 1, "remove": []}', '{"rename": [["a", "b"]], "remove": []}',
    json.dumps({"rename": [["run/multiuplink", "../../../outside/x", "ruleset.nft"],
                           ["etc/netplan", ".50-uplinks.yaml.1.tmp", "50-uplinks.yaml"],
                           ["run/systemd/network/10-netplan-a/../..", ".x.1.tmp", "50-multiuplink.conf"]],
                "remove": ["etc/netplan/50-uplinks.yaml", "run/systemd/network/10-netplan-x/../../../../etc/"
                           "netplan/x.network.d/50-multiuplink.conf", "/etc/passwd"]}),
], ids=["garbage", "deep", "wrong-types", "short-entry", "foreign-names"])
def test_a_damaged_or_hostile_journal_acts_only_on_our_names(journal: str, tmp_path: Path, outside: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path / "root", "two")
    generate(capsys, root)
    before = footprint(root)
    (root / "etc/netplan/.50-uplinks.yaml.1.tmp").write_text("planted\n")
    (root / paths.JOURNAL).write_text(journal)
    assert generate(capsys, root)[0] == cli.EXIT_OK
    assert footprint(root) == before
    assert (root / "etc/netplan/50-uplinks.yaml").exists() and (root / "etc/netplan/.50-uplinks.yaml.1.tmp").exists()
    assert untouched(outside)


def test_owned_names_match_component_by_component(tmp_path: Path) -> None:
    assert writer.is_owned(paths.networkd_dropin("eth1"))
    assert not writer.is_owned("run/systemd/network/10-netplan-x/../y.network.d/50-multiuplink.conf")
    assert not writer.is_owned("/" + paths.NFT_RULESET)
    with pytest.raises(ValueError, match="not a file this package owns"):
        writer.write_tree(str(tmp_path), {"etc/passwd": ""})


def someone_else_removes_first() -> None:
    """In a forked child: before each removal of ours, the file is already gone (an admin's rm, a purge)."""
    busy = [False]

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event == "os.remove" and not busy[0]:
            busy[0] = True
            try:
                name, dir_fd = args
                os.unlink(name, dir_fd=None if dir_fd == -1 else dir_fd)  # type: ignore[arg-type]
            except OSError:
                pass
            finally:
                busy[0] = False
    sys.addaudithook(hook)


@pytest.mark.parametrize("old,new", TRANSITIONS, ids=[f"{old}-to-{new}" for old, new in TRANSITIONS])
def test_files_that_vanish_under_the_writer(old: str, new: str, tmp_path: Path) -> None:
    root = make_root(tmp_path / "root", old)
    assert killing.run(["generate", "--root-dir", str(root)]) == (killing.FINISHED, cli.EXIT_OK)
    set_stanza(root, new)
    assert killing.run(["generate", "--root-dir", str(root)], setup=someone_else_removes_first) == (
        killing.FINISHED, cli.EXIT_OK)
    assert footprint(root) == expected_footprint(rendered(root))


# --- modes ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o000, 0o077, 0o027])
def test_modes_do_not_follow_the_umask(umask: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path / "root", "two")
    previous = os.umask(umask)
    try:
        assert generate(capsys, root)[0] == cli.EXIT_OK
    finally:
        os.umask(previous)
    modes = {str(p.relative_to(root)): p.stat().st_mode & 0o7777 for p in [root / "run", *(root / "run").rglob("*")]}
    assert modes == {
        **{directory: 0o755 for directory in ("run", "run/multiuplink", "run/sysctl.d", "run/systemd",
                                              "run/systemd/network", DROPIN_DIR, DROPIN_DIR.replace("2", "1"))},
        **{file: 0o644 for file in rendered(root)}, paths.APPLYING: 0o644,
        paths.LOCK_FILE: 0o600}


def test_a_lock_others_could_open_is_made_private(tmp_path: Path) -> None:
    """Anyone who can open the lock can flock it and stall every run, the boot unit's too."""
    (tmp_path / paths.STATE_DIR).mkdir(parents=True)
    (tmp_path / paths.LOCK_FILE).touch(0o644)
    (tmp_path / paths.LOCK_FILE).chmod(0o644)
    with writer.locked(str(tmp_path)):
        assert (tmp_path / paths.LOCK_FILE).stat().st_mode & 0o777 == 0o600
