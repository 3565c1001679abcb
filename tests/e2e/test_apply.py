"""``multiuplink apply`` against a real systemd-networkd over real D-Bus, proven with real TCP.

The host sits behind two ISPs that drop spoofed sources (BCP38): a reply that
leaves through the wrong ISP, or with the wrong source, never arrives.
"""

from __future__ import annotations

import threading
from pathlib import Path

from . import netns
from .product import MAIN_FIRST_RULE, RULE, TABLE_ROUTE, Host


def test_apply_makes_both_isps_answer_and_second_apply_is_a_noop(host: Host) -> None:
    host.wait_ipv6()
    assert host.reachable() == {"isp1": True, "isp2": False}, "netplan alone answers only via the main default"
    assert host.reachable(6, timeout=1.0) == {"isp1": True, "isp2": False}, "over IPv6 too"
    out = host.multiuplink("apply").stdout
    assert "changed netfilter" in out
    host.wait_uplinks("isp1", "isp2")
    assert host.reachable() == {"isp1": True, "isp2": True}
    assert host.reachable(6) == {"isp1": True, "isp2": True}, "the example is dual stack: both families"
    assert "2001:db8:2::/64 dev eth2" in netns.ip(host.topology.host_ns, "-6", "route", "show", "table", "102").stdout
    assert RULE["isp1"] in host.rules() and "proto static" in host.rules(), "rules are owned by networkd"
    assert f"999:\tfrom all {MAIN_FIRST_RULE['isp2']} proto static" in host.rules()
    for table, route in TABLE_ROUTE.values():
        assert route in host.table(table)
    assert "192.0.2.0/24 dev eth2 proto static scope link" in host.table("102")
    assert host.rp_filter("eth1") == host.rp_filter("eth2") == "2"
    assert netns.read_sysctl(host.topology.host_ns, "net.ipv4.tcp_fwmark_accept") == "1"
    assert "net.ipv4.tcp_fwmark_accept" in out
    assert host.multiuplink("apply").stdout.strip() == "unchanged: nothing to do"


def test_removing_an_uplink_removes_all_of_it(host: Host) -> None:
    host.multiuplink("apply")
    host.wait_uplinks("isp1", "isp2")
    host.stanza.write_text(host.stanza.read_text().replace("      isp2: {interface: eth2, mark: 2, table: 102}\n", ""))
    out = host.multiuplink("apply").stdout
    assert "changed run/systemd/network/10-netplan-eth2.network.d/50-multiuplink.conf" in out
    netns.wait_for(lambda: RULE["isp2"] not in host.rules() and not host.table("102").strip(), 15,
                   "networkd to drop isp2's rule and table", diagnose=host.networkd.diagnose)
    assert RULE["isp1"] in host.rules()
    assert "restore_isp2" not in host.nft() and "restore_isp1" in host.nft()
    assert host.rp_filter("eth2") == "1", "back to the namespace default"
    assert host.reachable() == {"isp1": True, "isp2": False}
    assert netns.read_sysctl(host.topology.host_ns, "net.ipv4.tcp_fwmark_accept") == "1", "isp1 still needs it"
    host.stanza.unlink()
    host.multiuplink("apply")
    assert netns.read_sysctl(host.topology.host_ns, "net.ipv4.tcp_fwmark_accept") == "0", "what sysctl.d gives"
    netns.wait_for(lambda: "lookup 101" not in host.rules(), 15, "isp1's rule to go")
    assert "multiuplink" not in host.nft()
    assert not list((host.root / "run").rglob("*multiuplink*.conf"))


def test_invalid_stanza_changes_nothing(host: Host) -> None:
    host.multiuplink("apply")
    host.wait_uplinks("isp1", "isp2")
    before = (host.rules(), host.nft(), host.table("102"))
    host.stanza.write_text(host.stanza.read_text().replace("mark: 2", "mark: 1"))
    done = host.multiuplink("apply", check_code=1)
    assert "uplinks.yaml:7:37: mark 1 of uplink 'isp2' is already used by uplink 'isp1'" in done.stderr
    assert (host.rules(), host.nft(), host.table("102")) == before
    assert host.reachable() == {"isp1": True, "isp2": True}


def test_failed_ruleset_load_rolls_everything_back(host: Host, tmp_path: Path) -> None:
    host.multiuplink("apply")
    host.wait_uplinks("isp1", "isp2")
    before = (host.rules(), host.nft(), sorted(p.read_text() for p in (host.root / "run").rglob("*.conf")))
    broken = tmp_path / "bin"
    broken.mkdir()
    (broken / "nft").write_text("#!/bin/sh\necho 'Error: injected failure' >&2\nexit 1\n")
    (broken / "nft").chmod(0o755)
    host.stanza.write_text(host.stanza.read_text().replace("      isp2: {interface: eth2, mark: 2, table: 102}\n", ""))
    done = host.multiuplink("apply", path=f"{broken}:/usr/sbin:/usr/bin:/sbin:/bin", check_code=3)
    assert "injected failure" in done.stderr and "previous configuration was restored" in done.stderr
    after = (host.rules(), host.nft(), sorted(p.read_text() for p in (host.root / "run").rglob("*.conf")))
    assert after == before
    assert host.rp_filter("eth2") == "2"
    assert host.reachable() == {"isp1": True, "isp2": True}


def test_failing_ip_while_networkd_converges_rolls_everything_back(host: Host, tmp_path: Path) -> None:
    """``ip rule show`` fails after networkd was told (the third call: the plan lists both families' rules
    before): everything is undone."""
    host.multiuplink("apply")
    host.wait_uplinks("isp1", "isp2")
    before = (sorted(host.rules().splitlines()), host.nft(),
              sorted(p.read_text() for p in (host.root / "run").rglob("*.conf")))
    wrapped = tmp_path / "bin"
    wrapped.mkdir()
    (wrapped / "ip").write_text(f"""#!/bin/sh
case "$*" in *"rule show"*)
    echo x >> {tmp_path}/rule-shows
    [ "$(wc -l < {tmp_path}/rule-shows)" = 3 ] && {{ echo 'injected: cannot list rules' >&2; exit 2; }};;
esac
exec /usr/sbin/ip "$@"
""")
    (wrapped / "ip").chmod(0o755)
    host.stanza.write_text(host.stanza.read_text().replace("      isp2: {interface: eth2, mark: 2, table: 102}\n", ""))
    done = host.multiuplink("apply", path=f"{wrapped}:/usr/sbin:/usr/bin:/sbin:/bin", check_code=3)
    assert "injected: cannot list rules" in done.stderr and "previous configuration was restored" in done.stderr
    assert "Traceback" not in done.stderr
    host.wait_uplinks("isp1", "isp2")
    after = (sorted(host.rules().splitlines()), host.nft(),
             sorted(p.read_text() for p in (host.root / "run").rglob("*.conf")))
    assert after == before, "the same rules (networkd may list them in another order), ruleset and files"
    assert host.reachable() == {"isp1": True, "isp2": True}


def test_networkd_not_running_is_said_clearly(host: Host) -> None:
    done = host.multiuplink("apply", bus=False, check_code=4)
    assert "cannot reach the system D-Bus" in done.stderr or "not running" in done.stderr
    assert "networkd installs the rules and routes when it starts" in done.stderr


def test_concurrent_applies_are_serialised(host: Host) -> None:
    results = []
    threads = [threading.Thread(target=lambda: results.append(host.multiuplink("apply", check_code=None)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.returncode for r in results) == [0, 0, 0], [r.stderr for r in results]
    assert sum("changed netfilter" in r.stdout for r in results) == 1, "exactly one run did the work"
    host.wait_uplinks("isp1", "isp2")
    assert host.reachable() == {"isp1": True, "isp2": True}
