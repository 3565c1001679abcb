"""``generate`` killed with SIGKILL before each of its file-system calls, and at random moments.

After a kill, taking the writer's lock (what the next ``generate`` or
``apply`` does first) must leave the complete old or the complete new output
set, with no temporary file, journal or empty drop-in directory behind.
``apply``, with real nft in a namespace: e2e/test_killed_apply.py.
"""

from __future__ import annotations

import itertools
import shutil
from collections import Counter
from pathlib import Path

import pytest

from multiuplink_networkd.host import writer
from tests import killing
from tests.outputs import TRANSITIONS, expected_footprint, footprint, make_root, rendered, set_stanza

RANDOM_KILLS = 40
"""Per transition; the kills at every call already reach each state a crash can leave."""


def prepared(tmp_path: Path, old: str, new: str) -> tuple[Path, dict[str, str], dict[str, str]]:
    """A root holding ``old``'s output set and ``new``'s stanza; both footprints."""
    template = make_root(tmp_path / "template", old)
    assert killing.run(["generate", "--root-dir", str(template)]) == (killing.FINISHED, 0)
    old_set = footprint(template)
    set_stanza(template, new)
    return template, old_set, expected_footprint(rendered(template))


def killed_state(template: Path, root: Path, kill_at: int | None = None,
                 after: float | None = None) -> tuple[str, dict[str, str]]:
    """Kill a generate in a fresh copy of ``template``, then recover as the next run would."""
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(template, root, symlinks=True)
    outcome, code = killing.run(["generate", "--root-dir", str(root)], kill_at=kill_at, after=after)
    assert code in (0, 9), f"generate failed with {code}"
    with writer.locked(str(root)):
        pass
    return outcome, footprint(root)


@pytest.mark.parametrize("old,new", TRANSITIONS, ids=[f"{old}-to-{new}" for old, new in TRANSITIONS])
def test_a_kill_before_any_call_leaves_the_old_or_the_new_set(old: str, new: str, tmp_path: Path) -> None:
    template, old_set, new_set = prepared(tmp_path, old, new)
    seen: Counter[str] = Counter()
    for kill_at in itertools.count(1):
        outcome, state = killed_state(template, tmp_path / "root", kill_at=kill_at)
        if outcome == killing.FINISHED:
            assert state == new_set
            break
        assert state in (old_set, new_set), f"killed before call {kill_at}: {sorted(state)}"
        seen["old" if state == old_set else "new"] += 1
    assert seen["old"] and seen["new"], seen
    print(f"\n{old} -> {new}: {kill_at - 1} kills, {seen['old']} left the old set, {seen['new']} the new one")


@pytest.mark.parametrize("old,new", TRANSITIONS, ids=[f"{old}-to-{new}" for old, new in TRANSITIONS])
def test_kills_at_random_moments(old: str, new: str, tmp_path: Path) -> None:
    template, old_set, new_set = prepared(tmp_path, old, new)
    shutil.copytree(template, tmp_path / "timed")
    longest = killing.duration(["generate", "--root-dir", str(tmp_path / "timed")])
    seen: Counter[str] = Counter()
    for delay in killing.delays(f"{old}-{new}", RANDOM_KILLS, longest):
        outcome, state = killed_state(template, tmp_path / "root", after=delay)
        assert state in (old_set, new_set), f"killed after {delay:.4f} s: {sorted(state)}"
        seen[outcome + (" old" if state == old_set else " new")] += 1
    print(f"\n{old} -> {new}: {dict(seen)} (runs take {longest * 1000:.1f} ms)")
