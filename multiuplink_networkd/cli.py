"""``multiuplink``: generate, validate, apply and try the multi-uplink configuration; show and explain it live.

The one place that joins the three parts: :mod:`.config` reads the files into
the model, :mod:`.render` turns it into files (the desired state), :mod:`.host`
writes and loads them, or compares them with the live state.

Exit codes: 0 success; 1 the configuration has errors (nothing was written or
changed); 2 wrong command line; 3 the host refused a change at run time (the
previous configuration was kept or restored); 4 applied, but systemd-networkd
is not running, so its rules and routes come when it starts; 5 the file system
refused (full, read-only, a symlink or a file in the way), said in one line
with the path: the previous files stay complete (``apply`` also restored the
previous configuration); 6 the live state differs from the configuration
(status, explain); 7 try was not confirmed, the previous configuration was
restored.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__, paths

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .errors import ConfigErrors
    from .model import Settings, Uplink

EXIT_OK, EXIT_CONFIG, EXIT_USAGE, EXIT_RUNTIME, EXIT_NETWORKD_DOWN = 0, 1, 2, 3, 4
EXIT_FILESYSTEM, EXIT_DRIFT, EXIT_ROLLED_BACK = 5, 6, 7
TRY_TIMEOUT = 120.0
"""Seconds ``try`` waits for a confirmation, as ``netplan try`` does."""


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"{text}: must be more than 0 and at most 86400 seconds")
    return value


def _root_dir(text: str) -> str:
    """An existing directory: a mistyped root would read as 'no stanza' and remove every output under it."""
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text}: no such directory")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="multiuplink",
        description="Answer every connection out of the uplink it arrived on "
                    "(stanza files: /etc/netplan/multiuplink.d/*.yaml).")
    parser.add_argument("--version", action="version", version=f"multiuplink-networkd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary in (
        ("generate", "render networkd drop-ins, the netfilter ruleset and sysctl.d under the root"),
        ("validate", "check the stanza and netplan's files with the full JSON Schema; print every error"),
        ("apply", "generate, load the ruleset and sysctls, and have systemd-networkd reload (over D-Bus)"),
        ("try", "apply, then restore the previous configuration unless confirmed in time"),
        ("status", "show each uplink live and every difference from the configuration"),
        ("explain", "show how the host answers a remote peer: its connections, their uplink, the reply's route"),
    ):
        command = commands.add_parser(name, help=summary, description=summary)
        command.add_argument("--root-dir", default="/", metavar="DIR", type=_root_dir,
                             help="read and write under DIR instead of / (default: %(default)s)")
        if name == "apply":
            command.add_argument("--boot", action="store_true",
                                 help="the boot unit's mode: tell systemd-networkd only if it already runs")
        if name == "try":
            command.add_argument("--timeout", type=_seconds, default=TRY_TIMEOUT, metavar="SECONDS",
                                 help="restore the previous configuration after SECONDS (default: %(default)g)")
            command.add_argument("--confirm", action="store_true",
                                 help="keep the configuration a waiting 'multiuplink try' applied")
        if name == "status":
            output = command.add_mutually_exclusive_group()
            output.add_argument("--format", choices=("text", "json", "openmetrics"), default="text",
                                help="text for people, json (schema/status.schema.json), or openmetrics for "
                                     "node_exporter's textfile collector (default: %(default)s)")
            output.add_argument("--json", action="store_const", const="json", dest="format",
                                help="same as --format=json")
        if name == "explain":
            command.add_argument("peer", metavar="ADDRESS[:PORT]", type=_peer,
                                 help="the remote end of the connections to explain; PORT narrows them to those "
                                      "with that port at either end")
    return parser


def report(errors: ConfigErrors) -> None:
    from .config.yamlsource import read_source_line

    print(errors.format(read_source_line), file=sys.stderr)
    count = len(errors.errors)
    print(f"multiuplink: {count} error{'s' if count > 1 else ''}; nothing was written", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .config import stanza
    from .errors import ConfigErrors, FilesystemError, HostError

    if args.command == "try" and args.confirm:
        return _confirm(args.root_dir)
    _warn_too_open(args.root_dir)
    try:
        settings = stanza.load(args.root_dir, reference=args.command == "validate")
    except ConfigErrors as errors:
        report(errors)
        return EXIT_CONFIG
    try:
        if args.command == "validate":
            return _validate(settings, live=os.path.abspath(args.root_dir) == "/")
        if args.command == "apply":
            return _apply(args.root_dir, settings, args.boot)
        if args.command == "try":
            return _try(args.root_dir, settings, args.timeout)
        if args.command == "status":
            return _status(args.root_dir, settings, args.format)
        if args.command == "explain":
            return _explain(settings, args.peer)
        return _generate(args.root_dir, settings)
    except HostError as error:
        print(f"multiuplink: {args.command} failed: {error}", file=sys.stderr)
        # apply's rollback keeps the cause: a file system's refusal has its own code there too
        return EXIT_FILESYSTEM if isinstance(error, FilesystemError) or isinstance(
            error.__cause__, FilesystemError) else EXIT_RUNTIME


def _warn_too_open(root: str) -> None:
    """netplan's warning, in its words, for the stanza files beside its own; a warning only, as there."""
    from .config import inputs
    from .errors import printable

    for shown in inputs.too_open(root):
        print(f"multiuplink: Permissions for {printable(shown)} are too open. Netplan configuration should NOT be "
              "accessible by others.", file=sys.stderr)


def _validate(settings: Settings | None, live: bool) -> int:
    """``live``: the root is this host's, so its firewall is checked too."""
    if settings is None:
        print("no stanza files in /{lib,etc,run}/netplan/multiuplink.d/")
        return EXIT_OK
    for u in settings.uplinks:
        print(f"{u.name}: interface {u.interface} (netplan {u.netplan_id}), mark {u.fwmark:#x}/"
              f"{settings.mark_mask:#x}, table {u.table}")
        for line in _facts(u):
            print(f"  {line}")
    print(f"valid: {len(settings.uplinks)} uplink{'s' if len(settings.uplinks) != 1 else ''}, "
          f"backend {settings.backend}, rp-filter {settings.rp_filter}")
    if live:
        _warn_reverse_path(settings)
    return EXIT_OK


def _warn_reverse_path(settings: Settings) -> None:
    """Say which strict reverse-path checks of the host's firewall would drop the uplinks' connections."""
    from .host import rpfilter

    uplinks: dict[str, set[int]] = {}
    for uplink in settings.uplinks:
        uplinks.setdefault(uplink.interface, set()).update(uplink.families())
    for finding in rpfilter.findings(uplinks):
        print(f"multiuplink: {finding.format()}", file=sys.stderr)


def _facts(uplink: Uplink) -> list[str]:
    """Where each fact of the uplink comes from: a file and line, or the network at run time."""
    from .model import DEVICE, DHCP4, STATIC

    lines = []
    for route in uplink.routes:
        family = f"IPv{route.family}"
        where = f", from {route.origin!r}" if route.origin else ""
        if route.source == STATIC:
            lines.append(f"{family} gateway {route.gateway}{where}")
        elif route.source == DEVICE:
            lines.append(f"{family} default route out of {uplink.interface} itself"
                         f"{where or ', no gateway declared (a tunnel or point-to-point address)'}")
        elif route.source == DHCP4:
            lines.append(f"{family} gateway: the DHCPv4 lease's router, followed at run time"
                         f"{f' (enabled at {route.origin!r})' if route.origin else ''}")
        else:
            lines.append(f"{family} gateway: the routers advertising themselves, followed at run time" + (
                f" (enabled at {route.origin!r})" if route.origin else
                " (systemd-networkd accepts router advertisements unless the host forwards IPv6)"))
    lines += [f"IPv{version} not served: nothing configures it for this uplink in netplan (addresses, a default "
              "route, dhcp, accept-ra) or 'family' leaves it out"
              for version in (4, 6) if version not in uplink.families()]
    if uplink.by_address:
        lines.append(f"only connections for {', '.join(str(a.ip) for a in uplink.addresses)}: "
                     f"{uplink.interface} carries several ISPs")
    for version, origin in uplink.address_origins:
        networks = dict.fromkeys(str(a.network) for a in uplink.addresses if a.version == version)
        lines.append(f"IPv{version} link routes {', '.join(networks)}, from {origin!r}")
    if not uplink.address_origins:
        lines.append("no static addresses: replies to its subnets follow the main table's link routes")
    return lines


def _generate(root: str, settings: Settings | None) -> int:
    from .host import writer
    from .render import render

    changes = writer.write_unapplied(root, render(settings) if settings else {})
    for path in changes.written:
        print(f"wrote {path}")
    for path in changes.removed:
        print(f"removed {path}")
    return EXIT_OK


def _apply(root: str, settings: Settings | None, boot: bool) -> int:
    from .host.apply import apply
    from .render import render

    applied = apply(root, render(settings) if settings else {}, boot=boot)
    if applied.networkd_down:
        print(f"multiuplink: {applied.networkd_down}: the ruleset and sysctls are loaded and the drop-ins "
              "written; networkd installs the rules and routes when it starts", file=sys.stderr)
        return EXIT_NETWORKD_DOWN
    print("\n".join(f"changed {item}" for item in applied.changed) if applied.changed
          else "unchanged: nothing to do")
    if settings and not boot:  # at boot the host's firewall may not be loaded yet
        _warn_reverse_path(settings)
    return EXIT_OK


def _status(root: str, settings: Settings | None, output: str) -> int:
    import json

    from . import display
    from .host import status
    from .render import render

    found = status.collect(root, render(settings) if settings else {})
    if output == "json":
        display.write(json.dumps(found.as_json(), indent=2, sort_keys=True) + "\n")
    elif output == "openmetrics":
        display.write(display.status_openmetrics(found))
        return EXIT_OK  # drift is in the multiuplink_drift gauge; a failing exit would keep the old metrics file
    else:
        display.write(display.status_text(found, display.Painter(display.use_colour(sys.stdout))))
    return EXIT_DRIFT if found.problems else EXIT_OK


def _peer(text: str) -> tuple[str, int | None]:
    from .host.explain import parse_peer

    try:
        return parse_peer(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _explain(settings: Settings | None, peer: tuple[str, int | None]) -> int:
    from . import display
    from .host import explain
    from .render import manifest, render

    wanted = manifest.parse(render(settings).get(paths.MANIFEST) if settings else None)
    findings = explain.explain(wanted, *peer)
    display.write(display.explain_text(*peer, findings, display.Painter(display.use_colour(sys.stdout))))
    return EXIT_DRIFT if any(f.problems for f in findings) else EXIT_OK


def _try(root: str, settings: Settings | None, seconds: float) -> int:
    from . import display
    from .host import trial
    from .render import render

    terminal = sys.stdin.fileno() if sys.stdin.isatty() else None
    countdown = terminal is not None and sys.stdout.isatty()

    def applied(changed: list[str], networkd_down: str | None) -> None:
        lines = [f"changed {item}" for item in changed]
        if networkd_down:
            lines.append(f"multiuplink: {networkd_down}: its rules and routes come when it starts")
        how = "press Enter, or run" if terminal is not None else "run"
        lines.append(f"to keep this configuration, {how} 'multiuplink try --confirm' within {seconds:g} s; "
                     "otherwise the previous one is restored")
        display.write("\n".join(lines) + "\n")

    def tick(left: int) -> None:
        if countdown:
            display.write(f"\r{left} s left ")

    outcome = trial.attempt(root, render(settings) if settings else {}, seconds, terminal, applied, tick)
    if countdown:
        display.write("\n")
    if outcome.how == "unchanged":
        display.write("unchanged: nothing to try\n")
    elif outcome.kept:
        display.write("confirmed: the configuration stays\n")
    else:
        reason = "not confirmed in time" if outcome.how == "timeout" else f"interrupted by {outcome.how}"
        display.write(f"multiuplink: {reason}: the previous configuration was restored; the stanza files still "
                      "hold the change, which the next 'multiuplink apply' or boot applies\n", sys.stderr)
        return EXIT_ROLLED_BACK
    return EXIT_NETWORKD_DOWN if outcome.networkd_down else EXIT_OK


def _confirm(root: str) -> int:
    from .errors import HostError
    from .host import trial

    try:
        trial.confirm(root)
    except HostError as error:
        print(f"multiuplink: try --confirm: {error}", file=sys.stderr)
        return EXIT_RUNTIME
    print("confirmed: the configuration stays")
    return EXIT_OK
