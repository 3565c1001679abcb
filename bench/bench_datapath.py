#!/usr/bin/python3
"""Data-path cost of the multiuplink ruleset, as ratios to a conntrack-only host measured in the same run.

A client namespace (which also plays the ISP router of the measured uplink)
connects to the host's address on its LAST uplink, so every reply depends on
the mark: the host's main default route leads out of uplink 1 into a namespace
with no routes, where a misrouted reply is lost. Each configuration gets its
own namespaces, built once. Every load (iperf3, wrk against nginx, sockperf)
runs for all configurations at once but only one is ever resumed (SIGSTOP /
SIGCONT), for one short sample read from the host's own counters; a round
samples every configuration, in alternating order, so paired samples lie
within a second or two of each other and machine noise hits them alike.
Servers and clients share one CPU at nice -20: the rate is then the inverse
of the whole per-byte (per-connection, per-request) CPU cost, ruleset
included, rather than of cross-CPU wake-up latency. The main figure is work
per CPU-second of the load's own processes, which other jobs on a shared
machine do not disturb (work per wall-clock second is shown beside it).
Reported: the median of the per-round ratios to (a), a confidence interval
from blocks of fresh connections, the spread, and how many rounds a 2%
difference needs. Never bare times or rates. bench/RESULTS.md has the method
in full and the figures.

    /usr/bin/python3 bench/bench_datapath.py [--rounds N] [--quick]
        [--variant NAME@UPLINKS|FILE.nft@UPLINKS|product:SOURCE-TREE@UPLINKS]

Configurations: (a) stateful filter + 'from <address> lookup <table>' rule,
2 uplinks; (b) the product's ruleset (rendered by its CLI), 2 uplinks; (c)
the same at 128 uplinks; (d) a linear iptables ruleset with one rule per
uplink (seed / mwan3 / Shorewall style) at 128 uplinks. Every configuration
also has the same stateful filter (ct state established,related accept, FTP
helper). Each one must pass the correctness checks (TCP, UDP, related ICMP,
RST, FTP active-mode data connection via the helper) before it is measured.
Needs root; all traffic stays in namespaces named mu<hex>-*, deleted on exit.
"""

from __future__ import annotations

import argparse
import configparser
import dataclasses
import functools
import math
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MASK = 0xFF000000
HOST = "192.0.2.31"  # the host's address on the measured (last) uplink
ISP_GW = "192.0.2.1"  # that uplink's gateway; the client namespace owns it
CLIENT = "198.51.100.10"  # off-link for the host, so replies need a route
PORTS = {"iperf": 5201, "http": 80, "udp": 11111}
Process = subprocess.Popen[bytes]
Z_95_80 = 1.96 + 0.84  # two-sided 5% test, 80% power


@dataclass(frozen=True)
class Uplink:
    name: str
    interface: str
    address: str  # with prefix length
    gateway: str
    number: int  # the mark inside MASK, also 100 + number is its table

    @property
    def fwmark(self) -> int:
        return self.number << 24


def make_uplinks(count: int) -> list[Uplink]:
    """Uplink 1 carries the main default route; the last one is measured; the rest only exist."""
    ups = [Uplink("isp1", "eth1", "203.0.113.8/24", "203.0.113.1", 1)]
    ups += [Uplink(f"isp{k}", f"eth{k}", f"10.{k // 256}.{k % 256}.2/24", f"10.{k // 256}.{k % 256}.1", k)
            for k in range(2, count)]
    ups.append(Uplink(f"isp{count}", f"eth{count}", f"{HOST}/24", ISP_GW, count))
    return ups


@dataclass
class HostSetup:
    """Everything a configuration puts into the host namespace besides interfaces and addresses."""

    nft: str = ""
    iptables: str = ""
    ip_batch: list[str] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- configurations

COMMON_FILTER = """table inet filter {
\tct helper ftp { type "ftp" protocol tcp; }
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tct state established,related accept
\t\ttcp dport 21 ct helper set "ftp"
\t}
}
"""


def rp_filter_loose(ups: list[Uplink]) -> dict[str, str]:
    return {f"net.ipv4.conf.{u.interface}.rp_filter": "2" for u in ups}


def table_routes(ups: list[Uplink]) -> list[str]:
    lines = []
    for u in ups:
        net = u.address.rsplit(".", 1)[0] + ".0/" + u.address.split("/")[1]
        lines += [f"route add {net} dev {u.interface} scope link table {100 + u.number}",
                  f"route add default via {u.gateway} dev {u.interface} onlink table {100 + u.number}"]
    return lines


def baseline(ups: list[Uplink]) -> HostSetup:
    """(a): what a host needs without marks: source rules (good for local replies only)."""
    rules = [f"rule add from {u.address.split('/')[0]} table {100 + u.number} pref 1000" for u in ups]
    return HostSetup(ip_batch=rules + table_routes(ups), sysctls=rp_filter_loose(ups))


def product_cli(ups: list[Uplink], work: Path, source: Path = REPO) -> Path:
    """Run the product's generator (of the source tree ``source``) on a netplan tree; the only place that knows its
    CLI. Returns the root."""
    root = work / f"product-{len(ups)}-{abs(hash(str(source))):x}"
    netplan = root / "etc/netplan"
    (netplan / "multiuplink.d").mkdir(parents=True, exist_ok=True)  # a file variant renders (b) or (c) again
    lines = ["network:", "  version: 2", "  renderer: networkd", "  ethernets:"]
    for u in ups:
        lines += [f"    {u.interface}:", f"      addresses: [{u.address}]",
                  f"      routes: [{{to: default, via: {u.gateway}, metric: {100 + u.number}}}]"]
    (netplan / "50-uplinks.yaml").write_text("\n".join(lines) + "\n")
    (netplan / "50-uplinks.yaml").chmod(0o600)
    stanza = ["network:", "  multiuplink:", "    uplinks:"]
    stanza += [f"      {u.name}: {{interface: {u.interface}, mark: {u.number}, table: {100 + u.number}}}" for u in ups]
    (netplan / "multiuplink.d/uplinks.yaml").write_text("\n".join(stanza) + "\n")
    (netplan / "multiuplink.d/uplinks.yaml").chmod(0o600)  # readable by others: warned about, like netplan
    subprocess.run(["/usr/bin/python3", "-m", "multiuplink_networkd", "generate", "--root-dir", str(root)],
                   cwd=source, env={**os.environ, "PYTHONPATH": str(source)}, check=True, stdout=subprocess.DEVNULL)
    return root


def networkd_to_ip(dropin: Path, interface: str) -> list[str]:
    """A [RoutingPolicyRule]/[Route] drop-in as 'ip -batch' lines (in the product, networkd installs them)."""
    lines = []
    text = dropin.read_text()
    for block in re.split(r"\n(?=\[)", text):
        parser = configparser.ConfigParser(strict=False)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(block)
        for section in parser.sections():
            s = parser[section]
            if section == "RoutingPolicyRule":
                suppress = f" suppress_prefixlength {s['SuppressPrefixLength']}" if "SuppressPrefixLength" in s else ""
                lines.append(f"rule add fwmark {s['FirewallMark']} table {s['Table']} pref {s['Priority']}{suppress}")
            elif section == "Route" and "Gateway" in s:
                onlink = " onlink" if s.get("GatewayOnLink") == "yes" else ""
                lines.append(f"route add default via {s['Gateway']} dev {interface}{onlink} table {s['Table']}")
            elif section == "Route":
                lines.append(f"route add {s['Destination']} dev {interface} scope {s.get('Scope', 'global')} "
                             f"table {s['Table']}")
    return lines


def product(ups: list[Uplink], work: Path, source: Path = REPO) -> HostSetup:
    """(b), (c): the product's own files, with networkd's and systemd-sysctl's part done by hand."""
    root = product_cli(ups, work, source)
    batch = []
    for u in ups:  # in uplink order, so the measured uplink's rule is the last one of its priority
        batch += networkd_to_ip(root / f"run/systemd/network/10-netplan-{u.interface}.network.d/50-multiuplink.conf",
                                u.interface)
    sysctls = {}
    for line in (root / "run/sysctl.d/50-multiuplink.conf").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = (part.strip() for part in line.split("=", 1))
            sysctls[key.replace("/", ".")] = value
    return HostSetup(nft=(root / "run/multiuplink/ruleset.nft").read_text(), ip_batch=batch, sysctls=sysctls)


def fwmark_rules(ups: list[Uplink]) -> list[str]:
    return [f"rule add fwmark {u.fwmark:#x}/{MASK:#x} table {100 + u.number} pref 1000" for u in ups]


def linear_iptables(ups: list[Uplink], work: Path) -> HostSetup:
    """(d): one rule per uplink in each chain, every packet walks all of them (CONNMARK does not terminate)."""
    mask = f"{MASK:#x}"
    lines = ["*mangle"]
    lines += [f"-A PREROUTING -i {u.interface} -j CONNMARK --set-mark {u.fwmark:#x}/{mask}" for u in ups]
    lines += [f"-A OUTPUT -m connmark --mark {u.fwmark:#x}/{mask} -j CONNMARK --restore-mark --nfmask {mask} "
              f"--ctmask {mask}" for u in ups]
    lines.append("COMMIT")
    return HostSetup(iptables="\n".join(lines) + "\n", ip_batch=fwmark_rules(ups) + table_routes(ups),
                     sysctls=rp_filter_loose(ups))


@dataclass(frozen=True)
class Shape:
    """A candidate nft ruleset shape; the defaults reproduce the product's ruleset."""

    counters: bool = True
    mark_when: str = ""  # "" every packet, "new": ct state new, "unmarked": ct mark bits empty
    restore_when_unmarked: bool = False  # output: only packets whose own mark bits are empty
    mark_syn: bool = False  # input: give new connections' packets the mark, for tcp_fwmark_accept
    mark_first_packet: bool = False  # the same in prerouting, saving the input chain (fine with local lookups first)
    restore_elsewhere_only: bool = False  # restore only when the first route chose another interface
    skip_rules_unmarked: bool = False  # an ip rule sends lookups without our mark bits past our fwmark rules
    main_first: bool = False  # the product's 'fwmark ... lookup main suppress_prefixlength 0' rules before them
    sysctls: tuple[tuple[str, str], ...] = ()


def render_shape(ups: list[Uplink], shape: Shape) -> str:
    keep = 0xFFFFFFFF & ~MASK
    counter = "counter " if shape.counters else ""
    out = ["table inet multiuplink {}", "delete table inet multiuplink", "table inet multiuplink {"]
    for u in ups:
        set_mark = f"and {keep:#x} or {u.fwmark:#x}"
        elsewhere = f'oifname != "{u.interface}" ' if shape.restore_elsewhere_only else ""
        packet = [f"\t\tmeta mark set meta mark {set_mark}"] if shape.mark_first_packet else []
        out += [f"\tchain mark_{u.name} {{", f"\t\t{counter}ct mark set ct mark {set_mark}", *packet, "\t}",
                f"\tchain restore_{u.name} {{", f"\t\t{elsewhere}{counter}meta mark set meta mark {set_mark}", "\t}"]
    by_interface = ", ".join(f'"{u.interface}" : jump mark_{u.name}' for u in ups)
    by_mark = ", ".join(f"{u.fwmark:#x} : jump restore_{u.name}" for u in ups)
    mark_guard = {"": "", "new": "ct state new ", "unmarked": f"ct mark and {MASK:#x} == 0 "}[shape.mark_when]
    restore_guard = f"meta mark and {MASK:#x} == 0 " if shape.restore_when_unmarked else ""
    out += ["\tchain prerouting {", "\t\ttype filter hook prerouting priority mangle; policy accept;",
            f"\t\t{mark_guard}iifname vmap {{ {by_interface} }}", "\t}"]
    if shape.mark_syn:
        out += ["\tchain input {", "\t\ttype filter hook input priority mangle; policy accept;",
                f"\t\tct state new ct mark and {MASK:#x} vmap {{ {by_mark} }}", "\t}"]
    out += ["\tchain output {", "\t\ttype route hook output priority mangle; policy accept;",
            f"\t\t{restore_guard}ct mark and {MASK:#x} vmap {{ {by_mark} }}", "\t}", "}"]
    return "\n".join(out) + "\n"


# Candidate shapes for --variant, side by side with the product's; RESULTS.md has what each one measured.
ACCEPT_SYSCTLS = (("net.ipv4.tcp_fwmark_accept", "1"),)
REFLECT_SYSCTLS = (("net.ipv4.fwmark_reflect", "1"), ("net.ipv6.fwmark_reflect", "1"))
SHAPES = {
    "shape-product": Shape(),
    "nocounter": Shape(counters=False),
    "new-only": Shape(mark_when="new"),
    "unmarked-only": Shape(mark_when="unmarked"),
    "restore-guard": Shape(restore_when_unmarked=True),
    "fwmark-accept": Shape(mark_when="unmarked", restore_when_unmarked=True, mark_syn=True, sysctls=ACCEPT_SYSCTLS),
    "fwmark-accept-nocounter": Shape(counters=False, mark_when="unmarked", restore_when_unmarked=True, mark_syn=True,
                                     sysctls=ACCEPT_SYSCTLS),
    "fwmark-accept-oif": Shape(mark_when="unmarked", restore_when_unmarked=True, mark_syn=True,
                               restore_elsewhere_only=True, sysctls=ACCEPT_SYSCTLS),
    "fwmark-accept-skip": Shape(mark_when="unmarked", restore_when_unmarked=True, mark_syn=True,
                                skip_rules_unmarked=True, sysctls=ACCEPT_SYSCTLS),
    "lean": Shape(mark_when="unmarked", restore_when_unmarked=True, mark_first_packet=True, skip_rules_unmarked=True,
                  sysctls=ACCEPT_SYSCTLS),
    "lean-main-first": Shape(mark_when="unmarked", restore_when_unmarked=True, mark_first_packet=True,
                             skip_rules_unmarked=True, main_first=True, sysctls=ACCEPT_SYSCTLS),
    "lean-main-first-noskip": Shape(mark_when="unmarked", restore_when_unmarked=True, mark_first_packet=True,
                                    main_first=True, sysctls=ACCEPT_SYSCTLS),
    "fwmark-accept-reflect": Shape(mark_when="unmarked", restore_when_unmarked=True, mark_syn=True,
                                   sysctls=ACCEPT_SYSCTLS + REFLECT_SYSCTLS),
}


def shape_setup(shape: Shape) -> Callable[[list[Uplink], Path], HostSetup]:
    def setup(ups: list[Uplink], work: Path) -> HostSetup:
        skip = ["rule add pref 1001 nop", f"rule add fwmark 0x0/{MASK:#x} goto 1001 pref 998"]
        main_first = [f"rule add fwmark {u.fwmark:#x}/{MASK:#x} table main suppress_prefixlength 0 pref 999"
                      for u in ups]
        return HostSetup(nft=render_shape(ups, shape),
                         ip_batch=fwmark_rules(ups) + table_routes(ups) + (skip if shape.skip_rules_unmarked else [])
                         + (main_first if shape.main_first else []),
                         sysctls=rp_filter_loose(ups) | dict(shape.sysctls))
    return setup


def file_setup(path: Path) -> Callable[[list[Uplink], Path], HostSetup]:
    """A ruleset from a file (interfaces eth1..ethN, marks N << 24, tables 100 + N), with the product's rules, routes
    and sysctls."""
    def setup(ups: list[Uplink], work: Path) -> HostSetup:
        return dataclasses.replace(product(ups, work), nft=path.read_text())
    return setup


@dataclass(frozen=True)
class Config:
    """One host configuration: how many uplinks, and what it loads besides the common stateful filter."""

    key: str
    label: str
    uplinks: int
    setup: Callable[[list[Uplink], Path], HostSetup]


STANDARD = [
    Config("a", "stateful filter + source rule, 2 uplinks (baseline)", 2, lambda ups, _work: baseline(ups)),
    Config("A", "the same as (a) again: the bench's own noise and bias", 2, lambda ups, _work: baseline(ups)),
    Config("b", "product ruleset, 2 uplinks", 2, product),
    Config("c", "product ruleset, 128 uplinks", 128, product),
    Config("d", "linear iptables, one rule per uplink, 128 uplinks", 128, linear_iptables),
]


def parse_variant(spec: str) -> Config:
    name, _, count = spec.rpartition("@")
    if not name or not count.isdigit() or not 2 <= int(count) <= 255:
        raise argparse.ArgumentTypeError(f"{spec!r}: expected NAME@UPLINKS, FILE.nft@UPLINKS or product:TREE@UPLINKS, "
                                         "2..255 uplinks")
    if name in SHAPES:
        return Config(spec, f"shape {name}, {count} uplinks", int(count), shape_setup(SHAPES[name]))
    if name.startswith("product:") and Path(name[8:], "multiuplink_networkd").is_dir():
        source = Path(name[8:]).resolve()
        return Config(spec, f"product of {source}, {count} uplinks", int(count),
                      functools.partial(product, source=source))
    if Path(name).is_file():
        return Config(spec, f"ruleset file {name}, {count} uplinks", int(count), file_setup(Path(name)))
    raise argparse.ArgumentTypeError(f"{name!r} is neither a ruleset file, product:SOURCE-TREE nor one of "
                                     f"{', '.join(SHAPES)}")


# ---------------------------------------------------------------- namespaces and processes

def sh(*argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()[:2000]}")
    return done.stdout


def in_ns(ns: str, *argv: str, stdin: str | None = None) -> str:
    return sh("ip", "netns", "exec", ns, *argv, stdin=stdin)


def pinned(cpu: int) -> list[str]:
    """One CPU, and nice -20 so other work on the machine hardly preempts a measurement."""
    return ["taskset", "-c", str(cpu), "nice", "-n", "-20"]


class Lab:
    """Owns every namespace and server process the bench creates, and removes them all on exit."""

    def __init__(self, work: Path) -> None:
        self.prefix = "mu" + secrets.token_hex(3)
        self.work = work
        self.namespaces: list[str] = []
        self.processes: list[Process] = []
        self.logs: dict[int, Path] = {}

    def namespace(self, suffix: str) -> str:
        ns = f"{self.prefix}-{suffix}"
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        in_ns(ns, "ip", "link", "set", "lo", "up")
        return ns

    def start(self, ns: str, cpu: int, *argv: str) -> Process:
        """Start a process pinned in a namespace; its output goes to a log file that errors quote."""
        log = self.work / f"{ns}-{argv[0]}-{len(self.processes)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(["ip", "netns", "exec", ns, *pinned(cpu), *argv], stdout=out, stderr=out)
        self.processes.append(proc)
        self.logs[proc.pid] = log
        return proc

    def output(self, proc: Process) -> str:
        return self.logs[proc.pid].read_text(errors="replace")[-500:]

    def close(self) -> None:
        for proc in self.processes:  # 'ip netns exec' and taskset exec, so this is the server itself
            proc.kill()
            proc.wait()
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


@dataclass
class Testbed:
    """The namespaces of one configuration, built once and measured in every round."""

    config: Config
    host: str
    client: str
    interface: str  # the host's measured uplink
    anchor: int  # PID of a process in the host namespace, to read its counters

    def counter(self, workload: Workload) -> int:
        source, key = workload.counter
        return host_counter(self.anchor, source, key or self.interface)


def build(lab: Lab, index: int, config: Config) -> Testbed:
    """Client (also the measured uplink's ISP router) <-veth-> host; the other uplinks are veths to a void."""
    ups = make_uplinks(config.uplinks)
    setup = config.setup(ups, lab.work)
    host, client, void = (lab.namespace(f"{index}{role}") for role in "hcv")
    measured = ups[-1]
    sh("ip", "link", "add", "cli0", "netns", client, "type", "veth", "peer", "name", measured.interface,
       "netns", host)
    batch = [f"link add {u.interface} type veth peer name p{u.number} netns {void}" for u in ups[:-1]]
    batch += [f"addr add {u.address} dev {u.interface}" for u in ups]
    batch += [f"link set {u.interface} up" for u in ups]
    batch += [f"route add default via {ups[0].gateway} dev {ups[0].interface} onlink"]
    in_ns(host, "ip", "-batch", "-", stdin="\n".join(batch + setup.ip_batch) + "\n")
    in_ns(void, "ip", "-batch", "-", stdin="".join(f"link set p{u.number} up\n" for u in ups[:-1]))
    in_ns(client, "ip", "-batch", "-", stdin="\n".join([
        f"addr add {CLIENT}/24 dev cli0", f"addr add {ISP_GW}/24 dev cli0", "link set cli0 up",
        f"route add {HOST}/32 dev cli0 src {CLIENT}"]) + "\n")
    sysctls = {"net.netfilter.nf_conntrack_tcp_timeout_time_wait": "1", "net.core.somaxconn": "4096",
               "net.ipv4.tcp_max_syn_backlog": "4096", "net.ipv4.tcp_slow_start_after_idle": "0"} | setup.sysctls
    for key, value in sysctls.items():
        in_ns(host, "sysctl", "-qw", f"{key}={value}")
    in_ns(host, "nft", "-f", "-", stdin=COMMON_FILTER + setup.nft)
    if setup.iptables:
        in_ns(host, "iptables-restore", "--noflush", stdin=setup.iptables)
    anchor = lab.start(host, 0, "sleep", "infinity").pid
    return Testbed(config, host, client, measured.interface, anchor)


# ---------------------------------------------------------------- correctness

HOST_CHECK_SERVER = r"""
import socket, sys, threading
host = sys.argv[1]
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind((host, 7))
def echo():
    while True:
        data, peer = udp.recvfrom(100); udp.sendto(data, peer)
threading.Thread(target=echo, daemon=True).start()
ftp = socket.create_server((host, 21))
print("ready", flush=True)
while True:
    ctl, _ = ftp.accept()
    ctl.sendall(b"220 ready\r\n")
    ctl.recv(100)
    ctl.sendall(b"331 ok\r\n")
    words = ctl.recv(100).decode().split()[1].split(",")
    data = socket.socket(); data.settimeout(2); data.bind((host, 0))
    try:
        data.connect((".".join(words[:4]), int(words[4]) * 256 + int(words[5]))); ctl.sendall(b"200 ok\r\n")
    except OSError:
        ctl.sendall(b"425 no data connection\r\n")
    data.close(); ctl.close()
"""

CLIENT_CHECKS = r"""
import socket, sys
host, client = sys.argv[1], sys.argv[2]
def attempt(name, fn):
    try:
        fn(); print(name, "ok")
    except Exception as e:
        print(name, "FAILED:", type(e).__name__, e)
def udp_echo():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); s.connect((host, 7)); s.send(b"x")
    assert s.recv(10) == b"x"
def refused(kind):
    def check():
        s = socket.socket(socket.AF_INET, kind); s.settimeout(2)
        try:
            s.connect((host, 9))
            if kind == socket.SOCK_DGRAM:
                s.send(b"x"); s.recv(10)
        except ConnectionRefusedError:
            return
        raise AssertionError("no refusal arrived")
    return check
def ftp_active():
    listener = socket.create_server((client, 0)); listener.settimeout(3)
    port = listener.getsockname()[1]
    ctl = socket.create_connection((host, 21), timeout=3); ctl.recv(100)
    ctl.sendall(b"USER bench\r\n"); ctl.recv(100)  # the helper parses only lines after a newline it has seen
    ctl.sendall(f"PORT {client.replace('.', ',')},{port // 256},{port % 256}\r\n".encode())
    listener.accept()[0].close()
    assert ctl.recv(100).startswith(b"200")
attempt("tcp+ftp-active-via-helper", ftp_active)
attempt("udp-reply", udp_echo)
attempt("icmp-port-unreachable", refused(socket.SOCK_DGRAM))
attempt("tcp-rst", refused(socket.SOCK_STREAM))
"""


def check(bed: Testbed) -> list[str]:
    """Every reply must come back via the measured uplink; a misrouted one dies behind uplink 1."""
    server = subprocess.Popen(["ip", "netns", "exec", bed.host, "/usr/bin/python3", "-c", HOST_CHECK_SERVER, HOST],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        out = in_ns(bed.client, "/usr/bin/python3", "-c", CLIENT_CHECKS, HOST, CLIENT)
    finally:
        server.kill()
        server.wait()
    return [line for line in out.splitlines() if "FAILED" in line]


# ---------------------------------------------------------------- measurements

def host_counter(anchor: int, source: str, key: str) -> int:
    """A counter of the host namespace, read through /proc/PID/net of a process living there."""
    if source == "dev":
        for line in Path(f"/proc/{anchor}/net/dev").read_text().splitlines():
            name, _, fields = line.partition(":")
            if name.strip() == key:
                return int(fields.split()[8])  # transmitted bytes
        raise KeyError(key)
    proto, field_name = key.split(".")
    head, values = (line.split() for line in Path(f"/proc/{anchor}/net/snmp").read_text().splitlines()
                    if line.startswith(proto + ":"))
    return int(values[head.index(field_name)])


def nginx(scratch: Path) -> list[str]:
    scratch.mkdir(exist_ok=True)
    temp = " ".join(f"{kind}_temp_path {scratch};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (scratch / "nginx.conf").write_text(
        f"daemon off; master_process off; worker_processes 1; pid {scratch}/pid; error_log stderr crit;\n"
        f"events {{ worker_connections 4096; }}\nhttp {{ access_log off; {temp}\n"
        f"  server {{ listen {HOST}:{PORTS['http']} backlog=4096; location / {{ return 200 'ok'; }} }} }}\n")
    return ["nginx", "-p", str(scratch), "-e", "stderr", "-c", str(scratch / "nginx.conf")]


@dataclass(frozen=True)
class Workload:
    """A load that runs until killed; its rate is a counter of the host namespace per second."""

    server: Callable[[Path], list[str]]
    port: int  # the server's, to see it listen
    client: Callable[[int], list[str]]  # argv for a run of at least that many seconds
    counter: tuple[str, str]  # host_counter's source and key ("" key: the measured uplink's interface)


def iperf_reverse(streams: int) -> Workload:
    return Workload(lambda _scratch: ["iperf3", "-s", "-1", "-B", HOST, "-p", str(PORTS["iperf"])], PORTS["iperf"],
                    lambda seconds: ["iperf3", "-c", HOST, "-p", str(PORTS["iperf"]), "-R", "-P", str(streams),
                                     "-t", str(seconds)],
                    ("dev", ""))


WORKLOADS = {
    "TCP -R, 1 stream (bytes/s)": iperf_reverse(1),
    "TCP -R, 8 streams (bytes/s)": iperf_reverse(8),
    "new TCP connections/s (HTTP)": Workload(
        nginx, PORTS["http"],
        lambda seconds: ["wrk", "-t1", "-c16", f"-d{seconds}s", "--timeout", "60s", "-H", "Connection: close",
                         f"http://{HOST}:{PORTS['http']}/"], ("snmp", "Tcp.PassiveOpens")),
    "UDP request/response (1/s)": Workload(
        lambda _scratch: ["sockperf", "server", "-i", HOST, "-p", str(PORTS["udp"])], PORTS["udp"],
        lambda seconds: ["sockperf", "ping-pong", "-i", HOST, "-p", str(PORTS["udp"]), "-t", str(seconds),
                         "--mps=max", "--dontwarmup"], ("snmp", "Udp.OutDatagrams")),
}


MEASURES = dict(zip(("tcp1", "tcp8", "conn", "udp"), WORKLOADS, strict=True))


@dataclass(frozen=True)
class Timing:
    rounds: int
    slice: float  # seconds each sample measures
    settle: float = 0.05  # seconds after resuming before a sample starts
    warmup: float = 0.3  # seconds a fresh load runs before its first sample (slow start, buffer autotuning)
    block: int = 5  # rounds per set of processes and connections, the independent unit (see measure)
    cpu: int = 1


def paused_loads(lab: Lab, beds: list[Testbed], workload: Workload, seconds: int,
                 timing: Timing) -> list[list[Process]]:
    """Start the workload's server and client in every testbed (all at once: some clients take seconds to start),
    wait until traffic flows everywhere, then warm each one up alone and stop it."""
    servers = [lab.start(bed.host, timing.cpu, *workload.server(lab.work / f"scratch-{bed.host}")) for bed in beds]
    def listening(bed: Testbed) -> bool:
        return f"{HOST}:{workload.port}" in in_ns(bed.host, "ss", "-Hltun")

    for bed in beds:
        wait_for(functools.partial(listening, bed), f"server in {bed.host}")
    before = [bed.counter(workload) for bed in beds]
    clients = [lab.start(bed.client, timing.cpu, *workload.client(seconds)) for bed in beds]

    def flowing(bed: Testbed, count: int) -> bool:
        return bed.counter(workload) > count + 100

    def stuck(bed: Testbed, server: Process, client: Process) -> str:
        return f"traffic in {bed.host}: {lab.output(client)!r} {lab.output(server)!r}"

    for bed, count, server, client in zip(beds, before, servers, clients, strict=True):
        wait_for(functools.partial(flowing, bed, count), functools.partial(stuck, bed, server, client))
    loads = [[server, client] for server, client in zip(servers, clients, strict=True)]
    for processes in loads:
        signal_all(processes, signal.SIGSTOP)
    for processes in loads:
        signal_all(processes, signal.SIGCONT)
        time.sleep(timing.warmup)
        signal_all(processes, signal.SIGSTOP)
    return loads


def wait_for(condition: Callable[[], bool], what: str | Callable[[], str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(0.02)


def signal_all(processes: list[Process], signum: int) -> None:
    for process in processes:
        process.send_signal(signum)


def cpu_time(pids: list[int]) -> int:
    """Nanoseconds these processes (all threads) ran. Without IRQ time accounting (Debian's kernels) this includes
    the softirq work done in their context, i.e. the veth hop and the peer's receive path."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
    return total


def ksoftirqd(cpu: int) -> int:
    """Softirq work beyond its budget moves to this thread; it is part of the cost too."""
    return next(int(p.name) for p in Path("/proc").iterdir()
                if p.name.isdigit() and (p / "comm").read_text().strip() == f"ksoftirqd/{cpu}")


@dataclass
class Samples:
    """Per configuration: work per wall-clock second, and work per CPU-second of its own processes."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def measure(lab: Lab, beds: list[Testbed], workload: Workload, timing: Timing) -> dict[str, Samples]:
    """One sample of each configuration per round, only one running at a time, in alternating order, so a pair
    of samples shares the machine's state. Every block of rounds gets fresh processes and connections: on this
    VM one instance can stay 15% faster or slower than the next for its whole life (memory placement, TCP
    autotuning), so blocks, not rounds, are the independent unit."""
    samples = {bed.config.key: Samples() for bed in beds}
    softirq = ksoftirqd(timing.cpu)
    for first in range(0, timing.rounds, timing.block):
        rounds = range(first, min(first + timing.block, timing.rounds))
        seconds = math.ceil(len(rounds) * len(beds) * (timing.slice + timing.settle + timing.warmup) * 1.5) + 20
        loads: list[list[Process]] = []
        try:
            loads = paused_loads(lab, beds, workload, seconds, timing)
            for r in rounds:
                pairs = list(zip(beds, loads, strict=True))
                for bed, processes in pairs if r % 2 == 0 else pairs[::-1]:
                    pids = [p.pid for p in processes] + [softirq]
                    signal_all(processes, signal.SIGCONT)
                    time.sleep(timing.settle)
                    count, start, ran = bed.counter(workload), time.perf_counter(), cpu_time(pids)
                    time.sleep(timing.slice)
                    count, elapsed, ran = (bed.counter(workload) - count, time.perf_counter() - start,
                                           cpu_time(pids) - ran)
                    signal_all(processes, signal.SIGSTOP)
                    # A sample in which other jobs left the load no CPU at all says nothing: NaN, dropped later.
                    samples[bed.config.key].wall.append(count / elapsed if count > 0 else math.nan)
                    samples[bed.config.key].cpu.append(count / ran * 1e9 if count > 0 and ran > 0 else math.nan)
        finally:
            for processes in loads:
                for process in processes:
                    process.kill()
                    process.wait()
    return samples


# ---------------------------------------------------------------- statistics and report

T_95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23, 12: 2.18,
        15: 2.13, 20: 2.09, 30: 2.04}  # Student's t, two-sided 5%, by degrees of freedom


def t_95(df: int) -> float:
    return T_95[max(k for k in T_95 if k <= df)]


@dataclass(frozen=True)
class Estimate:
    """A configuration's ratio to the baseline: median of the per-round log ratios, with a confidence interval
    from the spread of the block means (blocks are independent, rounds within a block are not)."""

    ratio: float
    low: float
    high: float
    middle_half: tuple[float, float]
    rounds_for_2pct: int

    @classmethod
    def of(cls, logs: list[float], block: int) -> Estimate:
        """`logs` in round order, NaN where a sample was empty."""
        chunks = [[v for v in logs[i:i + block] if math.isfinite(v)] for i in range(0, len(logs), block)]
        means = [statistics.fmean(chunk) for chunk in chunks if chunk]
        logs = [v for chunk in chunks for v in chunk]
        center = statistics.median(logs)
        spread = statistics.stdev(means) if len(means) > 1 else math.inf
        half = t_95(len(means) - 1) * spread / math.sqrt(len(means)) if len(means) > 1 else math.inf
        blocks_needed = (Z_95_80 * spread / math.log1p(0.02)) ** 2
        q1, _, q3 = statistics.quantiles(logs, n=4)
        return cls(math.exp(center), math.exp(center - half), math.exp(center + half), (math.exp(q1), math.exp(q3)),
                   math.ceil(blocks_needed) * block if math.isfinite(blocks_needed) else 0)


def describe_machine() -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    versions = []
    for argv in (["nft", "--version"], ["iptables", "-V"], ["iperf3", "--version"], ["wrk", "--version"],
                 ["sockperf", "--version"], ["nginx", "-v"]):
        done = subprocess.run(argv, capture_output=True, text=True)
        versions.append((done.stdout or done.stderr).splitlines()[0].strip())
    return [f"{platform.node()}: {os.cpu_count()} x {cpu}, kernel {platform.release()}, "
            f"{platform.freedesktop_os_release().get('PRETTY_NAME', '')}", "; ".join(versions)]


def log_ratios(values: list[float], baseline: list[float]) -> list[float]:
    return [math.log(x / a) if x > 0 and a > 0 else math.nan for x, a in zip(values, baseline, strict=True)]


def report(configs: list[Config], samples: dict[str, dict[str, Samples]], block: int) -> None:
    base = configs[0].key
    rounds = len(samples[next(iter(samples))][base].cpu)
    print(f"\nRatio to ({base}), higher is better, over {rounds} rounds ({math.ceil(rounds / block)} blocks of fresh "
          "connections). Main figure: work per CPU-second of the load's own processes (= the rate on an otherwise "
          "idle CPU; other jobs on the machine do not count): median of the per-round ratios, 95% confidence "
          "interval, middle half of the per-round ratios, rounds a 2% difference needs. Then 'wall': the median "
          "per-round ratio of work per wall-clock second, which other jobs on the machine disturb.")
    needed: dict[str, int] = {}
    for metric, by_config in samples.items():
        print(f"\n{metric}")
        for config in configs[1:]:
            e = Estimate.of(log_ratios(by_config[config.key].cpu, by_config[base].cpu), block)
            wall = math.exp(statistics.median(v for v in log_ratios(by_config[config.key].wall, by_config[base].wall)
                                              if math.isfinite(v)))
            needed[metric] = max(needed.get(metric, 0), e.rounds_for_2pct)
            print(f"  {'(' + config.key + ')':<26} {config.label:<56} {e.ratio:6.3f}  [{e.low:.3f} .. {e.high:.3f}]  "
                  f"middle half {e.middle_half[0]:.3f} .. {e.middle_half[1]:.3f}  2%: {e.rounds_for_2pct:>5} rounds"
                  f"  wall {wall:5.3f}")
    print("\nRounds a 2% difference needs (worst configuration): "
          + "; ".join(f"{metric}: {n}" for metric, n in needed.items()))


@contextmanager
def interrupts_as_exit() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so the namespaces are always deleted."""
    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, help="interleaved rounds per measure (default 40, --quick 10)")
    parser.add_argument("--slice", type=float, default=0.3, help="seconds of one sample (default 0.3)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of under two minutes")
    parser.add_argument("--variant", action="append", type=parse_variant, default=[],
                        metavar="NAME@N|FILE@N|product:TREE@N",
                        help=f"add a configuration: a named shape ({', '.join(SHAPES)}), an nft file (with the "
                        "product's rules and sysctls), or the product of another source tree (e.g. 'git archive' of "
                        "an earlier commit), at N uplinks")
    parser.add_argument("--only", help="standard configurations besides (a) (default Abcd, --quick bcd; A is a "
                        "second copy of (a): the bench's own noise and bias)")
    parser.add_argument("--measure", action="append", choices=list(MEASURES),
                        help="only these measures: " + ", ".join(f"{key} = {name}" for key, name in MEASURES.items()))
    parser.add_argument("--cpu", type=int, default=1, help="the one CPU every server and client runs on")
    parser.add_argument("--base", metavar="KEY", help="the configuration the others are divided by (default a), e.g. "
                        "a product:TREE@N variant for before/after ratios with their own confidence intervals")
    args = parser.parse_args()
    timing = Timing(rounds=args.rounds or (10 if args.quick else 40), slice=args.slice, cpu=args.cpu)
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces)")
    # Keep this script and the commands it runs off the measured CPU, and on time when other jobs load the other.
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)) - {timing.cpu} or {timing.cpu})
    os.nice(-20)
    for tool in ("iperf3", "wrk", "sockperf", "nginx", "nft", "iptables-restore", "taskset"):
        if not shutil.which(tool):
            parser.error(f"{tool} is missing: apt-get install iperf3 wrk sockperf nginx-light nftables iptables")
    only = args.only if args.only is not None else ("bcd" if args.quick else "Abcd")
    configs = [c for c in STANDARD if c.key == "a" or c.key in only] + args.variant
    if args.base and args.base not in {c.key for c in configs}:
        parser.error(f"--base {args.base}: no such configuration")
    configs.sort(key=lambda c: c.key != (args.base or "a"))  # stable: the base first, the rest in order
    workloads = {MEASURES[key]: WORKLOADS[MEASURES[key]] for key in args.measure or MEASURES}
    print("\n".join(describe_machine()))
    print(f"every server and client on CPU {timing.cpu} at nice -20; {timing.rounds} rounds of "
          f"{timing.slice:g} s samples per measure")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mu-bench-") as tmp, interrupts_as_exit():
        lab = Lab(Path(tmp))
        try:
            beds = [build(lab, i, config) for i, config in enumerate(configs)]
            for bed in beds:
                failures = check(bed)
                if failures:
                    raise SystemExit(f"({bed.config.key}) {bed.config.label} is not correct: {'; '.join(failures)}")
            print("every configuration passed the correctness checks; measuring", flush=True)
            samples = {}
            for name, workload in workloads.items():
                samples[name] = measure(lab, beds, workload, timing)
                print(f"  measured {name} ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        finally:
            lab.close()
    report(configs, samples, timing.block)
    print(f"\n(the run took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
