"""``multiuplink``: generate, validate and apply the multi-uplink configuration.

The one place that joins the three parts: :mod:`.config` reads the files into
the model, :mod:`.render` turns it into files, :mod:`.host` writes and loads them.

Exit codes: 0 success; 1 the configuration has errors (nothing was written or
changed); 2 wrong command line; 3 the host refused a change at run time (the
previous configuration was kept or restored); 4 applied, but systemd-networkd
is not running, so its rules and routes come when it starts.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .errors import ConfigErrors
    from .model import Settings

EXIT_OK, EXIT_CONFIG, EXIT_USAGE, EXIT_RUNTIME, EXIT_NETWORKD_DOWN = 0, 1, 2, 3, 4


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
    ):
        command = commands.add_parser(name, help=summary, description=summary)
        command.add_argument("--root-dir", default="/", metavar="DIR",
                             help="read and write under DIR instead of / (default: %(default)s)")
        if name == "apply":
            command.add_argument("--boot", action="store_true",
                                 help="the boot unit's mode: tell systemd-networkd only if it already runs")
    return parser


def report(errors: ConfigErrors) -> None:
    from .config.yamlsource import read_source_line

    print(errors.format(read_source_line), file=sys.stderr)
    count = len(errors.errors)
    print(f"multiuplink: {count} error{'s' if count > 1 else ''}; nothing was written", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .config import inputs, stanza
    from .errors import ConfigErrors, HostError

    try:
        validated_inputs = inputs.fingerprint(args.root_dir, __version__)  # before reading: a racing edit misses
        settings = stanza.load(args.root_dir, reference=args.command == "validate")
    except ConfigErrors as errors:
        report(errors)
        return EXIT_CONFIG
    try:
        if args.command == "validate":
            return _validate(settings)
        if args.command == "apply":
            return _apply(args.root_dir, settings, args.boot, validated_inputs if settings else None)
        return _generate(args.root_dir, settings)
    except HostError as error:
        print(f"multiuplink: {args.command} failed: {error}", file=sys.stderr)
        return EXIT_RUNTIME


def _validate(settings: Settings | None) -> int:
    if settings is None:
        print("no stanza files in /{lib,etc,run}/netplan/multiuplink.d/")
        return EXIT_OK
    for u in settings.uplinks:
        print(f"{u.name}: interface {u.interface} (netplan {u.netplan_id}), mark {u.fwmark:#x}/"
              f"{settings.mark_mask:#x}, table {u.table}, gateway {u.gateway}")
    print(f"valid: {len(settings.uplinks)} uplink{'s' if len(settings.uplinks) != 1 else ''}, "
          f"backend {settings.backend}, rp-filter {settings.rp_filter}")
    return EXIT_OK


def _generate(root: str, settings: Settings | None) -> int:
    from .host import writer
    from .render import render

    with writer.locked(root):
        changes = writer.write_tree(root, render(settings) if settings else {})
    for path in changes.written:
        print(f"wrote {path}")
    for path in changes.removed:
        print(f"removed {path}")
    return EXIT_OK


def _apply(root: str, settings: Settings | None, boot: bool, validated_inputs: str | None) -> int:
    from .host.apply import apply
    from .render import render

    applied = apply(root, render(settings) if settings else {}, boot=boot, validated_inputs=validated_inputs)
    if applied.networkd_down:
        print(f"multiuplink: {applied.networkd_down}: the ruleset and sysctls are loaded and the drop-ins "
              "written; networkd installs the rules and routes when it starts", file=sys.stderr)
        return EXIT_NETWORKD_DOWN
    print("\n".join(f"changed {item}" for item in applied.changed) if applied.changed
          else "unchanged: nothing to do")
    return EXIT_OK
