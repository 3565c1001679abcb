"""The apply plan's undo stack, with stand-in steps: the order of undos, half-done steps, failing undos.

The real steps are proven against a real networkd and real loaders in e2e/test_apply.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from multiuplink_networkd import paths
from multiuplink_networkd.config import stanza
from multiuplink_networkd.errors import HostError
from multiuplink_networkd.host.apply import ApplyError, execute
from multiuplink_networkd.render import manifest, render


class Step:
    def __init__(self, name: str, log: list[str], atomic: bool = True, fail: bool = False,
                 fail_undo: bool = False, interrupt: bool = False) -> None:
        self.name, self.log, self.atomic = name, log, atomic
        self.fail, self.fail_undo, self.interrupt = fail, fail_undo, interrupt

    def apply(self) -> None:
        self.log.append(f"apply {self.name}")
        if self.interrupt:
            raise KeyboardInterrupt
        if self.fail:
            raise HostError(f"{self.name} refused")

    def undo(self) -> None:
        self.log.append(f"undo {self.name}")
        if self.fail_undo:
            raise HostError(f"{self.name} could not be undone")

    def describe(self) -> list[str]:
        return [self.name]


def test_success_keeps_everything_and_returns_the_open_undo_stack() -> None:
    log: list[str] = []
    stack = execute([Step("a", log), Step("b", log)])
    assert log == ["apply a", "apply b"]
    stack.close()  # what 'try' does when the change is not confirmed
    assert log[2:] == ["undo b", "undo a"]


def test_failure_undoes_the_done_steps_in_reverse_and_not_the_atomic_failed_one() -> None:
    log: list[str] = []
    with pytest.raises(ApplyError, match="c refused; the previous configuration was restored"):
        execute([Step("a", log), Step("b", log), Step("c", log, fail=True), Step("d", log)])
    assert log == ["apply a", "apply b", "apply c", "undo b", "undo a"]


def test_a_non_atomic_step_that_fails_half_way_is_undone_first() -> None:
    log: list[str] = []
    with pytest.raises(ApplyError):
        execute([Step("a", log), Step("b", log, atomic=False, fail=True)])
    assert log == ["apply a", "apply b", "undo b", "undo a"]


def test_a_failing_undo_does_not_stop_the_others_and_is_reported() -> None:
    log: list[str] = []
    with pytest.raises(ApplyError, match="c refused; restoring it failed too: b could not be undone"):
        execute([Step("a", log), Step("b", log, fail_undo=True), Step("c", log, fail=True)])
    assert log == ["apply a", "apply b", "apply c", "undo b", "undo a"]


def test_an_interruption_unwinds_too() -> None:
    log: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        execute([Step("a", log), Step("b", log, atomic=False, interrupt=True)])
    assert log == ["apply a", "apply b", "undo b", "undo a"]


UPLINK = {"name": "isp1", "dropin": "x", "rp_filter": 2, "rules": [], "table": 101, "fwmark": 1, "routes": []}


@pytest.mark.parametrize("text", [None, "", "not json", "[]", '{"format": 99, "uplinks": []}',
                                  '{"format": 2, "mark_mask": 1, "uplinks": [{"name": "x"}]}', '{"format": 2}',
                                  '{"format": 1, "uplinks": []}', "[" * 100000] + [
    json.dumps({"format": 2, "mark_mask": 1, "uplinks": [{**UPLINK, "interface": name}]})
    for name in ("../conf/all", "..", "", "eth 1", "eth1\n", "a" * 16, "eth1:0")])
def test_a_missing_damaged_or_older_manifest_reads_as_no_uplinks(text: str | None) -> None:
    assert manifest.parse(text) == manifest.EMPTY


def test_the_manifest_reads_back_what_the_model_asks_of_the_host(tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(Path(__file__).parent / "cases/two-isps/input", root)
    settings = stanza.load(str(root))
    assert settings is not None
    applied = manifest.parse(render(settings)[paths.MANIFEST])
    assert applied.mark_mask == settings.mark_mask
    assert [tuple(u) for u in applied.uplinks] == [
        (u.name, u.interface, paths.networkd_dropin(u.netplan_id), 2, settings.policy_rules(u), u.table, u.fwmark,
         settings.table_routes(u)) for u in settings.uplinks]
