"""The two-ISP topology of the seed, with BCP38 at each ISP, in namespaces.

::

    client 198.51.100.10 ── core ──┬── isp1 (203.0.113.1) ── eth1 203.0.113.8 ─┐
                                   └── isp2 (192.0.2.1)   ── eth2 192.0.2.31  ─┴ host

Both families everywhere: each ISP also routes an IPv6 customer prefix,
and drops IPv6 packets whose source it would not route back to the customer.

Two variants of the ISP side. ``served=True``: each ISP router runs a real
systemd-networkd that hands the host its address by DHCP (always the same
one, HOST_ADDR) with itself as router and advertises the IPv6 prefix (RAs,
for SLAAC), on a bridge ``tohost`` that on isp2 also holds a neighbour
(NEIGHBOUR, no default route: it talks on-link only).
``shared_nic=True``: the host has one NIC, eth0, on a switch shared by both
ISP routers (one subnet from each ISP on it).

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
import functools
import ipaddress
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from . import netns
from .networkd import Networkd

ISPS = ("isp1", "isp2")
#: The host's address on the uplink to each ISP (eth1 / eth2).
HOST_ADDR = {"isp1": "203.0.113.8", "isp2": "192.0.2.31"}
#: Each ISP router's address on the host's link: the host's gateway.
GATEWAY = {"isp1": "203.0.113.1", "isp2": "192.0.2.1"}
#: The prefix each ISP assigned to the host; anything else from it is spoofed.
CUSTOMER_PREFIX = {"isp1": "203.0.113.0/24", "isp2": "192.0.2.0/24"}
HOST_IFNAME = {"isp1": "eth1", "isp2": "eth2"}
#: Fixed MACs of the host's NICs, so a netplan can match them as cloud-init's does.
HOST_MAC = {"isp1": "02:00:00:00:01:01", "isp2": "02:00:00:00:01:02"}
#: With served=True: a host on isp2's segment, its subnet only (no default route), no router in between.
NEIGHBOUR = {"isp2": "192.0.2.50"}
SHARED_IFNAME = "eth0"
CLIENT_ADDR = "198.51.100.10"
CLIENT_GATEWAY = "198.51.100.1"
#: IPv6 everywhere too: each ISP's customer prefix, its router on it (and fe80::1, a link-local gateway),
#: the host's static address in it, the client.
CUSTOMER_PREFIX6 = {"isp1": "2001:db8:1::/64", "isp2": "2001:db8:2::/64"}
GATEWAY6 = {"isp1": "2001:db8:1::1", "isp2": "2001:db8:2::1"}
LINK_LOCAL_GATEWAY = "fe80::1"
HOST_ADDR6 = {"isp1": "2001:db8:1::8", "isp2": "2001:db8:2::31"}
CLIENT_ADDR6 = "2001:db8:c::10"
CLIENT_GATEWAY6 = "2001:db8:c::1"
#: ISP <-> core transit links (benchmarking range, never leaves the namespaces):
#: (ISP side, core side).
_TRANSIT = {"isp1": ("198.18.1.1", "198.18.1.2"), "isp2": ("198.18.2.1", "198.18.2.2")}
_NEIGHBOUR_DISCOVERY = ("nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, "
                        "mld2-listener-report")
_TRANSIT6 = {"isp1": ("2001:db8:ff01::1", "2001:db8:ff01::2"), "isp2": ("2001:db8:ff02::1", "2001:db8:ff02::2")}

_CONNECT = """\
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
except OSError:
    sys.exit(1)
"""

_PROBE = """\
import socket, sys, time
address, port, interval, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
print("probing", flush=True)
while True:
    started = time.monotonic()
    try:
        socket.create_connection((address, port), timeout=timeout).close()
        answered = 1
    except OSError:
        answered = 0
    print(f"{started:.4f} {answered}", flush=True)
    time.sleep(max(0.0, interval - (time.monotonic() - started)))
"""

_HTTP_SERVER = """\
import http.server, socket, socketserver, sys

class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self):
        # Both families on one socket. HTTPServer.server_bind() calls
        # socket.getfqdn(): a DNS query that stalls for seconds in a namespace
        # with a default route but no resolver behind it.
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "host", self.server_address[1]

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a test can hold one connection open across an event

    def do_GET(self):
        # Answer with the local address the request came in on and the address it came from (IPv4 ones as such,
        # not IPv4-mapped).
        local, peer = self.connection.getsockname()[0], self.client_address[0]
        body = f"{local.removeprefix('::ffff:')} {peer.removeprefix('::ffff:')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = Server(("::", int(sys.argv[1])), Handler)
print("listening", flush=True)
server.serve_forever()
"""


class Topology:
    """Build the topology on ``__enter__``, delete every namespace on ``__exit__``.

    With ``configure_host=False`` the host's eth1/eth2 exist, down and without
    addresses, while their ISP ends are up (so they get carrier as soon as
    whatever runs in ``host_ns`` -- networkd, a booted system -- sets them up).
    """

    def __init__(self, configure_host: bool = True, prefix: str | None = None, served: bool = False,
                 shared_nic: bool = False):
        assert not (served and shared_nic), "one variant at a time"
        self.configure_host = configure_host
        self.served = served
        self.shared_nic = shared_nic
        self.prefix = prefix or netns.unique_prefix()
        self.host_ns = f"{self.prefix}-host"
        self.client_ns = f"{self.prefix}-cli"
        self.core_ns = f"{self.prefix}-core"
        self.isp_ns = {isp: f"{self.prefix}-{isp}" for isp in ISPS}
        self.neighbour_ns = {isp: f"{self.prefix}-nb{isp[-1]}" for isp in NEIGHBOUR} if served else {}
        self.switch_ns = f"{self.prefix}-sw" if shared_nic else None
        self.isp_networkd: dict[str, Networkd] = {}
        self._created: list[str] = []
        self._stack = contextlib.ExitStack()

    @property
    def namespaces(self) -> list[str]:
        extra = [*self.neighbour_ns.values(), *([self.switch_ns] if self.switch_ns else [])]
        return [self.host_ns, *self.isp_ns.values(), self.core_ns, self.client_ns, *extra]

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
                "net.ipv6.conf.all.forwarding": 0,
            },
        )
        for isp in ISPS:
            netns.sysctl(
                self.isp_ns[isp],
                {
                    "net.ipv4.conf.all.rp_filter": 1,
                    "net.ipv4.conf.default.rp_filter": 1,
                    "net.ipv4.ip_forward": 1,
                    "net.ipv6.conf.all.forwarding": 1,
                },
            )
        netns.sysctl(self.core_ns, {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1})

        core, cli = self.core_ns, self.client_ns
        for isp in ISPS:
            isp_ns = self.isp_ns[isp]
            self._link_host(isp)
            netns.ip(isp_ns, "link", "add", "tocore", "type", "veth",
                     "peer", "name", f"to{isp}", "netns", core)
            isp_side, core_side = _TRANSIT[isp]
            isp_side6, core_side6 = _TRANSIT6[isp]
            if not self.served:
                netns.ip(isp_ns, "addr", "add", f"{GATEWAY[isp]}/24", "dev", "tohost")
                # fe80::1 on each router's own link; on a segment both share, it would be there twice.
                link_local = [] if self.shared_nic else [f"{LINK_LOCAL_GATEWAY}/64"]
                for address in (f"{GATEWAY6[isp]}/64", *link_local):
                    netns.ip(isp_ns, "addr", "add", address, "dev", "tohost", "nodad")
            netns.ip(isp_ns, "addr", "add", f"{isp_side}/30", "dev", "tocore")
            netns.ip(isp_ns, "addr", "add", f"{isp_side6}/64", "dev", "tocore", "nodad")
            netns.ip(core, "addr", "add", f"{core_side}/30", "dev", f"to{isp}")
            netns.ip(core, "addr", "add", f"{core_side6}/64", "dev", f"to{isp}", "nodad")
            for ifname in ("tohost", "tocore"):
                netns.ip(isp_ns, "link", "set", ifname, "up")
            netns.ip(core, "link", "set", f"to{isp}", "up")
            netns.ip(isp_ns, "route", "add", "default", "via", core_side)
            netns.ip(isp_ns, "-6", "route", "add", "default", "via", core_side6)
            netns.ip(core, "route", "add", CUSTOMER_PREFIX[isp], "via", isp_side)
            netns.ip(core, "-6", "route", "add", CUSTOMER_PREFIX6[isp], "via", isp_side6)
            netns.sysctl(
                isp_ns,
                {f"net.ipv4.conf.{i}.rp_filter": 1 for i in ("tohost", "tocore")},
            )
            netns.run(isp_ns, "nft", "-f", "-", input=self._bcp38_ruleset(isp))
        if self.served:
            self._serve_leases()

        netns.ip(core, "link", "add", "tocli", "type", "veth", "peer", "name", "eth0",
                 "netns", cli)
        netns.ip(core, "addr", "add", f"{CLIENT_GATEWAY}/24", "dev", "tocli")
        netns.ip(core, "addr", "add", f"{CLIENT_GATEWAY6}/64", "dev", "tocli", "nodad")
        netns.ip(core, "link", "set", "tocli", "up")
        netns.ip(cli, "addr", "add", f"{CLIENT_ADDR}/24", "dev", "eth0")
        netns.ip(cli, "addr", "add", f"{CLIENT_ADDR6}/64", "dev", "eth0", "nodad")
        netns.ip(cli, "link", "set", "eth0", "up")
        netns.ip(cli, "route", "add", "default", "via", CLIENT_GATEWAY)
        netns.ip(cli, "-6", "route", "add", "default", "via", CLIENT_GATEWAY6)

        if self.configure_host:
            assert not self.shared_nic and not self.served, "configure_host is the static two-NIC host"
            for isp in ISPS:
                ifname = HOST_IFNAME[isp]
                netns.ip(self.host_ns, "addr", "add", f"{HOST_ADDR[isp]}/24", "dev", ifname)
                netns.ip(self.host_ns, "link", "set", ifname, "up")
            netns.ip(self.host_ns, "route", "add", "default", "via", GATEWAY["isp1"])

    def _link_host(self, isp: str) -> None:
        """The host's link to ``isp``: a veth to its router's ``tohost``, or a bridge port (served, shared NIC)."""
        isp_ns = self.isp_ns[isp]
        if self.shared_nic:
            assert self.switch_ns is not None
            if isp == ISPS[0]:
                netns.ip(self.switch_ns, "link", "add", "lan", "type", "bridge")
                netns.ip(self.host_ns, "link", "add", SHARED_IFNAME, "address", HOST_MAC[isp], "type", "veth",
                         "peer", "name", "host", "netns", self.switch_ns)
                netns.ip(self.switch_ns, "link", "set", "host", "master", "lan", "up")
                netns.ip(self.switch_ns, "link", "set", "lan", "up")
            netns.ip(self.switch_ns, "link", "add", isp, "type", "veth", "peer", "name", "tohost", "netns", isp_ns)
            netns.ip(self.switch_ns, "link", "set", isp, "master", "lan", "up")
            return
        if not self.served:
            netns.ip(self.host_ns, "link", "add", HOST_IFNAME[isp], "address", HOST_MAC[isp], "type", "veth",
                     "peer", "name", "tohost", "netns", isp_ns)
            return
        netns.ip(isp_ns, "link", "add", "tohost", "type", "bridge")
        # Where br_netfilter is loaded, bridged frames would pass the router's own forward chain (and look
        # like hairpins): a segment's switch does not route. Per namespace; -e: no such key without the module.
        netns.run(isp_ns, "sysctl", "-q", "-e", "-w", "net.bridge.bridge-nf-call-iptables=0",
                  "net.bridge.bridge-nf-call-ip6tables=0", "net.bridge.bridge-nf-call-arptables=0")
        netns.ip(self.host_ns, "link", "add", HOST_IFNAME[isp], "address", HOST_MAC[isp], "type", "veth",
                 "peer", "name", "hostport", "netns", isp_ns)
        netns.ip(isp_ns, "link", "set", "hostport", "master", "tohost", "up")
        if isp in NEIGHBOUR:
            neighbour = self.neighbour_ns[isp]
            netns.ip(isp_ns, "link", "add", "neighport", "type", "veth", "peer", "name", "eth0", "netns", neighbour)
            netns.ip(isp_ns, "link", "set", "neighport", "master", "tohost", "up")
            netns.ip(neighbour, "addr", "add", f"{NEIGHBOUR[isp]}/24", "dev", "eth0")
            netns.ip(neighbour, "link", "set", "eth0", "up")

    def isp_network(self, isp: str, router: str | None = None, pool_offset: int | None = None) -> str:
        """The ISP router's networkd config: its addresses, a DHCP server that always leases HOST_ADDR,
        and router advertisements of the customer prefix (SLAAC: slaac_address()).

        ``router``: another address of the router, handed out as the lease's router option;
        ``pool_offset``: lease another address instead (renumbering).
        """
        gateway, host = GATEWAY[isp], HOST_ADDR[isp]
        addresses = f"Address={gateway}/24\n" + (f"Address={router}/24\n" if router else "")
        offset = pool_offset if pool_offset is not None else int(host.rsplit(".", 1)[1])
        router_option = f"Router={router}\n" if router else ""
        ipv6 = "".join(f"\n[Address]\nAddress={address}\nDuplicateAddressDetection=none\n"
                       for address in (f"{GATEWAY6[isp]}/64", f"{LINK_LOCAL_GATEWAY}/64"))
        return (f"[Match]\nName=tohost\n\n[Network]\n{addresses}DHCPServer=yes\nIPv6SendRA=yes\n"
                f"ConfigureWithoutCarrier=yes\n{ipv6}"
                f"\n[DHCPServer]\nPoolOffset={offset}\nPoolSize=1\nEmitRouter=yes\n{router_option}EmitDNS=no\n"
                "DefaultLeaseTimeSec=600\n"
                f"\n[IPv6SendRA]\nEmitDNS=no\nEmitDomains=no\n\n[IPv6Prefix]\nPrefix={CUSTOMER_PREFIX6[isp]}\n")

    def _serve_leases(self) -> None:
        for isp in ISPS:
            directory = Path(tempfile.mkdtemp(prefix=f"mu-{isp}-network-"))
            self._stack.callback(shutil.rmtree, directory, ignore_errors=True)
            (directory / "10-tohost.network").write_text(self.isp_network(isp))
            self.isp_networkd[isp] = self._stack.enter_context(Networkd(self.isp_ns[isp], str(directory)))
        for isp, networkd in self.isp_networkd.items():
            netns.wait_for(functools.partial(self._router_addressed, isp), 15,
                           f"{isp}'s networkd to configure its router", diagnose=networkd.diagnose)

    def _router_addressed(self, isp: str) -> bool:
        return GATEWAY[isp] in netns.ip(self.isp_ns[isp], "-4", "addr", "show", "dev", "tohost").stdout

    def reconfigure_isp(self, isp: str, network: str) -> None:
        """Give ``isp``'s router another networkd config, applied (Reload + ReconfigureLink); returns once its DHCP
        server has started again with it (both calls return before networkd acts)."""
        networkd = self.isp_networkd[isp]
        started = self._dhcp_server_starts(networkd)
        (Path(networkd.network_dir) / "10-tohost.network").write_text(network)
        networkd.reload()
        networkd.reconfigure("tohost")
        netns.wait_for(lambda: self._dhcp_server_starts(networkd) > started, 15,
                       f"{isp}'s DHCP server to start with its new config", diagnose=networkd.log_tail)

    @staticmethod
    def _dhcp_server_starts(networkd: Networkd) -> int:
        with open(networkd.log_path, errors="replace") as log:
            return log.read().count("DHCPv4 server: STARTED")

    @staticmethod
    def _bcp38_ruleset(isp: str) -> str:
        # Priority raw: before the routing decision, so this (countable) drop
        # fires before rp_filter would silently drop the same packet. A router
        # sending a packet back out of the segment it came from (a reply that
        # should have gone to a neighbour directly) is counted and dropped too.
        # IPv6: a source the router would not route back out of tohost is
        # spoofed; link-local and :: sources pass, so ND, RA and DAD work, and
        # ND and MLD of the other router on a shared segment are not counted.
        return f"""
table inet bcp38 {{
    counter spoofed {{ }}
    counter hairpin {{ }}
    chain prerouting {{
        type filter hook prerouting priority raw; policy accept;
        iifname "tohost" ip saddr 0.0.0.0 accept comment "DHCP and IGMP before the client has an address"
        iifname "tohost" ip daddr 224.0.0.0/4 accept comment "the other router's IGMP on a shared segment"
        iifname "tohost" ip saddr != {CUSTOMER_PREFIX[isp]} counter name "spoofed" drop
        iifname "tohost" icmpv6 type {{ {_NEIGHBOUR_DISCOVERY} }} accept
        iifname "tohost" ip6 saddr != :: fib saddr . iif oif missing counter name "spoofed" drop
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname "tohost" oifname "tohost" counter name "hairpin" drop
    }}
}}
"""

    def _teardown(self) -> None:
        errors = []
        try:
            self._stack.close()  # the ISP routers' networkd, before their namespaces
        except Exception as exc:
            errors.append(exc)
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

    def tcp_reachable(self, isp: str, port: int = 80, timeout: float = 3.0, address: str | None = None) -> bool:
        """Can the client complete a TCP handshake with the host via ``isp``?

        Connects to the host's address on that uplink (or ``address``, which
        the core routes via ``isp`` too: another IPv4 one, or an IPv6 one such as
        HOST_ADDR6 or slaac_address()); the connect is bounded by ``timeout``.
        A False means no SYN-ACK came back in time.
        """
        return self._connect(self.client_ns, address or HOST_ADDR[isp], port, timeout)

    def neighbour_reachable(self, isp: str, port: int = 80, timeout: float = 3.0) -> bool:
        """Can the neighbour on ``isp``'s segment (served=True) complete a TCP handshake with the host?"""
        return self._connect(self.neighbour_ns[isp], HOST_ADDR[isp], port, timeout)

    @staticmethod
    def slaac_address(isp: str) -> str:
        """The address networkd's SLAAC gives the host in ``isp``'s prefix: EUI-64 of the fixed MAC."""
        octets = [int(part, 16) for part in HOST_MAC[isp].split(":")]
        octets[0] ^= 0x02
        identifier = int.from_bytes(bytes(octets[:3] + [0xFF, 0xFE] + octets[3:]), "big")
        return str(ipaddress.ip_network(CUSTOMER_PREFIX6[isp])[identifier])

    @staticmethod
    def _connect(ns: str, address: str, port: int, timeout: float) -> bool:
        proc = netns.run(ns, sys.executable, "-c", _CONNECT, address, str(port), str(timeout), check=False,
                         timeout=timeout + 10)
        if proc.returncode not in (0, 1):  # the probe itself broke
            raise netns.CommandError(proc.returncode, proc.args, proc.stdout, proc.stderr)
        return proc.returncode == 0

    def bcp38_drops(self, isp: str) -> int:
        """Packets ``isp`` dropped because the host sent them with a foreign source."""
        return self._counter(isp, "spoofed")

    def hairpins(self, isp: str) -> int:
        """Packets ``isp`` dropped because they came from its customer segment and had to go back to it."""
        return self._counter(isp, "hairpin")

    def _counter(self, isp: str, name: str) -> int:
        out = netns.run(self.isp_ns[isp], "nft", "-j", "list", "counter", "inet", "bcp38", name).stdout
        for item in json.loads(out)["nftables"]:
            if "counter" in item:
                return int(item["counter"]["packets"])
        raise AssertionError(f"no counter in nft output: {out}")

    @contextlib.contextmanager
    def probing(self, address: str, port: int = 80, interval: float = 0.02,
                timeout: float = 0.2) -> Iterator[list[tuple[float, bool]]]:
        """Connect from the client to ``address`` every ``interval`` s while the block runs.

        Yields a list that holds ``(time.monotonic() at the attempt, answered)``
        once the block is left; CLOCK_MONOTONIC is the same in every namespace.
        """
        results: list[tuple[float, bool]] = []
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.client_ns, sys.executable, "-c", _PROBE, address, str(port),
             str(interval), str(timeout)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            netns.read_line(proc, 10, f"prober of {address}")
            yield results
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=10)
            results.extend((float(when), answered == "1") for when, answered in
                           (line.split() for line in out.splitlines() if line.count(" ") == 1))

    @contextlib.contextmanager
    def serve_http(self, port: int = 80, ns: str | None = None) -> Iterator[subprocess.Popen[str]]:
        """Run a tiny HTTP server on port ``port`` of every address, both families, in namespace ``ns``
        (default: the host's).

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
