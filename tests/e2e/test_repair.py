"""``apply`` repairs what happened to its files and to the host since the last run, and never crashes on it.

Since the restructuring apply reads no format back but its own manifest; a
hand-edited sysctl file (issue 10, item 14), a damaged or hostile manifest,
drop-in or ruleset, and files a ``generate`` wrote that nobody applied must
all end in the configuration the stanza asks for, proven with real networkd,
real nft and real traffic through both ISPs.
"""

from __future__ import annotations

import json

import pytest

from multiuplink_networkd import paths

from . import netns
from .product import RULE, Host

ISP2_STANZA = "      isp2: {interface: eth2, mark: 2, table: 102}\n"
DROPIN = paths.networkd_dropin("eth2")
HOSTILE_MANIFEST = json.dumps({"format": 2, "mark_mask": 0xff000000, "uplinks": [
    {"name": "isp1", "interface": "../conf/all", "dropin": DROPIN, "rp_filter": 0, "rules": [], "table": 101,
     "fwmark": 0x1000000, "routes": []},
    {"name": "isp2", "interface": "eth2", "dropin": "../../etc/passwd", "rp_filter": 0, "rules": [], "table": 102,
     "fwmark": 0x2000000, "routes": []}]})
DAMAGES = {
    "sysctl hand-edited": (paths.SYSCTL_FILE, b"net/ipv4/conf/eth1/rp_filter=2\nnet/ipv4/conf/eth2/rp_filter=1\n"),
    "manifest truncated": (paths.MANIFEST, b'{"format": 1, "uplinks": [{"name": "is'),
    "manifest nested deeply": (paths.MANIFEST, b"[" * 100000),
    "manifest hostile": (paths.MANIFEST, HOSTILE_MANIFEST.encode()),
    "drop-in not UTF-8": (DROPIN, b"[RoutingPolicyRule]\nFirewallMark=\xff\xfe\n"),
    "drop-in emptied": (DROPIN, b""),
    "ruleset garbage": (paths.NFT_RULESET, b"table inet multiuplink { this is not nft }\n"),
}


def rp_filter_all(host: Host) -> str:
    return netns.read_sysctl(host.topology.host_ns, "net.ipv4.conf.all.rp_filter")


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_apply_repairs_a_damaged_file(damage: str, applied: Host) -> None:
    relative, text = DAMAGES[damage]
    expected = {path.relative_to(applied.root): path.read_bytes()
                for path in (applied.root / "run").rglob("*") if path.is_file()}
    netns.sysctl(applied.topology.host_ns, {"net.ipv4.conf.eth2.rp_filter": 1,  # as the edit would say
                                            "net.ipv4.conf.all.rp_filter": 2})  # not the default: a write shows
    (applied.root / relative).write_bytes(text)
    done = applied.multiuplink("apply")
    assert "Traceback" not in done.stderr
    assert {path.relative_to(applied.root): path.read_bytes()
            for path in (applied.root / "run").rglob("*") if path.is_file()} == expected
    assert rp_filter_all(applied) == "2", "a name in a damaged manifest reached /proc"
    applied.wait_uplinks("isp1", "isp2")
    assert applied.rp_filter("eth2") == "2"
    assert applied.reachable() == {"isp1": True, "isp2": True}


def test_apply_after_a_generate_nobody_applied(applied: Host) -> None:
    """generate wrote the files of a stanza without isp2; apply of that same stanza must still remove isp2."""
    applied.stanza.write_text(applied.stanza.read_text().replace(ISP2_STANZA, ""))
    assert "removed " + DROPIN in applied.multiuplink("generate").stdout
    out = applied.multiuplink("apply").stdout
    assert "changed netfilter" in out
    netns.wait_for(lambda: RULE["isp2"] not in applied.rules() and not applied.table("102").strip(), 15,
                   "networkd to drop isp2's rule and table", diagnose=applied.networkd.diagnose)
    assert "restore_isp2" not in applied.nft() and "restore_isp1" in applied.nft()
    assert applied.rp_filter("eth2") == "1", "back to the namespace default"
    assert applied.reachable() == {"isp1": True, "isp2": False}
    assert applied.multiuplink("apply").stdout.strip() == "unchanged: nothing to do"
