"""A full and a read-only file system under ``--root-dir`` (``run/`` on a small tmpfs, as /run is one).

Every refusal must be one line naming the path, exit code 5, and leave the
complete previous file set; ``apply`` must also put the kernel back. The free
space (pages, then inodes) is swept across every point where a switch can run
out of it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from multiuplink_networkd import cli, paths
from tests.outputs import expected_footprint, footprint, make_root, rendered, set_stanza

from .bare_host import Kernel, kernel, multiuplink, stub_bin

PAGES = 64
INODES = 64
FILLER = "run/filler"


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Callable[[Path, str], None]]:
    """Mount a tmpfs of our own (``mount(path, options)``); unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []

    def mount_tmpfs(path: Path, options: str) -> None:
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "mu-test", str(path)], check=True)
        mounted.append(path)

    yield mount_tmpfs
    for path in reversed(mounted):
        subprocess.run(["umount", str(path)], check=True)


def unfill(root: Path) -> None:
    (root / FILLER).mkdir(exist_ok=True)
    for filler in (root / FILLER).glob("*"):
        filler.unlink()


def fill(root: Path, leave: int, unit: str) -> None:
    """Use up the tmpfs under ``root/run`` but ``leave`` free pages (``unit="pages"``) or inodes."""
    unfill(root)
    status = os.statvfs(root / "run")
    if unit == "pages":
        (root / FILLER / "pages").write_bytes(bytes((status.f_bavail - leave) * status.f_frsize))
    else:
        for number in range(status.f_favail - leave):
            (root / FILLER / str(number)).touch()


def ours(root: Path) -> dict[str, str]:
    """Our files, without the filler on the tmpfs."""
    return {path: text for path, text in footprint(root).items() if not path.startswith(FILLER)}


@pytest.mark.parametrize("unit", ["pages", "inodes"])
def test_generate_on_a_full_file_system(unit: str, mount: Callable[[Path, str], None], tmp_path: Path,
                                        capfd: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path / "root", "two")
    mount(root / "run", f"size={PAGES * 4}k,nr_inodes={INODES},mode=755")
    outcomes: Counter[str] = Counter()
    for leave in range(12):
        set_stanza(root, "two")
        unfill(root)
        assert cli.main(["generate", "--root-dir", str(root)]) == cli.EXIT_OK
        old = ours(root)
        fill(root, leave, unit)
        set_stanza(root, "moved")
        capfd.readouterr()
        code = cli.main(["generate", "--root-dir", str(root)])
        err = capfd.readouterr().err
        if code == cli.EXIT_OK:
            assert ours(root) == expected_footprint(rendered(root)), f"{leave} {unit} free"
            outcomes["new"] += 1
            continue
        assert code == cli.EXIT_FILESYSTEM, err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert re.fullmatch(rf"multiuplink: generate failed: cannot (write|create directory) {root}/run/[^ ]+: "
                            r"No space left on device(; the previous files are in place)?\n", err), err
        assert ours(root) == old, f"{leave} {unit} free: {err}"
        outcomes["old"] += 1
    assert outcomes["old"] and outcomes["new"], outcomes
    print(f"\n{unit}: {dict(outcomes)}")


def test_generate_on_a_read_only_file_system(mount: Callable[[Path, str], None], tmp_path: Path,
                                             capfd: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path / "root", "two")
    mount(root / "run", "size=1m,mode=755")
    assert cli.main(["generate", "--root-dir", str(root)]) == cli.EXIT_OK
    old = ours(root)
    subprocess.run(["mount", "-o", "remount,ro", str(root / "run")], check=True)
    assert cli.main(["generate", "--root-dir", str(root)]) == cli.EXIT_OK, "nothing to write: nothing to refuse"
    set_stanza(root, "moved")
    capfd.readouterr()
    assert cli.main(["generate", "--root-dir", str(root)]) == cli.EXIT_FILESYSTEM
    err = capfd.readouterr().err
    assert err == (f"multiuplink: generate failed: cannot write {root}/run/multiuplink/manifest.json: "
                   "Read-only file system; the previous files are in place\n")
    assert ours(root) == old


def apply(namespace: str, bin_dir: Path, root: Path) -> tuple[int, str]:
    done = multiuplink(namespace, bin_dir, "apply", "--boot", "--root-dir", str(root))
    _, err = done.communicate(timeout=60)
    return done.returncode, err


def test_apply_on_a_full_file_system_puts_the_kernel_back(mount: Callable[[Path, str], None], links: str,
                                                          loaded: Callable[[dict[str, str]], Kernel],
                                                          tmp_path: Path) -> None:
    bin_dir = stub_bin(tmp_path / "bin")
    root = make_root(tmp_path / "root", "two")
    mount(root / "run", f"size={PAGES * 4}k,mode=755")
    old_kernel = loaded(rendered(root))
    set_stanza(root, "moved")
    new_kernel, new = loaded(rendered(root)), expected_footprint(rendered(root))
    outcomes: Counter[str] = Counter()
    for leave in range(10):
        set_stanza(root, "two")
        unfill(root)
        assert apply(links, bin_dir, root) == (cli.EXIT_OK, "")
        old = ours(root)
        assert kernel(links) == old_kernel
        fill(root, leave, "pages")
        set_stanza(root, "moved")
        code, err = apply(links, bin_dir, root)
        if code == cli.EXIT_OK:
            assert (ours(root), kernel(links)) == (new, new_kernel), f"{leave} pages free"
            outcomes["applied"] += 1
            continue
        assert code == cli.EXIT_FILESYSTEM and err.count("\n") == 1 and "Traceback" not in err, err
        assert re.fullmatch(rf"multiuplink: apply failed: cannot (write|create directory) {root}/run/[^ ]+: No space "
                            r"left on device(; the previous files are in place)?; the previous configuration was "
                            r"restored\n", err), err
        assert (ours(root), kernel(links)) == (old, old_kernel), f"{leave} pages free: {err}"
        outcomes["refused before changing anything" if "/applying:" in err else "restored"] += 1
    assert outcomes["applied"] and outcomes["restored"], outcomes
    print(f"\napply: {dict(outcomes)}")


def test_apply_on_a_read_only_file_system(mount: Callable[[Path, str], None], links: str, tmp_path: Path) -> None:
    bin_dir = stub_bin(tmp_path / "bin")
    root = make_root(tmp_path / "root", "two")
    mount(root / "run", "size=1m,mode=755")
    assert apply(links, bin_dir, root) == (cli.EXIT_OK, "")
    old, old_kernel = ours(root), kernel(links)
    subprocess.run(["mount", "-o", "remount,ro", str(root / "run")], check=True)
    set_stanza(root, "moved")
    assert apply(links, bin_dir, root) == (cli.EXIT_FILESYSTEM, f"multiuplink: apply failed: cannot write "
                                           f"{root}/run/multiuplink/applying: Read-only file system; the previous "
                                           "configuration was restored\n")
    assert (ours(root), kernel(links)) == (old, old_kernel)


def test_apply_refuses_a_symlinked_state_directory_before_touching_the_kernel(links: str, tmp_path: Path) -> None:
    bin_dir = stub_bin(tmp_path / "bin")
    root = make_root(tmp_path / "root", "two")
    (tmp_path / "outside").mkdir()
    (root / "run").mkdir()
    (root / paths.STATE_DIR).symlink_to(tmp_path / "outside")
    before = kernel(links)
    code, err = apply(links, bin_dir, root)
    assert (code, err) == (cli.EXIT_FILESYSTEM, f"multiuplink: apply failed: cannot write into {root}/run/multiuplink: "
                                                "a symbolic link (never followed), not a directory\n")
    assert kernel(links) == before and list((tmp_path / "outside").iterdir()) == []
