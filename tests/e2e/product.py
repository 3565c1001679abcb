"""Run the product as a user would, inside a test's namespaces.

A ``Host`` is the BCP38 topology with a real systemd-networkd (and private
D-Bus) in the host namespace, configured from netplan's own output for the
example YAML (or the netplan YAML and stanza a test gives); ``multiuplink(...)``
runs our CLI there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from . import netns
from .networkd import NETWORKD, Networkd
from .topology import GATEWAY, HOST_ADDR, HOST_ADDR6, HOST_IFNAME, SHARED_IFNAME, Topology

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "two-isps"
NETPLAN_GENERATE = "/lib/netplan/generate"
STANZA = "etc/netplan/multiuplink.d/uplinks.yaml"
RULE = {"isp1": "fwmark 0x1000000/0xff000000 lookup 101", "isp2": "fwmark 0x2000000/0xff000000 lookup 102"}
#: The rule one priority before each RULE: main's specific routes first.
MAIN_FIRST_RULE = {isp: rule.split(" lookup ")[0] + " lookup main suppress_prefixlength 0"
                   for isp, rule in RULE.items()}
TABLE_ROUTE = {"isp1": ("101", f"default via {GATEWAY['isp1']} dev eth1"),
               "isp2": ("102", f"default via {GATEWAY['isp2']} dev eth2")}


def dual_stack_netplan(gateway6: str, eth2: str) -> str:
    """netplan's YAML of a dual-stack host: eth1 static in both families (IPv6 default via ``gateway6``, on-link,
    metric 100: main prefers it), eth2 as ``eth2`` says (its lines under ``eth2:``), taking RAs."""
    return f"""\
network:
  version: 2
  renderer: networkd
  ethernets:
    eth1:
      addresses: [{HOST_ADDR['isp1']}/24, "{HOST_ADDR6['isp1']}/64"]
      routes:
        - {{to: default, via: {GATEWAY['isp1']}}}
        - {{to: "::/0", via: "{gateway6}", on-link: true, metric: 100}}
      accept-ra: false
    eth2:
{eth2}      accept-ra: true
"""


def require_networkd() -> None:
    reason = netns.skip_reason()
    missing = [t for t in (NETWORKD, NETPLAN_GENERATE) if not os.access(t, os.X_OK)]
    missing += [t for t in ("dbus-daemon", "busctl", "networkctl") if not shutil.which(t)]
    if reason or missing:
        pytest.skip(reason or f"needs {', '.join(missing)} (packages systemd, netplan.io, dbus)")


def netplan_generate(root: Path) -> None:
    """What netplan's own generator does at boot (and on ``netplan generate``)."""
    for yaml in [*(root / "etc/netplan").glob("*.yaml"), *(root / "etc/netplan/multiuplink.d").glob("*.yaml")]:
        yaml.chmod(0o600)  # netplan warns about world-readable configs, and so do we about the stanza
    netns.run_cmd([NETPLAN_GENERATE, "--root-dir", str(root)])


class Host:
    """Topology + real networkd in the host netns, configured by netplan from ``root``.

    The example's netplan YAML and stanza, or ``netplan`` (the text of
    etc/netplan/50-uplinks.yaml) and ``stanza``; ``served`` and ``shared_nic`` pick the
    topology's variant.
    """

    def __init__(self, root: Path, netplan: str | None = None, stanza: str | None = None, served: bool = False,
                 shared_nic: bool = False) -> None:
        self.root = root
        self.netplan = netplan
        self.stanza_text = stanza
        self.served = served
        self.shared_nic = shared_nic
        self._stack = ExitStack()

    def __enter__(self) -> Host:
        shutil.copytree(EXAMPLE, self.root, dirs_exist_ok=True)
        if self.netplan is not None:
            (self.root / "etc/netplan/50-uplinks.yaml").write_text(self.netplan)
        if self.stanza_text is not None:
            self.stanza.write_text(self.stanza_text)
        netplan_generate(self.root)
        self.topology = self._stack.enter_context(Topology(configure_host=False, served=self.served,
                                                           shared_nic=self.shared_nic))
        self.networkd = self._stack.enter_context(
            Networkd(self.topology.host_ns, str(self.root / "run/systemd/network")))
        for ifname in [SHARED_IFNAME] if self.shared_nic else HOST_IFNAME.values():
            self.networkd.wait_configured(ifname)
        self._stack.enter_context(self.topology.serve_http())
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def stanza(self) -> Path:
        return self.root / STANZA

    def _command(self, args: tuple[str, ...], path: str | None, bus: bool) -> tuple[list[str], dict[str, str]]:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env["DBUS_SYSTEM_BUS_ADDRESS"] = self.networkd.dbus_address if bus else "unix:path=/nonexistent"
        if path:
            env["PATH"] = path
        return ["ip", "netns", "exec", self.topology.host_ns, sys.executable, "-m", "multiuplink_networkd", *args,
                "--root-dir", str(self.root)], env

    def multiuplink(self, *args: str, path: str | None = None, check_code: int | None = 0,
                    bus: bool = True) -> subprocess.CompletedProcess[str]:
        """Our CLI in the host netns (``bus``: pointed at its networkd's private D-Bus)."""
        argv, env = self._command(args, path, bus)
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        if check_code is not None:
            assert done.returncode == check_code, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def start(self, *args: str, **popen: Any) -> subprocess.Popen[str]:
        """Our CLI in the background (stop it by its PID); ``popen``: e.g. other stdin, stdout."""
        argv, env = self._command(args, None, True)
        options = {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen}
        return subprocess.Popen(argv, text=True, env=env, **options)

    def rules(self) -> str:
        return netns.ip(self.topology.host_ns, "rule", "show").stdout

    def table(self, table: str) -> str:
        return netns.ip(self.topology.host_ns, "route", "show", "table", table, check=False).stdout

    def rp_filter(self, ifname: str) -> str:
        return netns.read_sysctl(self.topology.host_ns, f"net.ipv4.conf.{ifname}.rp_filter")

    def nft(self) -> str:
        """The ruleset, counter values left out (background IPv6 traffic moves them)."""
        listed = netns.run(self.topology.host_ns, "nft", "list", "ruleset").stdout
        return re.sub(r"packets \d+ bytes \d+", "", listed)

    def wait_uplinks(self, *isps: str) -> None:
        """Until networkd has installed the rules and table routes of ``isps``."""
        for isp in isps:
            table, route = TABLE_ROUTE[isp]
            ifname = SHARED_IFNAME if self.shared_nic else HOST_IFNAME[isp]
            self.networkd.wait_configured(ifname, rules=[MAIN_FIRST_RULE[isp], RULE[isp]],
                                          routes=[(table, route.replace(HOST_IFNAME[isp], ifname))])

    def reachable(self, family: int = 4, timeout: float = 3.0) -> dict[str, bool]:
        """Which ISPs answer the client's TCP handshake, at the host's IPv4 (or static IPv6) address on each."""
        return {isp: self.topology.tcp_reachable(isp, timeout=timeout, address=HOST_ADDR6[isp] if family == 6 else None)
                for isp in ("isp1", "isp2")}

    def wait_ipv6(self) -> None:
        """Until the host's static IPv6 addresses are usable (DAD done) and isp1 answers at its own."""
        netns.wait_for(lambda: self.topology.tcp_reachable("isp1", timeout=1.0, address=HOST_ADDR6["isp1"]), 15,
                       "IPv6 via isp1", diagnose=self.networkd.diagnose)
