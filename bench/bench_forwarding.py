#!/usr/bin/python3
"""Cost of router mode for forwarded traffic, as ratios to a plain stateful router measured in the same run.

Namespaces per configuration: a client (which also plays every ISP router),
the router (the host: uplink 1 and the measured LAST uplink lead to the
client, the others to a namespace with no routes) and a LAN server. The
router has the tables an admin writes (port 8080 and 5201 forwarded to the
server, masquerade out, a forward chain with policy drop) and Debian's
loose rp_filter. The client's side drops what arrives with a source that
is not the link's (strict rp_filter), so a forwarded reply routed the wrong
way is lost, and every configuration must pass a check first.

    (a) plain stateful router: the main default route leads out of the measured
        uplink, so its forwarded replies need no marks (the baseline);
    (A) the same again: the bench's own noise;
    (b) the product's ruleset, rules and routes, 2 uplinks, main default via uplink 1;
    (c) the same with 128 uplinks;
    (d) the product with router-mode off, main default via the measured uplink:
        (b)/(d) is what router mode itself costs.

Metrics: port-forwarded TCP (iperf3 -R: the LAN server sends, every data
packet is a restored reply), 64-byte UDP datagrams and connections (wrk,
Connection: close), and TCP and connections the LAN opens (never marked,
never restored). Each is counted as work per CPU second: CPU time of the
client, of the servers and of the CPU's ksoftirqd (veth forwarding runs in
their context), so time that other work on a busy machine takes hardly
counts. Printed: the median over interleaved rounds (order reversed every
other round) of each round's ratio, and the range; never bare rates.

    /usr/bin/python3 bench/bench_forwarding.py [--rounds N] [--seconds S] [--before SOURCE-TREE]

With --before (say a 'git archive' of an earlier commit): (e) and (f), that
tree's product at 2 and 128 uplinks, and the ratios (b)/(e), (c)/(f).

Needs root and iperf3, wrk, nginx (apt-get install iperf3 wrk nginx-light).
Everything runs in namespaces named mu<hex>-*, deleted on exit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]

CLIENT = "198.51.100.10"
LAN_SERVER = "10.0.0.2"
PINNED = ["taskset", "-c", "1", "nice", "-n", "-20"]  # one CPU, hardly preempted: a rate measures the work there


def uplinks(count: int) -> list[tuple[str, str, str]]:
    """(interface, address/prefix, gateway) of each uplink: 1 and the last lead to the client."""
    ups = [("eth1", "203.0.113.8/24", "203.0.113.1")]
    ups += [(f"eth{k}", f"10.{k // 256}.{k % 256}.2/24", f"10.{k // 256}.{k % 256}.1") for k in range(2, count)]
    return ups + [(f"eth{count}", "192.0.2.31/24", "192.0.2.1")]


def admin_tables() -> str:
    return """table inet filter {
\tchain forward {
\t\ttype filter hook forward priority filter; policy drop;
\t\tct state established,related accept
\t\tct status dnat accept
\t\tiifname "lan0" accept
\t}
}
table ip nat {
\tchain prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tiifname != "lan0" tcp dport 8080 dnat to 10.0.0.2:80
\t\tiifname != "lan0" meta l4proto { tcp, udp } th dport 5201 dnat to 10.0.0.2:5201
\t}
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\toifname != "lan0" masquerade
\t}
}
"""


RENDER = r"""
import json, sys
from multiuplink_networkd.config import stanza
from multiuplink_networkd.render import nft, sysctl
settings = stanza.load(sys.argv[1])
batch = []
for uplink in settings.uplinks:
    for rule in settings.policy_rules(uplink):
        suppress = "" if rule.suppress_prefixlength is None else " suppress_prefixlength 0"
        batch.append(f"rule add fwmark {rule.fwmark:#x}/{rule.mask:#x} table {rule.table} pref {rule.priority}"
                     + suppress)
    batch += [f"route add {route.destination} dev {uplink.interface} scope link table {route.table}"
              if route.gateway is None else
              f"route add default via {route.gateway} dev {uplink.interface} onlink table {route.table}"
              for route in settings.table_routes(uplink)]
sysctls = [line.replace("/", ".").replace(" ", "") for line in sysctl.render(settings).splitlines()
           if "=" in line and not line.startswith("#")]
print(json.dumps([nft.render(settings), batch, sysctls]))
"""


def product(config: Config, work: Path) -> tuple[str, list[str], list[str]]:
    """The product's ruleset (rendered by the package of ``config.source``), its policy rules and table routes as
    ``ip -batch`` lines, and its sysctls."""
    root = work / f"root-{config.key}"
    (root / "etc/netplan/multiuplink.d").mkdir(parents=True)
    lines = ["network:", "  version: 2", "  renderer: networkd", "  ethernets:"]
    for interface, address, gateway in uplinks(config.uplinks):
        lines += [f"    {interface}:", f"      addresses: [{address}]",
                  f"      routes: [{{to: default, via: {gateway}}}]"]
    (root / "etc/netplan/50-uplinks.yaml").write_text("\n".join(lines) + "\n")
    (root / "etc/netplan/multiuplink.d/uplinks.yaml").write_text(
        f"network:\n  multiuplink:\n    router-mode: {str(config.router_mode).lower()}\n    uplinks:\n"
        + "".join(f"      isp{k}: {{interface: eth{k}}}\n" for k in range(1, config.uplinks + 1)))
    for config_file in ("50-uplinks.yaml", "multiuplink.d/uplinks.yaml"):
        (root / "etc/netplan" / config_file).chmod(0o600)  # readable by others: warned about, like netplan
    rendered = sh("env", f"PYTHONPATH={config.source}", "/usr/bin/python3", "-c", RENDER, str(root))
    ruleset, batch, sysctls = json.loads(rendered)
    return str(ruleset), list(batch), list(sysctls)


class Lab:
    """Every namespace and server of the run; all removed on exit, processes by PID."""

    def __init__(self) -> None:
        self.prefix = "mu" + secrets.token_hex(3)
        self.namespaces: list[str] = []
        self.servers: list[subprocess.Popen[bytes]] = []

    def namespace(self, name: str) -> str:
        ns = f"{self.prefix}-{name}"
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        return ns

    def serve(self, ns: str, *argv: str) -> int:
        """Start a server; its PID (ip netns exec, taskset and nice exec, so it is the server's own)."""
        self.servers.append(subprocess.Popen(["ip", "netns", "exec", ns, *PINNED, *argv],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return self.servers[-1].pid

    def close(self) -> None:
        for proc in self.servers:
            proc.kill()
            proc.wait()
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


def sh(*argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()[:2000]}")
    return done.stdout


def batch(ns: str, lines: list[str]) -> None:
    sh("ip", "-n", ns, "-batch", "-", stdin="\n".join(lines) + "\n")


def nginx(lab: Lab, ns: str, address: str, work: Path) -> int:
    conf = work / f"nginx-{ns}"
    conf.mkdir()
    temp = " ".join(f"{kind}_temp_path {conf};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (conf / "nginx.conf").write_text(
        f"daemon off; master_process off; worker_processes 1; pid {conf}/pid; error_log stderr crit;\n"
        "events { worker_connections 4096; }\n"
        f"http {{ access_log off; {temp} server {{ listen {address}:80 backlog=4096; return 200 'ok'; }} }}\n")
    return lab.serve(ns, "nginx", "-p", str(conf), "-e", "stderr", "-c", str(conf / "nginx.conf"))


class Bed(NamedTuple):
    namespaces: dict[str, str]  # by role: router, client, lan
    addresses: dict[str, str]  # "forward": the router's address on the measured uplink
    servers: list[int]  # PIDs


class Config(NamedTuple):
    key: str
    label: str
    uplinks: int
    product: bool
    router_mode: bool  # with the product; without router mode main's default leads out of the measured uplink
    source: Path = REPO  # the source tree whose package renders the product


CONFIGS = [Config("a", "plain stateful router (baseline)", 2, False, False),
           Config("A", "the same again: noise", 2, False, False),
           Config("b", "product, 2 uplinks", 2, True, True),
           Config("c", "product, 128 uplinks", 128, True, True),
           Config("d", "product, router-mode off, 2 uplinks", 2, True, False)]
COMPARED = [("A", "a"), ("b", "a"), ("c", "a"), ("d", "a"), ("b", "d")]


def before(source: Path) -> tuple[list[Config], list[tuple[str, str]]]:
    """(e), (f): the product of another source tree (e.g. 'git archive' of an earlier commit) at 2 and 128 uplinks,
    compared with (a) and with this checkout's (b), (c)."""
    return ([Config("e", "product of --before, 2 uplinks", 2, True, True, source),
             Config("f", "product of --before, 128 uplinks", 128, True, True, source)],
            [("e", "a"), ("f", "a"), ("b", "e"), ("c", "f")])


def build(lab: Lab, config: Config, work: Path) -> Bed:
    router, client, lan, void = (lab.namespace(f"{config.key}{role}") for role in ("r", "c", "l", "v"))
    ups = uplinks(config.uplinks)
    (first, first_addr, first_gw), (last, last_addr, last_gw) = ups[0], ups[-1]
    sh("ip", "link", "add", "isp1", "netns", client, "type", "veth", "peer", "name", first, "netns", router)
    sh("ip", "link", "add", "ispN", "netns", client, "type", "veth", "peer", "name", last, "netns", router)
    sh("ip", "link", "add", "eth0", "netns", lan, "type", "veth", "peer", "name", "lan0", "netns", router)
    lines = [f"link add {i} type veth peer name p{i} netns {void}" for i, _, _ in ups[1:-1]]
    lines += [f"addr add {a} dev {i}" for i, a, _ in ups] + [f"link set {i} up" for i, _, _ in ups]
    lines += ["addr add 10.0.0.1/24 dev lan0", "link set lan0 up"]
    ruleset, product_batch, product_sysctls = product(config, work) if config.product else ("", [], [])
    default = f"via {first_gw} dev {first}" if config.router_mode else f"via {last_gw} dev {last}"
    lines += [f"route add default {default}", *product_batch]
    batch(router, lines)
    batch(void, [f"link set p{i} up" for i, _, _ in ups[1:-1]])
    batch(client, [f"addr add {first_gw}/24 dev isp1", f"addr add {last_gw}/24 dev ispN",
                   f"addr add {CLIENT}/32 dev lo", "link set isp1 up", "link set ispN up",
                   f"route add {first_addr.split('/')[0]} dev isp1 src {CLIENT}",
                   f"route add {last_addr.split('/')[0]} dev ispN src {CLIENT}"])
    batch(lan, ["addr add 10.0.0.2/24 dev eth0", "link set eth0 up", "route add default via 10.0.0.1"])
    sh("ip", "netns", "exec", client, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1")  # BCP38 at the ISPs
    sh("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=2",
       "net.netfilter.nf_conntrack_tcp_timeout_time_wait=1", *product_sysctls)
    sh("ip", "netns", "exec", router, "nft", "-f", "-", stdin=admin_tables() + ruleset)
    servers = [nginx(lab, lan, LAN_SERVER, work), nginx(lab, client, CLIENT, work),
               lab.serve(lan, "iperf3", "-s", "-p", "5201"),
               lab.serve(client, "iperf3", "-s", "-p", "5202", "-B", CLIENT)]
    return Bed({"router": router, "client": client, "lan": lan}, {"forward": last_addr.split("/")[0]}, servers)


def in_ns(ns: str, *argv: str) -> str:
    return sh("ip", "netns", "exec", ns, *PINNED, *argv)


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` so far (softirq work done in its context included)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def work_per_cpu_second(bed: Bed, who: str, argv: list[str], work: Callable[[str], float]) -> float:
    """Run ``argv`` in namespace ``who``: units of ``work`` it reports per CPU second of all involved
    (the client, the bed's servers, the CPU's ksoftirqd), so time other work on the machine takes hardly counts."""
    others = [*bed.servers, ksoftirqd(PINNED[2])]
    before = children_cpu_seconds() + sum(cpu_seconds(pid) for pid in others)
    out = in_ns(bed.namespaces[who], *argv)
    spent = children_cpu_seconds() + sum(cpu_seconds(pid) for pid in others) - before
    return work(out) / spent


def ksoftirqd(cpu: str) -> int:
    return next(int(p.name) for p in Path("/proc").iterdir()
                if p.name.isdigit() and (p / "comm").read_text().strip() == f"ksoftirqd/{cpu}")


def iperf3(who: str, target: str, port: str, *options: str) -> Callable[[Bed, float], float]:
    """Bytes (TCP) or datagrams (UDP) the client receives from the server (-R) per CPU second."""
    def received(out: str) -> float:
        end = json.loads(out)["end"]
        return float(end["sum_received"]["bytes"]) if "sum_received" in end else float(
            end["sum"]["packets"] - end["sum"]["lost_packets"])

    def measure(bed: Bed, seconds: float) -> float:
        argv = ["iperf3", "-c", bed.addresses.get(target, target), "-p", port, "-R", "-t", f"{seconds:g}", "-J",
                *options]
        return work_per_cpu_second(bed, who, argv, received)
    return measure


def connections(who: str, url: str) -> Callable[[Bed, float], float]:
    """HTTP requests on connections of their own (wrk, Connection: close) per CPU second."""
    def completed(out: str) -> float:
        if "Socket errors" in out or "Non-2xx" in out:
            raise RuntimeError(f"wrk saw errors: {out}")
        return float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]

    def measure(bed: Bed, seconds: float) -> float:
        argv = ["wrk", "-t1", "-c16", f"-d{seconds:g}s", "-H", "Connection: close", url.format(**bed.addresses)]
        return work_per_cpu_second(bed, who, argv, completed)
    return measure


METRICS = {
    "port forward via the last uplink: TCP bytes (-R)": iperf3("client", "forward", "5201"),
    "port forward via the last uplink: UDP 64-byte datagrams (-R)": iperf3("client", "forward", "5201", "-u",
                                                                         "-b", "0", "-l", "64"),
    "port forward via the last uplink: connections": connections("client", "http://{forward}:8080/"),
    "LAN-opened: TCP bytes (download)": iperf3("lan", CLIENT, "5202"),
    "LAN-opened: connections": connections("lan", f"http://{CLIENT}/"),
}
def ready(bed: Bed) -> bool:
    checks = [("client", f"http://{bed.addresses['forward']}:8080/"), ("lan", f"http://{CLIENT}/")]
    return all(subprocess.run(["ip", "netns", "exec", bed.namespaces[who], "curl", "-sf", "-m", "2", url],
                              capture_output=True).returncode == 0 for who, url in checks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--cpu", default="1", help="the CPU every process runs on (default: %(default)s)")
    parser.add_argument("--metric", action="append", choices=list(METRICS), help="only these (default: all)")
    parser.add_argument("--before", type=Path, metavar="TREE", help="also measure the product of this source tree")
    args = parser.parse_args()
    configs, compared = CONFIGS, COMPARED
    if args.before:
        more, more_compared = before(args.before.resolve())
        configs, compared = configs + more, compared + more_compared
    PINNED[2] = args.cpu
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces)")
    missing = [tool for tool in ("iperf3", "wrk", "nginx", "curl", "taskset") if not shutil.which(tool)]
    if missing:
        parser.error(f"missing {', '.join(missing)}: apt-get install iperf3 wrk nginx-light curl util-linux")
    lab = Lab()
    metrics = {name: METRICS[name] for name in args.metric or METRICS}
    samples: dict[str, dict[str, list[float]]] = {m: {c.key: [] for c in configs} for m in metrics}
    try:
        with tempfile.TemporaryDirectory(prefix="mu-bench-") as tmp:
            beds = {config.key: build(lab, config, Path(tmp)) for config in configs}
            deadline = time.monotonic() + 10
            while not all(ready(bed) for bed in beds.values()):
                if time.monotonic() > deadline:
                    raise SystemExit("a configuration does not forward both ways: " + ", ".join(
                        key for key, bed in beds.items() if not ready(bed)))
                time.sleep(0.2)
            for round_ in range(args.rounds):
                order = list(beds) if round_ % 2 == 0 else list(beds)[::-1]
                for metric, measure in metrics.items():
                    for key in order:
                        samples[metric][key].append(measure(beds[key], args.seconds))
                print(f"  round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        lab.close()
    labels = {c.key: c.label for c in configs}
    print(f"Work per CPU second, X/Y (higher: X is cheaper): median of {args.rounds} interleaved rounds' ratios "
          "[min .. max]. (b)/(d) is router mode's own cost.")
    for metric in metrics:
        print(f"\n{metric}")
        for key, base in compared:
            ratios = sorted(x / y for x, y in zip(samples[metric][key], samples[metric][base], strict=True))
            spread = statistics.stdev(math.log(r) for r in ratios) if len(ratios) > 1 else 0.0
            print(f"  ({key})/({base}) {labels[key]:<36} {statistics.median(ratios):6.3f}  "
                  f"[{ratios[0]:.3f} .. {ratios[-1]:.3f}]  sd(log) {spread:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
