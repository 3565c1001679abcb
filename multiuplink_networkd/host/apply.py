"""``multiuplink apply``: make the running host match the rendered files, or leave it as it was.

The work is a plan of typed steps: a mark that the host is changing (so a
killed run is redone in full by the next), the ruleset (one atomic
transaction), rp_filter of existing links and tcp_fwmark_accept, then the files together with
networkd picking up the changed drop-ins. A step's undo goes on an undo stack once the step is
done, so a failure anywhere unwinds the steps before it in reverse order; a
step that is not atomic and fails half-way is undone at once. ``try`` is the
same plan with the stack kept open until the change is confirmed. Runs are
serialised by the writer's lock; a run that finds nothing to change touches
nothing.

Everything comes from the rendered files: what the previous run asked of the
host is in its manifest, so the user's configuration is never read here.
"""

from __future__ import annotations

import contextlib

from .. import paths
from ..errors import HostError
from ..model import PolicyRule, TableRoute
from ..render import manifest
from ..render.sysctl import TCP_FWMARK_ACCEPT, rp_filter_key
from . import networkd, sysctl, sysctl_d, writer
from .netfilter import Ruleset

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Protocol

    from ..render.manifest import AppliedUplink

    class Step(Protocol):
        atomic: bool
        """Whether a failed ``apply`` leaves everything as it was; else ``undo`` follows it."""
        def apply(self) -> None: ...
        def undo(self) -> None: ...
        def describe(self) -> list[str]: ...


class ApplyError(HostError):
    """A step failed; the previous configuration was restored (the message says if any of that failed)."""


class RulesetStep:
    """Load the new ruleset; undo by loading the old one (or removing ours)."""

    atomic = True  # nft -f and iptables-restore are one transaction each

    def __init__(self, old: Ruleset, new: Ruleset) -> None:
        self.old = old
        self.new = new

    def apply(self) -> None:
        self.new.install()

    def undo(self) -> None:
        self.old.install()

    def describe(self) -> list[str]:
        return ["netfilter"]


class SysctlStep:
    """Set rp_filter on existing uplinks and tcp_fwmark_accept now (sysctl.d covers later links and boots)."""

    atomic = False

    def __init__(self, values: dict[str, tuple[int | None, int]]) -> None:
        self.values = values  # key (slash form): (value now, value wanted)

    def apply(self) -> None:
        for key, (_, wanted) in self.values.items():
            sysctl.write(key, wanted)

    def undo(self) -> None:
        for key, (previous, _) in self.values.items():
            if previous is not None:
                sysctl.write(key, previous)

    def describe(self) -> list[str]:
        return [key.replace("/", ".") if key == TCP_FWMARK_ACCEPT else f"rp_filter of {key.split('/')[3]}"
                for key in self.values]


class FilesStep:
    """Write the output files; have networkd pick up the drop-ins, which only then take effect.

    One step, because networkd's state follows the drop-ins: undoing the files
    means telling networkd again, after they are back.
    """

    atomic = False

    def __init__(self, root: str, before: dict[str, str], files: dict[str, str],
                 forward: list[networkd.Link], backward: list[networkd.Link], tell_networkd: bool) -> None:
        self.root = root
        self.before = before
        self.files = files
        self.forward = forward
        self.backward = backward
        self.tell_networkd = tell_networkd
        self.networkd_down: networkd.NetworkdDown | None = None

    def apply(self) -> None:
        try:
            writer.write_tree(self.root, self.files)
            if self.tell_networkd and self.forward:
                networkd.pick_up(self.forward)
        except networkd.NetworkdDown as error:  # not a failure: it reads the drop-ins when it starts
            self.networkd_down = error

    def undo(self) -> None:
        writer.write_tree(self.root, self.before)
        if self.tell_networkd and self.backward and self.networkd_down is None:
            networkd.pick_up(self.backward)

    def describe(self) -> list[str]:
        written = [path for path in sorted(set(self.files) | set(self.before))
                   if self.files.get(path) != self.before.get(path)]
        return written + [f"policy rules and routes of {link.interface}" for link in self.forward
                          if not link.rewritten]


class MarkStep:
    """Mark the host as changing (:data:`~..paths.APPLYING`) before the first step; undone, the old mark is back.

    Done, the mark stays until :func:`settle`: if the run is killed, the next one finds it.
    """

    atomic = True

    def __init__(self, root: str, previous: str | None, target: str) -> None:
        self.root = root
        self.previous = previous
        self.target = target

    def apply(self) -> None:
        writer.write_state(self.root, paths.APPLYING, self.target)

    def undo(self) -> None:
        writer.write_state(self.root, paths.APPLYING, self.previous)

    def describe(self) -> list[str]:
        return []


def settle(root: str) -> None:
    """The host follows its files now: the next run may trust them again."""
    writer.write_state(root, paths.APPLYING, None)


def plan(root: str, before: dict[str, str], files: dict[str, str], boot: bool) -> list[Step]:
    """The steps that take the host from ``before`` (the files of the last run) to ``files``; none if in sync.

    When the mark of :class:`MarkStep` is there, the host may not follow ``before`` (a run was killed on its
    way to the manifest the mark holds, or a generate wrote files nobody applied): every step is then done,
    and the mark's uplinks count as previous ones too.
    """
    interrupted = writer.read_state(root, paths.APPLYING)
    steps: list[Step] = []
    old_ruleset, new_ruleset = Ruleset.of(before), Ruleset.of(files)
    if interrupted is not None or new_ruleset != old_ruleset or not new_ruleset.live():
        steps.append(RulesetStep(old_ruleset, new_ruleset))
    old, new = manifest.parse(before.get(paths.MANIFEST)).uplinks, manifest.parse(files.get(paths.MANIFEST)).uplinks
    if interrupted is not None:
        old += tuple(u for u in manifest.parse(interrupted).uplinks if u.dropin not in {o.dropin for o in old})
    sysctls = _sysctl_changes(root, old, new, files)
    if sysctls:
        steps.append(SysctlStep(sysctls))
    tell_networkd = not boot or networkd.running()  # at boot networkd starts after us and reads the files itself
    changed = {path for path in set(files) | set(before) if files.get(path) != before.get(path)}
    if interrupted is not None:
        changed |= {uplink.dropin for uplink in old + new}
    live = (networkd.live_rules(), networkd.live_routes()) if tell_networkd and new else (set(), set())
    forward, backward = _links(old, new, changed, *live)
    if changed or (tell_networkd and forward):
        steps.append(FilesStep(root, before, files, forward, backward, tell_networkd))
    return [MarkStep(root, interrupted, files.get(paths.MANIFEST, "")), *steps] if steps else []


def _sysctl_changes(root: str, old: Sequence[AppliedUplink], new: Sequence[AppliedUplink], files: dict[str, str]
                    ) -> dict[str, tuple[int | None, int]]:
    """``{key: (now, wanted)}`` for the values not set yet: each uplink's rp_filter, and tcp_fwmark_accept while
    there are uplinks; for uplinks that went, the namespace default, and for tcp_fwmark_accept what the sysctl.d
    files without ours give."""
    wanted = {rp_filter_key(uplink.interface): uplink.rp_filter for uplink in new}
    for uplink in old:
        wanted.setdefault(rp_filter_key(uplink.interface), sysctl.default_rp_filter())
    if new:
        wanted[TCP_FWMARK_ACCEPT] = 1
    elif old:
        replaced = {paths.SYSCTL_FILE: files.get(paths.SYSCTL_FILE)}
        wanted[TCP_FWMARK_ACCEPT] = sysctl_d.at_boot(root, TCP_FWMARK_ACCEPT, replaced, 0).value
    changes: dict[str, tuple[int | None, int]] = {}
    for key, value in wanted.items():
        now = sysctl.read(key)
        if now not in (None, value):
            changes[key] = (now, value)
    return changes


def _links(old: Sequence[AppliedUplink], new: Sequence[AppliedUplink], changed: set[str], live: set[PolicyRule],
           live_routes: set[networkd.LiveRoute]) -> tuple[list[networkd.Link], list[networkd.Link]]:
    """Links networkd must act on, forwards and for undo: changed drop-ins, and links whose rules or table routes
    are not live.

    A drop-in may carry several uplinks (ISPs sharing an interface): its link must have all their rules and routes.
    """
    def by_dropin(uplinks: Sequence[AppliedUplink]) -> dict[str, tuple[str, set[PolicyRule], set[TableRoute]]]:
        found: dict[str, tuple[str, set[PolicyRule], set[TableRoute]]] = {}
        for uplink in uplinks:
            _, rules, routes = found.setdefault(uplink.dropin, (uplink.interface, set(), set()))
            rules.update(uplink.rules)
            routes.update(uplink.routes)
        return found

    old_by_dropin, new_by_dropin = by_dropin(old), by_dropin(new)
    forward, backward = [], []
    for dropin in sorted(set(old_by_dropin) | set(new_by_dropin)):
        interface, wanted, wanted_routes = new_by_dropin.get(dropin, ("", set(), set()))
        _, previous, previous_routes = old_by_dropin.get(dropin, (interface, set(), set()))
        interface = interface or old_by_dropin[dropin][0]
        rewritten = dropin in changed
        link = networkd.Link(interface, wanted, previous, rewritten, wanted_routes, previous_routes)
        if rewritten or (not link.converged(live, live_routes) and networkd.has_carrier(interface)):
            forward.append(link)
        if rewritten:  # a repaired link needs no undo
            backward.append(networkd.Link(interface, previous, wanted, True, previous_routes, wanted_routes))
    return forward, backward


def execute(steps: Sequence[Step]) -> contextlib.ExitStack:
    """Run ``steps``; on failure undo them all and raise :class:`ApplyError`. Returns the open undo stack."""
    failures: list[str] = []
    try:
        with contextlib.ExitStack() as undo:
            for step in steps:
                try:
                    step.apply()
                except BaseException:
                    if not step.atomic:
                        _undo(step, failures)
                    raise
                undo.callback(_undo, step, failures)
            return undo.pop_all()
    except HostError as error:
        outcome = f"restoring it failed too: {'; '.join(failures)}" if failures else \
            "the previous configuration was restored"
        raise ApplyError(f"{error}; {outcome}") from error  # the cause decides the exit code


def _undo(step: Step, failures: list[str]) -> None:
    """Best effort: one failing undo must not stop the others."""
    try:
        step.undo()
    except HostError as error:
        failures.append(str(error))


class Applied:
    """What an apply changed, and whether networkd still has to read the drop-ins."""

    __slots__ = ("changed", "networkd_down")

    def __init__(self, changed: list[str], networkd_down: networkd.NetworkdDown | None) -> None:
        self.changed = changed
        self.networkd_down = networkd_down


def apply(root: str, files: dict[str, str], boot: bool = False) -> Applied:
    """Make the host match ``files`` (rendered for ``root``); raises :class:`ApplyError` after rolling back.

    ``boot`` (the unit's mode): networkd is told only if it already runs.
    """
    with writer.locked(root):
        before = writer.read_owned(root)
        steps = plan(root, before, files, boot)
        execute(steps)
        if steps:
            settle(root)
        down = next((s.networkd_down for s in steps if isinstance(s, FilesStep) and s.networkd_down), None)
        return Applied([item for step in steps for item in step.describe()], down)
