"""The reader of netplan's own YAML: every real config in the shared corpus, then each rule on its own."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import textwrap
from pathlib import Path

import pytest
import yaml

from multiuplink_networkd.config.netplan import NetplanInterface, read_netplan
from multiuplink_networkd.errors import ConfigError, Position

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "netplan-corpus"
DEFAULT_TO = {4: ("default", "0.0.0.0/0"), 6: ("default", "::/0")}


def corpus_rows() -> list[dict[str, str]]:
    index = CORPUS / "INDEX.tsv"
    if not index.is_file():
        return []
    header, *lines = index.read_text().splitlines()
    return [dict(zip(header.split("\t"), line.split("\t"), strict=True)) for line in lines]


ROWS = corpus_rows()
NO_CORPUS = pytest.mark.skip(reason=f"netplan corpus not found at {CORPUS} (CI copies shared/ beside the repo)")
ALL_ROWS = [pytest.param(row, id=row["file"]) for row in ROWS] or [pytest.param({}, marks=NO_CORPUS)]
GATEWAY_ROWS = ([pytest.param(row, id=row["file"]) for row in ROWS if row["default_route"] == "yes"]
                or [pytest.param({}, marks=NO_CORPUS)])


REPEATED_SECTIONS = {
    "valid/114-common-fwdecl-feature-blend.yaml": {"ethernets": 3, "vlans": 1, "bonds": 1, "bridges": 2},
}
"""INDEX.tsv counted these with a last-key-wins YAML loader; netplan 0.106 reads both ``bridges:`` and both
``ethernets:`` blocks (``generate`` writes br0, br1, eth0, eth1 and eth2)."""


def make_root(tmp_path: Path, files: dict[str, str]) -> str:
    """A root holding the given netplan files (relative path: YAML text)."""
    for relative, text in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return str(tmp_path)


def read_one(tmp_path: Path, text: str) -> dict[str, NetplanInterface]:
    facts = read_netplan(make_root(tmp_path, {"etc/netplan/50.yaml": text}))
    interfaces: dict[str, NetplanInterface] = facts.interfaces
    return interfaces


def corpus_root(tmp_path: Path, row: dict[str, str]) -> str:
    return make_root(tmp_path, {"etc/netplan/50.yaml": (CORPUS / row["file"]).read_text()})


# --- the whole corpus ---------------------------------------------------------------------------

@pytest.mark.parametrize("row", ALL_ROWS)
def test_corpus_file_reads(tmp_path: Path, row: dict[str, str]) -> None:
    """netplan accepted the valid files, so must we; invalid ones may fail, but only cleanly."""
    root = corpus_root(tmp_path, row)
    if row["valid"] != "yes":
        with contextlib.suppress(ConfigError):
            read_netplan(root)
        return
    facts = read_netplan(root)
    counts = REPEATED_SECTIONS.get(row["file"], row)
    for kind in ("ethernets", "vlans", "bonds", "bridges"):
        found = sum(1 for interface in facts.interfaces.values() if interface.kind == kind)
        assert found == int(counts[kind]), kind


def declared_gateways(document: object, version: int) -> dict[str, set[str]]:
    """Independent oracle: ``{netplan ID: gateways}`` of every default route written in a netplan document."""
    network = document.get("network") if isinstance(document, dict) else None
    declared: dict[str, set[str]] = {}
    for section in (network or {}).values():
        if not isinstance(section, dict):
            continue
        for netplan_id, body in section.items():
            if not isinstance(body, dict):
                continue
            vias = set()
            legacy = body.get(f"gateway{version}")
            if legacy:
                vias.add(str(ipaddress.ip_address(legacy)))
            for route in body.get("routes") or ():
                if route.get("type", "unicast") == "unicast" and str(route.get("to")) in DEFAULT_TO[version]:
                    via = ipaddress.ip_address(str(route["via"]))
                    if via.version == version:
                        vias.add(str(via))
            if vias:
                declared[netplan_id] = vias
    return declared


@pytest.mark.parametrize("row", GATEWAY_ROWS)
def test_corpus_default_gateway_found(tmp_path: Path, row: dict[str, str]) -> None:
    """Exactly the default routes declared are found, with their gateways, in every form INDEX.tsv lists."""
    facts = read_netplan(corpus_root(tmp_path, row))
    document = yaml.safe_load((CORPUS / row["file"]).read_text())
    expected = {4: declared_gateways(document, 4), 6: declared_gateways(document, 6)}
    kinds = {facts.interfaces[i].kind for version in (4, 6) for i in expected[version]}
    forms = row["default_route_forms"].split(";")
    assert kinds == {form.rsplit("@", 1)[1] for form in forms if "type=" not in form}, "oracle disagrees with INDEX"
    for version in (4, 6):
        found = {i: {str(r.gateway) for r in d.default_routes if r.family == version and r.gateway}
                 for i, d in facts.interfaces.items()}
        assert {i: gateways for i, gateways in found.items() if gateways} == expected[version]
    if any("on-link" in form for form in forms):
        assert any(r.on_link for d in facts.interfaces.values() for r in d.default_routes)


# --- which files netplan reads -------------------------------------------------------------------

def eth0_with(address: str) -> str:
    return f"network:\n  ethernets:\n    eth0:\n      addresses: [{address}]\n"


def test_run_masks_etc_masks_lib(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"lib/netplan/50.yaml": eth0_with("10.0.0.1/24"),
                                "etc/netplan/50.yaml": eth0_with("10.0.0.2/24"),
                                "run/netplan/50.yaml": eth0_with("10.0.0.3/24")})
    facts = read_netplan(root)
    assert facts.files == (f"{root}/run/netplan/50.yaml",)
    assert [str(a) for a in facts.interfaces["eth0"].addresses] == ["10.0.0.3/24"]
    (tmp_path / "run/netplan/50.yaml").unlink()
    assert [str(a) for a in read_netplan(root).interfaces["eth0"].addresses] == ["10.0.0.2/24"]


def test_files_are_read_in_basename_order_whatever_their_directory(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"run/netplan/10-first.yaml": "network:\n  ethernets:\n    eth0:\n      dhcp4: yes\n",
                                "lib/netplan/20-second.yaml": "network:\n  ethernets:\n    eth0:\n      dhcp4: no\n",
                                "etc/netplan/notyaml.yml": "{"})
    facts = read_netplan(root)
    assert facts.files == (f"{root}/run/netplan/10-first.yaml", f"{root}/lib/netplan/20-second.yaml")
    assert facts.interfaces["eth0"].dhcp4 is False


def test_no_netplan_files(tmp_path: Path) -> None:
    facts = read_netplan(str(tmp_path))
    assert (facts.interfaces, facts.files, facts.misplaced, facts.default_renderer) == ({}, (), (), "networkd")


# --- merging definitions ------------------------------------------------------------------------

def test_later_file_overrides_scalars_and_appends_sequences(tmp_path: Path) -> None:
    root = make_root(tmp_path, {
        "etc/netplan/10-base.yaml": """\
            network:
              ethernets:
                wan:
                  match: {macaddress: "00:11:22:33:44:55"}
                  set-name: old
                  dhcp4: true
                  addresses: [192.0.2.10/24]
                  routes:
                    - to: 198.51.100.0/24
                      via: 192.0.2.254
            """,
        "etc/netplan/90-override.yaml": """\
            network:
              ethernets:
                wan:
                  match: {name: enp1s0}
                  set-name: new
                  dhcp4: false
                  addresses: [192.0.2.10/24, 192.0.2.11/24]
                  routes:
                    - to: default
                      via: 192.0.2.1
            """})
    wan = read_netplan(root).interfaces["wan"]
    assert (wan.name, wan.dhcp4) == ("new", False)
    assert [str(a) for a in wan.addresses] == ["192.0.2.10/24", "192.0.2.11/24"]
    assert gateways(wan) == [("192.0.2.1", False, 254, 0)]
    assert wan.position == Position(f"{root}/etc/netplan/90-override.yaml", 3, 5)


def test_match_mappings_merge_key_by_key(tmp_path: Path) -> None:
    root = make_root(tmp_path, {
        "etc/netplan/10.yaml": "network:\n  ethernets:\n    wan:\n      match: {name: enp1s0}\n",
        "etc/netplan/20.yaml": "network:\n  ethernets:\n    wan:\n      match: {macaddress: '00:11:22:33:44:55'}\n"})
    assert read_netplan(root).interfaces["wan"].name == "enp1s0"


def test_repeated_keys_in_one_file_merge_like_later_files(tmp_path: Path) -> None:
    """netplan accepts repeated keys (corpus 114, 177, 179): each occurrence is processed in turn."""
    interfaces = read_one(tmp_path, """\
        network:
          ethernets:
            eth0: {addresses: [10.0.0.1/24]}
          ethernets:
            eth0: {addresses: [10.0.0.2/24]}
            eth1:
              routes:
                - to: default
                  via: 10.1.0.1
                  via: 10.1.0.9
        """)
    assert [str(a) for a in interfaces["eth0"].addresses] == ["10.0.0.1/24", "10.0.0.2/24"]
    assert gateways(interfaces["eth1"]) == [("10.1.0.9", False, 254, 0)]


def test_same_id_in_another_section_is_ignored(tmp_path: Path) -> None:
    """netplan refuses it ("Updated definition changes device type"); we keep the first."""
    root = make_root(tmp_path, {"etc/netplan/10.yaml": "network:\n  ethernets:\n    x0: {dhcp4: yes}\n",
                                "etc/netplan/20.yaml": "network:\n  bonds:\n    x0: {dhcp4: no}\n"})
    x0 = read_netplan(root).interfaces["x0"]
    assert (x0.kind, x0.dhcp4) == ("ethernets", True)


# --- kernel names -------------------------------------------------------------------------------

@pytest.mark.parametrize(("section", "body", "name"), [
    ("ethernets", "{dhcp4: yes}", "eth0"),
    ("ethernets", "{match: {macaddress: '00:11:22:33:44:55'}, set-name: wan0}", "wan0"),
    ("ethernets", "{match: {name: enp3s0}}", "enp3s0"),
    ("ethernets", "{match: {name: 'en*'}}", None),
    ("ethernets", "{match: {name: 'eth[01]'}}", None),
    ("ethernets", "{match: {name: 'eth?'}}", None),
    ("ethernets", "{match: {macaddress: '00:11:22:33:44:55'}}", None),
    ("ethernets", "{match: {driver: ixgbe}}", None),
    ("wifis", "{match: {name: wlan0}, set-name: wifi0}", "wifi0"),
    ("bonds", "{interfaces: [eth1, eth2]}", "eth0"),
    ("vlans", "{id: 10, link: eth1}", "eth0"),
    ("nm-devices", "{networkmanager: {uuid: x}}", None),
])
def test_kernel_name(tmp_path: Path, section: str, body: str, name: str | None) -> None:
    interfaces = read_one(tmp_path, f"network:\n  {section}:\n    eth0: {body}\n")
    assert interfaces["eth0"].name == name
    assert interfaces["eth0"].kind == section


# --- renderer -----------------------------------------------------------------------------------

def test_renderer_definition_beats_section_beats_network(tmp_path: Path) -> None:
    interfaces = read_one(tmp_path, """\
        network:
          renderer: NetworkManager
          ethernets:
            plain: {}
            renderer: networkd
            in-section: {}
            own: {renderer: NetworkManager}
          bridges:
            br0: {}
        """)
    assert {i: d.renderer for i, d in interfaces.items()} == {
        "plain": "NetworkManager", "in-section": "networkd", "own": "NetworkManager", "br0": "NetworkManager"}


def test_renderer_defaults_to_networkd(tmp_path: Path) -> None:
    facts = read_netplan(make_root(tmp_path, {"etc/netplan/50.yaml": "network:\n  ethernets:\n    eth0: {}\n"}))
    assert (facts.default_renderer, facts.interfaces["eth0"].renderer) == ("networkd", "networkd")


def test_renderer_across_files(tmp_path: Path) -> None:
    """The last network-wide renderer applies to every file; a section renderer only where the ID is first defined.

    Checked with ``/lib/netplan/generate`` 0.106: it writes netplan-early.nmconnection and 10-netplan-sectioned.network.
    """
    root = make_root(tmp_path, {
        "etc/netplan/10.yaml": """\
            network:
              ethernets:
                early: {}
                renderer: networkd
                sectioned: {}
            """,
        "etc/netplan/20.yaml": """\
            network:
              ethernets:
                renderer: NetworkManager
                sectioned: {dhcp4: yes}
            """,
        "etc/netplan/30.yaml": "network:\n  renderer: NetworkManager\n"})
    facts = read_netplan(root)
    assert facts.default_renderer == "NetworkManager"
    assert facts.interfaces["early"].renderer == "NetworkManager"
    assert facts.interfaces["sectioned"].renderer == "networkd"


# --- misplaced stanza ---------------------------------------------------------------------------

def test_multiuplink_keys_in_netplan_files_are_reported_where_they_stand(tmp_path: Path) -> None:
    root = make_root(tmp_path, {
        "etc/netplan/10.yaml": """\
            multiuplink: {}
            network:
              version: 2
              multiuplink:
                uplinks: {}
              ethernets:
                eth0:
                  dhcp4: yes
                  multiuplink: {mark: 1}
                multiuplink: {dhcp4: yes}
            """,
        "run/netplan/20.yaml": "network:\n  bonds:\n    bond0: {multiuplink: 1}\n"})
    facts = read_netplan(root)
    shown = f"{root}/etc/netplan/10.yaml"
    assert facts.misplaced == (Position(shown, 1, 1), Position(shown, 4, 3), Position(shown, 9, 7),
                               Position(f"{root}/run/netplan/20.yaml", 3, 13))
    assert "multiuplink" in facts.interfaces  # an ethernet with that ID is valid netplan


# --- addresses and DHCP -------------------------------------------------------------------------

def test_addresses_in_both_forms(tmp_path: Path) -> None:
    interfaces = read_one(tmp_path, """\
        network:
          ethernets:
            eth0:
              addresses:
                - 192.0.2.2/24
                - 192.0.2.3/24:
                    label: eth0:backup
                    lifetime: 0
                - "2001:db8::2/64"
                - 192.0.2.2/24
        """)
    assert [str(a) for a in interfaces["eth0"].addresses] == ["192.0.2.2/24", "2001:db8::2/64", "192.0.2.3/24"]


def test_addresses_in_netplans_order_first_key_of_an_entry(tmp_path: Path) -> None:
    """Written by /lib/netplan/generate 0.106 as Address= 192.0.2.1/24, 192.0.2.13/24, 192.0.2.12/24,
    2001:db8::1/64, then [Address] sections 192.0.2.10/24 and 192.0.2.12/24 (192.0.2.11/24 is dropped)."""
    interfaces = read_one(tmp_path, """\
        network:
          ethernets:
            eth0:
              addresses:
                - 192.0.2.1/24
                - {192.0.2.10/24: {label: eth0:a}, 192.0.2.11/24: {label: eth0:b}}
                - 2001:db8::1/64
                - 192.0.2.12/24: {lifetime: 0}
                - 192.0.2.13/24
                - 192.0.2.12/24
        """)
    assert [str(a) for a in interfaces["eth0"].addresses] == [
        "192.0.2.1/24", "192.0.2.13/24", "192.0.2.12/24", "2001:db8::1/64", "192.0.2.10/24"]


@pytest.mark.parametrize(("text", "value"), [
    ("yes", True), ("no", False), ("true", True), ("false", False), ("on", True), ("off", False),
    ("y", True), ("n", False), ("Y", True), ("TRUE", True), ("'yes'", True), ("maybe", False), ("1", False)])
def test_netplan_booleans(tmp_path: Path, text: str, value: bool) -> None:
    interfaces = read_one(tmp_path, f"network:\n  ethernets:\n    eth0:\n      dhcp4: {text}\n      dhcp6: {text}\n")
    assert (interfaces["eth0"].dhcp4, interfaces["eth0"].dhcp6) == (value, value)


# --- default routes ----------------------------------------------------------------------------

def gateways(interface: NetplanInterface, family: int = 4) -> list[tuple[str | None, bool, int, int]]:
    """The declared default routes of one family: gateway (None: the device), on-link, table, metric."""
    return [(None if r.gateway is None else str(r.gateway), r.on_link, r.table, r.metric)
            for r in interface.default_routes if r.family == family]


def only_gateway(tmp_path: Path, routes: str, extra: str = "") -> NetplanInterface:
    interfaces = read_one(tmp_path, f"network:\n  ethernets:\n    eth0:\n{extra}      routes:\n{routes}")
    return interfaces["eth0"]


@pytest.mark.parametrize("form", ["default", "0.0.0.0/0", "0.0.0.0/0.0.0.0", "10.0.0.0/0"])
def test_ipv4_default_route_forms(tmp_path: Path, form: str) -> None:
    eth0 = only_gateway(tmp_path, f"        - to: {form}\n          via: 192.0.2.1\n")
    assert (gateways(eth0), gateways(eth0, 6)) == ([("192.0.2.1", False, 254, 0)], [])


def test_gateway_keys_come_first_with_the_kernel_default_metric(tmp_path: Path) -> None:
    eth0 = only_gateway(tmp_path, "        - {to: default, via: 10.0.0.1, metric: 200}\n",
                        "      gateway6: 2001:db8::1\n      gateway4: 192.0.2.1\n")
    assert gateways(eth0) == [("192.0.2.1", False, 254, 0), ("10.0.0.1", False, 254, 200)]
    assert gateways(eth0, 6) == [("2001:db8::1", False, 254, 1024)]


def test_on_link(tmp_path: Path) -> None:
    eth0 = only_gateway(tmp_path, "        - to: default\n          via: 9.9.9.9\n          on-link: true\n"
                                  "        - to: ::/0\n          via: fe80::1\n          on-link: yes\n")
    assert gateways(eth0) == [("9.9.9.9", True, 254, 0)]
    assert gateways(eth0, 6) == [("fe80::1", True, 254, 1024)]


def test_ipv6_default_routes_do_not_make_an_ipv4_gateway(tmp_path: Path) -> None:
    eth0 = only_gateway(tmp_path, "        - to: default\n          via: 2001:db8::1\n", "      gateway6: fe80::9\n")
    assert gateways(eth0) == []
    assert [g for g, *_ in gateways(eth0, 6)] == ["fe80::9", "2001:db8::1"]


def test_tables_and_device_routes(tmp_path: Path) -> None:
    eth0 = only_gateway(tmp_path, "        - {to: default, via: 10.0.0.1, table: 100, metric: 9}\n"
                                  "        - {to: default, via: 10.0.0.3, table: 0}\n"
                                  "        - {to: 0.0.0.0/0, scope: link, metric: 7}\n"
                                  "        - {to: '::/0', scope: link}\n")
    assert gateways(eth0) == [("10.0.0.1", False, 100, 9), ("10.0.0.3", False, 254, 0), (None, False, 254, 7)], \
        "netplan reads table 0 as unset"
    assert gateways(eth0, 6) == [(None, False, 254, 1024)]


def test_positions_point_at_the_gateway(tmp_path: Path) -> None:
    eth0 = only_gateway(tmp_path, "        - {to: default, via: 10.0.0.1}\n        - {to: 0.0.0.0/0, scope: link}\n",
                        "      gateway4: 192.0.2.1\n      dhcp4: true\n")
    shown = f"{tmp_path}/etc/netplan/50.yaml"
    assert [r.position for r in eth0.default_routes] == [
        Position(shown, 4, 17), Position(shown, 7, 30), Position(shown, 8, 16)]
    assert eth0.origins == {"dhcp4": Position(shown, 5, 14)}


@pytest.mark.parametrize("route", [
    "{to: 0.0.0.0, via: 10.0.0.1}",                 # networkd reads it as 0.0.0.0/32
    "{to: default, via: 10.0.0.1, type: local}",
    "{to: 0.0.0.0/0, type: unreachable}",
    "{to: 10.0.0.0/8, via: 10.0.0.1}",
    "{to: default}",
    "{to: default, scope: link}",                   # netplan 0.106 aborts on it
    "{to: 0.0.0.0/0}",
    "{to: default, via: not-an-address}",
])
def test_not_a_default_route(tmp_path: Path, route: str) -> None:
    assert only_gateway(tmp_path, f"        - {route}\n").default_routes == ()


def test_vrf_routes_and_members_use_the_vrf_table(tmp_path: Path) -> None:
    interfaces = read_one(tmp_path, """\
        network:
          ethernets:
            eth1:
              addresses: [10.1.0.2/24]
              routes: [{to: default, via: 10.1.0.1}]
          vrfs:
            blue:
              table: 1005
              interfaces: [eth1]
              routes: [{to: default, via: 10.10.10.4}]
        """)
    assert gateways(interfaces["blue"]) == [("10.10.10.4", False, 1005, 0)]
    assert gateways(interfaces["eth1"]) == [("10.1.0.1", False, 1005, 0)]


@pytest.mark.parametrize(("text", "accept_ra", "link_local"), [
    ("{}", None, True), ("{accept-ra: yes}", True, True), ("{accept-ra: false, link-local: []}", False, False),
    ("{link-local: [ipv4, ipv6]}", None, True), ("{link-local: [ipv4]}", None, False)])
def test_router_advertisements(tmp_path: Path, text: str, accept_ra: bool | None, link_local: bool) -> None:
    eth0 = read_one(tmp_path, f"network:\n  ethernets:\n    eth0: {text}\n")["eth0"]
    assert (eth0.accept_ra, eth0.ipv6_link_local) == (accept_ra, link_local)


# --- robustness ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "",
    "# only a comment\n",
    "[1, 2]\n",
    "network: [ethernets]\n",
    "network:\n  ethernets: [eth0]\n",
    "network:\n  ethernets:\n    eth0: up\n",
    "network:\n  ethernets:\n    eth0: {addresses: 10.0.0.1/24, routes: {to: default}, gateway4: [1]}\n",
    "network:\n  ethernets:\n    eth0:\n      addresses: [[1], {a: 1, b: 2}, 10.0.0.1, 10.0.0.300/24, ~]\n",
    "network:\n  ethernets:\n    eth0:\n      routes: [default, [1], {to: [default], via: {a: 1}}, {metric: [x]}]\n",
    "network:\n  ethernets:\n    eth0: {match: name, set-name: [a]}\n",
    "network:\n  ethernets:\n    ? [complex, key]\n    : {}\n    eth0: {}\n",
    "network:\n  renderer: [x]\n  ethernets:\n    renderer: {}\n    eth0: {renderer: 7}\n",
    "network:\n  vrfs:\n    v: {table: [x], interfaces: eth0}\n",
])
def test_wrong_types_are_skipped_silently(tmp_path: Path, text: str) -> None:
    facts = read_netplan(make_root(tmp_path, {"etc/netplan/50.yaml": text}))
    for interface in facts.interfaces.values():
        assert interface.default_routes == ()


def test_an_alias_inside_itself_is_an_error_as_in_netplan(tmp_path: Path) -> None:
    """netplan refuses it too; expanding it would never end."""
    root = make_root(tmp_path, {"etc/netplan/50.yaml": "network:\n  ethernets:\n    eth0: &loop {routes: [*loop]}\n"})
    with pytest.raises(ConfigError, match="refers to the list or mapping containing it"):
        read_netplan(root)


def test_deeply_nested_values_do_not_crash(tmp_path: Path) -> None:
    nested = "[" * 900 + "]" * 900
    interfaces = read_one(tmp_path, f"network:\n  ethernets:\n    eth0: {{dhcp4: yes, junk: {nested}}}\n")
    assert interfaces["eth0"].dhcp4 is True


def test_yaml_syntax_error_is_a_config_error_at_its_place(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"etc/netplan/50.yaml": "network:\n  ethernets:\n    eth0: {dhcp4: yes\n"})
    with pytest.raises(ConfigError) as caught:
        read_netplan(root)
    assert caught.value.position is not None
    assert caught.value.position.path == f"{root}/etc/netplan/50.yaml"
    assert caught.value.message.startswith("invalid YAML")


def test_pathological_nesting_is_a_config_error_not_a_segfault(tmp_path: Path) -> None:
    """libyaml's composer recurses in C; some 30000 nested levels kill the process."""
    root = make_root(tmp_path, {"etc/netplan/50.yaml": "network: " + "[" * 60000 + "]" * 60000 + "\n"})
    with pytest.raises(ConfigError, match="values nest deeper than 1000 levels"):
        read_netplan(root)


# --- where netplan and a plain reading differ (issue 9), each checked with /lib/netplan/generate 0.106 ----------

def test_hidden_files_are_not_read(tmp_path: Path) -> None:
    root = make_root(tmp_path, {"etc/netplan/.50-backup.yaml": "network: [",
                                "run/netplan/.yaml": eth0_with("10.0.0.9/24"),
                                "etc/netplan/50.yaml": eth0_with("10.0.0.2/24")})
    facts = read_netplan(root)
    assert facts.files == (f"{root}/etc/netplan/50.yaml",)
    assert [str(a) for a in facts.interfaces["eth0"].addresses] == ["10.0.0.2/24"]


@pytest.mark.parametrize("relative", [False, True])
def test_a_link_to_dev_null_masks_the_file_below(tmp_path: Path, relative: bool) -> None:
    root = make_root(tmp_path, {"lib/netplan/50.yaml": eth0_with("10.0.0.1/24"),
                                "etc/netplan/50.yaml": eth0_with("10.0.0.2/24"),
                                "etc/netplan/60.yaml": "network:\n  ethernets:\n    eth1: {}\n",
                                "lib/netplan/70.yaml": "network:\n  ethernets:\n    eth2: {}\n"})
    (tmp_path / "run/netplan").mkdir(parents=True)
    (tmp_path / "run/netplan/50.yaml").symlink_to(os.path.relpath("/dev/null", tmp_path / "run/netplan") if relative
                                                  else "/dev/null")
    (tmp_path / "etc/netplan/70.yaml").symlink_to("/dev/null")
    facts = read_netplan(root)
    assert sorted(facts.interfaces) == ["eth1"]
    assert facts.files == (f"{root}/etc/netplan/60.yaml",)


def test_only_the_first_document_is_read(tmp_path: Path) -> None:
    """netplan loads one document per file: what follows the first, even broken YAML, is never parsed."""
    interfaces = read_one(tmp_path, eth0_with("10.0.0.1/24") + "---\nnetwork: {ethernets: {eth1: {}}}\n---\n[bad\n")
    assert sorted(interfaces) == ["eth0"]
    assert sorted(read_one(tmp_path, eth0_with("10.0.0.1/24") + "---\n")) == ["eth0"]


@pytest.mark.parametrize(("first", "later", "name"), [
    ("{dhcp4: yes}", "{match: {name: enp1s0}}", "enp1s0"),                         # Name=enp1s0
    ("{dhcp4: yes}", "{match: {macaddress: '00:11:22:33:44:55'}}", "wan"),         # MAC and Name=wan
    ("{dhcp4: yes}", "{match: {name: 'en*'}}", None),                               # Name=en*
    ("{match: {macaddress: '00:11:22:33:44:55'}}", "{dhcp4: yes}", None),          # MAC alone
    ("{match: {}}", "{dhcp4: yes}", None),                                          # an empty [Match]
    ("{match: {name: enp1s0}}", "{dhcp4: yes}", "enp1s0"),
    ("{match: {macaddress: '00:11:22:33:44:55'}, set-name: ''}", "{dhcp4: yes}", ""),  # Name= (every link)
])
@pytest.mark.parametrize("where", ["later file", "repeated key"])
def test_kernel_name_of_a_definition_given_twice(tmp_path: Path, first: str, later: str, name: str | None,
                                                 where: str) -> None:
    if where == "later file":
        root = make_root(tmp_path, {"etc/netplan/10.yaml": f"network:\n  ethernets:\n    wan: {first}\n",
                                    "etc/netplan/20.yaml": f"network:\n  ethernets:\n    wan: {later}\n"})
    else:
        root = make_root(tmp_path, {"etc/netplan/10.yaml": f"network:\n  ethernets:\n    wan: {first}\n"
                                                           f"    wan: {later}\n"})
    assert read_netplan(root).interfaces["wan"].name == name


@pytest.mark.parametrize(("text", "value"), [
    ("5", 5), ("+5", 5), ("' 5'", 5), ("' +5'", 5), ('"\\t7"', 7), ('"\\v7"', 7), ("010", 10), ("''", None),
    ("' -0'", None), ("0" * 5000 + "5", 5), ("4294967294", 4294967294), ("-18446744073709551615", 1)])
def test_integers_are_read_as_netplan_reads_them(tmp_path: Path, text: str, value: int | None) -> None:
    """C's strtoull in base 10: white space and a sign before the digits; "" is 0 (unset, for a table)."""
    eth0 = only_gateway(tmp_path, f"        - {{to: default, via: 10.0.0.1, table: {text}, metric: {text}}}\n")
    assert gateways(eth0) == [("10.0.0.1", False, value or 254, value or 0)]


def test_the_metric_4294967295_is_netplans_unset(tmp_path: Path) -> None:
    eth0 = only_gateway(tmp_path, "        - {to: '::/0', via: 2001:db8::1, metric: 4294967295}\n")
    assert gateways(eth0, 6) == [("2001:db8::1", False, 254, 1024)]


@pytest.mark.parametrize("text", ["'5 '", "-5", "0x10", "5a", "1_0", "' '", "+", "4294967296", "18446744073709551616",
                                  "9" * 5000], ids=lambda text: text[:12])
@pytest.mark.parametrize("key", ["metric", "table"])
def test_integers_netplan_refuses_are_errors_at_their_place(tmp_path: Path, text: str, key: str) -> None:
    """netplan fails on them ("invalid unsigned int value"), so do we; 4301 digits and more are no traceback."""
    root = make_root(tmp_path, {"etc/netplan/50.yaml": "network:\n  ethernets:\n    eth0:\n      routes:\n"
                                                       f"        - {{to: 10.0.0.0/8, via: 10.0.0.1, {key}: {text}}}\n"})
    with pytest.raises(ConfigError) as caught:
        read_netplan(root)
    column = 45 + len(key)
    assert (caught.value.position, caught.value.message[:28]) == (
        Position(f"{root}/etc/netplan/50.yaml", 5, column), "invalid unsigned int value '")
    assert len(caught.value.message) < 60


def test_vrf_table_is_read_as_netplan_reads_it(tmp_path: Path) -> None:
    interfaces = read_one(tmp_path, "network:\n  ethernets:\n    eth1: {routes: [{to: default, via: 10.1.0.1}]}\n"
                                    "  vrfs:\n    blue: {table: ' +1005', interfaces: [eth1]}\n")
    assert gateways(interfaces["eth1"]) == [("10.1.0.1", False, 1005, 0)]


def test_a_repeated_address_with_options_ends_its_list(tmp_path: Path) -> None:
    """netplan 0.106 configures only 10.0.0.1/24 and 10.0.5.1/24 here (found by the differential test)."""
    interfaces = read_one(tmp_path, """\
        network:
          ethernets:
            eth0:
              addresses: [{10.0.0.1/24: {}}, {10.0.0.1/24: {label: x}}, 10.0.1.1/24]
            eth0:
              addresses: [{10.0.5.1/24: {}}, {10.0.0.1/24: {}}, 10.0.2.1/24]
        """)
    assert [str(a) for a in interfaces["eth0"].addresses] == ["10.0.0.1/24", "10.0.5.1/24"]
