"""status for people and for Prometheus: the table stays aligned, colour only when asked, and the OpenMetrics
text parses with the Prometheus client's strict OpenMetrics parser and its text-format (0.0.4) parser, which is
what node_exporter's textfile collector speaks. The same Status, as JSON, matches schema/status.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from multiuplink_networkd import display
from multiuplink_networkd.host import networkd
from multiuplink_networkd.host.status import FwmarkAccept, Problem, RpFilter, Status, UplinkStatus
from multiuplink_networkd.host.sysctl_d import BootValue
from multiuplink_networkd.model import PolicyRule, TableRoute

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schema" / "status.schema.json").read_text())
OURS = BootValue(2, "/run/sysctl.d/50-multiuplink.conf", 3, "net/ipv4/conf/eth1/rp_filter")
KERNEL = BootValue(0, None, None, None)


def uplink(name: str, interface: str, table: int, counters: dict[str, tuple[int, int]] | None,
           rule_live: bool = True, boot: BootValue = OURS) -> UplinkStatus:
    mark = (table - 100) << 24
    return UplinkStatus(
        name, interface, table, mark, networkd.LinkState("configured", "routable", "carrier"),
        (networkd.Address(f"192.0.2.{table}/24", False), networkd.Address("2001:db8::1/64", True)),
        ((PolicyRule(4, 999, mark, 0xFF000000, 254, 0), True),
         (PolicyRule(4, 1000, mark, 0xFF000000, table, None), rule_live)),
        ((TableRoute(4, table, "192.0.2.0/24", None), True), (TableRoute(4, table, "default", "192.0.2.1"), True)),
        counters, RpFilter(2, 2, 1, boot, KERNEL))


STATUS = Status("nft", "loaded", True, (), 0xFF000000, (
    uplink("isp1", "eth1", 101, {"connections": (3, 180), "in": (1234, 2_000_000), "out": (99, 5000)}),
    uplink("a-much-longer-name", "eno1.100", 102, None, rule_live=False,
           boot=BootValue(1, "/etc/sysctl.d/99-hardening.conf", 2, "net.ipv4.conf.eno1/100.rp_filter"))),
    (Problem("a-much-longer-name", "rule", "policy rule '1000: ...' is missing", "run 'multiuplink apply'"),
     Problem(None, "networkd", 'a "quoted" word \\ and a backslash', "none")),
    FwmarkAccept(1, BootValue(1, "/run/sysctl.d/50-multiuplink.conf", 9, "net/ipv4/tcp_fwmark_accept")))


def test_the_table_is_aligned_and_plain_without_colour() -> None:
    text = display.status_text(STATUS, display.Painter(False))
    lines = text.splitlines()
    assert "\033" not in text
    header = lines[0]
    starts = [i for i, c in enumerate(header) if c != " " and (i == 0 or header[i - 1] == " ")]
    assert len(starts) == 11 and header.split()[4] == "TABLE"
    for row in lines[1:3]:
        assert all(row[i] != " " and (i == 0 or row[i - 1] == " ") for i in starts), (header, row)
    assert lines[1].split()[-3:] == ["3", "1.2k/99", "1.9M/4.9K"]
    assert lines[2].split()[-6:] == ["2", "(boot", "1)", "-", "-", "-"]
    assert "192.0.2.101/24, 2001:db8::1/64*" in lines[1] and "* dynamic address" in text
    assert "2 differences from the configuration:" in text
    assert "  a-much-longer-name: policy rule '1000: ...' is missing" in lines


def test_colour_marks_what_is_live_missing_and_wrong() -> None:
    text = display.status_text(STATUS, display.Painter(True))
    assert f"{display.GREEN}live" in text and f"{display.RED}1/2 live" in text
    assert f"{display.RED}2 differences" in text


@pytest.mark.parametrize(("number", "shown", "shown_as_bytes"), [
    (0, "0", "0B"), (999, "999", "999B"), (1234, "1.2k", "1.2K"), (12_345, "12k", "12K"), (2_000_000, "2.0M", "1.9M"),
    (5 * 10**15, "5000T", "4547T")])
def test_human_numbers(number: int, shown: str, shown_as_bytes: str) -> None:
    assert display.human(number) == shown
    assert display.human(number, 1024, ("B", "K", "M", "G", "T")) == shown_as_bytes


def test_openmetrics_parses_strictly_and_as_the_textfile_collector_reads_it() -> None:
    openmetrics = pytest.importorskip("prometheus_client.openmetrics.parser",
                                      reason="python3-prometheus-client is missing (./dev.sh installs it)")
    from prometheus_client import parser as text_format

    text = display.status_openmetrics(STATUS)
    families = {family.name: family for family in openmetrics.text_string_to_metric_families(text)}
    assert {name: family.type for name, family in families.items()} == {
        "multiuplink_connections": "counter", "multiuplink_packets": "counter", "multiuplink_bytes": "counter",
        "multiuplink_uplink_up": "gauge", "multiuplink_rp_filter": "gauge", "multiuplink_ruleset_loaded": "gauge",
        "multiuplink_drift": "gauge"}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("multiuplink_bytes_total", (("direction", "in"), ("interface", "eth1"), ("uplink", "isp1")))] \
        == 2_000_000
    assert samples[("multiuplink_uplink_up", (("interface", "eno1.100"), ("uplink", "a-much-longer-name")))] == 0
    assert samples[("multiuplink_drift", ())] == 2
    assert not any(name == "multiuplink_connections_total" and ("uplink", "a-much-longer-name") in labels
                   for name, labels in samples), "no counters without a loaded ruleset"
    legacy = {s.name: s.value for f in text_format.text_string_to_metric_families(text) for s in f.samples
              if not s.labels}
    assert legacy == {"multiuplink_drift": 2}


def test_the_json_shape_is_the_schema() -> None:
    jsonschema.validate(STATUS.as_json(), SCHEMA)
    jsonschema.validate(Status(None, None, None, (), 0, (), (), None).as_json(), SCHEMA)
    jsonschema.Draft202012Validator.check_schema(SCHEMA)

