"""The two-ISP topology of the seed, with BCP38 at each ISP, in namespaces.

::

    client 198.51.100.10 ── core ──┬── isp1 (203.0.113.1) ── eth1 203.0.113.8 ─┐
                                   └── isp2 (192.0.2.1)   ── eth2 192.0.2.31  ─┴ host

The host's main table routes everything via isp1. A connection arriving
via isp2 is therefore answered via isp1 with source 192.0.2.31, which isp1
drops (anti-spoofing) -- the problem the product solves. Each ISP does
BCP38 twice over, like real ones: strict ``rp_filter`` and an explicit nft
drop of customer packets whose source is not the customer's prefix (with
a named counter, so a test can prove *that* drop happened).

The host namespace starts with ``rp_filter=1`` (all and default, set before
its links exist, so eth1/eth2 inherit 1): a SYN arriving on eth2 then fails
the strict reverse-path check, so the product's loosening to 2 is needed
and thereby tested.

Interface names are never iproute2 keywords (``up``, ``down``, ``dev``...),
which ``ip`` would misparse.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator

from . import netns

ISPS = ("isp1", "isp2")
#: The host's address on the uplink to each ISP (eth1 / eth2).
HOST_ADDR = {"isp1": "203.0.113.8", "isp2": "192.0.2.31"}
#: Each ISP router's address on the host's link: the host's gateway.
GATEWAY = {"isp1": "203.0.113.1", "isp2": "192.0.2.1"}
#: The prefix each ISP assigned to the host; anything else from it is spoofed.
CUSTOMER_PREFIX = {"isp1": "203.0.113.0/24", "isp2": "192.0.2.0/24"}
HOST_IFNAME = {"isp1": "eth1", "isp2": "eth2"}
CLIENT_ADDR = "198.51.100.10"
CLIENT_GATEWAY = "198.51.100.1"
#: ISP <-> core transit links (benchmarking range, never leaves the namespaces):
#: (ISP side, core side).
_TRANSIT = {"isp1": ("198.18.1.1", "198.18.1.2"), "isp2": ("198.18.2.1", "198.18.2.2")}

_CONNECT = """\
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
except OSError:
    sys.exit(1)
"""

_HTTP_SERVER = """\
import http.server, socketserver, sys

class Server(http.server.ThreadingHTTPServer):
    def server_bind(self):
        # HTTPServer.server_bind() calls socket.getfqdn(): a DNS query that
        # stalls for seconds in a namespace with a default route but no
        # resolver behind it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "host", self.server_address[1]

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a test can hold one connection open across an event

    def do_GET(self):
        # Answer with the local address the request came in on and the address it came from.
        body = f"{self.connection.getsockname()[0]} {self.client_address[0]}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = Server(("0.0.0.0", int(sys.argv[1])), Handler)
print("listening", flush=True)
server.serve_forever()
"""


class Topology:
    """Build the topology on ``__enter__``, delete every namespace on ``__exit__``.

    With ``configure_host=False`` the host's eth1/eth2 exist, down and without
    addresses, while their ISP ends are up (so they get carrier as soon as
    whatever runs in ``host_ns`` -- networkd, a booted system -- sets them up).
    """

    def __init__(self, configure_host: bool = True, prefix: str | None = None):
        self.configure_host = configure_host
        self.prefix = prefix or netns.unique_prefix()
        self.host_ns = f"{self.prefix}-host"
        self.client_ns = f"{self.prefix}-cli"
        self.core_ns = f"{self.prefix}-core"
        self.isp_ns = {isp: f"{self.prefix}-{isp}" for isp in ISPS}
        self._created: list[str] = []

    @property
    def namespaces(self) -> list[str]:
        return [self.host_ns, *self.isp_ns.values(), self.core_ns, self.client_ns]

    def __enter__(self) -> Topology:
        try:
            self._build()
        except BaseException:
            self._teardown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._teardown()

    def _build(self) -> None:
        for ns in self.namespaces:
            netns.add(ns)
            self._created.append(ns)
        # Before any link exists, so eth1/eth2 and the ISP ends inherit it.
        netns.sysctl(
            self.host_ns,
            {
                "net.ipv4.conf.all.rp_filter": 1,
                "net.ipv4.conf.default.rp_filter": 1,
                # New namespaces inherit IPv4 settings from the host's; a host
                # that routes must not make our endpoint a router.
                "net.ipv4.ip_forward": 0,
            },
        )
        for isp in ISPS:
            netns.sysctl(
                self.isp_ns[isp],
                {
                    "net.ipv4.conf.all.rp_filter": 1,
                    "net.ipv4.conf.default.rp_filter": 1,
                    "net.ipv4.ip_forward": 1,
                },
            )
        netns.sysctl(self.core_ns, {"net.ipv4.ip_forward": 1})

        core, cli = self.core_ns, self.client_ns
        for isp in ISPS:
            isp_ns = self.isp_ns[isp]
            netns.ip(self.host_ns, "link", "add", HOST_IFNAME[isp], "type", "veth",
                     "peer", "name", "tohost", "netns", isp_ns)
            netns.ip(isp_ns, "link", "add", "tocore", "type", "veth",
                     "peer", "name", f"to{isp}", "netns", core)
            isp_side, core_side = _TRANSIT[isp]
            netns.ip(isp_ns, "addr", "add", f"{GATEWAY[isp]}/24", "dev", "tohost")
            netns.ip(isp_ns, "addr", "add", f"{isp_side}/30", "dev", "tocore")
            netns.ip(core, "addr", "add", f"{core_side}/30", "dev", f"to{isp}")
            for ifname in ("tohost", "tocore"):
                netns.ip(isp_ns, "link", "set", ifname, "up")
            netns.ip(core, "link", "set", f"to{isp}", "up")
            netns.ip(isp_ns, "route", "add", "default", "via", core_side)
            netns.ip(core, "route", "add", CUSTOMER_PREFIX[isp], "via", isp_side)
            netns.sysctl(
                isp_ns,
                {f"net.ipv4.conf.{i}.rp_filter": 1 for i in ("tohost", "tocore")},
            )
            netns.run(isp_ns, "nft", "-f", "-", input=self._bcp38_ruleset(isp))

        netns.ip(core, "link", "add", "tocli", "type", "veth", "peer", "name", "eth0",
                 "netns", cli)
        netns.ip(core, "addr", "add", f"{CLIENT_GATEWAY}/24", "dev", "tocli")
        netns.ip(core, "link", "set", "tocli", "up")
        netns.ip(cli, "addr", "add", f"{CLIENT_ADDR}/24", "dev", "eth0")
        netns.ip(cli, "link", "set", "eth0", "up")
        netns.ip(cli, "route", "add", "default", "via", CLIENT_GATEWAY)

        if self.configure_host:
            for isp in ISPS:
                ifname = HOST_IFNAME[isp]
                netns.ip(self.host_ns, "addr", "add", f"{HOST_ADDR[isp]}/24", "dev", ifname)
                netns.ip(self.host_ns, "link", "set", ifname, "up")
            netns.ip(self.host_ns, "route", "add", "default", "via", GATEWAY["isp1"])

    @staticmethod
    def _bcp38_ruleset(isp: str) -> str:
        # Priority raw: before the routing decision, so this (countable) drop
        # fires before rp_filter would silently drop the same packet.
        return f"""
table inet bcp38 {{
    counter spoofed {{ }}
    chain prerouting {{
        type filter hook prerouting priority raw; policy accept;
        iifname "tohost" ip saddr != {CUSTOMER_PREFIX[isp]} counter name "spoofed" drop
    }}
}}
"""

    def _teardown(self) -> None:
        errors = []
        for ns in reversed(self._created):
            try:
                netns.delete(ns)
            except Exception as exc:  # keep deleting the others
                errors.append(exc)
        self._created.clear()
        if errors:
            raise errors[0]

    def run_host(self, *argv: str, check: bool = True, input: str | None = None
                 ) -> subprocess.CompletedProcess[str]:
        """Run a command in the host's namespace."""
        return netns.run(self.host_ns, *argv, check=check, input=input)

    def tcp_reachable(self, isp: str, port: int = 80, timeout: float = 3.0) -> bool:
        """Can the client complete a TCP handshake with the host via ``isp``?

        Connects to the host's address on that uplink; the connect is bounded
        by ``timeout``. A False means no SYN-ACK came back in time.
        """
        proc = netns.run(
            self.client_ns, sys.executable, "-c", _CONNECT, HOST_ADDR[isp], str(port),
            str(timeout), check=False, timeout=timeout + 10,
        )
        if proc.returncode not in (0, 1):  # the probe itself broke
            raise netns.CommandError(proc.returncode, proc.args, proc.stdout, proc.stderr)
        return proc.returncode == 0

    def bcp38_drops(self, isp: str) -> int:
        """Packets ``isp`` dropped because the host sent them with a foreign source."""
        out = netns.run(self.isp_ns[isp], "nft", "-j", "list", "counter", "inet",
                        "bcp38", "spoofed").stdout
        for item in json.loads(out)["nftables"]:
            if "counter" in item:
                return int(item["counter"]["packets"])
        raise AssertionError(f"no counter in nft output: {out}")

    @contextlib.contextmanager
    def serve_http(self, port: int = 80, ns: str | None = None) -> Iterator[subprocess.Popen[str]]:
        """Run a tiny HTTP server on 0.0.0.0:port in namespace ``ns`` (default: the host's).

        Yields once it listens; it answers GET with "LOCAL PEER": the local
        address the request arrived on and the address it came from. Stopped
        by PID on exit.
        """
        ns = ns or self.host_ns
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", _HTTP_SERVER, str(port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        try:
            netns.read_line(proc, 10, f"http server on port {port} in {ns}")
            yield proc
        finally:
            netns.stop(proc)


_HTTP_GET = """\
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy from the environment
try:
    with opener.open(f"http://{sys.argv[1]}/", timeout=float(sys.argv[2])) as reply:
        print(reply.read().decode())
except OSError:
    sys.exit(1)
"""


def http_get(ns: str, address: str, timeout: float = 3.0) -> str | None:
    """GET http://ADDRESS/ (``host:port``) from namespace ``ns``: the body of the answer, or None if none came."""
    done = netns.run(ns, sys.executable, "-c", _HTTP_GET, address, str(timeout), check=False,
                     timeout=timeout + 10)
    if done.returncode not in (0, 1):  # the probe itself broke
        raise netns.CommandError(done.returncode, done.args, done.stdout, done.stderr)
    return done.stdout.strip() if done.returncode == 0 else None
