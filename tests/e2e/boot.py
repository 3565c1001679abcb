"""Boot a real systemd (PID 1) in systemd-nspawn inside a test network namespace.

Unit tests can only show that we render the right files; whether systemd's
generator ordering, systemd-networkd and netplan's own generator really load
them at boot can only be shown by booting.  This module gives each test a
throw-away guest:

* `base_rootfs()` debootstraps a Debian 12 tree once and caches it;
* `Guest` is a copy-on-write overlay of that tree for one test, so tests
  never see each other's files and the cache is never modified;
* `Guest.boot(netns)` runs `systemd-nspawn -b` inside a network namespace the
  test created (see topology.py), so the guest's networkd, sysctl and
  nftables act on that namespace only, never on the host's network.

Nothing here changes the host outside the cache directory, the guest's
temporary directory and the given network namespace.
"""

import contextlib
import errno
import fcntl
import hashlib
import inspect
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self, TypeVar

import pytest

from . import netns

BOOT_REQUIREMENTS = [
    pytest.mark.skipif(os.geteuid() != 0, reason="booting a guest needs root (netns, mount, nspawn, chroot)"),
    pytest.mark.skipif(not shutil.which("systemd-nspawn"),
                       reason="systemd-nspawn missing (apt-get install systemd-container)"),
    pytest.mark.skipif(not shutil.which("debootstrap"), reason="debootstrap missing (apt-get install debootstrap)"),
]
"""The skip conditions of every test that boots a guest (each with its stated reason)."""

CACHE_DIR = Path("/var/cache/multiuplink-tests")
SUITE = "bookworm"
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "iproute2", "nftables", "iptables",
    "procps", "python3", "python3-yaml", "python3-jsonschema",
    "python3-dbus-next", "netplan.io",
)

# Files written into the base tree after debootstrap.
BASE_FILES = {
    # debootstrap copies the host's hostname, hosts and resolv.conf.  The
    # host's resolver is unreachable from the test netns, so every name
    # lookup (python's http.server does one at start) would wait for a DNS
    # timeout.  With no nameserver glibc tries 127.0.0.1, which refuses at once.
    "etc/hostname": "mu-guest\n",
    "etc/hosts": "127.0.0.1 localhost\n127.0.1.1 mu-guest\n::1 localhost ip6-localhost ip6-loopback\n",
    "etc/resolv.conf": "# test guests have no resolver\n",
    # The journal must survive the guest, for assertions and failure reports.
    "etc/systemd/journald.conf.d/50-mu-test.conf": "[Journal]\nStorage=persistent\n",
}
# netplan's generator starts networkd only when some YAML asks for it; enabled
# here so a test that writes .network files directly also gets a networkd.
BASE_ENABLE = ("systemd-networkd.service",)
# Maintenance timers: apt-daily would start downloading in the middle of a
# test.  Nothing else is masked: getty units and systemd-udevd are skipped by
# their own conditions in a container, and network-online.target (with
# systemd-networkd-wait-online) stays as on a real host, because the
# product's boot ordering is what the tests are there to prove.
BASE_MASK = (
    "apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer",
    "e2scrub_all.timer", "fstrim.timer",
)

HTTP_UNIT = """\
# Test service: something for the client to connect to on port 80, over IPv4 and IPv6 ('::' serves both).
[Unit]
Description=multiuplink test HTTP server

[Service]
ExecStart=/usr/bin/python3 -m http.server --bind :: --directory /srv 80

[Install]
WantedBy=multi-user.target
"""

GUEST_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "SYSTEMD_PAGER": ""}
HALT_TIMEOUT = 15.0

T = TypeVar("T")


def _cache_key() -> str:
    """Hash of everything that shapes the base tree, so any change rebuilds it."""
    recipe = {"suite": SUITE, "packages": PACKAGES, "files": BASE_FILES,
              "enable": BASE_ENABLE, "mask": BASE_MASK, "steps": inspect.getsource(_build_base)}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def _debian_mirror() -> str:
    """The host's own Debian mirror (the test machines may not reach others)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return "http://deb.debian.org/debian"


def _run_logged(argv: list[str], log: Path) -> None:
    """Run a build step, appending its output to `log`; fail with the log's tail."""
    with log.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        rc = subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise RuntimeError(f"{argv[0]} failed ({rc}); last lines of {log}:\n{_tail(log)}")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _build_base(tree: Path, log: Path) -> None:
    """debootstrap into `tree`, then adapt it to booting in a test container."""
    _run_logged(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                 SUITE, str(tree), _debian_mirror()], log)
    for rel, text in BASE_FILES.items():
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # resolv.conf may be a symlink
        path.write_text(text)
    (tree / "var/log/journal").mkdir(parents=True, exist_ok=True)
    (tree / "srv").mkdir(exist_ok=True)
    # The host's systemctl edits an offline tree; no chroot and no PID 1 needed.
    _run_logged(["systemctl", f"--root={tree}", "enable", *BASE_ENABLE], log)
    _run_logged(["systemctl", f"--root={tree}", "mask", *BASE_MASK], log)
    for deb in (tree / "var/cache/apt/archives").glob("*.deb"):  # 50 MB debootstrap leaves behind
        deb.unlink()


def base_rootfs() -> Path:
    """The cached Debian base tree, built on first use (about a minute).

    The tree is built in a temporary directory next to the cache entry and
    renamed into place, so a killed build never leaves a half tree that
    later runs would boot.  A per-key file lock makes parallel test
    processes wait for one build instead of racing.
    """
    key = _cache_key()
    tree = CACHE_DIR / f"rootfs-{key}"
    if tree.is_dir():
        return tree
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with (CACHE_DIR / f"rootfs-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tree.is_dir():  # another process built it while we waited
            return tree
        for stale in CACHE_DIR.glob(f".build-{key}-*"):  # left by a killed build
            shutil.rmtree(stale)
        build = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=CACHE_DIR))
        try:
            _build_base(build / "root", CACHE_DIR / f"rootfs-{key}.log")
            os.rename(build / "root", tree)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return tree


class Booted:
    """A running guest: run commands in it, read its journal, wait for states."""

    def __init__(self, root: Path, nspawn: subprocess.Popen[bytes], leader_pid: int, log: Path, started: float):
        self.root = root
        self.nspawn = nspawn
        self.leader_pid = leader_pid
        self.log = log
        self.started = started  # time.monotonic() when nspawn was started
        self.boot_seconds = 0.0  # from starting nspawn to systemd "running"
        self.halt_seconds = 0.0  # from SIGTERM to nspawn's exit; set on exit

    def run(self, *argv: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside the guest's namespaces (mount, net, pid, uts, ipc)."""
        result = subprocess.run(
            ["nsenter", "-t", str(self.leader_pid), "-m", "-n", "-p", "-u", "-i", "-r", "-w", "--", *argv],
            check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
            env=GUEST_ENV, timeout=timeout)
        if check and result.returncode != 0:
            raise netns.CommandError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def journal(self) -> str:
        """This boot's journal, read inside the guest (includes what is not flushed yet)."""
        return self.run("journalctl", "-b", "--no-pager", "-o", "short-monotonic").stdout

    def diagnostics(self) -> str:
        """What a failing test should show: the journal tail and nspawn's console."""
        if self.nspawn.poll() is None:
            journal = self.run("journalctl", "-b", "--no-pager", "-n", "60", check=False).stdout
        else:  # only what was flushed to disk
            journal = _journal_on_disk(self.root, "-n", "60")
        return f"--- guest journal (tail) ---\n{journal}\n--- nspawn console (tail) ---\n{_tail(self.log)}"

    def wait_for(self, predicate: Callable[[], T], timeout: float, what: str) -> T:
        """Poll `predicate` until it returns a true value, and return that value.

        Fails at once, with the console log, if the guest dies; after
        `timeout` seconds fails with the journal, so a hanging boot explains
        itself in the test report.
        """
        def alive_and(predicate: Callable[[], T] = predicate) -> T:
            if self.nspawn.poll() is not None:
                raise RuntimeError(f"guest exited ({self.nspawn.returncode}) while waiting for {what}\n"
                                   f"{self.diagnostics()}")
            return predicate()

        return netns.wait_for(alive_and, timeout, what, interval=0.2, diagnose=self.diagnostics)

    def system_state(self) -> str:
        """`systemctl is-system-running`; 'offline' until the guest's PID 1 answers."""
        return self.run("systemctl", "is-system-running", check=False).stdout.strip() or "offline"


def _journal_on_disk(root: Path, *options: str) -> str:
    """The guest's persistent journal, read from the host (works when the guest is gone)."""
    return subprocess.run(
        ["journalctl", "-D", str(root / "var/log/journal"), "--no-pager", "-o", "short-monotonic", *options],
        check=False, capture_output=True, text=True, errors="replace").stdout


def _container_leader(nspawn_pid: int) -> int | None:
    """PID (in our namespace) of the guest's PID 1, once nspawn has started it.

    nspawn forks the container's init as its direct child in a new PID
    namespace, so it is the child whose NSpid ends in 1.
    """
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = dict(line.split(":\t", 1) for line in (entry / "status").read_text().splitlines()
                          if ":\t" in line)
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(status["PPid"]) == nspawn_pid and status.get("NSpid", "").split()[-1:] == ["1"]:
            return int(entry.name)
    return None


def _cgroup_dirs(name: str) -> list[Path]:
    """`name` under this process's cgroup, in each hierarchy systemd tracks processes in.

    With --keep-unit nspawn puts the guest into `payload/` below its own
    cgroup.  Without a cgroup of its own per guest, parallel guests would
    share `payload/system.slice/...`, and stopping a unit in one guest would
    kill that unit's processes in every guest; the empty cgroups would also
    stay behind on the host.
    """
    wanted = {}  # hierarchy id in /proc/self/cgroup -> our path in it
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" or controllers == "name=systemd":
            wanted["cgroup2" if hierarchy == "0" else "name=systemd"] = path
    dirs = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        fstype, options = fields[fields.index("-") + 1], fields[-1].split(",")
        key = "cgroup2" if fstype == "cgroup2" else "name=systemd" if "name=systemd" in options else None
        if key in wanted:
            dirs.append(Path(fields[4]) / wanted.pop(key).lstrip("/") / name)
    return dirs


def _remove_cgroups(dirs: list[Path]) -> None:
    """Remove the guest's cgroup trees (deepest first) once its processes are gone."""
    deadline = time.monotonic() + 5
    for top in dirs:
        for path in [Path(d) for d, _, _ in os.walk(top, topdown=False)]:
            while True:
                try:
                    path.rmdir()
                    break
                except OSError as error:
                    if error.errno == errno.ENOENT:
                        break
                    if error.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)  # the last guest processes are still being reaped


class Guest:
    """A writable copy-on-write instance of the base tree for one test.

    Use as a context manager: entering mounts an overlay (lower = cached base,
    upper = a temporary directory) at `root`; leaving unmounts it and deletes
    the upper layer, so the cache stays pristine.
    """

    def __init__(self) -> None:
        self._tmp: Path | None = None
        self.root = Path()

    def __enter__(self) -> Self:
        base = base_rootfs()
        self._tmp = Path(tempfile.mkdtemp(prefix="mu-guest-", dir="/var/tmp"))
        for part in ("upper", "work", "root"):
            (self._tmp / part).mkdir()
        self.root = self._tmp / "root"
        try:
            subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                            f"lowerdir={base},upperdir={self._tmp / 'upper'},workdir={self._tmp / 'work'}",
                            str(self.root)], check=True)
        except BaseException:
            shutil.rmtree(self._tmp)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        """Unmount and delete the upper layer: everything the guest wrote is gone."""
        assert self._tmp is not None
        subprocess.run(["umount", str(self.root)], check=True)
        shutil.rmtree(self._tmp)

    def _path(self, relpath: str) -> Path:
        """`relpath` inside the guest; refuses a parent that resolves outside it.

        The host writes through the overlay mount, where a guest's absolute
        symlink would point into the host's own tree.
        """
        path = self.root / relpath.lstrip("/")
        if not path.parent.resolve().is_relative_to(self.root.resolve()):
            raise ValueError(f"{relpath} leads outside the guest")
        return path

    def write(self, relpath: str, text: str, mode: int = 0o644) -> None:
        """Put a file into the guest tree (replacing a symlink, never following it)."""
        path = self._path(relpath)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        path.write_text(text)
        path.chmod(mode)

    def remove(self, relpath: str) -> None:
        """Delete a file, symlink or directory from the guest tree (gone in the guest too)."""
        path = self._path(relpath)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)

    def install_project(self, source_tree: Path) -> None:
        """Install the project as its package would, but straight from the source tree.

        Pieces that do not exist yet are skipped, so the harness works while
        the project grows.
        """
        package = source_tree / "multiuplink_networkd"
        if package.is_dir():
            shutil.copytree(package, self._path("usr/lib/python3/dist-packages/multiuplink_networkd"),
                            ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        if (package / "cli.py").exists():
            self.write("usr/sbin/multiuplink",
                       "#!/usr/bin/python3\nfrom multiuplink_networkd.cli import main\nraise SystemExit(main())\n",
                       mode=0o755)
        for schema in sorted((source_tree / "schema").glob("*.json")):
            self.write(f"usr/share/multiuplink-networkd/{schema.name}", schema.read_text())
        for unit in sorted((source_tree / "units").glob("*.service")):
            self.write(f"usr/lib/systemd/system/{unit.name}", unit.read_text())
        generator = source_tree / "units/multiuplink-generator"
        if generator.exists():
            self.write("usr/lib/systemd/system-generators/multiuplink", generator.read_text(), mode=0o755)

    def enable_unit(self, unit: str, target: str = "multi-user.target") -> None:
        """Enable `unit` the way `systemctl enable` would, with a wants symlink."""
        link = self._path(f"etc/systemd/system/{target}.wants/{unit}")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        unit_dir = "etc" if (self.root / "etc/systemd/system" / unit).exists() else "usr/lib"
        link.symlink_to(f"/{unit_dir}/systemd/system/{unit}")

    def enable_http(self) -> None:
        """Serve HTTP on port 80 from boot on (`mu-test-http.service`)."""
        self.write("etc/systemd/system/mu-test-http.service", HTTP_UNIT)
        self.enable_unit("mu-test-http.service")

    def journal(self) -> str:
        """Every boot's persistent journal, read from the host: works after halt."""
        return _journal_on_disk(self.root)

    @contextlib.contextmanager
    def boot(self, netns: str, timeout: float = 60) -> Iterator[Booted]:
        """Boot the guest with systemd as PID 1 inside network namespace `netns`.

        Yields once `systemctl is-system-running` says running or degraded
        (about 0.5 s here; a unit that wants network-online.target adds
        ~14 s, as systemd-networkd-wait-online waits for an IPv6 RA).
        On exit sends SIGTERM to nspawn, which halts the guest cleanly
        (SIGRTMIN+4 would orphan it); the guest is killed if the halt hangs.
        """
        assert self._tmp is not None, "use Guest as a context manager"
        log = self._tmp / "nspawn.log"
        machine = f"mu-{uuid.uuid4().hex[:12]}"  # nspawn keys its /run/systemd/nspawn/ state by name
        argv = [
            "systemd-nspawn", "-D", str(self.root), "-b",
            "--register=no", "--keep-unit",  # no machined/systemd on the host
            f"--machine={machine}",
            "--capability=CAP_NET_ADMIN",  # else networkd's ConditionCapability skips it
            f"--network-namespace-path=/run/netns/{netns}",
            "--console=pipe",
            "--resolv-conf=off",  # keep the guest's empty resolv.conf (no host resolver)
            "--link-journal=no",  # never link the guest journal into the host's /var/log/journal
        ]
        # Without this nspawn mounts /proc/sys/net read-only and the guest's
        # systemd-sysctl silently skips every net.* setting.
        env = {**os.environ, "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"}
        cgroups = _cgroup_dirs(machine)
        # A shell joins the guest's cgroups and execs nspawn (so nspawn is
        # never in a shared cgroup); preexec_fn is unsafe in threaded runners.
        join_cgroups = ["sh", "-c", 'while [ "$1" != -- ]; do echo $$ > "$1"; shift; done; shift; exec "$@"',
                        "sh", *(str(cgroup / "cgroup.procs") for cgroup in cgroups), "--"]
        try:
            for cgroup in cgroups:
                cgroup.mkdir()
            started = time.monotonic()
            with log.open("wb") as out:
                nspawn = subprocess.Popen([*join_cgroups, *argv], stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, env=env, start_new_session=True)
            booted: Booted | None = None
            leader_fd: int | None = None
            try:
                deadline = started + timeout
                while (leader := _container_leader(nspawn.pid)) is None:
                    if nspawn.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"systemd-nspawn did not start the guest (exit {nspawn.returncode})\n"
                                           f"{_tail(log)}")
                    time.sleep(0.05)
                leader_fd = os.pidfd_open(leader)
                booted = guest = Booted(self.root, nspawn, leader, log, started)
                guest.wait_for(lambda: guest.system_state() in ("running", "degraded"),
                               deadline - time.monotonic(), "guest boot finished")
                guest.boot_seconds = time.monotonic() - started
                yield guest
            finally:
                halt_started = time.monotonic()
                _halt(nspawn, leader_fd)
                if booted:
                    booted.halt_seconds = time.monotonic() - halt_started
        finally:
            _remove_cgroups(cgroups)


def _halt(nspawn: subprocess.Popen[bytes], leader_fd: int | None) -> None:
    """Stop the guest: SIGTERM to nspawn is a clean halt; kill what outlives it."""
    if nspawn.poll() is None:
        nspawn.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            nspawn.wait(HALT_TIMEOUT)
    if leader_fd is not None:
        # Killing the PID namespace's init kills every process in the guest;
        # killing only nspawn would leave the guest running, reparented to the
        # host's init.  A pidfd cannot hit a recycled PID.
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(leader_fd, signal.SIGKILL)
        os.close(leader_fd)
        # nspawn then reaps the guest and exits; killing nspawn first would
        # leave the guest's init a zombie for the host's init to reap.
        with contextlib.suppress(subprocess.TimeoutExpired):
            nspawn.wait(5)
    if nspawn.poll() is None:
        nspawn.kill()
        nspawn.wait()
