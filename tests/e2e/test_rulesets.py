"""Every ruleset the golden cases render is loaded by the real loaders, twice (reloads must be idempotent)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from . import netns
from .product import REPO, Host

CASES = Path(__file__).resolve().parents[1] / "cases"
NFT_CASES = sorted(p.parents[3].name for p in CASES.glob("*/expected/run/multiuplink/ruleset.nft"))
IPTABLES_CASES = sorted(p.parents[3].name for p in CASES.glob("*/expected/run/multiuplink/ruleset.iptables"))


@pytest.mark.parametrize("case", NFT_CASES)
def test_nft_ruleset_loads_twice(case: str, namespace: str) -> None:
    ruleset = (CASES / case / "expected/run/multiuplink/ruleset.nft").read_text()
    for _ in range(2):
        netns.run(namespace, "nft", "-f", "-", input=ruleset)
    listed = netns.run(namespace, "nft", "list", "table", "inet", "multiuplink").stdout
    chains = [line.split()[1] for line in ruleset.splitlines() if line.strip().startswith("chain ")]
    assert chains and all(f"chain {c} {{" in listed for c in chains)
    assert netns.run(namespace, "nft", "list", "tables").stdout.count("multiuplink") == 1


@pytest.mark.parametrize("case", IPTABLES_CASES)
def test_iptables_ruleset_loads_twice_beside_foreign_rules(case: str, namespace: str, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(CASES / case / "input", root)
    foreign = "-A PREROUTING -i eth9 -j MARK --set-xmark 0x4000/0x4000"
    netns.run(namespace, "iptables-restore", "--noflush", input=f"*mangle\n{foreign}\nCOMMIT\n")
    rendered = {}
    for _ in range(2):
        netns.run(namespace, "env", f"PYTHONPATH={REPO}", sys.executable, "-m", "multiuplink_networkd",
                  "apply", "--boot", "--root-dir", str(root))
        for ruleset in (root / "run/multiuplink").glob("ruleset.ip*tables"):
            rendered[ruleset.suffix] = ruleset.read_text()
            ruleset.unlink()  # so the next apply loads it again
    saved = netns.run(namespace, "iptables-save", "-t", "mangle").stdout
    assert saved.count("-A PREROUTING -j MULTIUPLINK_PREROUTING") == 1
    assert saved.count("-A OUTPUT -j MULTIUPLINK_OUTPUT") == 1
    if case == "iptables-backend":
        assert ("-A MULTIUPLINK_PREROUTING -i eth2 -m conntrack --ctdir ORIGINAL -m connmark ! --mark "
                "0x2000000/0xff000000 -m comment --comment connections_isp2 -j CONNMARK --set-xmark "
                "0x2000000/0xff000000") in saved
    assert foreign in saved, "other rules stay"
    for suffix, tool in ((".iptables", "iptables-save"), (".ip6tables", "ip6tables-save")):
        if suffix in rendered:  # every rule of each family's file, loaded once
            listed = netns.run(namespace, tool, "-t", "mangle").stdout
            for chain in ("MULTIUPLINK_PREROUTING", "MULTIUPLINK_OUTPUT"):
                assert listed.count(f"-A {chain} ") == rendered[suffix].count(f"-A {chain} ") > 0


def test_iptables_backend_answers_via_both_isps(host: Host) -> None:
    stanza = host.stanza.read_text()
    host.stanza.write_text(stanza.replace("  multiuplink:\n", "  multiuplink:\n    backend: iptables\n"))
    host.multiuplink("apply")
    host.wait_uplinks("isp1", "isp2")
    assert "table inet multiuplink" not in host.nft()
    assert host.reachable() == {"isp1": True, "isp2": True}


def test_128_uplinks_render_and_load(namespace: str, tmp_path: Path) -> None:
    """The per-packet cost stays one verdict-map lookup per hook: the maps just grow."""
    root = tmp_path / "root"
    (root / "etc/netplan/multiuplink.d").mkdir(parents=True)
    ethernets = "".join(f"    up{i}:\n      addresses: [10.{i}.0.2/24]\n"
                        f"      routes: [{{to: default, via: 10.{i}.0.1}}]\n" for i in range(128))
    (root / "etc/netplan/50-up.yaml").write_text(f"network:\n  renderer: networkd\n  ethernets:\n{ethernets}")
    uplinks = "".join(f"      isp{i}: {{interface: up{i}}}\n" for i in range(128))
    (root / "etc/netplan/multiuplink.d/up.yaml").write_text(f"network:\n  multiuplink:\n    uplinks:\n{uplinks}")
    netns.run_cmd([sys.executable, "-m", "multiuplink_networkd", "generate", "--root-dir", str(root)],
                  env={**os.environ, "PYTHONPATH": str(REPO)})
    ruleset = (root / "run/multiuplink/ruleset.nft").read_text()
    for _ in range(2):
        netns.run(namespace, "nft", "-f", "-", input=ruleset)
    listed = netns.run(namespace, "nft", "list", "chain", "inet", "multiuplink", "output").stdout
    assert listed.count("goto restore_isp") == 128 and listed.count("vmap") == 1
    assert len(list((root / "run/systemd/network").glob("*.network.d/50-multiuplink.conf"))) == 128
