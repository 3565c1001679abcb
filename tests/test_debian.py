"""The Debian package: it builds from a copy of the tree, lintian finds nothing, it holds what it must.

Building takes a few seconds and needs the build dependencies
(``apt-get build-dep -y ./``), so these are e2e tests. The package is built
once per session (tests/debian_build.py), outside the checkout. The last test
installs it into a copy of the cached Debian tree of tests/e2e/boot.py (a
chroot, nothing is booted), runs the autopkgtest script there, then removes
and purges it.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from multiuplink_networkd import __version__, paths
from tests import generator_script
from tests.debian_build import build_deb, build_dsc, build_environment, missing_build_tools

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]


def _systemd_dir(variable: str) -> str:
    """Where this release's systemd keeps units or generators, as debian/rules asks it (pkgconf)."""
    try:
        done = subprocess.run(["pkg-config", f"--variable={variable}", "systemd"], capture_output=True, text=True)
    except FileNotFoundError:
        return "./missing-pkg-config"  # the build needs it too; missing_build_tools() says so
    return "." + done.stdout.strip()


UNIT_DIR = _systemd_dir("systemdsystemunitdir")
GENERATOR_DIR = _systemd_dir("systemdsystemgeneratordir")
PACKAGE_PY = REPO / "multiuplink_networkd"
SITE = "./usr/lib/python3/dist-packages/"
EXPECTED = {
    "./usr/sbin/multiuplink": 0o755,
    GENERATOR_DIR + "/multiuplink": 0o755,
    UNIT_DIR + "/multiuplink-configure.service": 0o644,
    "./usr/lib/python3/dist-packages/multiuplink_networkd/multiuplink.schema.json": 0o644,
    "./usr/share/multiuplink-networkd/multiuplink.schema.json": 0o777,  # a link to the package's copy
    "./usr/share/multiuplink-networkd/status.schema.json": 0o644,
    "./usr/share/man/man8/multiuplink.8.gz": 0o644,
    "./usr/share/man/man5/multiuplink.d.5.gz": 0o644,
    "./usr/share/bash-completion/completions/multiuplink": 0o644,
    "./usr/share/doc/multiuplink-networkd/copyright": 0o644,
    "./usr/share/doc/multiuplink-networkd/examples/two-isps/etc/netplan/multiuplink.d/uplinks.yaml": 0o644,
    "./usr/share/doc/multiuplink-networkd/examples/two-isps/etc/netplan/50-uplinks.yaml": 0o644,
}


@pytest.fixture(scope="session")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = missing_build_tools()
    if reason:
        pytest.skip(reason)
    return build_deb(tmp_path_factory.mktemp("deb"))


@pytest.fixture(scope="session")
def listing(deb: Path) -> dict[str, int]:
    """``dpkg -c``: {path: permission bits}; directories end in '/'."""
    out = subprocess.run(["dpkg", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    entries = {}
    for line in out.splitlines():
        mode, _owner, _size, _date, _time, path = line.split(None, 5)
        path = path.split(" -> ")[0]
        entries[path] = sum(1 << (8 - i) for i, c in enumerate(mode[1:]) if c != "-") if mode[0] != "l" else 0o777
    return entries


def _member(deb: Path, path: str) -> bytes:
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        extracted = archive.extractfile(path)
        assert extracted is not None, path
        return extracted.read()


def _lintian(target: Path) -> list[str]:
    if not shutil.which("lintian"):
        pytest.skip("lintian missing (apt-get install lintian)")
    result = subprocess.run(["lintian", "--info", "--display-info", "--pedantic", "--color", "never",
                             "--fail-on", "error,warning", str(target)], capture_output=True, text=True,
                            check=False)
    tags = [line for line in result.stdout.splitlines() if re.match(r"^[EWIPX]: ", line)]
    print("\n".join(tags))
    assert not [line for line in tags if line.startswith(("E:", "W:"))], result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
    return tags


def test_lintian_finds_no_error_or_warning_in_the_binary_package(deb: Path) -> None:
    _lintian(deb)


def test_lintian_finds_no_error_or_warning_in_the_source_package(tmp_path_factory: pytest.TempPathFactory) -> None:
    if not shutil.which("dpkg-buildpackage"):
        pytest.skip("dpkg-buildpackage missing (apt-get install dpkg-dev)")
    _lintian(build_dsc(tmp_path_factory.mktemp("dsc")))


def test_control_fields(deb: Path) -> None:
    fields = dict(line.split(": ", 1) for line in subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Package", "Version", "Architecture", "Depends", "Recommends"],
        capture_output=True, text=True, check=True).stdout.splitlines())
    assert fields["Package"] == "multiuplink-networkd"
    assert fields["Architecture"] == "all"
    assert re.sub(r"^\d+:|-[^-]*$", "", fields["Version"]) == __version__
    depends = [item.strip() for item in fields["Depends"].split(",")]
    for wanted in ("python3-yaml", "python3-jsonschema", "python3-dbus-next",
                   "nftables | iptables", "systemd (>= 252)", "netplan.io"):
        assert any(item == wanted or item.startswith(wanted + " (") for item in depends), (wanted, depends)
    assert "pip" not in fields["Depends"]
    assert "configobj" not in fields["Depends"], "nothing reads key = value files with it"
    assert fields["Recommends"] == "conntrack", "for 'multiuplink explain'"


def test_files_are_where_systemd_the_unit_and_the_code_look(deb: Path, listing: dict[str, int]) -> None:
    for path, mode in EXPECTED.items():
        assert listing.get(path) == mode, f"{path}: {oct(listing[path]) if path in listing else 'missing'}"
    modules = sorted(SITE + str(p.relative_to(REPO)) for p in PACKAGE_PY.rglob("*.py"))
    assert [m for m in modules if m not in listing] == []
    # what the generator links to (merged /usr)
    assert f"{UNIT_DIR}/{generator_script.UNIT}" in listing
    assert os.path.realpath(generator_script.UNIT_DIR) == os.path.realpath(UNIT_DIR[1:])
    assert [path for path in listing if path.endswith(".service")] == [f"{UNIT_DIR}/{generator_script.UNIT}"]
    unit = _member(deb, UNIT_DIR + "/multiuplink-configure.service").decode()
    assert unit == (REPO / "units" / "multiuplink-configure.service").read_text()
    for command in re.findall(r"^Exec\w+=(\S+)", unit, re.M):
        assert "." + command in listing, command
    assert _member(deb, GENERATOR_DIR + "/multiuplink").startswith(b"#!/usr/bin/python3 -IS\n")
    assert _member(deb, "./usr/sbin/multiuplink").startswith(b"#!/usr/bin/python3\n")
    assert _member(deb, EXPECTED_SCHEMA) == (REPO / "schema" / "multiuplink.schema.json").read_bytes()
    assert _member(deb, "./usr/share/multiuplink-networkd/status.schema.json") == \
        (REPO / "schema" / "status.schema.json").read_bytes()


def test_nothing_else_slips_in(listing: dict[str, int]) -> None:
    files = [path for path in listing if not path.endswith("/")]
    schemas = [p for p in files if p.endswith("multiuplink.schema.json") and listing[p] != 0o777]
    assert schemas == [EXPECTED_SCHEMA], "schema exactly once (/usr/share has a link to it)"
    assert [p for p in files if "__pycache__" in p or p.endswith(".pyc")] == []
    assert [p for p in files if p.startswith(("./usr/bin/", "./etc/", "./usr/share/share/", "./usr/local/"))] == []
    stray = [p for p in files if p.startswith(SITE) and not p.startswith((SITE + "multiuplink_networkd/",
                                                                         SITE + "multiuplink_networkd-"))]
    assert stray == [], "only the package and its dist-info in dist-packages (no tests, tools, README ...)"


EXPECTED_SCHEMA = SITE + "multiuplink_networkd/multiuplink.schema.json"


def _script(deb: Path, name: str) -> str:
    control = subprocess.run(["dpkg-deb", "-I", str(deb), name], capture_output=True, text=True, check=False)
    return control.stdout if control.returncode == 0 else ""


def test_maintainer_scripts_never_touch_the_running_network(deb: Path) -> None:
    scripts = {name: _script(deb, name) for name in ("preinst", "postinst", "prerm", "postrm")}
    for name, text in scripts.items():
        text = re.sub(r"^\s*#.*$", "", text, flags=re.M)  # comments may name commands
        assert not re.search(r"deb-systemd-invoke|invoke-rc\.d|\b(nft|iptables|sysctl|ip|networkctl)\s", text), name
        assert re.findall(r"systemctl[^\n]*", text) in ([], ["systemctl --system daemon-reload >/dev/null || true"]), \
            name


def test_purge_removes_every_file_the_product_writes(deb: Path) -> None:
    postrm = _script(deb, "postrm")
    purge = postrm.split('if [ "$1" = "purge" ]', 1)[1].split("\nfi\n", 1)[0]
    removed_dirs = re.findall(r"rm -rf ([^\n]+)", purge)[0].split()
    for owned in paths.OWNED_GLOBS:
        absolute = "/" + owned
        if any(absolute.startswith(directory + "/") for directory in removed_dirs):
            continue
        assert os.path.dirname(absolute) in purge and os.path.basename(absolute) in purge, owned
    assert "/etc/" not in purge, "the administrator's stanza files are not ours to delete"


def _chroot(root: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chroot", str(root), *command], capture_output=True, text=True,
                          env=build_environment(Path("/tmp")), check=False)


STATE = {  # what a configured host has; True: ours, purge deletes it
    "run/multiuplink/ruleset.nft": True,
    "run/multiuplink/lock": True,
    "run/sysctl.d/50-multiuplink.conf": True,
    "run/systemd/network/10-netplan-eth1.network.d/50-multiuplink.conf": True,
    "run/systemd/network/10-netplan-eth2.network.d/50-multiuplink.conf": True,
    "run/systemd/network/10-netplan-eth2.network.d/60-admin.conf": False,
    "run/systemd/network/10-netplan-eth1.network": False,
    "etc/netplan/multiuplink.d/uplinks.yaml": False,
}


def test_install_autopkgtest_remove_purge_in_a_chroot(deb: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (chroot)")
    from tests.e2e.boot import CACHE_DIR, base_rootfs

    if not shutil.which("debootstrap") and not list(CACHE_DIR.glob("rootfs-*/")):
        pytest.skip("debootstrap missing and no cached Debian tree (apt-get install debootstrap)")
    root = tmp_path / "root"
    subprocess.run(["cp", "-a", "--reflink=auto", str(base_rootfs()), str(root)], check=True)
    _install_autopkgtest_remove_purge(deb, root)
    shutil.rmtree(root)  # 300 MB; kept for a look when the test failed


def _install_autopkgtest_remove_purge(deb: Path, root: Path) -> None:
    assert not (root / "run/systemd/system").exists(), "a chroot must not look booted: postinst would reload systemd"
    shutil.copy(deb, root / "var/tmp" / deb.name)
    shutil.copy(REPO / "debian/tests/generator-and-cli", root / "var/tmp/generator-and-cli")

    installed = _chroot(root, "dpkg", "-i", f"/var/tmp/{deb.name}")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    autopkgtest = _chroot(root, "sh", "/var/tmp/generator-and-cli")
    assert autopkgtest.returncode == 0 and autopkgtest.stdout.endswith("all passed\n"), \
        autopkgtest.stdout + autopkgtest.stderr

    for relative in STATE:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text("# state\n")
    removed = _chroot(root, "dpkg", "-r", "multiuplink-networkd")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not (root / GENERATOR_DIR[2:] / "multiuplink").exists()
    assert [rel for rel in STATE if not (root / rel).exists()] == [], "remove leaves the running state alone"

    purged = _chroot(root, "dpkg", "-P", "multiuplink-networkd")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert {rel: (root / rel).exists() for rel in STATE} == {rel: not ours for rel, ours in STATE.items()}
    assert not (root / "run/systemd/network/10-netplan-eth1.network.d").exists(), "our emptied drop-in dir goes"
    assert not (root / "run/multiuplink").exists()
    assert stat.S_ISDIR((root / "etc/netplan/multiuplink.d").stat().st_mode)
