"""A LAN behind the host of the topology, as a small office router or a container host has one.

::

    client ── core ── isp1/isp2 ── eth1/eth2 ┐ host ┌ lan0 10.0.0.1 ─────────── eth0 10.0.0.2  server   ("veth")
                                              └ br0 10.0.0.1 ─ vethsrv (port) ─ eth0 10.0.0.2  server   ("bridge")

The server answers HTTP on port 80 with "LOCAL PEER" (topology.py). The
host forwards (``ip_forward=1``) and gets the tables an admin writes into
``/etc/nftables.conf`` (:func:`admin_tables`): port 8080 of both uplinks
forwarded to the server, masquerade out of both uplinks, and a forward
chain with policy drop that passes only what that needs, so a verdict of
ours would show. With ``configure_host=False`` only the links exist on the
host's side (down, no address): whatever runs there (a booted guest's
netplan) configures them.
"""

from __future__ import annotations

import subprocess
import sys
from contextlib import ExitStack
from typing import Literal

from . import netns
from .topology import CLIENT_ADDR, HOST_ADDR, HOST_IFNAME, ISPS, Topology, http_get

HOST_LAN_ADDR = "10.0.0.1"
SERVER_ADDR = "10.0.0.2"
FORWARDED_PORT = 8080
Kind = Literal["veth", "bridge"]
#: The host's interface the LAN is on, by kind: a veth of its own, or a bridge with the server's veth as a port.
LAN_IFNAME: dict[Kind, str] = {"veth": "lan0", "bridge": "br0"}


def admin_tables(lan_ifname: str) -> str:
    """What an admin adds to Debian's /etc/nftables.conf on a router: port forwards, masquerade, a forward policy."""
    uplinks = ", ".join(f'"{HOST_IFNAME[isp]}"' for isp in ISPS)
    return f"""\
table inet filter {{
	chain forward {{
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct status dnat accept
		iifname "{lan_ifname}" oifname {{ {uplinks} }} accept
	}}
}}
table ip nat {{
	chain prerouting {{
		type nat hook prerouting priority dstnat; policy accept;
		iifname {{ {uplinks} }} tcp dport {FORWARDED_PORT} dnat to {SERVER_ADDR}:80
	}}
	chain postrouting {{
		type nat hook postrouting priority srcnat; policy accept;
		oifname {{ {uplinks} }} masquerade
	}}
}}
"""


class Lan:
    """The LAN namespace with its server, built on ``__enter__``; on ``__exit__`` the server stops and the
    namespace goes (the host's end of a veth goes with its peer)."""

    def __init__(self, topology: Topology, kind: Kind, configure_host: bool = True) -> None:
        self.topology = topology
        self.kind = kind
        self.configure_host = configure_host
        self.ns = f"{topology.prefix}-lan"
        self.host_ifname = LAN_IFNAME[kind]
        self._stack = ExitStack()

    def __enter__(self) -> Lan:
        try:
            self._build()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _build(self) -> None:
        host = self.topology.host_ns
        netns.add(self.ns)
        self._stack.callback(netns.delete, self.ns)
        if self.kind == "bridge":
            netns.ip(host, "link", "add", "vethsrv", "type", "veth", "peer", "name", "eth0", "netns", self.ns)
            if self.configure_host:
                netns.ip(host, "link", "add", "br0", "type", "bridge")
                self._stack.callback(netns.ip, host, "link", "del", "br0", check=False)
                netns.ip(host, "link", "set", "vethsrv", "master", "br0")
            netns.ip(host, "link", "set", "vethsrv", "up")
        else:
            netns.ip(host, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        netns.ip(self.ns, "addr", "add", f"{SERVER_ADDR}/24", "dev", "eth0")
        netns.ip(self.ns, "link", "set", "eth0", "up")
        netns.ip(self.ns, "route", "add", "default", "via", HOST_LAN_ADDR)
        if self.configure_host:
            netns.ip(host, "addr", "add", f"{HOST_LAN_ADDR}/24", "dev", self.host_ifname)
            netns.ip(host, "link", "set", self.host_ifname, "up")
            netns.sysctl(host, {"net.ipv4.ip_forward": 1})
            netns.run(host, "nft", "-f", "-", input=admin_tables(self.host_ifname))
        self._stack.enter_context(self.topology.serve_http(ns=self.ns))
        self._stack.enter_context(self.topology.serve_http(ns=self.topology.client_ns))

    def forwarded(self, isp: str, timeout: float = 3.0) -> bool:
        """Does the client's GET of port 8080 on the host's address at ``isp`` reach the server and come back?"""
        body = http_get(self.topology.client_ns, f"{HOST_ADDR[isp]}:{FORWARDED_PORT}", timeout)
        assert body in (None, f"{SERVER_ADDR} {CLIENT_ADDR}"), f"not the server, or the client's address lost: {body}"
        return body is not None

    def forwards(self, timeout: float = 3.0) -> dict[str, bool]:
        return {isp: self.forwarded(isp, timeout) for isp in ISPS}

    def internet_sees(self) -> str | None:
        """The address the server's own connection to the client arrives from (its uplink's, masqueraded)."""
        body = http_get(self.ns, CLIENT_ADDR)
        return body.split()[1] if body else None

    def keep_connection(self, isp: str) -> KeptConnection:
        return KeptConnection(self.topology.client_ns, f"{HOST_ADDR[isp]}:{FORWARDED_PORT}")


_KEPT_CLIENT = """\
import http.client, sys
host, port = sys.argv[1].split(":")
connection = http.client.HTTPConnection(host, int(port), timeout=float(sys.argv[2]))
for _ in sys.stdin:  # one GET per line, all on the same connection
    try:
        connection.request("GET", "/")
        print(connection.getresponse().read().decode(), flush=True)
    except OSError as error:
        print(f"failed: {error!r}", flush=True)
"""


class KeptConnection:
    """One TCP connection from the client, kept open across whatever a test does in between GETs on it."""

    def __init__(self, client_ns: str, address: str, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._proc = subprocess.Popen(
            ["ip", "netns", "exec", client_ns, sys.executable, "-c", _KEPT_CLIENT, address, str(timeout)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def __enter__(self) -> KeptConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        netns.stop(self._proc)

    def get(self) -> str:
        """The answer to one more GET on the connection, or "failed: ..." (the connection timed out or broke)."""
        assert self._proc.stdin is not None
        self._proc.stdin.write("\n")
        self._proc.stdin.flush()
        return netns.read_line(self._proc, self.timeout + 5, "a GET on the kept connection")
