"""A real systemd-networkd with a private system D-Bus inside a netns.

Layout (see /work/shared/notes/networkd-in-netns.example.sh):

* a *supervisor* (``sleep infinity``) started via ``ip netns exec NS unshare
  -m`` owns a private mount namespace: a tmpfs over /run (so networkd finds
  no host state and cannot log into the host's journal), the caller's
  ``network_dir`` bind-mounted onto /run/systemd/network (the real directory
  networkd reads, so a test can change drop-ins and Reload), a tmpfs over
  /etc/systemd/network (hides the host's files) and /sys remounted read-only
  (networkd then assumes a container without udev instead of waiting for
  udev to initialise links);
* dbus-daemon and networkd are started into that mount + network namespace
  with ``nsenter -t SUPERVISOR -m -n``, so they can be stopped and started
  again (``restart()``) while the mounts stay;
* the bus socket lives in a temp dir on the real filesystem, so code in the
  host's mount namespace reaches it too:
  ``ip netns exec NS env DBUS_SYSTEM_BUS_ADDRESS=<dbus_address> ...``.

Every process is stopped by PID on exit; nothing is left mounted because
the mount namespace dies with its last process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from typing import IO

from . import netns

NETWORKD = "/lib/systemd/systemd-networkd"
_BUS = ("org.freedesktop.network1", "/org/freedesktop/network1",
        "org.freedesktop.network1.Manager")

_SUPERVISOR = """\
set -e
mount -t tmpfs -o mode=0755 mu-run /run
mkdir -p /run/systemd/network /run/systemd/netif
mount --bind "$1" /run/systemd/network
chown systemd-network:systemd-network /run/systemd/netif
mount -t tmpfs -o mode=0755 mu-etc /etc/systemd/network
mount -o remount,bind,ro /sys
echo "$$"
exec sleep infinity
"""

# Allow-all policy: the bus exists only for this test. No service dirs, so
# a call to a name nobody owns fails at once instead of trying activation.
_BUS_CONFIG = """\
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
</busconfig>
"""


class Networkd:
    """Context manager running networkd in the existing netns ``netns``.

    ``network_dir`` (a host directory, e.g. ``ROOT/run/systemd/network``
    from ``netplan generate --root-dir ROOT``) *is* networkd's
    /run/systemd/network: later changes to it are seen after ``reload()``.
    It is made world-readable, since networkd reads it as systemd-network.
    """

    def __init__(self, netns: str, network_dir: str):
        self.netns = netns
        self.network_dir = os.path.abspath(network_dir)
        self.dbus_address = ""  # set on __enter__
        self.log_path = ""
        self._tmp: str | None = None
        self._log: IO[str] | None = None
        self._supervisor: subprocess.Popen[str] | None = None
        self._dbus: subprocess.Popen[str] | None = None
        self._networkd: subprocess.Popen[bytes] | None = None

    # -- lifecycle -------------------------------------------------------

    def __enter__(self) -> Networkd:
        try:
            self._start()
        except BaseException:
            self._stop_all()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_all()

    @property
    def supervisor_pid(self) -> int:
        """PID whose mount + network namespace the daemons live in."""
        assert self._supervisor is not None, "Networkd not started"
        return self._supervisor.pid

    @property
    def networkd_pid(self) -> int:
        assert self._networkd is not None, "Networkd not started"
        return self._networkd.pid

    def _start(self) -> None:
        self._tmp = tempfile.mkdtemp(prefix="mu-networkd-")
        # networkd drops to user systemd-network, then connects to the bus
        # socket in here and reads network_dir: both must be reachable.
        os.chmod(self._tmp, 0o755)
        os.chmod(self.network_dir, 0o755)
        self.dbus_address = f"unix:path={self._tmp}/system_bus_socket"
        self.log_path = f"{self._tmp}/log"
        self._log = open(self.log_path, "a")  # noqa: SIM115  (the daemons write to it until _stop_all)
        self._supervisor = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "unshare", "-m", "--propagation",
             "private", "sh", "-c", _SUPERVISOR, "sh", self.network_dir],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        pid = netns.read_line(self._supervisor, 10, "mount namespace setup")
        # ip netns exec and unshare both exec, so the shell's $$ is our child.
        assert int(pid) == self._supervisor.pid, (pid, self._supervisor.pid)

        with open(f"{self._tmp}/bus.conf", "w") as f:
            f.write(_BUS_CONFIG.format(socket=f"{self._tmp}/system_bus_socket"))
        self._dbus = subprocess.Popen(
            self._nsenter("dbus-daemon", f"--config-file={self._tmp}/bus.conf",
                          "--nofork", "--nopidfile", "--print-address"),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log, text=True,
        )
        netns.read_line(self._dbus, 10, "dbus-daemon to listen")
        self._start_networkd()

    def _start_networkd(self) -> None:
        self._networkd = subprocess.Popen(
            self._nsenter(NETWORKD),
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            env=self._env(SYSTEMD_LOG_LEVEL="debug", SYSTEMD_LOG_TARGET="console"),
        )

        networkd = self._networkd

        def on_bus() -> bool:
            if networkd.poll() is not None:
                raise RuntimeError(f"systemd-networkd exited {networkd.returncode}\n{self.log_tail()}")
            return self.run("busctl", "--auto-start=no", "get-property", *_BUS,
                            "OperationalState", check=False).returncode == 0

        netns.wait_for(on_bus, 15, "systemd-networkd on D-Bus", diagnose=self.log_tail)

    def restart(self) -> None:
        """Stop networkd (SIGTERM, by PID) and start it again, like
        ``systemctl restart``: mounts, bus and /run/systemd/netif stay.

        Returns once the new process is on the bus. Its link state files
        may still be the old process's, so wait for something the new
        configuration changes (``wait_configured(rules=...)``), not for a
        state. Config of the old process stays until a ReconfigureLink
        (see test_harness).
        """
        netns.stop(self._networkd)
        self._start_networkd()

    def _stop_all(self) -> None:
        for proc in (self._networkd, self._dbus, self._supervisor):
            netns.stop(proc)
        self._networkd = self._dbus = self._supervisor = None
        if self._log:
            self._log.close()
            self._log = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # -- commands --------------------------------------------------------

    def _nsenter(self, *argv: str) -> list[str]:
        return ["nsenter", "-t", str(self.supervisor_pid), "-m", "-n", *argv]

    def _env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.dbus_address, **extra}

    def run(self, *argv: str, check: bool = True, input: str | None = None,
            timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run a command in networkd's network + mount namespace, with
        ``DBUS_SYSTEM_BUS_ADDRESS`` pointing at the private bus."""
        return netns.run_cmd(self._nsenter(*argv), check=check, input=input,
                             timeout=timeout, env=self._env())

    def reload(self) -> None:
        """Manager.Reload(): re-read .network files (applies to links only
        after a reconfigure)."""
        self.run("busctl", "call", *_BUS, "Reload")

    def reconfigure(self, ifname: str) -> None:
        """Manager.ReconfigureLink(ifindex): re-apply config to one link."""
        self.run("busctl", "call", *_BUS, "ReconfigureLink", "i", str(self.ifindex(ifname)))

    def ifindex(self, ifname: str) -> int:
        out = netns.ip(self.netns, "-j", "link", "show", "dev", ifname).stdout
        return int(json.loads(out)[0]["ifindex"])

    # -- waiting ---------------------------------------------------------

    def setup_state(self, ifname: str) -> str:
        """networkd's ADMIN_STATE for the link ('' if not written yet), read
        from its state file through /proc/PID/root (no process spawned)."""
        path = f"/proc/{self.supervisor_pid}/root/run/systemd/netif/links/{self.ifindex(ifname)}"
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("ADMIN_STATE="):
                        return line.split("=", 1)[1].strip()
        except FileNotFoundError:
            pass
        return ""

    def wait_configured(
        self,
        ifname: str,
        timeout: float = 30.0,
        rules: tuple[str, ...] | list[str] = (),
        routes: tuple[tuple[str, str], ...] | list[tuple[str, str]] = (),
    ) -> None:
        """Wait until networkd has applied what a test depends on.

        Not "configured": with netplan's ``LinkLocalAddressing=ipv6`` a
        static link stays "configuring" ~14 s waiting for an IPv6 RA that
        never comes. Instead wait for: networkd managing the link
        (configuring/configured), a global IPv4 address on it, every string
        in ``rules`` in ``ip rule`` and every ``(table, string)`` of
        ``routes`` in ``ip route show table TABLE``. A failed link raises
        at once.
        """

        def done() -> bool:
            state = self.setup_state(ifname)
            if state in ("failed", "linger"):
                raise RuntimeError(f"{ifname} is {state}\n{self.diagnose()}")
            if state not in ("configuring", "configured"):
                return False
            addrs = netns.ip(self.netns, "-4", "-j", "addr", "show", "dev", ifname,
                             "scope", "global").stdout
            if not any(i.get("addr_info") for i in json.loads(addrs)):
                return False
            rule_text = netns.ip(self.netns, "rule", "show").stdout
            if not all(r in rule_text for r in rules):
                return False
            return all(
                want in netns.ip(self.netns, "route", "show", "table", table).stdout
                for table, want in routes
            )

        netns.wait_for(done, timeout, f"networkd to configure {ifname}",
                       diagnose=self.diagnose)

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                tail = "".join(f.readlines()[-lines:])
        except OSError as exc:
            tail = str(exc)
        return "--- networkd/dbus log (tail) ---\n" + tail

    def diagnose(self) -> str:
        """What a failed wait should show: links, rules, routes, log."""
        parts = []
        for args in (("addr",), ("rule",), ("route", "show", "table", "all")):
            parts.append(f"--- ip {' '.join(args)} ---\n"
                         + netns.ip(self.netns, *args, check=False).stdout)
        parts.append(self.run("networkctl", "list", "--no-pager", check=False).stdout)
        parts.append(self.log_tail())
        return "\n".join(parts)
