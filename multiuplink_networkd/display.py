"""How ``status`` and ``explain`` look: an aligned table for people (colour only on a terminal), OpenMetrics for
node_exporter's textfile collector. ``--json`` is :meth:`.host.status.Status.as_json` as it is."""

from __future__ import annotations

import os
import sys

from .host import networkd

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

    from .host.explain import Finding
    from .host.status import Status, UplinkStatus

RED, GREEN, BOLD, DIM, RESET = "\033[31m", "\033[32m", "\033[1m", "\033[2m", "\033[0m"


def use_colour(stream: TextIO) -> bool:
    """On a terminal, unless NO_COLOR (no-color.org) or TERM=dumb says otherwise."""
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


class Painter:
    __slots__ = ("enabled",)

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, colour: str) -> str:
        return f"{colour}{text}{RESET}" if self.enabled else text


def human(number: int, base: int = 1000, units: tuple[str, ...] = ("", "k", "M", "G", "T")) -> str:
    """``1234`` → ``1.2k``; bytes with ``base=1024`` and units ``B K M G T``."""
    value = float(number)
    for unit in units:
        if abs(value) < base or unit == units[-1]:
            return f"{value:.0f}{unit}" if unit == units[0] or value >= 10 else f"{value:.1f}{unit}"
        value /= base
    raise AssertionError("unreachable")


def _human_bytes(number: int) -> str:
    return human(number, 1024, ("B", "K", "M", "G", "T"))


def table(rows: list[list[str]], paint: Painter, colour: Callable[[str], str | None] = lambda cell: None
          ) -> list[str]:
    """Columns padded to their widest cell; a cell ``colour`` names a colour for is painted after padding."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("  ".join(paint(cell, found) if (found := colour(cell.strip())) else cell
                               for cell in cells).rstrip())
    return lines


def _status_colour(cell: str) -> str | None:
    """Green for what is all live, red for what is missing, partly or wholly, or absent."""
    if cell == "live":
        return GREEN
    return RED if cell in ("missing", "absent") or cell.endswith(" live") else None


def _live(pairs: tuple[tuple[object, bool], ...]) -> str:
    live = sum(1 for _, is_live in pairs if is_live)
    return "live" if live == len(pairs) else "missing" if live == 0 else f"{live}/{len(pairs)} live"


def _row(u: UplinkStatus) -> list[str]:
    addresses = [a.address + ("*" if a.dynamic else "") for a in u.addresses]
    rp = u.rp_filter
    rp_text = "-" if rp.effective is None else str(rp.effective)
    if rp.boot_effective != rp.effective:
        rp_text += f" (boot {rp.boot_effective})"
    if u.counters is None:
        counted = ["-", "-", "-"]
    else:
        (connections, _), (packets_in, bytes_in), (packets_out, bytes_out) = (
            u.counters["connections"], u.counters["in"], u.counters["out"])
        counted = [human(connections), f"{human(packets_in)}/{human(packets_out)}",
                   f"{_human_bytes(bytes_in)}/{_human_bytes(bytes_out)}"]
    link = "absent" if rp.interface is None else u.link.operational if u.link else "?"
    return [u.name, u.interface, link, ", ".join(addresses[:2]) + (f" +{len(addresses) - 2}" if len(addresses) > 2
                                                                    else "") or "-",
            str(u.table), _live(u.rules), _live(u.routes), rp_text, *counted]


def status_text(status: Status, paint: Painter) -> str:
    lines = []
    if status.uplinks:
        rows = [["UPLINK", "INTERFACE", "LINK", "ADDRESSES", "TABLE", "RULES", "ROUTES", "RP_FILTER", "CONNS",
                 "PACKETS", "BYTES"]] + [_row(u) for u in status.uplinks]
        lines += table(rows, paint, _status_colour)
        lines[0] = paint(lines[0], BOLD)
        ruleset = f"{status.backend} ruleset " + (status.ruleset if status.ruleset == "loaded" else
                                                  str(status.ruleset).upper())
        networkd = "systemd-networkd " + ("running" if status.networkd_running else "NOT RUNNING")
        lines.append(f"{ruleset}; {networkd}; packets and bytes: in/out" + ("; * dynamic address" if any(
            a.dynamic for u in status.uplinks for a in u.addresses) else ""))
    else:
        lines.append("no uplinks configured")
    if not status.problems:
        lines.append(paint("in sync: the live state is what the configuration asks for", GREEN))
        return "\n".join(lines) + "\n"
    count = len(status.problems)
    lines.append(paint(f"{count} difference{'s' if count > 1 else ''} from the configuration:", RED))
    for problem in status.problems:
        prefix = f"  {problem.uplink}: " if problem.uplink else "  "
        lines.append(prefix + paint(problem.message, RED))
        lines.append(" " * len(prefix) + paint(f"hint: {problem.hint}", DIM))
    return "\n".join(lines) + "\n"


def _labels(**labels: str) -> str:
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for value in labels.values())
    return "{" + ",".join(f'{key}="{value}"' for key, value in zip(labels, escaped, strict=True)) + "}"


def status_openmetrics(status: Status) -> str:
    """OpenMetrics 1.0 text; node_exporter's textfile collector (Prometheus text format) reads it as well."""
    families: list[tuple[str, str, str, list[tuple[str, int]]]] = [
        ("multiuplink_connections", "counter", "Connections that took the uplink's mark since the ruleset was loaded.",
         []),
        ("multiuplink_packets", "counter", "Packets received on the uplink (in) and sent by its mark (out).", []),
        ("multiuplink_bytes", "counter", "Bytes received on the uplink (in) and sent by its mark (out).", []),
        ("multiuplink_uplink_up", "gauge", "1 when the uplink's link has carrier and its policy rules and table "
         "routes are live.", []),
        ("multiuplink_rp_filter", "gauge", "Effective reverse-path filter mode on the uplink's interface "
         "(0 off, 1 strict, 2 loose), now and as the next boot sets it.", []),
        ("multiuplink_ruleset_loaded", "gauge", "1 when the configured netfilter ruleset is loaded, all of it.", []),
        ("multiuplink_drift", "gauge", "Differences between the configuration and the live state (0: in sync).", []),
    ]
    samples = {name: found for name, _, _, found in families}
    for u in status.uplinks:
        labels = {"uplink": u.name, "interface": u.interface}
        if u.counters is not None:
            samples["multiuplink_connections"].append((f"_total{_labels(**labels)}", u.counters["connections"][0]))
            for direction in ("in", "out"):
                packets, octets = u.counters[direction]
                samples["multiuplink_packets"].append((f"_total{_labels(**labels, direction=direction)}", packets))
                samples["multiuplink_bytes"].append((f"_total{_labels(**labels, direction=direction)}", octets))
        up = u.link is not None and u.link.carrier not in ("no-carrier", "off") and all(
            live for _, live in u.rules + u.routes)
        samples["multiuplink_uplink_up"].append((_labels(**labels), int(up)))
        if u.rp_filter.effective is not None:
            samples["multiuplink_rp_filter"].append((_labels(**labels, when="now"), u.rp_filter.effective))
        samples["multiuplink_rp_filter"].append((_labels(**labels, when="boot"), u.rp_filter.boot_effective))
    if status.backend:
        samples["multiuplink_ruleset_loaded"].append((_labels(backend=status.backend),
                                                       int(status.ruleset == "loaded")))
    samples["multiuplink_drift"].append(("", len(status.problems)))
    lines = []
    for name, kind, help_text, found in families:
        if found:
            lines += [f"# TYPE {name} {kind}", f"# HELP {name} {help_text}"]
            lines += [f"{name}{suffix} {value}" for suffix, value in found]
    return "\n".join(lines + ["# EOF"]) + "\n"


def endpoint(address: str, port: int | None) -> str:
    shown = f"[{address}]" if ":" in address and port is not None else address
    return shown if port is None else f"{shown}:{port}"


def explain_text(peer: str, port: int | None, findings: list[Finding], paint: Painter) -> str:
    lines = []
    if findings and findings[0].connection is None:
        lines.append(f"no connection with {endpoint(peer, port)} is tracked; one arriving via each uplink would be "
                     "answered so:")
    elif not findings:
        lines.append(f"no connection with {endpoint(peer, port)} is tracked, and no uplink is configured")
    for finding in findings:
        c, u = finding.connection, finding.uplink
        if c is None:
            assert u is not None
            lines.append(paint(f"via {u.name} ({u.interface})", BOLD))
        else:
            ends = [endpoint(peer, c.peer_port), endpoint(c.local, c.local_port)]
            arrow = " -> ".join(ends if c.incoming else ends[::-1])
            flags = [flag for flag, on in (("assured", c.assured), ("unreplied", c.unreplied)) if on]
            lines.append(paint(" ".join([c.protocol, arrow, *([c.state] if c.state else []), *flags]), BOLD))
        rows = []
        if u is not None:
            rows.append(["uplink", f"{u.name}: arrived on {u.interface}, mark {u.fwmark:#x}"])
        elif c is not None:
            rows.append(["uplink", f"none: connection mark {c.mark:#x} names no uplink (it did not arrive on one); "
                                   "replies follow the main table"])
        rows += [["rule", f"{networkd.describe_rule(rule)} ({'live' if live else 'MISSING'})"]
                 for rule, live in finding.rules]
        if finding.reply is not None:
            r = finding.reply
            via = f"via {r.gateway} " if r.gateway else ""
            rows.append(["reply", f"{via}dev {r.interface}, table {r.table}, source {r.source}"])
        lines += ["  " + line for line in table(rows, paint)] if rows else []
        for problem in finding.problems:
            lines.append("  " + paint(f"problem: {problem}", RED))
        if not finding.problems and u is not None:
            lines.append("  " + paint(f"ok: answered out of {u.name}", GREEN))
    return "\n".join(lines) + "\n"


def write(text: str, stream: TextIO | None = None) -> None:
    """Print (to stdout by default), but never fail over a terminal that went away (a lost SSH session)."""
    stream = stream or sys.stdout
    try:
        stream.write(text)
        stream.flush()
    except OSError:
        pass
