"""Our reader of netplan's YAML against netplan's own generator (issue 9).

Both read the same root: ``/lib/netplan/generate --root-dir`` writes its
``10-netplan-<id>.network`` files, and for every interface it renders for
systemd-networkd we compare what our drop-ins and routes rest on: that we know
the same netplan ID (our drop-in directory is ``10-netplan-<id>.network.d``), the
kernel name (``[Match] Name=``; a pattern, a MAC or nothing is an unknown name),
the addresses in netplan's order, and every default route (family, gateway,
table, metric). Where netplan fails (or crashes: 0.106 segfaults on some VRF
routes) there is nothing to compare; we may accept or refuse, and the counts say
how often that happened.

Inputs: every file of ``../shared/netplan-corpus/valid``, and a fixed-seed
hypothesis sample of multi-file configs spread over /lib, /etc and /run
(``MULTIUPLINK_DIFF_EXAMPLES``, default 300; see tests/README.md). A difference
fails with the files of the smallest config hypothesis finds.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from collections import namedtuple
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from multiuplink_networkd import paths
from multiuplink_networkd.config.netplan import read_netplan
from multiuplink_networkd.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Files = dict[str, str | None]
    """Relative path: YAML text, or None for a link to /dev/null."""

GENERATE = "/lib/netplan/generate"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "netplan-corpus" / "valid"
EXAMPLES = int(os.environ.get("MULTIUPLINK_DIFF_EXAMPLES", "300"))
NEEDS_NETPLAN = pytest.mark.skipif(not os.access(GENERATE, os.X_OK), reason=f"netplan's {GENERATE} is not installed")
GLOB = frozenset("*?[")
MAIN = 254
UNKNOWN = "unknown"
"""netplan's files cannot tell: a member of a VRF that NetworkManager renders has no table in them."""
KERNEL_METRIC = {4: 0, 6: 1024}


class View(namedtuple("View", "name addresses defaults")):
    """What one side makes of one netplan ID: kernel name, addresses in order, default routes."""

    __slots__ = ()


# --- netplan's side: the .network files it writes ----------------------------------------------------------

def sections(text: str) -> list[tuple[str, dict[str, list[str]]]]:
    """An INI file of systemd's kind, repeated sections and keys kept in order."""
    found: list[tuple[str, dict[str, list[str]]]] = []
    for line in text.splitlines():
        if line.startswith("[") and line.endswith("]"):
            found.append((line[1:-1], {}))
        elif "=" in line and found:
            key, value = line.split("=", 1)
            found[-1][1].setdefault(key, []).append(value)
    return found


def netplan_view(root: Path) -> dict[str, View] | None:
    """Per ``.network`` file netplan writes, what it says; None when netplan fails."""
    shutil.rmtree(root / "run/systemd", ignore_errors=True)
    done = subprocess.run([GENERATE, "--root-dir", str(root)], capture_output=True, check=False)
    if done.returncode != 0:
        return None
    directory = root / "run/systemd/network"
    files = {path.name: path.read_text() for path in directory.glob("10-netplan-*") if path.is_file()}
    vrf_tables = {}
    for name, text in files.items():
        if name.endswith(".netdev"):
            for section, keys in sections(text):
                if section == "VRF":
                    vrf_tables[name.removeprefix("10-netplan-").removesuffix(".netdev")] = int(keys["Table"][-1])
    return {name: network_view(sections(text), vrf_tables) for name, text in files.items() if name.endswith(".network")}


def network_view(parsed: list[tuple[str, dict[str, list[str]]]], vrf_tables: dict[str, int]) -> View:
    match = next((keys for section, keys in parsed if section == "Match"), {})
    names = match.get("Name", [])
    name = names[-1] if names else None
    network = next((keys for section, keys in parsed if section == "Network"), {})
    vrf = network.get("VRF", [None])[-1]
    if vrf and vrf not in vrf_tables:
        table: int | str = UNKNOWN
    else:
        table = vrf_tables[vrf] if vrf else MAIN
    addresses = list(network.get("Address", []))
    addresses += [keys["Address"][-1] for section, keys in parsed if section == "Address"]
    defaults: set[tuple[int, str | None, int | str, int]] = set()
    for written in network.get("Gateway", []):
        gateway = ipaddress.ip_address(written)
        defaults.add((gateway.version, str(gateway), table, KERNEL_METRIC[gateway.version]))
    for section, keys in parsed:
        if section != "Route" or keys.get("Type", ["unicast"])[-1] != "unicast":
            continue
        destination = ipaddress.ip_network(keys["Destination"][-1], strict=False)
        if destination.prefixlen == 0:
            via = keys.get("Gateway", [None])[-1]
            defaults.add((destination.version, None if via is None else str(ipaddress.ip_address(via)),
                          int(keys["Table"][-1]) if "Table" in keys else table,
                          int(keys.get("Metric", [KERNEL_METRIC[destination.version]])[-1])))
    return View(None if name is None or GLOB.intersection(name) else name,
                tuple(dict.fromkeys(str(ipaddress.ip_interface(a)) for a in addresses)),
                UNKNOWN if table == UNKNOWN else frozenset(defaults))


# --- our side -----------------------------------------------------------------------------------------------

def our_view(root: Path) -> dict[str, View]:
    """Per ``.network`` file our drop-in directory would extend (for every ID we take as rendered by networkd),
    what our reader found. Raises ConfigError."""
    facts = read_netplan(str(root))
    return {Path(paths.networkd_dropin(netplan_id)).parent.name.removesuffix(".d"): View(
        d.name, tuple(str(a) for a in d.addresses), frozenset(
            (r.family, None if r.gateway is None else str(r.gateway), r.table, r.metric) for r in d.default_routes))
        for netplan_id, d in facts.interfaces.items() if d.renderer == "networkd" and d.kind != "nm-devices"}


def deliberate(field: str, ours: Any, theirs: Any) -> str | None:
    """Why a difference is kept on purpose, or None."""
    if field == "name" and isinstance(ours, str) and not ours.isprintable():
        return "a kernel name with a control character: netplan writes a broken [Match], we refuse it for an uplink"
    if field == "defaults" and theirs == UNKNOWN:
        return "a member of a VRF rendered by NetworkManager: netplan's files do not say the table"
    return None


class Tally:
    """How many configs and interfaces were compared, how many configs netplan refused, the differences kept."""

    def __init__(self) -> None:
        self.configs = self.interfaces = self.refused = self.refused_by_both = 0
        self.kept: dict[str, int] = {}

    def __repr__(self) -> str:
        kept = "".join(f"; kept on purpose {count}x: {reason}" for reason, count in sorted(self.kept.items()))
        return (f"{self.configs} configs ({self.interfaces} interfaces) compared; netplan refused {self.refused} "
                f"more ({self.refused_by_both} refused by us too){kept}")


def compare(root: Path, tally: Tally) -> list[str]:
    """Every difference between netplan's output and our reading of ``root``."""
    theirs = netplan_view(root)
    try:
        ours = our_view(root)
    except ConfigError as error:
        if theirs is None:
            tally.refused += 1
            tally.refused_by_both += 1
            return []
        return [f"we refuse what netplan accepts: {error.format()}"]
    if theirs is None:
        tally.refused += 1
        return []
    tally.configs += 1
    tally.interfaces += len(theirs)
    differences = [f"{network}: netplan does not write it, our drop-in would extend nothing"
                   for network in sorted(set(ours) - set(theirs))]
    differences += [f"{network}: written by netplan, unknown to us" for network in sorted(set(theirs) - set(ours))]
    for network in sorted(set(ours) & set(theirs)):
        for field in View._fields:
            mine, its = getattr(ours[network], field), getattr(theirs[network], field)
            reason = deliberate(field, mine, its) if mine != its else None
            if reason:
                tally.kept[reason] = tally.kept.get(reason, 0) + 1
            elif mine != its:
                differences.append(f"{network}: {field}: ours {mine!r}, netplan's {its!r}")
    return differences


def write_root(root: Path, files: Files) -> None:
    shutil.rmtree(root, ignore_errors=True)
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            path.symlink_to("/dev/null")
        else:
            path.write_text(text)
            path.chmod(0o600)  # else netplan warns on every run


def shown(files: Files) -> str:
    return "\n".join(f"--- {relative}" + (" -> /dev/null" if text is None else f"\n{text}")
                     for relative, text in sorted(files.items()))


# --- (1) the corpus -------------------------------------------------------------------------------------------

@NEEDS_NETPLAN
def test_corpus_agrees_with_netplan(tmp_path: Path) -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"netplan corpus not found at {CORPUS} (CI copies shared/ beside the repo)")
    tally = Tally()
    failures = []
    paths = sorted(CORPUS.glob("*.yaml"))
    for path in paths:
        root = tmp_path / path.stem
        write_root(root, {"etc/netplan/50.yaml": path.read_text()})
        failures += [f"{path.name}: {difference}" for difference in compare(root, tally)]
    print(f"netplan corpus: {tally}")
    assert not failures, "\n".join(failures)
    assert tally.configs == len(paths) > 150, f"netplan refused a file it accepted when the corpus was made: {tally}"


# --- (2) generated multi-file configs ---------------------------------------------------------------------------

V4 = [f"10.0.{n}.{h}" for n in (1, 2) for h in (1, 8, 9)]
V6 = [f"2001:db8:{n}::{h}" for n in (1, 2) for h in (1, 8)]
INTEGERS = st.sampled_from(["100", "+5", '" 7"', '"\\t9"', "010", "0", '""', "4294967295", "200"])
TABLES = st.sampled_from(["200", "+201", '" 202"', "0", "254"])
BOOLEANS = st.sampled_from(["true", "yes", "on", "false", "no", "n", "Y"])
RENDERERS = st.sampled_from(["networkd", "NetworkManager"])


def quoted(text: str) -> str:
    return f'"{text}"'


@st.composite
def address_entries(draw: Any) -> str:
    """An address in each of netplan's forms: plain, with options, or a mapping of several (the first counts)."""
    family = draw(st.sampled_from((V4, V6)))
    prefix = "/24" if family is V4 else "/64"
    first, second = (quoted(draw(st.sampled_from(family)) + prefix) for _ in range(2))
    entry: str = draw(st.sampled_from([first, f"{{{first}: {{label: x}}}}", f"{{{first}: {{}}, {second}: {{}}}}"]))
    return entry


@st.composite
def routes(draw: Any) -> str:
    family = draw(st.sampled_from((4, 6)))
    to = draw(st.sampled_from(["default", "0.0.0.0/0", "10.7.0.0/16"] if family == 4 else
                              ["default", "::/0", "2001:db8:7::/48"]))
    keys = [f"to: {quoted(to)}"]
    if to != "default" and draw(st.booleans()) and to.endswith("/0"):
        keys.append("scope: link")
    else:
        keys.append(f"via: {quoted(draw(st.sampled_from(V4 if family == 4 else V6)))}")
    for key, values in (("metric", INTEGERS), ("table", TABLES), ("on-link", BOOLEANS)):
        if draw(st.booleans()):
            keys.append(f"{key}: {draw(values)}")
    if draw(st.integers(0, 4)) == 0:
        keys.append(f"from: {quoted(draw(st.sampled_from(V4 if family == 4 else V6)))}")
    return "{" + ", ".join(keys) + "}"


@st.composite
def bodies(draw: Any, kind: str, member: str | None) -> str:
    """One definition's body in flow style: the keys we read and a few we do not."""
    keys = []
    if kind == "ethernets" and draw(st.integers(0, 2)) == 0:
        match = draw(st.sampled_from(["{name: eth9}", "{name: 'en*'}", "{macaddress: '00:11:22:33:44:55'}", "{}",
                                      "{driver: e1000}"]))
        keys.append(f"match: {match}")
        if draw(st.booleans()):
            keys.append(f"set-name: {draw(st.sampled_from(['wan0', 'lan1', quoted('')]))}")
    if kind == "vlans":
        keys += [f"id: {draw(st.integers(1, 4094))}", f"link: {member}"]
    elif member:
        keys.append(f"interfaces: [{member}]")
    if kind == "vrfs":  # netplan 0.106 takes no addresses or DHCP there, and crashes on some routes
        return "{" + ", ".join([*keys, f"table: {draw(st.sampled_from(['1005', '+1006', quoted(' 1007')]))}"]) + "}"
    if draw(st.booleans()):
        keys.append(f"addresses: [{', '.join(draw(st.lists(address_entries(), max_size=3)))}]")
    if draw(st.integers(0, 5)) == 0:
        keys.append(f"gateway4: {draw(st.sampled_from(V4))}")
    if draw(st.integers(0, 5)) == 0:
        keys.append(f"gateway6: {quoted(draw(st.sampled_from(V6)))}")
    if draw(st.booleans()):
        keys.append(f"routes: [{', '.join(draw(st.lists(routes(), max_size=3)))}]")
    for key in ("dhcp4", "dhcp6"):
        if draw(st.integers(0, 3)) == 0:
            keys.append(f"{key}: {draw(BOOLEANS)}")
    if draw(st.integers(0, 5)) == 0:
        keys.append(f"renderer: {draw(RENDERERS)}")
    return "{" + ", ".join(keys) + "}"


ETHERNETS = ["eth0", "eth1", "wan"]
VIRTUAL = {"vlans": "vlan10", "bonds": "bond0", "bridges": "br0", "vrfs": "vrf1"}


@st.composite
def documents(draw: Any) -> str:
    """One netplan file: its ethernets, virtual devices on them, repeated IDs and keys, a trailing ---.

    Each ethernet is the member of one bond, bridge or VRF at most, as netplan requires.
    """
    lines = ["network:", "  version: 2"]
    if draw(st.integers(0, 3)) == 0:
        lines.append(f"  renderer: {draw(RENDERERS)}")
    ethernets = draw(st.lists(st.sampled_from(ETHERNETS), min_size=1, max_size=3, unique=True))
    free = list(ethernets)
    kinds = ["ethernets", *draw(st.lists(st.sampled_from(sorted(VIRTUAL)), max_size=2, unique=True))]
    for kind in draw(st.permutations(kinds)):
        lines.append(f"  {kind}:")
        if draw(st.integers(0, 4)) == 0:
            lines.append(f"    renderer: {draw(RENDERERS)}")
        if kind == "ethernets":
            for netplan_id in draw(st.lists(st.sampled_from(ethernets), min_size=len(ethernets),
                                            max_size=len(ethernets) + 1)):
                lines.append(f"    {netplan_id}: {draw(bodies(kind, None))}")
            continue
        member = ethernets[0] if kind == "vlans" else free.pop() if free and draw(st.booleans()) else None
        lines.append(f"    {VIRTUAL[kind]}: {draw(bodies(kind, member))}")
    end: str = draw(st.sampled_from(["", "", "---\n", "...\n"]))
    return "\n".join(lines) + "\n" + end


@st.composite
def configs(draw: Any) -> Files:
    """One to four files over /lib, /etc and /run: same names mask each other, some hidden, some links to /dev/null."""
    files: Files = {}
    for _ in range(draw(st.integers(1, 4))):
        directory = draw(st.sampled_from(["lib/netplan", "etc/netplan", "run/netplan"]))
        name = draw(st.sampled_from(["10-base", "50-cloud", "90-override", ".hidden"]))
        files[f"{directory}/{name}.yaml"] = None if draw(st.integers(0, 5)) == 0 else draw(documents())
    return files


@NEEDS_NETPLAN
@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
@given(files=configs())
def test_generated_configs_agree_with_netplan(files: Files, tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_root(root, files)
    differences = compare(root, TALLY)
    assert not differences, "\n".join(differences) + "\n" + shown(files)


TALLY = Tally()


@NEEDS_NETPLAN
def test_generated_configs_mostly_reach_a_comparison() -> None:
    """Runs after the sample (same module, in order): it must not be refused by netplan wholesale."""
    print(f"generated: {TALLY}")
    if TALLY.configs + TALLY.refused:
        assert TALLY.configs >= (TALLY.configs + TALLY.refused) // 2, TALLY
