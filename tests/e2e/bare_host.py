"""A namespace with three uplink links and no networkd, where ``apply --boot`` loads real nft, iptables and sysctls.

For the tests that need many applies (kills, full file systems, parallel
writers): the BCP38 topology with networkd (product.py ``Host``) proves the
traffic; this proves what the kernel holds, cheaply. ``kernel`` reads it back
and ``loaded`` (a fixture in conftest.py) gives what the real loaders make of
a file set in a clean namespace: the state an apply must leave.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from multiuplink_networkd import paths

from . import netns
from .product import REPO

LINKS = ("eth1", "eth2", "eth3")
NO_NETWORKD = "#!/bin/sh\n# test stub: no systemd-networkd runs in this namespace\nexit 3\n"
CLONE_NEWNET = 0x40000000
_STATE = ("nft list table inet multiuplink 2>/dev/null; echo ---; iptables-save -t mangle; echo ---; "
          + "; ".join(f"cat /proc/sys/net/ipv4/conf/{link}/rp_filter" for link in LINKS)
          + "; cat /proc/sys/net/ipv4/tcp_fwmark_accept")
Kernel = tuple[str, list[str], list[str]]


def add_links(namespace: str) -> None:
    """The uplinks' links, with strict rp_filter as their default: a reset shows."""
    netns.sysctl(namespace, {"net.ipv4.conf.default.rp_filter": 1})
    for link in LINKS:
        netns.ip(namespace, "link", "add", link, "type", "veth", "peer", "name", f"peer-{link}")
        netns.ip(namespace, "link", "set", link, "up")


def kernel(namespace: str) -> Kernel:
    """Our nft table, our iptables lines, rp_filter of each link and tcp_fwmark_accept; counters left out."""
    nft, iptables, sysctls = netns.run(namespace, "sh", "-c", _STATE).stdout.split("---\n")
    ours = [re.sub(r"\[\d+:\d+\]", "", line) for line in iptables.splitlines() if "MULTIUPLINK" in line]
    return re.sub(r"counter packets \d+ bytes \d+", "counter", nft), ours, sysctls.split()


def load(namespace: str, files: dict[str, str]) -> Kernel:
    """Load ``files`` with the real loaders into a clean ``namespace`` (as the product's would) and read it back."""
    netns.run(namespace, "nft", "flush", "ruleset")
    netns.run(namespace, "iptables-restore", input="*mangle\nCOMMIT\n")
    if paths.NFT_RULESET in files:
        netns.run(namespace, "nft", "-f", "-", input=files[paths.NFT_RULESET])
    if paths.IPTABLES_RULESET in files:
        jumps = "-I PREROUTING 1 -j MULTIUPLINK_PREROUTING\n-I OUTPUT 1 -j MULTIUPLINK_OUTPUT\nCOMMIT\n"
        netns.run(namespace, "iptables-restore", "--noflush",
                  input=files[paths.IPTABLES_RULESET].replace("COMMIT\n", jumps))
    uplinks = {u["interface"]: str(u["rp_filter"])
               for u in json.loads(files.get(paths.MANIFEST, '{"uplinks": []}'))["uplinks"]}
    nft, iptables, _ = kernel(namespace)
    return nft, iptables, [*(uplinks.get(link, "1") for link in LINKS), "1" if uplinks else "0"]


def stub_bin(directory: Path) -> Path:
    """A PATH directory whose ``systemctl`` says, truthfully here, that networkd is not running."""
    directory.mkdir(exist_ok=True)
    (directory / "systemctl").write_text(NO_NETWORKD)
    (directory / "systemctl").chmod(0o755)
    return directory


def entering(namespace: str, bin_dir: Path) -> Callable[[], None]:
    """For a forked child: join ``namespace`` (as ``ip netns exec`` would, but keeping the parent's imports)."""
    def enter() -> None:
        fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY | os.O_CLOEXEC)
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns failed")
        os.close(fd)
        os.environ["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    return enter


def multiuplink(namespace: str, bin_dir: Path, *args: str) -> subprocess.Popen[str]:
    """Our CLI as a process of its own in ``namespace``; the caller waits for it."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.Popen(["ip", "netns", "exec", namespace, sys.executable, "-m", "multiuplink_networkd", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
