"""``status --format=openmetrics`` read by the real consumer: node_exporter's textfile collector.

The Debian package's binary is unpacked into the test cache (``apt-get download``, never installed, so no
service starts) and runs inside the test's host namespace, listening on its loopback only.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from . import netns
from .boot import CACHE_DIR
from .product import Host

PACKAGE = "prometheus-node-exporter"
BINARY = CACHE_DIR / PACKAGE / "usr/bin/prometheus-node-exporter"
ADDRESS = "127.0.0.1:9100"
_GET = f"import sys, urllib.request; sys.stdout.write(urllib.request.urlopen('http://{ADDRESS}/metrics').read().decode())"


def node_exporter() -> Path:
    """The packaged binary, unpacked once into the cache."""
    if not BINARY.exists():
        if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
            pytest.skip("needs apt-get and dpkg-deb to fetch node_exporter")
        with tempfile.TemporaryDirectory() as scratch:
            fetched = subprocess.run(["apt-get", "download", PACKAGE], cwd=scratch, capture_output=True, text=True)
            if fetched.returncode != 0:
                pytest.skip(f"apt-get download {PACKAGE} failed: {fetched.stderr.strip()}")
            unpacked = Path(scratch) / "unpacked"
            netns.run_cmd(["dpkg-deb", "-x", str(next(Path(scratch).glob("*.deb"))), str(unpacked)])
            shutil.rmtree(BINARY.parents[2], ignore_errors=True)
            BINARY.parents[2].parent.mkdir(parents=True, exist_ok=True)
            shutil.move(unpacked, BINARY.parents[2])
    return BINARY


def test_the_textfile_collector_reads_the_metrics(applied: Host, tmp_path: Path) -> None:
    binary = node_exporter()
    assert applied.topology.tcp_reachable("isp2")
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    metrics = applied.multiuplink("status", "--format=openmetrics").stdout
    (textfiles / "multiuplink.prom").write_text(metrics)
    [connections] = [line.split()[-1] for line in metrics.splitlines()
                     if line.startswith('multiuplink_connections_total{uplink="isp2"')]
    exporter = subprocess.Popen(["ip", "netns", "exec", applied.topology.host_ns, str(binary),
                                 f"--web.listen-address={ADDRESS}", "--collector.disable-defaults",
                                 "--collector.textfile", f"--collector.textfile.directory={textfiles}"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        scraped = netns.wait_for(
            lambda: netns.run(applied.topology.host_ns, sys.executable, "-c", _GET, check=False).stdout, 15,
            "node_exporter to answer")
    finally:
        netns.stop(exporter)
    lines = scraped.splitlines()
    assert "node_textfile_scrape_error 0" in lines, scraped
    assert int(connections) >= 1
    assert f'multiuplink_connections_total{{interface="eth2",uplink="isp2"}} {connections}' in lines
    assert "# TYPE multiuplink_connections_total untyped" in lines, "OpenMetrics counters read as Prometheus text"
    assert any(line.startswith('multiuplink_bytes_total{direction="out",interface="eth2",uplink="isp2"} ')
               for line in lines)
    assert "multiuplink_drift 0" in lines
