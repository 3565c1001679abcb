"""The product, installed as its package would be, proven by really booting a host.

Each test boots a Debian 12 guest (systemd as PID 1, in systemd-nspawn) as
the host of the BCP38 two-ISP topology (topology.py), with netplan's YAML and
our stanza from examples/two-isps/.  What only a boot can show:

* the generator pulls ``multiuplink-configure.service`` in exactly when a
  stanza file exists, and the unit loads everything before systemd-networkd,
  so a client reaches the host's HTTP service through BOTH ISPs (a reply
  through the wrong ISP, or with the wrong source, is dropped by that ISP);
* a removed stanza leaves the host with netplan's plain networking (isp1
  only) and nothing of ours, half-applied or stale; a broken one the same,
  but for the unit, which failed with every error (file:line:col and a hint)
  in the journal, as ``systemctl --failed`` shows;
* every boot parses the stanza (nothing is cached), so any edit counts;
* what admins do to a running host (``netplan apply``, ``netplan generate`` +
  daemon-reload, restarting networkd, restarting or reloading nftables, an
  uplink bouncing) does not lose the second uplink, and ``systemctl reload``
  of our unit applies an edited stanza.

Every boot gets fresh namespaces, as a real reboot starts from empty kernel
state.  The guest is a container: it has no /dev/kmsg and no udev.

A failure message carries the guest's journal tail and nspawn's console.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

import pytest

from .boot import BOOT_REQUIREMENTS, Booted, Guest
from .guest_product import (
    BOTH,
    NETPLAN_FILE,
    NETPLAN_YAML,
    SETTLE,
    STANZA_YAML,
    TABLE_ROUTE,
    UNIT,
    WANTS_LINK,
    existing,
    exists,
    http_get,
    power_on,
    reachable,
    wait_configured,
    wait_isp1_only,
)
from .lan import HOST_LAN_ADDR, SERVER_ADDR, Lan, admin_tables
from .product import MAIN_FIRST_RULE, REPO, RULE, STANZA
from .topology import CLIENT_ADDR, Topology

pytestmark = BOOT_REQUIREMENTS

NETPLAN_ETH1 = "/run/systemd/network/10-netplan-eth1.network"
OUR_FILES = ("/run/systemd/network/*.d/50-multiuplink.conf", "/run/sysctl.d/50-multiuplink.conf",
             "/run/multiuplink/ruleset.*", "/run/systemd/generator*/*.wants/" + UNIT)
# Broken stanzas: (YAML text, the error and the hint the configure unit must report, file:line:col first).
BROKEN = {
    "yaml-syntax": (STANZA_YAML.replace("table: 101}", "table: 101"),
                    (f"/{STANZA}:7:11: invalid YAML: did not find expected ',' or '}}'",
                     "hint: check indentation, colons and quoting around this place")),
    "duplicate-mark": (STANZA_YAML.replace("mark: 2", "mark: 1"),
                       (f"/{STANZA}:7:37: mark 1 of uplink 'isp2' is already used by uplink 'isp1'",
                        "hint: give each uplink its own mark, or leave 'mark' out to have one allocated")),
}
NO_STATE = "/var/lib/multiuplink"  # the product keeps no state outside /run
ISP1_ONLY_PROBE = 3.0  # seconds each of wait_isp1_only's last probes may take here (a silent isp2 takes all)
# What `systemd-analyze security` may still find open in the unit's sandbox, and why; everything else it
# checks must be closed. Exposure levels: systemd's scale, 0 (safe) to 10 (exposed).
SANDBOX_NEEDS = {
    UNIT: ({
        "User=/DynamicUser=": "root: networkd's Reload over D-Bus; the files belong to root",
        "RestrictAddressFamilies=~AF_NETLINK": "nft, iptables-nft and ip speak netlink",
        "RestrictAddressFamilies=~AF_UNIX": "D-Bus and systemctl",
        "RestrictAddressFamilies=~AF_(INET|INET6)": "a legacy iptables needs an AF_INET socket (no AF_INET6)",
        "CapabilityBoundingSet=~CAP_NET_ADMIN": "loading netfilter rules",
        "CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW)": "CAP_NET_RAW, for a legacy iptables",
        "ProcSubset=": "rp_filter and tcp_fwmark_accept are in /proc/sys",
        "PrivateNetwork=": "it configures the host's network",
        "PrivateUsers=": "its capabilities must act in the host's user namespace",
        "DeviceAllow=": "ProtectClock= itself allows reading the RTC",
    }, 1.8),
}


# --- setting up ---------------------------------------------------------------

@contextlib.contextmanager
def product_guest(stanza: str | None = STANZA_YAML) -> Iterator[Guest]:
    """A guest with the project, an HTTP service, netplan's YAML and (optionally) our stanza."""
    with Guest() as guest:
        guest.install_project(REPO)
        guest.enable_http()
        guest.write(NETPLAN_FILE, NETPLAN_YAML, mode=0o600)
        if stanza is not None:
            guest.write(STANZA, stanza, mode=0o600)
        yield guest


# --- observing ----------------------------------------------------------------

def show(booted: Booted, unit: str, *properties: str) -> dict[str, str]:
    out = booted.run("systemctl", "show", "-p", ",".join(properties), unit).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def our_files(booted: Booted) -> list[str]:
    return existing(booted, OUR_FILES)


def our_state(booted: Booted) -> dict[str, str]:
    """Everything of ours the running guest has; empty on a host we never configured."""
    found = {}
    table = booted.run("nft", "list", "table", "inet", "multiuplink", check=False)
    if table.returncode == 0:
        found["nft table inet multiuplink"] = table.stdout
    rules = [line for line in booted.run("ip", "rule").stdout.splitlines() if re.search(r"lookup 10[12]\b", line)]
    if rules:
        found["ip rules"] = "\n".join(rules)
    for number in TABLE_ROUTE:
        routes = booted.run("ip", "route", "show", "table", number, check=False).stdout.strip()
        if routes:
            found[f"routes in table {number}"] = routes
    if files := our_files(booted):
        found["files"] = "\n".join(files)
    rp_filter = {name: booted.run("sysctl", "-n", f"net.ipv4.conf.{name}.rp_filter").stdout.strip()
                 for name in ("eth1", "eth2")}
    if set(rp_filter.values()) != {"1"}:  # the namespace default topology.py gives every link
        found["rp_filter"] = str(rp_filter)
    if booted.run("sysctl", "-n", "net.ipv4.tcp_fwmark_accept").stdout.strip() != "0":
        found["tcp_fwmark_accept"] = "not 0"
    unit = show(booted, UNIT, "ActiveState", "ExecMainStartTimestampMonotonic")
    if unit != {"ActiveState": "inactive", "ExecMainStartTimestampMonotonic": "0"}:
        found[UNIT] = str(unit)
    return found


# --- 1. the product at boot ---------------------------------------------------

def test_boot_with_stanza_answers_via_both_isps() -> None:
    with product_guest() as guest, power_on(guest) as (topo, booted):
        wait_configured(booted, topo, "after boot")
        for isp in ("isp1", "isp2"):
            assert http_get(topo, isp).startswith("200 "), f"GET / via {isp}"
        rules = booted.run("ip", "rule").stdout
        for isp, rule in RULE.items():
            assert re.search(rf"^1000:\s+from all {re.escape(rule)} proto static$", rules, re.M), (isp, rules)
            assert re.search(rf"^999:\s+from all {re.escape(MAIN_FIRST_RULE[isp])} proto static$", rules, re.M), rules
        table_102 = booted.run("ip", "route", "show", "table", "102").stdout
        assert "192.0.2.0/24 dev eth2 proto static scope link" in table_102
        assert "chain" in booted.run("nft", "list", "table", "inet", "multiuplink").stdout
        for name in ("eth1", "eth2"):
            assert booted.run("sysctl", "-n", f"net.ipv4.conf.{name}.rp_filter").stdout.strip() == "2"
        assert booted.run("sysctl", "-n", "net.ipv4.tcp_fwmark_accept").stdout.strip() == "1", "from our sysctl.d"
        ours = show(booted, UNIT, "ActiveState", "SubState", "Result", "ActiveEnterTimestampMonotonic")
        assert (ours["ActiveState"], ours["SubState"], ours["Result"]) == ("active", "exited", "success"), ours
        networkd = show(booted, "systemd-networkd.service", "ActiveState", "InactiveExitTimestampMonotonic")
        assert networkd["ActiveState"] == "active", networkd
        journal = booted.journal()
        assert 0 < int(ours["ActiveEnterTimestampMonotonic"]) <= int(networkd["InactiveExitTimestampMonotonic"]), (
            f"{UNIT} must have finished before systemd-networkd started: {ours} {networkd}")
        assert journal.index(f"Finished {UNIT}") < journal.index("Starting systemd-networkd.service")
        assert booted.run("readlink", WANTS_LINK).stdout.strip() == f"/usr/lib/systemd/system/{UNIT}"
        assert not exists(booted, NO_STATE), "state outside /run"
        assert "multiuplink-generator" not in journal
        exposures = {unit: sandbox(booted, unit) for unit in SANDBOX_NEEDS}
    print(f"\nboot {booted.boot_seconds:.2f} s, halt {booted.halt_seconds:.2f} s, exposure {exposures}")


def sandbox(booted: Booted, unit: str) -> float:
    """Check ``unit``'s sandbox with ``systemd-analyze security``: open only where needed; its exposure level."""
    out = booted.run("systemd-analyze", "security", "--no-pager", unit).stdout
    found = re.search(rf"Overall exposure level for {re.escape(unit)}: (\d+\.\d)", out)
    assert found, out
    needs, most = SANDBOX_NEEDS[unit]
    assert {line.split()[1] for line in out.splitlines() if line.startswith("\u2717")} == set(needs), out
    assert float(found.group(1)) <= most, out
    return float(found.group(1))


@pytest.mark.parametrize("iptables", ["nft", "legacy"])
def test_boot_with_the_iptables_backend_in_the_sandbox(iptables: str) -> None:
    """``backend: iptables`` through the unit's sandbox; a legacy iptables needs a raw AF_INET socket besides."""
    stanza = STANZA_YAML.replace("  multiuplink:\n", "  multiuplink:\n    backend: iptables\n")
    assert stanza != STANZA_YAML
    with product_guest(stanza) as guest:
        for name in ("iptables", "iptables-restore", "iptables-save"):
            link = guest.root / "etc/alternatives" / name
            link.unlink()
            link.symlink_to(f"/usr/sbin/{name.replace('iptables', f'iptables-{iptables}')}")
        with power_on(guest) as (topo, booted):
            def configured() -> bool:
                rules = booted.run("ip", "rule").stdout
                return all(f"{rule} proto static" in rules
                           for rule in (*RULE.values(), *MAIN_FIRST_RULE.values())) and all(
                    route in booted.run("ip", "route", "show", "table", number).stdout
                    for number, route in TABLE_ROUTE.items()) and reachable(topo) == BOTH
            booted.wait_for(configured, SETTLE, f"both ISPs answer with {iptables} iptables")
            assert booted.run("readlink", "-f", "/usr/sbin/iptables-restore").stdout.strip() == (
                f"/usr/sbin/xtables-{iptables}-multi")
            assert "-A PREROUTING -j MULTIUPLINK_PREROUTING" in booted.run("iptables-save", "-t", "mangle").stdout
            assert booted.run("nft", "list", "table", "inet", "multiuplink", check=False).returncode != 0


# --- 2. removing the stanza ---------------------------------------------------

def test_reboot_without_stanza_leaves_nothing_of_ours() -> None:
    with product_guest() as guest:
        with power_on(guest) as (topo, booted):
            wait_configured(booted, topo, "on the first boot")
        guest.remove(STANZA)
        with power_on(guest) as (topo, booted):
            wait_isp1_only(booted, topo, "after rebooting without the stanza", probe_timeout=ISP1_ONLY_PROBE)
            assert our_state(booted) == {}


# --- 3. a broken stanza -------------------------------------------------------

def failed_unit_only(booted: Booted) -> None:
    """Nothing of ours but the generator's link and the configure unit, which failed before it changed anything."""
    state = our_state(booted)
    assert set(state) == {UNIT, "files"} and state["files"].split() == [WANTS_LINK], state
    unit = show(booted, UNIT, "ActiveState", "Result", "ExecMainStatus")
    assert unit == {"ActiveState": "failed", "Result": "exit-code", "ExecMainStatus": "1"}, unit
    failed = booted.run("systemctl", "--failed", "--plain", "--no-legend", "--no-pager").stdout
    assert [word for word in failed.split() if word.endswith(".service")] == [UNIT], failed
    assert booted.system_state() == "degraded"


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_stanza_boots_plain_netplan_and_fails_the_unit(case: str) -> None:
    """The admin must be able to find out why the second uplink does not work: file:line:col in the journal."""
    text, (error, hint) = BROKEN[case]
    with product_guest(text) as guest, power_on(guest) as (topo, booted):
        wait_isp1_only(booted, topo, f"with a broken stanza ({case})", probe_timeout=ISP1_ONLY_PROBE)
        assert show(booted, "systemd-networkd.service", "ActiveState")["ActiveState"] == "active"
        failed_unit_only(booted)
        journal = booted.run("journalctl", "-b", "-u", UNIT, "--no-pager", "-o", "cat").stdout.splitlines()
        assert error in journal and hint in journal, f"{UNIT} must report {error!r} and {hint!r}: {journal}"
        assert "multiuplink: 1 error; nothing was written" in journal, journal
        assert "multiuplink-generator" not in booted.journal(), "the generator never parses, so never complains"
        kmsg = booted.run("sh", "-c", "ls -l /dev/kmsg && cat /dev/kmsg", check=False).stdout
        assert booted.run("test", "-f", "/dev/kmsg", check=False).returncode != 0, (
            f"/dev/kmsg is a regular file, created by a log writer that fell into a missing /dev/kmsg:\n{kmsg}")


# --- 4. every boot parses ------------------------------------------------------

def test_every_boot_parses_the_stanza_even_after_a_same_stat_edit() -> None:
    """Nothing decides from file metadata: an edit that keeps size, mtime and inode is refused at the next boot,
    and the fix is applied at the one after, whatever its mtime."""
    with product_guest() as guest:
        with power_on(guest) as (topo, booted):
            wait_configured(booted, topo, "on the first boot")
        stanza = guest.root / STANZA
        before = stanza.stat()
        with stanza.open("r+") as stream:
            stream.write(BROKEN["duplicate-mark"][0])
        os.utime(stanza, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = stanza.stat()
        assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
        with power_on(guest) as (topo, booted):
            wait_isp1_only(booted, topo, "with a same-stat invalid stanza", probe_timeout=ISP1_ONLY_PROBE)
            failed_unit_only(booted)
            assert BROKEN["duplicate-mark"][1][0] in booted.journal(), f"{UNIT} must report what it refused"

        with stanza.open("r+") as stream:
            stream.write(STANZA_YAML)
        os.utime(stanza, ns=(before.st_atime_ns, before.st_mtime_ns))
        with power_on(guest) as (topo, booted):
            wait_configured(booted, topo, "after the fix, with the old mtime again")


# --- 5. faults on a running host ----------------------------------------------

# The guest has no udev (a container runs none, so the base tree leaves the package out). `netplan apply`
# calls udevadm only to re-run .link files and rename interfaces, which these veths never need; without
# any udevadm it dies of FileNotFoundError before it restarts networkd.
UDEVADM_STUB = "#!/bin/sh\n# test stub: no udev in this container\nexit 0\n"


@contextlib.contextmanager
def configured_host(nftables_service: bool = False, udevadm_stub: bool = False) -> Iterator[tuple[Topology, Booted]]:
    with product_guest() as guest:
        if nftables_service:
            guest.enable_unit("nftables.service", "sysinit.target")  # its [Install] WantedBy=
        if udevadm_stub:
            assert not (guest.root / "usr/bin/udevadm").exists(), "the guest has udev now: drop the stub"
            guest.write("usr/bin/udevadm", UDEVADM_STUB, mode=0o755)
        with power_on(guest) as (topo, booted):
            wait_configured(booted, topo, "after boot")
            yield topo, booted


def test_fault_netplan_apply() -> None:
    with configured_host(udevadm_stub=True) as (topo, booted):
        dropins = [path for path in our_files(booted) if path.startswith("/run/systemd/network/")]
        assert len(dropins) == 2, dropins
        netplan_file = booted.run("stat", "-c", "%i", NETPLAN_ETH1).stdout
        booted.run("netplan", "apply", timeout=60)
        assert booted.run("stat", "-c", "%i", NETPLAN_ETH1).stdout != netplan_file, "netplan did not regenerate"
        assert [path for path in our_files(booted) if path.startswith("/run/systemd/network/")] == dropins, (
            "netplan apply removed our drop-ins")
        booted.wait_for(lambda: "eth2: Reconfiguring with" in booted.journal(), 10, "networkd to reconfigure")
        wait_configured(booted, topo, "after netplan apply")


def test_fault_netplan_generate_and_daemon_reload() -> None:
    with configured_host() as (topo, booted):
        netplan_file = booted.run("stat", "-c", "%i", NETPLAN_ETH1).stdout
        booted.run("netplan", "generate", timeout=60)
        assert booted.run("stat", "-c", "%i", NETPLAN_ETH1).stdout != netplan_file, "netplan did not regenerate"
        booted.run("systemctl", "daemon-reload", timeout=60)
        assert show(booted, UNIT, "ActiveState")["ActiveState"] == "active"
        assert WANTS_LINK in our_files(booted), (
            "the generator, re-run by daemon-reload, must still pull the unit in")
        wait_configured(booted, topo, "after netplan generate and daemon-reload")


def test_fault_restart_networkd() -> None:
    with configured_host() as (topo, booted):
        booted.run("systemctl", "restart", "systemd-networkd.service")
        wait_configured(booted, topo, "after restarting systemd-networkd")


def test_fault_uplink_bounces() -> None:
    with configured_host() as (topo, booted):
        booted.run("ip", "link", "set", "eth2", "down")
        booted.wait_for(lambda: not booted.run("ip", "route", "show", "table", "102").stdout.strip(), 10,
                        "the kernel to drop table 102's routes with eth2 down")
        booted.run("ip", "link", "set", "eth2", "up")
        wait_configured(booted, topo, "after eth2 went down and up")


def test_fault_restart_nftables_reloads_our_table() -> None:
    with configured_host(nftables_service=True) as (topo, booted):
        tables = booted.run("nft", "list", "tables").stdout
        assert "table inet filter" in tables and "table inet multiuplink" in tables, tables
        started = show(booted, UNIT, "ExecMainStartTimestampMonotonic")["ExecMainStartTimestampMonotonic"]
        booted.run("systemctl", "restart", "nftables.service")
        wait_configured(booted, topo, "after restarting nftables (its 'flush ruleset' deletes our table)")
        assert "table inet filter" in booted.run("nft", "list", "tables").stdout, "nftables.conf's own table"
        assert show(booted, UNIT, "ExecMainStartTimestampMonotonic")["ExecMainStartTimestampMonotonic"] != started, (
            f"PartOf=nftables.service must have restarted {UNIT}")


def test_fault_reload_nftables_reloads_our_table() -> None:
    """``systemctl reload nftables`` runs the same ``nft -f /etc/nftables.conf``, so the same 'flush ruleset'."""
    with configured_host(nftables_service=True) as (topo, booted):
        booted.run("systemctl", "reload", "nftables.service")
        wait_configured(booted, topo, "after reloading nftables (its 'flush ruleset' deletes our table)")


# A router: netplan's LAN interface, IP forwarding, and the admin's /etc/nftables.conf with port forwards.
ROUTER_FILES = {
    "etc/netplan/60-lan.yaml": f"network:\n  version: 2\n  renderer: networkd\n  ethernets:\n"
                               f"    lan0:\n      addresses: [{HOST_LAN_ADDR}/24]\n",
    "etc/sysctl.d/60-router.conf": "net.ipv4.ip_forward = 1\n",
    "etc/nftables.conf": "#!/usr/sbin/nft -f\n\nflush ruleset\n\n" + admin_tables("lan0"),
}


def test_fault_restart_nftables_keeps_port_forwards() -> None:
    """A router forwards port 8080 of both uplinks to a LAN server. ``systemctl restart nftables`` flushes the
    ruleset and loads the admin's tables again: both forwards answer again, and a connection forwarded via isp2
    before the restart goes on (conntrack keeps its mark through 'flush ruleset')."""
    with product_guest() as guest:
        for path, text in ROUTER_FILES.items():
            guest.write(path, text, mode=0o600)
        guest.enable_unit("nftables.service", "sysinit.target")
        # The LAN's link appears after boot, as a USB NIC's or a container's would; networkd configures it.
        with power_on(guest) as (topo, booted), Lan(topo, "veth", configure_host=False) as lan:
            wait_configured(booted, topo, "after boot")
            booted.wait_for(lambda: lan.forwards(timeout=1) == BOTH, SETTLE, "both ISPs' forwards answer after boot")
            with lan.keep_connection("isp2") as kept:
                answered = f"{SERVER_ADDR} {CLIENT_ADDR}"
                assert kept.get() == answered
                booted.run("systemctl", "restart", "nftables.service")
                wait_configured(booted, topo, "after restarting nftables (its 'flush ruleset' deletes our table)")
                assert "table ip nat" in booted.run("nft", "list", "tables").stdout, "the admin's NAT table is back"
                assert lan.forwards() == BOTH
                assert kept.get() == answered, "the connection forwarded before the restart"


# (f) our own ExecReload=, the documented way to apply an edited stanza through systemd.
def test_reload_unit_applies_an_edited_stanza() -> None:
    """``systemctl reload multiuplink-configure`` (its ExecReload=) on a running host, after removing isp2."""
    with configured_host() as (topo, booted):
        edited = STANZA_YAML.replace("      isp2: {interface: eth2, mark: 2, table: 102}\n", "")
        assert edited != STANZA_YAML
        (booted.root / STANZA).write_text(edited)
        booted.run("systemctl", "reload", UNIT)
        assert our_files(booted).count("/run/systemd/network/10-netplan-eth2.network.d/50-multiuplink.conf") == 0

        def isp2_gone() -> bool:
            rules = booted.run("ip", "rule").stdout
            return RULE["isp2"] not in rules and RULE["isp1"] in rules and not booted.run(
                "ip", "route", "show", "table", "102").stdout.strip()
        booted.wait_for(isp2_gone, SETTLE, "networkd to drop isp2's rule and table 102 after the reload")
        wait_isp1_only(booted, topo, "after removing isp2 and reloading", probe_timeout=ISP1_ONLY_PROBE)


# --- 6. no stanza at all ------------------------------------------------------

def test_no_stanza_generator_does_nothing() -> None:
    with product_guest(stanza=None) as guest, power_on(guest) as (topo, booted):
        wait_isp1_only(booted, topo, "without a stanza", probe_timeout=ISP1_ONLY_PROBE)
        assert booted.run("sh", "-c", f"ls /run/systemd/generator*/*.wants/{UNIT}", check=False).returncode != 0
        assert our_state(booted) == {}
        assert not exists(booted, NO_STATE)
        assert booted.run("test", "-f", "/dev/kmsg", check=False).returncode != 0, "the generator wrote a log"
