"""10,000 connections at once through both ISPs: not one reply leaves through the wrong uplink.

The ISP routers count every packet the host sends them with a source that is
not theirs (BCP38, topology.py): a reply routed out of the wrong uplink is
exactly such a packet. The count must stay 0, also while ``apply`` replaces
the ruleset in the middle of the load.
"""

from __future__ import annotations

import resource
import subprocess
import sys

from . import netns
from .product import Host
from .topology import HOST_ADDR

CONNECTIONS = 10_000
PORT = 9000
NETPLAN = "etc/netplan/50-uplinks.yaml"
THIRD_UPLINK = """\
    eth3:
      addresses: [10.3.0.2/24]
      routes: [{to: default, via: 10.3.0.1, metric: 300}]
"""

# Accepts everything and echoes one line per connection; many file descriptors.
_SERVER = """\
import asyncio, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)

async def echo(reader, writer):
    writer.write(await reader.readline())
    await writer.drain()
    await reader.read()  # until the client closes
    writer.close()

async def main():
    server = await asyncio.start_server(echo, "0.0.0.0", int(sys.argv[1]), backlog=4096)
    print("listening", flush=True)
    await server.serve_forever()

asyncio.run(main())
"""

# Opens every connection, holds them all open at once, then prints how many echoed.
_CLIENT = """\
import asyncio, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
port, count, addresses = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
all_open = asyncio.Event()
opened = 0

async def one(index):
    global opened
    address = addresses[index % len(addresses)]
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), 60)
        writer.write(b"%d\\n" % index)
        answer = await asyncio.wait_for(reader.readline(), 60)
    except (OSError, asyncio.TimeoutError):
        return False
    opened += 1
    if opened == count:
        all_open.set()
    try:
        await asyncio.wait_for(all_open.wait(), 90)
    except asyncio.TimeoutError:
        pass
    writer.close()
    return answer == b"%d\\n" % index

async def main():
    results = await asyncio.gather(*(one(i) for i in range(count)))
    print(sum(results), flush=True)

asyncio.run(main())
"""


def test_ten_thousand_connections_via_both_isps_with_a_reload_in_the_middle(applied: Host) -> None:
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[1] > CONNECTIONS + 100, "each side holds every connection open"
    topology = applied.topology
    netns.sysctl(topology.host_ns, {"net.core.somaxconn": 4096, "net.ipv4.tcp_max_syn_backlog": 8192})
    drops_before = {isp: topology.bcp38_drops(isp) for isp in ("isp1", "isp2")}
    server = subprocess.Popen(["ip", "netns", "exec", topology.host_ns, sys.executable, "-c", _SERVER, str(PORT)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        netns.read_line(server, 10, "the echo server to listen")
        client = subprocess.Popen(["ip", "netns", "exec", topology.client_ns, sys.executable, "-c", _CLIENT,
                                   str(PORT), str(CONNECTIONS), HOST_ADDR["isp1"], HOST_ADDR["isp2"]],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            netns.wait_for(lambda: _established(topology.host_ns) > CONNECTIONS // 4, 60, "a quarter to be open")
            netplan, stanza = applied.root / NETPLAN, applied.stanza.read_text()
            netplan.write_text(netplan.read_text() + THIRD_UPLINK)  # an uplink without a link: only the ruleset
            applied.stanza.write_text(stanza + "      isp3: {interface: eth3, mark: 3, table: 103}\n")  # changes
            assert "changed netfilter" in applied.multiuplink("apply").stdout
            applied.stanza.write_text(stanza)
            assert "changed netfilter" in applied.multiuplink("apply").stdout
            answered = int(netns.read_line(client, 240, "the clients to finish"))
        finally:
            netns.stop(client)
    finally:
        netns.stop(server)
    drops = {isp: topology.bcp38_drops(isp) - drops_before[isp] for isp in ("isp1", "isp2")}
    assert drops == {"isp1": 0, "isp2": 0}, "replies left through the wrong uplink"
    assert answered == CONNECTIONS


def _established(namespace: str) -> int:
    listed = netns.run(namespace, "ss", "-Htn", "state", "established", f"( sport = :{PORT} )").stdout
    return len(listed.splitlines())
