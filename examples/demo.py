#!/usr/bin/python3
"""Show multiuplink-networkd working, in throwaway network namespaces (needs root).

Builds a host with two ISPs that drop spoofed sources (BCP38), runs a real
systemd-networkd configured by netplan from examples/two-isps, and connects
from a client via each ISP: before and after ``multiuplink apply``. Nothing
outside the namespaces it creates is touched.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e import netns
from tests.e2e.product import STANZA, Host
from tests.e2e.topology import CLIENT_ADDR, CLIENT_ADDR6, HOST_ADDR, HOST_ADDR6


def show(title: str, host: Host) -> None:
    print(f"\n{title}")
    for family, client, addresses in ((4, CLIENT_ADDR, HOST_ADDR), (6, CLIENT_ADDR6, HOST_ADDR6)):
        for isp, ok in host.reachable(family, timeout=1.0).items():
            print(f"  client {client:<14} -> {addresses[isp]:<14} via {isp}: {'answered' if ok else 'NO ANSWER'}")


def main() -> int:
    reason = netns.skip_reason()
    if reason:
        print(f"demo: {reason}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="mu-demo-") as tmp, Host(Path(tmp) / "root") as host:
        print("A dual-stack host with two uplinks (eth1 via isp1, eth2 via isp2), netplan + real systemd-networkd;")
        print("the ISP routers drop packets whose source is not their customer's (BCP38), IPv4 and IPv6.")
        print(f"\nThe stanza, /{STANZA}:")
        print("".join(f"  | {line}\n" for line in host.stanza.read_text().splitlines()), end="")
        host.wait_ipv6()
        show("Before (netplan alone: every reply leaves via the main default route, isp1):", host)
        ping = subprocess.Popen(["ip", "netns", "exec", host.topology.client_ns, "ping", "-q", "-i", "0.01", "-c",
                                 "150", HOST_ADDR["isp1"]], stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        started = time.monotonic()
        applied = host.multiuplink("apply")
        host.wait_uplinks("isp1", "isp2")
        took = time.monotonic() - started
        summary = [line for line in ping.communicate()[0].splitlines() if "transmitted" in line]
        print(f"\n$ multiuplink apply   ({took:.2f} s until networkd installed the rules; pings via isp1 "
              f"every 10 ms meanwhile: {summary[0] if summary else 'ping not installed'})")
        print("".join(f"  {line}\n" for line in applied.stdout.splitlines()), end="")
        print("\n$ ip rule; ip -6 rule   (the policy rules networkd now owns, one pair per uplink and family)")
        rules = host.rules() + netns.ip(host.topology.host_ns, "-6", "rule").stdout
        print("".join(f"  {line}\n" for line in rules.splitlines() if "fwmark" in line), end="")
        show("After (each connection is answered out of the uplink it arrived on):", host)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
