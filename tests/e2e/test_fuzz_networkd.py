"""A real systemd-networkd reads the drop-ins of fuzzed configurations without a complaint (issue 10).

tests/test_fuzz.py checks every drop-in line against networkd's keys; here
networkd itself parses a sample: netplan's generator and ours write into the
directory a networkd in a namespace reads, ``Reload`` makes it parse them, and
its log must name none of our files. A drop-in with an unknown key proves the
log would.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from multiuplink_networkd import cli, paths
from tests.test_fuzz import EXAMPLES, NETPLAN, STANZA, dumped, plausible

from . import netns
from .networkd import Networkd
from .product import NETPLAN_GENERATE, require_networkd


class Reader:
    """networkd over a directory that each example refills."""

    def __init__(self, daemon: Networkd, directory: Path) -> None:
        self.daemon = daemon
        self.directory = directory
        self.read = 0

    def complaints(self, files: Path) -> list[str]:
        """networkd's log lines about our drop-ins after it has read ``files`` (a run/systemd/network)."""
        for entry in self.directory.iterdir():
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        shutil.copytree(files, self.directory, dirs_exist_ok=True)
        with open(self.daemon.log_path, errors="replace") as log:
            log.seek(0, 2)
            self.daemon.reload()
            self.daemon.run("networkctl", "list")  # answered after the reload was processed
            self.read += 1
            return [line for line in log.read().splitlines() if paths.DROPIN_NAME in line]


@pytest.fixture(scope="module")
def reader() -> Iterator[Reader]:
    reason = netns.skip_reason()
    if reason:
        pytest.skip(reason)
    require_networkd()
    name = netns.unique_prefix() + "-fz"
    netns.add(name)
    try:
        with tempfile.TemporaryDirectory() as directory, Networkd(name, directory) as daemon:
            reader = Reader(daemon, Path(directory))
            yield reader
            print(f"\nnetworkd read {reader.read} sets of drop-ins")
    finally:
        netns.delete(name)


def rendered_network_dir(root: Path, netplan: bytes, stanza: bytes) -> Path | None:
    """netplan's .network files and our drop-ins for one configuration, or None if either generator refuses."""
    for relative, content in ((NETPLAN, netplan), (STANZA, stanza)):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(content)
        (root / relative).chmod(0o600)
    if netns.run_cmd([NETPLAN_GENERATE, "--root-dir", str(root)], check=False).returncode != 0:
        return None
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if cli.main(["generate", "--root-dir", str(root)]) != cli.EXIT_OK:
            return None
    return root / "run/systemd/network"


def test_the_log_names_a_drop_in_networkd_cannot_read(reader: Reader, tmp_path: Path) -> None:
    network = tmp_path / "network"
    (network / "10-netplan-eth1.network.d").mkdir(parents=True)
    (network / "10-netplan-eth1.network").write_text("[Match]\nName=eth1\n")
    (network / "10-netplan-eth1.network.d" / paths.DROPIN_NAME).write_text("[Route]\nTable=101\nInjected=yes\n")
    assert any("Injected" in line for line in reader.complaints(network))


@settings(max_examples=max(EXAMPLES // 20, 12), derandomize=not EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(pair=plausible())
def test_networkd_reads_fuzzed_drop_ins_without_a_complaint(reader: Reader, pair: tuple[object, object]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        network = rendered_network_dir(Path(directory), dumped(pair[0]), dumped(pair[1]))
        if network is not None:
            assert reader.complaints(network) == []
