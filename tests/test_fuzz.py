"""Fuzzing the configuration side: stanza and netplan YAML, as structures and as bytes (issue 10).

Every case runs ``multiuplink generate`` over a root that already holds the
output of a valid configuration, in this process under a time bound (an
interval timer, and faulthandler ending the run should C code ever hang) and
an address-space bound (``RLIMIT_AS``). Per case: no exception escapes
(exit 0 or 1 only); a config error leaves the previous output exactly as it
was, and its message holds no control character; an accepted one renders
files whose every line has the shape its format allows (no value can add a
line, a quote or a control character), and every distinct ruleset is
accepted by its real loader (``nft -c -f`` and ``iptables-restore --test``,
in a network namespace of the suite's own). The drop-ins' lines are checked
against the keys networkd 252 knows; a real networkd reads fuzzed drop-ins
in ``tests/e2e/test_fuzz_networkd.py``.

The normal run tries a small sample with a fixed seed. ``MULTIUPLINK_FUZZ_EXAMPLES=N`` tries N per test with
a random seed (tests/README.md has the command for 10,000 and the counts of its last run); the counts of a
run are printed at its end.
"""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import hashlib
import io
import json
import os
import re
import resource
import shutil
import signal
import tempfile
from collections import Counter
from pathlib import Path

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis", reason="python3-hypothesis is not installed (dev.sh installs it)")
from hypothesis import (  # noqa: E402
    HealthCheck,
    given,
    settings,
    strategies as st,
)
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402

from multiuplink_networkd import cli  # noqa: E402
from tests.e2e import netns  # noqa: E402
from tests.outputs import footprint  # noqa: E402

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "two-isps"
STANZA = "etc/netplan/multiuplink.d/uplinks.yaml"
NETPLAN = "etc/netplan/50-uplinks.yaml"
FUZZ_ENV = "MULTIUPLINK_FUZZ_EXAMPLES"
EXAMPLES = int(os.environ.get(FUZZ_ENV, "0"))
CASE_SECONDS = 10
"""Per case; a bounded case takes milliseconds. faulthandler ends the whole run at three times this."""
CASE_MEMORY = 512 << 20
"""Address space a case may add to the process."""

HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="mu-hypothesis-")
"""hypothesis's caches: a temporary directory, never the source tree (set_hypothesis_home_dir is untyped)."""
set_hypothesis_home_dir(HYPOTHESIS_HOME)  # type: ignore[no-untyped-call]
atexit.register(shutil.rmtree, HYPOTHESIS_HOME, ignore_errors=True)
FUZZ = settings(max_examples=EXAMPLES or 40, derandomize=not EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
COUNTS: Counter[str] = Counter()
"""Outcomes of the session's cases, printed at the end (the numbers in tests/README.md)."""


# --- strategies ---------------------------------------------------------------------------------------------

TRICKY = ["isp1\n", "isp1\r", "is\"p", "isp'1", "eth1\n[Network]", "eth+", "eth*", "-eth", ".", "..", "a b",
          "a;b", "a{b}", "\x00", "\x1b[2J", "\u202e", "日本", "eth1\t", " eth1", "0x10", "~", "null", "on", "",
          "x" * 70]
NAMES = st.one_of(st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,31}", fullmatch=True), st.sampled_from(TRICKY),
                  st.text(max_size=12))
IDS = ["eth1", "eth2", "wan", "lan0", "eth+", "bond0", "vlan10", "wlan0"]
INTERFACES = st.one_of(st.sampled_from(IDS), st.sampled_from(TRICKY), st.text(max_size=16))
NUMBERS = st.one_of(st.integers(-2, 300), st.integers(0, 1 << 33),
                    st.sampled_from([0, 1, 63, 253, 254, 255, 256, 32765, 32766, (1 << 32) - 1, 1 << 32]),
                    st.booleans(), st.floats(allow_nan=True), st.text(max_size=6), st.none())
MASKS = st.one_of(st.sampled_from([0xFF000000, 0x3F00, 0xFF, 1, 0x80000000, 0xF0F0, 0, -1, 1 << 32]), NUMBERS)
IPV4 = st.ip_addresses(v=4).map(str)
IPV6 = st.ip_addresses(v=6).map(str)
ADDRESS = st.one_of(IPV4, IPV6, st.sampled_from(["203.0.113.1", "192.0.2.1", "2001:db8:1::1", "fe80::1"]))
PREFIXED = st.one_of(st.builds(lambda a, p: f"{a}/{p}", ADDRESS, st.integers(0, 129)),
                     st.sampled_from(["203.0.113.9/24", "192.0.2.40/24", "2001:db8:1::9/64", "10.0.0.1/8"]))
TEXTS = st.one_of(st.sampled_from(TRICKY), st.text(max_size=20), ADDRESS.map(lambda a: a + "\n"))
UPLINK = st.fixed_dictionaries({}, optional={
    "interface": INTERFACES, "mark": NUMBERS, "table": NUMBERS,
    "gateway": st.one_of(IPV4, TEXTS), "gateway6": st.one_of(IPV6, TEXTS),
    "family": st.sampled_from(["both", "ipv4", "ipv6", "ipv5", True]),
    "addresses": st.one_of(st.lists(st.one_of(PREFIXED, TEXTS), max_size=4), TEXTS),
    "unknown": st.just(1)})
STANZA_DOCUMENTS = st.fixed_dictionaries({"network": st.fixed_dictionaries({}, optional={
    "version": st.sampled_from([2, 1, "2"]),
    "multiuplink": st.fixed_dictionaries({}, optional={
        "uplinks": st.dictionaries(NAMES, st.one_of(UPLINK, TEXTS), max_size=5),
        "mark-mask": MASKS, "priority": NUMBERS, "rp-filter": st.sampled_from(["loose", "off", "strict", False]),
        "backend": st.sampled_from(["nft", "iptables", "pf"]), "router-mode": st.one_of(st.booleans(), TEXTS)})})})

ROUTE = st.fixed_dictionaries({}, optional={
    "to": st.one_of(st.sampled_from(["default", "0.0.0.0/0", "::/0", "10.0.0.0/8"]), TEXTS),
    "via": st.one_of(ADDRESS, TEXTS), "metric": NUMBERS, "table": NUMBERS, "on-link": st.booleans(),
    "scope": st.sampled_from(["link", "global"]), "type": st.sampled_from(["unicast", "blackhole"])})
DEFINITION = st.fixed_dictionaries({}, optional={
    "addresses": st.one_of(st.lists(st.one_of(PREFIXED, TEXTS), max_size=3), TEXTS),
    "routes": st.one_of(st.lists(ROUTE, max_size=3), TEXTS),
    "gateway4": st.one_of(IPV4, TEXTS), "gateway6": st.one_of(IPV6, TEXTS),
    "dhcp4": st.one_of(st.booleans(), TEXTS), "dhcp6": st.booleans(), "accept-ra": st.booleans(),
    "set-name": st.one_of(st.sampled_from(IDS), TEXTS),
    "match": st.fixed_dictionaries({}, optional={"name": st.one_of(st.sampled_from(IDS + ["en*"]), TEXTS),
                                                 "macaddress": st.just("52:54:00:12:34:56")}),
    "renderer": st.sampled_from(["networkd", "NetworkManager"]), "link-local": st.sampled_from([[], ["ipv6"]]),
    "multiuplink": st.just({})})
NETPLAN_DOCUMENTS = st.fixed_dictionaries({"network": st.fixed_dictionaries({"version": st.just(2)}, optional={
    "renderer": st.sampled_from(["networkd", "NetworkManager"]),
    "ethernets": st.dictionaries(st.one_of(st.sampled_from(IDS), TEXTS), DEFINITION, max_size=4),
    "vlans": st.dictionaries(st.sampled_from(IDS), DEFINITION, max_size=2),
    "vrfs": st.dictionaries(st.sampled_from(["vrf1"]), st.fixed_dictionaries({"table": NUMBERS,
                                                                               "interfaces": st.just(["eth1"])})),
})})
NAMED_INTERFACE: dict[str, st.SearchStrategy[object]] = {"interface": st.sampled_from(IDS)}
MAYBE_MARK_AND_ADDRESSES: dict[str, st.SearchStrategy[object]] = {
    "mark": st.integers(1, 4), "addresses": st.lists(PREFIXED, max_size=2)}
FUZZED_STANZAS = st.one_of(st.just({"network": {"multiuplink": {"uplinks": {"isp1": {"interface": "eth1"}}}}}),
                           STANZA_DOCUMENTS, st.fixed_dictionaries({"network": st.fixed_dictionaries({
                               "multiuplink": st.fixed_dictionaries({"uplinks": st.dictionaries(
                                   st.sampled_from(["isp1", "isp2", "isp3"]),
                                   st.fixed_dictionaries(NAMED_INTERFACE, optional=MAYBE_MARK_AND_ADDRESSES),
                                   min_size=1, max_size=3)})})}))

KERNEL_NAMES = st.one_of(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,15}", fullmatch=True), st.sampled_from(IDS))
BACKEND: dict[str, st.SearchStrategy[object]] = {"backend": st.sampled_from(["nft", "iptables"])}
VALID_GLOBALS: dict[str, st.SearchStrategy[object]] = {
    "router-mode": st.booleans(), "mark-mask": st.sampled_from([0xFF000000, 0x3F00, 0xFF, 0xFFFF0000, 0x1, 0x80000000]),
    "priority": st.integers(2, 32765), "rp-filter": st.sampled_from(["loose", "off"])}
GLOBALS = st.fixed_dictionaries(BACKEND, optional=VALID_GLOBALS)


@st.composite
def plausible(draw: st.DrawFn) -> tuple[object, object]:
    """A netplan file and a stanza that are often valid, with odd names, so accepted outputs vary widely."""
    ethernets: dict[str, object] = {}
    uplinks: dict[str, object] = {}
    for index, netplan_id in enumerate(draw(st.lists(KERNEL_NAMES, min_size=1, max_size=3, unique=True))):
        definition: dict[str, object] = draw(st.sampled_from([
            {"addresses": [f"198.51.{index}.8/24", f"2001:db8:{index}::8/64"],
             "routes": [{"to": "default", "via": f"198.51.{index}.1", "metric": 100 + index},
                        {"to": "::/0", "via": f"2001:db8:{index}::1", "metric": 100 + index}]},
            {"dhcp4": True}, {"dhcp4": True, "dhcp6": True}, {"addresses": [f"10.{index}.0.2/32"]},
            {"addresses": [f"198.51.{index}.8/24"], "gateway4": f"198.51.{index}.1"}]))
        if draw(st.booleans()):
            definition["set-name"] = draw(KERNEL_NAMES)
            definition["match"] = {"macaddress": f"52:54:00:12:34:5{index}"}
        ethernets[netplan_id] = definition
        uplink = {"interface": netplan_id, **draw(st.fixed_dictionaries({}, optional={
            "mark": st.integers(1, 3), "table": st.integers(1, 300), "family": st.sampled_from(["both", "ipv4"])}))}
        uplinks[draw(st.one_of(st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,31}", fullmatch=True),
                               st.just(f"isp{index}")))] = uplink
    return ({"network": {"version": 2, "renderer": "networkd", "ethernets": ethernets}},
            {"network": {"multiuplink": {"uplinks": uplinks, **draw(GLOBALS)}}})


SPECIAL = [b"\0", b"\x1b", b"\t", b"\n", b"\r", b'"', b"'", b"\\n", b"&a ", b"*a", b"[", b"]", b"{", b"}", b"- ",
           b": ", b"!!str ", b"!!int ", b"<<: ", b"\xff", b"\xc3", b"\xe2\x80\xae", b"#", b"%YAML 1.1\n", b"---\n",
           b"+", b"*", b"0x", b"\x85", b"\xef\xbb\xbf"]
EDITS = st.lists(st.tuples(st.floats(0, 1), st.sampled_from(["insert", "delete", "replace"]),
                           st.one_of(st.sampled_from(SPECIAL), st.binary(min_size=1, max_size=4))),
                 min_size=1, max_size=6)


def mutated(original: bytes, edits: list[tuple[float, str, bytes]]) -> bytes:
    data = bytearray(original)
    for where, how, piece in edits:
        at = int(where * len(data))
        if how == "insert":
            data[at:at] = piece
        elif how == "delete":
            del data[at:at + len(piece)]
        else:
            data[at:at + len(piece)] = piece
    return bytes(data)


def dumped(document: object) -> bytes:
    return yaml.safe_dump(document, allow_unicode=True, default_flow_style=None, sort_keys=False).encode()


# --- one case -----------------------------------------------------------------------------------------------

class CaseTimeout(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise CaseTimeout(f"a case ran over {CASE_SECONDS} s")


@contextlib.contextmanager
def bounded() -> Iterator[None]:
    """Time and address-space bounds for the code under test, lifted before the loaders run."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) << 10 for line in status if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (size + CASE_MEMORY, hard))
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    faulthandler.dump_traceback_later(CASE_SECONDS * 3, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


class Loaders:
    """Real nft and iptables-restore in a namespace of their own, each distinct file checked once.

    Without one (not root) the rest of every case still runs; the count says the loaders were left out."""

    def __init__(self, namespace: str | None) -> None:
        self.namespace = namespace
        self.seen: set[str] = set()

    def check(self, name: str, text: str) -> None:
        key = hashlib.sha256(f"{name}\0{text}".encode()).hexdigest()
        if key in self.seen:
            return
        self.seen.add(key)
        if self.namespace is None:
            COUNTS[f"{name} not loaded: {netns.skip_reason()}"] += 1
            return
        command = {"ruleset.nft": ["nft", "-c", "-f", "-"], "ruleset.iptables": ["iptables-restore", "--test"],
                   "ruleset.ip6tables": ["ip6tables-restore", "--test"]}[name]
        done = netns.run(self.namespace, *command, input=text, check=False)
        assert done.returncode == 0, f"{name} refused by {command[0]}: {done.stderr}\n{text}"
        COUNTS[f"{name} loaded by {command[0]}"] += 1


@pytest.fixture(scope="module")
def loaders() -> Iterator[Loaders]:
    if netns.skip_reason():
        yield Loaders(None)
        return
    name = netns.unique_prefix() + "-fuzz"
    netns.add(name)
    try:
        yield Loaders(name)
    finally:
        netns.delete(name)


@pytest.fixture(scope="module", autouse=True)
def report_counts(request: pytest.FixtureRequest) -> Iterator[None]:
    """Prints what the fuzzing tried and how it ended (the numbers in tests/README.md come from here)."""
    yield
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\nfuzz counts: {json.dumps(dict(sorted(COUNTS.items())), indent=1)}")


@pytest.fixture(scope="module")
def template() -> Iterator[Path]:
    """A root holding the example's configuration and the output generated from it."""
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory) / "root"
        shutil.copytree(EXAMPLE, root)
        for name in (STANZA, NETPLAN):
            (root / name).chmod(0o600)
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(["generate", "--root-dir", str(root)]) == cli.EXIT_OK
        yield root


SAFE_TOKEN = r"[A-Za-z0-9_.@+:/-]+"
LINE_SHAPES = {
    ".conf": re.compile(rf"(#[ -~]*|\[(RoutingPolicyRule|Route)\]|[A-Z][A-Za-z]+={SAFE_TOKEN}|)"),
    "50-multiuplink.conf": re.compile(
        rf"(#[ -~]*|net/ipv[46]/conf/{SAFE_TOKEN}/rp_filter = [0-2]|net/ipv4/tcp_fwmark_accept = 1|)"),
    ".iptables": re.compile(rf"(#[ -~]*|\*mangle|:[A-Z_]+ - \[0:0\]|-[AIN] ({SAFE_TOKEN}|!| )+|COMMIT|)"),
}
NFT_LINE = re.compile(rf"\t*([^\"\x00-\x08\x0a-\x1f\x7f-\U0010ffff]*|[^\"]*(\"{SAFE_TOKEN}\"[^\"]*)+)")


def check_rendered(root: Path, loaders: Loaders) -> None:
    """Every line has its format's shape (a value never adds a line, a quote or a control character)."""
    for relative, text in footprint(root).items():
        if not text:
            continue
        name = Path(relative).name
        assert text.isascii() and text.endswith("\n"), relative
        if name == "manifest.json":
            json.loads(text)
            continue
        shape = NFT_LINE if name == "ruleset.nft" else LINE_SHAPES[
            "50-multiuplink.conf" if relative.startswith("run/sysctl.d/") else Path(name).suffix.replace(
                ".ip6tables", ".iptables")]
        for line in text.splitlines():
            assert shape.fullmatch(line), f"{relative}: {line!r}"
        if name.startswith("ruleset."):
            loaders.check(name, text)


def run_case(template: Path, loaders: Loaders, files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory) / "root"
        shutil.copytree(template, root, symlinks=True)
        for relative, content in files.items():
            (root / relative).write_bytes(content)
            (root / relative).chmod(0o600)
        before = footprint(root)
        out, err = io.StringIO(), io.StringIO()
        with bounded(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["generate", "--root-dir", str(root)])
        assert code in (cli.EXIT_OK, cli.EXIT_CONFIG), err.getvalue()
        assert all(char.isprintable() for line in err.getvalue().splitlines() for char in line.replace("\t", " "))
        if code == cli.EXIT_CONFIG:
            COUNTS["refused with file:line:col"] += 1
            assert footprint(root) == before, "a config error must leave the previous output as it was"
            assert re.match(r"[^\n]+:\d+:\d+: ", err.getvalue()), err.getvalue()
            return
        COUNTS["accepted"] += 1
        check_rendered(root, loaders)


# --- the properties -----------------------------------------------------------------------------------------

@FUZZ
@given(document=STANZA_DOCUMENTS | FUZZED_STANZAS)
def test_fuzzed_stanza_structures(template: Path, loaders: Loaders, document: object) -> None:
    COUNTS["stanza structures"] += 1
    run_case(template, loaders, {STANZA: dumped(document)})


@FUZZ
@given(document=NETPLAN_DOCUMENTS, stanza=FUZZED_STANZAS)
def test_fuzzed_netplan_structures(template: Path, loaders: Loaders, document: object, stanza: object) -> None:
    COUNTS["netplan structures"] += 1
    run_case(template, loaders, {NETPLAN: dumped(document), STANZA: dumped(stanza)})


@FUZZ
@given(pair=plausible())
def test_fuzzed_plausible_configurations(template: Path, loaders: Loaders, pair: tuple[object, object]) -> None:
    COUNTS["plausible netplan and stanza"] += 1
    run_case(template, loaders, {NETPLAN: dumped(pair[0]), STANZA: dumped(pair[1])})


@FUZZ
@given(edits=EDITS)
def test_fuzzed_stanza_bytes(template: Path, loaders: Loaders, edits: list[tuple[float, str, bytes]]) -> None:
    COUNTS["stanza bytes"] += 1
    run_case(template, loaders, {STANZA: mutated((EXAMPLE / STANZA).read_bytes(), edits)})


@FUZZ
@given(edits=EDITS)
def test_fuzzed_netplan_bytes(template: Path, loaders: Loaders, edits: list[tuple[float, str, bytes]]) -> None:
    COUNTS["netplan bytes"] += 1
    run_case(template, loaders, {NETPLAN: mutated((EXAMPLE / NETPLAN).read_bytes(), edits)})
