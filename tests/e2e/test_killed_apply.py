"""``apply --boot`` killed with SIGKILL, in a namespace with real nft, iptables and rp_filter.

Killed before each of its calls once it holds the lock, and at random
moments: then the next run's recovery leaves the complete old or the complete
new file set, and applying the old configuration again brings the kernel back
to exactly it. That last part is the hard case: a run killed after loading
the new ruleset but before switching the files leaves files that say "old"
over a kernel that is "new". The kernel is compared with the real loaders'
result for the same files in a namespace of its own.
"""

from __future__ import annotations

import itertools
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from multiuplink_networkd import paths
from multiuplink_networkd.host import writer
from tests import killing
from tests.outputs import footprint, make_root, rendered, set_stanza

from .bare_host import Kernel, entering, kernel, stub_bin

TRANSITIONS = [("none", "two"), ("two", "moved"), ("moved", "iptables")]
RANDOM_KILLS = 15


@pytest.mark.parametrize("old,new", TRANSITIONS, ids=[f"{old}-to-{new}" for old, new in TRANSITIONS])
def test_a_killed_apply_leaves_old_or_new_and_the_old_config_restores_the_kernel(
        old: str, new: str, links: str, loaded: Callable[[dict[str, str]], Kernel], tmp_path: Path) -> None:
    namespace = links
    enter = entering(namespace, stub_bin(tmp_path / "bin"))
    argv = ["apply", "--boot", "--root-dir"]
    template = make_root(tmp_path / "template", old)
    assert killing.run([*argv, str(template)], setup=enter) == (killing.FINISHED, 0)
    old_files, old_kernel = footprint(template), loaded(rendered(template))
    assert kernel(namespace) == old_kernel
    set_stanza(template, new)
    new_files, new_kernel = {**rendered(template), paths.LOCK_FILE: ""}, loaded(rendered(template))
    seen: Counter[str] = Counter()

    def kill_and_recover(kill_at: int | None = None, after: float | None = None) -> str:
        """Kill an apply old -> new; check the recovered files and that applying ``old`` restores the kernel."""
        root = tmp_path / "root"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(template, root)
        outcome, code = killing.run([*argv, str(root)], kill_at, after, setup=enter, start="fcntl.flock")
        kill = f"killed at call {kill_at}" if after is None else f"killed after {after:.4f} s"
        if outcome == killing.FINISHED:
            assert code == 0 and footprint(root) == new_files and kernel(namespace) == new_kernel
        with writer.locked(str(root)):
            pass
        files = footprint(root)
        assert files in (old_files, new_files), f"{kill}: {sorted(files)}"
        seen[f"{outcome} {'old' if files == old_files else 'new'}"] += 1
        if files == old_files and not (root / paths.APPLYING).exists():
            assert kernel(namespace) == old_kernel, f"{kill}: the host changed before apply said it would"
            return outcome
        set_stanza(root, old)
        assert killing.run([*argv, str(root)], setup=enter) == (killing.FINISHED, 0)
        assert footprint(root) == old_files and not (root / paths.APPLYING).exists()
        assert kernel(namespace) == old_kernel, f"after {kill}, applying {old} again"
        return outcome

    for kill_at in itertools.count(1):
        if kill_and_recover(kill_at=kill_at) == killing.FINISHED:
            break
    shutil.copytree(template, tmp_path / "timed")
    longest = killing.duration([*argv, str(tmp_path / "timed")], setup=enter)
    set_stanza(tmp_path / "timed", old)
    assert killing.run([*argv, str(tmp_path / "timed")], setup=enter) == (killing.FINISHED, 0)
    for delay in killing.delays(old + new, RANDOM_KILLS, longest):
        kill_and_recover(after=delay)
    print(f"\n{old} -> {new}: {kill_at - 1} kills in order, then {RANDOM_KILLS} at random: {dict(seen)} "
          f"(runs take {longest * 1000:.0f} ms)")
