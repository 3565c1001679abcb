"""The Debian package in a booted host: install, upgrade, remove and purge, each proven by booting.

The .deb (built once per session by tests/debian_build.py) is installed into
a Debian 12 guest booted with systemd as PID 1 (boot.py) as the host of the
BCP38 two-ISP topology (topology.py), with netplan's YAML and our stanza from
examples/two-isps/. What the packaging promises (README, "Building and
installing the package"; debian/*.postinst, *.postrm):

* installing, upgrading or removing the package changes nothing in the
  running network: policy rules, routes, the nft ruleset (same handles, so
  not even reloaded), rp_filter, our unit's and networkd's state, and what a
  client can reach stay exactly as they were;
* from the next boot on the package's generator and unit give both ISPs
  (install, upgrade), or netplan's plain networking, isp1 only (remove,
  purge);
* the product keeps no state outside /run (the boot parses the stanza every
  time; there is no cache to invalidate on an upgrade);
* remove keeps the running state in /run, purge deletes everything we
  generated and never the administrator's /etc/netplan/multiuplink.d.

Every boot gets fresh namespaces (a new Topology): a real reboot starts with
empty kernel state, and a namespace kept from the previous boot would still
hold that boot's nft table, rules and sysctls. The guest's files persist
across its boots in one Guest overlay, as a disk does.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.debian_build import BUILD_SECONDS, PACKAGE, BuildError, build_environment, copy_source

from .boot import BOOT_REQUIREMENTS, Booted, Guest
from .guest_product import (
    BOTH,
    UNIT,
    WANTS_LINK,
    existing,
    exists,
    host_guest,
    http_get,
    install_offline,
    power_on,
    reachable,
    wait_configured,
    wait_isp1_only,
)
from .product import STANZA
from .topology import Topology

pytestmark = BOOT_REQUIREMENTS

GENERATOR = "/usr/lib/systemd/system-generators/multiuplink"
NO_STATE = "/var/lib/multiuplink"  # the product keeps no state outside /run: no cache, nothing here
MAN_PAGES = ("/usr/share/man/man8/multiuplink.8.gz", "/usr/share/man/man5/multiuplink.d.5.gz")
# Everything the product writes at run time (paths.OWNED_GLOBS) and the generator's output.
OWNED = ("/run/systemd/network/10-netplan-*.network.d/50-multiuplink.conf", "/run/sysctl.d/50-multiuplink.conf",
         "/run/multiuplink/*")
CONFIGURED_FILES = ["/run/multiuplink/lock", "/run/multiuplink/manifest.json", "/run/multiuplink/ruleset.nft",
                    "/run/sysctl.d/50-multiuplink.conf",
                    "/run/systemd/network/10-netplan-eth1.network.d/50-multiuplink.conf",
                    "/run/systemd/network/10-netplan-eth2.network.d/50-multiuplink.conf"]
DPKG_TIMEOUT = 180.0


# --- the packages (the .deb of this tree: the ``deb`` fixture of conftest.py) ---

def _bumped(version: str) -> str:
    """0.1.0 -> 0.1.1: the last number + 1 (anything else: a Debian and PEP 440 post-release)."""
    match = re.fullmatch(r"(.*?)(\d+)", version)
    return f"{match.group(1)}{int(match.group(2)) + 1}" if match else f"{version}.post1"


def build_bumped_deb(tmpdir: Path) -> tuple[Path, str, str]:
    """The package of this tree with the next version: (.deb, old version, new version).

    Built as build_deb builds (a copy of the tree, dpkg-buildpackage, a clean
    environment), after bumping the version's two sources the way a release
    does: ``__version__`` and a new debian/changelog entry (what ``dch -v``
    writes). The build-time tests are skipped (nocheck): they are the same as
    in the build of the unbumped package.
    """
    tree = copy_source(tmpdir)
    init = tree / "multiuplink_networkd/__init__.py"
    text = init.read_text()
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.M)
    assert match, f"no __version__ line in {init}"
    old = match.group(1)
    new = _bumped(old)
    init.write_text(text.replace(match.group(0), f'__version__ = "{new}"'))
    changelog = tree / "debian/changelog"
    previous = changelog.read_text()
    trailer = next(line for line in previous.splitlines() if line.startswith(" -- "))
    changelog.write_text(f"{PACKAGE} ({new}) unstable; urgency=medium\n\n"
                         f"  * Test upgrade: version bumped by tests/e2e/test_deb_boot.py.\n\n{trailer}\n\n{previous}")
    env = {**build_environment(tmpdir), "DEB_BUILD_OPTIONS": "nocheck"}
    log = tmpdir / "build.log"
    with log.open("w") as stream:
        result = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b", "-Pnocheck"], cwd=tree, env=env,
                                stdout=stream, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise BuildError(f"dpkg-buildpackage of the bumped version failed (exit {result.returncode}), "
                         f"log {log}:\n{tail}")
    return tmpdir / f"{PACKAGE}_{new}_all.deb", old, new


@pytest.fixture(scope="session")
def bumped_deb(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    started = time.monotonic()
    built = build_bumped_deb(tmp_path_factory.mktemp("deb-bumped"))
    BUILD_SECONDS[built[0].name] = time.monotonic() - started
    return built


# --- the guest (host_guest: guest_product.py) -----------------------------------

def dpkg(booted: Booted, *argv: str, complaints: list[str] | None = None) -> str:
    """Run dpkg in the running guest, as an administrator would; its output (failing on an error).

    Lines with a warning or an error of a successful run are added to
    ``complaints``: the caller fails on them once every step has run.
    """
    done = booted.run("dpkg", *argv, check=False, timeout=DPKG_TIMEOUT)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"dpkg {' '.join(argv)} exited {done.returncode}:\n{output}"
    noise = [line for line in output.splitlines() if re.search(r"warning|error|traceback", line, re.I)]
    if complaints is None:
        assert noise == [], f"dpkg {' '.join(argv)}:\n{output}"
    else:
        complaints.extend(f"dpkg {' '.join(argv)}: {line}" for line in noise)
    return output


# --- observing ----------------------------------------------------------------

def unit_state(booted: Booted, unit: str) -> str:
    """``systemctl is-active`` and when the unit last started: a restart changes the timestamp."""
    active = booted.run("systemctl", "is-active", unit, check=False).stdout.strip()
    started = booted.run("systemctl", "show", "-p", "ExecMainStartTimestampMonotonic", "--value", unit,
                         check=False).stdout.strip()
    return f"{active} (started at {started})"


def network(booted: Booted, topo: Topology) -> dict[str, object]:
    """The running network, as a client and the kernel see it.

    ``nft -a`` shows handles, which a reload (delete + create) changes; the
    counters' values, which traffic changes, are left out.
    """
    ruleset = booted.run("nft", "-a", "list", "ruleset").stdout
    return {
        "ip rule": booted.run("ip", "rule").stdout,
        "routes": booted.run("ip", "-4", "route", "show", "table", "all").stdout,
        "nft ruleset": re.sub(r"packets \d+ bytes \d+", "", ruleset),
        "rp_filter": {name: booted.run("sysctl", "-n", f"net.ipv4.conf.{name}.rp_filter").stdout.strip()
                      for name in ("all", "default", "eth1", "eth2")},
        UNIT: unit_state(booted, UNIT),
        "systemd-networkd": unit_state(booted, "systemd-networkd.service"),
        "reachable": reachable(topo),
    }


def owned_files(booted: Booted) -> dict[str, str]:
    """Our generated files in /run: {path: sha256 of the content}."""
    return {path: hashlib.sha256(booted.run("cat", path).stdout.encode()).hexdigest()[:12]
            for path in existing(booted, OWNED)}


def leftovers(booted: Booted) -> dict[str, object]:
    """What of the package and its state is on the guest: printed at each step, checked by the tests."""
    return {
        "dpkg status": booted.run("dpkg-query", "-W", "-f", "${db:Status-Abbrev}${Version}", PACKAGE,
                                  check=False).stdout.strip() or "unknown",
        "generator": exists(booted, GENERATOR),
        "wants link": exists(booted, WANTS_LINK),
        NO_STATE: exists(booted, NO_STATE),
        "/run/multiuplink": exists(booted, "/run/multiuplink"),
        "owned files": sorted(owned_files(booted)),
        "stanza": exists(booted, "/" + STANZA),
        "fwmark rules": [line for line in booted.run("ip", "rule").stdout.splitlines() if "fwmark" in line],
        "nft table": booted.run("nft", "list", "table", "inet", "multiuplink", check=False).returncode == 0,
        UNIT: booted.run("systemctl", "is-active", UNIT, check=False).stdout.strip(),
    }


def wait_configured_cleanly(booted: Booted, topo: Topology, after: str) -> None:
    """wait_configured, then: both ISPs serve HTTP, our unit is active, nothing failed, the generator was silent."""
    wait_configured(booted, topo, after)
    for isp in ("isp1", "isp2"):
        assert http_get(topo, isp).startswith("200 "), f"GET / via {isp} {after}"
    assert booted.run("systemctl", "is-active", UNIT, check=False).stdout.strip() == "active"
    assert booted.system_state() == "running", booted.run("systemctl", "--failed", check=False).stdout
    assert "multiuplink-generator" not in booted.journal(), "the generator reported an error"
    assert not exists(booted, NO_STATE), "state outside /run"


def assert_plain_netplan(booted: Booted, topo: Topology, after: str) -> None:
    """netplan's networking and nothing of ours loaded: isp1 only, no table, rules, drop-ins or unit."""
    wait_isp1_only(booted, topo, after)
    left = leftovers(booted)
    assert not left["nft table"], f"nft table inet multiuplink {after}"
    assert left["fwmark rules"] == [], f"fwmark rules {after}"
    assert left["owned files"] == [], f"generated files in /run {after}"
    assert not left["wants link"] and not left["generator"], f"generator or its link {after}: {left}"
    assert left[UNIT] == "inactive", f"{UNIT} {after}"
    assert {name: booted.run("sysctl", "-n", f"net.ipv4.conf.{name}.rp_filter").stdout.strip()
            for name in ("eth1", "eth2")} == {"eth1": "1", "eth2": "1"}, f"rp_filter {after}"
    assert booted.system_state() == "running", booted.run("systemctl", "--failed", check=False).stdout


class Steps:
    """Durations of the steps, printed at the end (pytest -s, or -rP)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._start = time.monotonic()

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        self.lines.append(f"  {time.monotonic() - started:6.2f} s  {name}")

    @contextlib.contextmanager
    def power_on(self, guest: Guest, name: str) -> Iterator[tuple[Topology, Booted]]:
        """power_on(guest), recording the boot's and the halt's durations."""
        self.lines.append(f"  --- boot: {name}")
        with power_on(guest) as (topo, booted):
            self.lines.append(f"  {booted.boot_seconds:6.2f} s  boot to running")
            yield topo, booted
        self.lines.append(f"  {booted.halt_seconds:6.2f} s  halt")

    def note(self, text: str) -> None:
        self.lines.append(f"           {text}")

    def report(self) -> str:
        builds = [f"  {seconds:6.2f} s  build {name}" for name, seconds in BUILD_SECONDS.items()]
        return "\n".join([*builds, *self.lines, f"  {time.monotonic() - self._start:6.2f} s  total (without builds)"])


# --- 1. installed offline into the tree, before the first boot ------------------

def test_offline_install_then_first_boot_answers_via_both_isps(deb: Path) -> None:
    """``chroot ROOT dpkg -i`` into a host's tree that was never booted: its first boot has both ISPs."""
    steps = Steps()
    with host_guest(deb) as guest:
        assert not (guest.root / "run/systemd/system").exists(), "the tree must not look booted to postinst"
        with steps.step("chroot dpkg -i"):
            install_offline(guest, deb)
        with steps.power_on(guest, "first boot") as (topo, booted):
            with steps.step("until both ISPs answer"):
                wait_configured_cleanly(booted, topo, "on the first boot after an offline install")
            assert booted.system_state() == "running", booted.run("systemctl", "--failed", check=False).stdout
    print(f"\n{steps.report()}")


# --- 2.-5. install, upgrade, remove, purge in a running host ------------------

def test_install_upgrade_remove_purge_in_a_running_host(deb: Path, bumped_deb: tuple[Path, str, str]) -> None:
    new_deb, old_version, new_version = bumped_deb
    steps = Steps()
    complaints: list[str] = []  # what dpkg warned about, checked at the end
    with host_guest(deb, new_deb) as guest:
        # --- install: nothing changes now; the next boot has both ISPs ---
        with steps.power_on(guest, "without the package") as (topo, booted):
            wait_isp1_only(booted, topo, "before the package is installed")
            assert not exists(booted, "/usr/sbin/multiuplink")
            before, files = network(booted, topo), owned_files(booted)
            with steps.step(f"dpkg -i {deb.name} (running)"):
                dpkg(booted, "-i", f"/var/tmp/{deb.name}", complaints=complaints)
            assert network(booted, topo) == before, "installing changed the running network"
            assert owned_files(booted) == files == {}
            left = leftovers(booted)
            steps.note(f"after install: {left}")
            assert left["dpkg status"] == f"ii {old_version}", left
            # postinst's daemon-reload re-ran the generators: ours pulls the unit in, for the next boot only.
            assert left["generator"] and left["wants link"] and left[UNIT] == "inactive", left
            assert not left[NO_STATE], left
            assert "multiuplink-generator" not in booted.journal(), "the generator reported an error"

        with steps.power_on(guest, "after install") as (topo, booted):
            with steps.step("until both ISPs answer (after install)"):
                wait_configured_cleanly(booted, topo, "after installing and rebooting")
            validate = booted.run("multiuplink", "validate", check=False)
            assert validate.returncode == 0, validate.stdout + validate.stderr
            for page in MAN_PAGES:
                title = booted.run("sh", "-c", f"zcat {page} | grep -c '^\\.TH '", check=False).stdout.strip()
                assert title == "1", f"{page}: not installed, or not a manual page"
            assert booted.run("multiuplink", "--version").stdout.split()[-1] == old_version
            steps.note(f"after reboot: {leftovers(booted)}")

            # --- upgrade: the same version again, then the next one; nothing changes now ---
            before, files = network(booted, topo), owned_files(booted)
            assert before["reachable"] == BOTH
            with steps.step(f"dpkg -i {deb.name} again (running)"):
                dpkg(booted, "-i", f"/var/tmp/{deb.name}", complaints=complaints)
            assert network(booted, topo) == before, "reinstalling the same version changed the running network"
            assert owned_files(booted) == files
            with steps.step(f"dpkg -i {new_deb.name} (running)"):
                dpkg(booted, "-i", f"/var/tmp/{new_deb.name}", complaints=complaints)
            assert network(booted, topo) == before, "upgrading changed the running network"
            assert owned_files(booted) == files
            left = leftovers(booted)
            steps.note(f"after upgrade: {left}")
            assert left["dpkg status"] == f"ii {new_version}" and left["wants link"], left

        with steps.power_on(guest, "after upgrade") as (topo, booted):
            with steps.step("until both ISPs answer (after upgrade)"):
                wait_configured_cleanly(booted, topo, "after upgrading and rebooting")
            assert booted.run("multiuplink", "--version").stdout.split()[-1] == new_version

            # --- remove: the running network stays as it is until the next boot ---
            before, files = network(booted, topo), owned_files(booted)
            with steps.step("dpkg -r (running)"):
                dpkg(booted, "-r", PACKAGE, complaints=complaints)
            assert network(booted, topo) == before, "removing changed the running network"
            assert owned_files(booted) == files and sorted(files) == CONFIGURED_FILES, files
            left = leftovers(booted)
            steps.note(f"after remove: {left}")
            assert str(left["dpkg status"]).startswith("rc "), left
            assert not left["generator"] and not left["wants link"], "daemon-reload must forget our generator's link"
            assert left["stanza"], left

        with steps.power_on(guest, "after remove") as (topo, booted):
            with steps.step("until isp1 answers (after remove)"):
                assert_plain_netplan(booted, topo, "after removing and rebooting")
            left = leftovers(booted)
            steps.note(f"after reboot: {left}")
            assert left["stanza"], "the administrator's stanza is not the package's"

            # --- purge: our state goes, the administrator's stanza stays ---
            before = network(booted, topo)
            with steps.step("dpkg -P (running, removed before)"):
                dpkg(booted, "-P", PACKAGE, complaints=complaints)
            assert network(booted, topo) == before, "purging changed the running network"
            left = leftovers(booted)
            steps.note(f"after purge: {left}")
            assert left["dpkg status"] in ("un", "unknown", "pn"), left
            assert not left["/run/multiuplink"] and left["owned files"] == [], left
            assert left["stanza"], "purge must never touch /etc/netplan/multiuplink.d"

        with steps.power_on(guest, "after purge") as (topo, booted):
            with steps.step("until isp1 answers (after purge)"):
                assert_plain_netplan(booted, topo, "after purging and rebooting")

            # --- install again, and purge straight from a configured host ---
            with steps.step(f"dpkg -i {new_deb.name} (running, after purge)"):
                dpkg(booted, "-i", f"/var/tmp/{new_deb.name}", complaints=complaints)

        with steps.power_on(guest, "after reinstall") as (topo, booted):
            with steps.step("until both ISPs answer (after reinstall)"):
                wait_configured_cleanly(booted, topo, "after reinstalling over the kept stanza")
            before = network(booted, topo)
            assert sorted(owned_files(booted)) == CONFIGURED_FILES
            with steps.step("dpkg -P (running, configured)"):
                dpkg(booted, "-P", PACKAGE, complaints=complaints)
            assert network(booted, topo) == before, "purging changed the running network"
            left = leftovers(booted)
            steps.note(f"after purge of a configured host: {left}")
            assert left["owned files"] == [] and not left["/run/multiuplink"], left
            assert booted.run("sh", "-c", "ls -d /run/systemd/network/*.network.d 2>/dev/null",
                              check=False).stdout == "", "our emptied drop-in directories go too"
            assert left["stanza"], "purge must never touch /etc/netplan/multiuplink.d"

        with (steps.power_on(guest, "after purge of a configured host") as (topo, booted),
              steps.step("until isp1 answers (after the second purge)")):
            assert_plain_netplan(booted, topo, "after purging a configured host and rebooting")
    print(f"\n{steps.report()}")
    assert complaints == [], "dpkg warned:\n" + "\n".join(complaints)
