#!/usr/bin/python3
"""Boot-path cost of multiuplink-networkd, as ratios to baselines measured in the same run.

Baselines: netplan's own C generator (``/lib/netplan/generate --root-dir``)
on the same netplan config, and a bare ``python3 -I -S -c pass``. Measured:
our generator (it only looks for a stanza file and links the unit), and the
whole boot work, the generator plus the configure unit's parse and render
(``multiuplink generate --root-dir`` into an empty root, as at boot). With
``--before TREE`` (a source tree, e.g. a ``git worktree`` of an older commit)
the same whole boot work of that tree runs beside, its generator without a
cache. Runs are interleaved round-robin so machine noise hits every command
alike; medians are compared. Prints ratios only (and the targets), never bare
times.

    /usr/bin/python3 bench/bench_generator.py [--runs N] [--before TREE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GENERATOR = "units/multiuplink-generator"
NETPLAN_GENERATE = "/lib/netplan/generate"
COLD_TARGET = 3.0
NO_STANZA_TARGET = 1.2
TIME = "/usr/bin/time"  # GNU time (Debian package time), for peak memory
Step = tuple[list[str], dict[str, str]]


def netplan_yaml(uplinks: int) -> str:
    lines = ["network:", "  version: 2", "  renderer: networkd", "  ethernets:"]
    for i in range(uplinks):
        lines += [f"    up{i}:", f"      addresses: [10.{i // 256}.{i % 256}.2/24]",
                  f"      routes: [{{to: default, via: 10.{i // 256}.{i % 256}.1, metric: {100 + i}}}]"]
    return "\n".join(lines) + "\n"


def stanza_yaml(uplinks: int) -> str:
    lines = ["network:", "  multiuplink:", "    uplinks:"]
    lines += [f"      isp{i}: {{interface: up{i}}}" for i in range(uplinks)]
    return "\n".join(lines) + "\n"


def make_root(base: Path, uplinks: int, with_stanza: bool, name: str = "") -> Path:
    root = base / f"root-{uplinks}-{'stanza' if with_stanza else 'plain'}{name}"
    (root / "etc/netplan/multiuplink.d").mkdir(parents=True)
    (root / "etc/netplan/50-uplinks.yaml").write_text(netplan_yaml(uplinks))
    (root / "etc/netplan/50-uplinks.yaml").chmod(0o600)  # netplan warns about readable configs
    if with_stanza:
        (root / "etc/netplan/multiuplink.d/uplinks.yaml").write_text(stanza_yaml(uplinks))
        (root / "etc/netplan/multiuplink.d/uplinks.yaml").chmod(0o600)  # and so do we
    return root


def cyaml_env() -> str:
    """The variable that makes the product use plain PyYAML instead of its C-parser-only fast path."""
    sys.path.insert(0, str(REPO))
    from multiuplink_networkd.config import cyaml

    return cyaml.PLAIN_ENV


def fast_path_available() -> bool:
    """Whether the PyYAML fast path loads with the interpreter that runs the product at boot."""
    probe = "from multiuplink_networkd.config import cyaml; raise SystemExit(0 if cyaml.FAST else 1)"
    return subprocess.run(["/usr/bin/python3", "-I", "-c", f"import sys; sys.path.insert(0, {str(REPO)!r}); {probe}"],
                          check=False).returncode == 0


def nothing() -> None:
    """No preparation: the baselines write nowhere we read."""


def timed(steps: list[Step], prepare: Callable[[], None]) -> float:
    """Wall time of ``steps`` run one after the other, as systemd runs the generator, then the unit."""
    prepare()
    start = time.perf_counter()
    for argv, env in steps:
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


class Tree:
    """The generator and ``multiuplink generate`` of one source tree, on roots made for it."""

    def __init__(self, source: Path, base: Path, uplinks: int, name: str) -> None:
        self.source = source
        self.root = make_root(base, uplinks, True, name)
        self.out = base / f"out-{uplinks}{name}"
        self.env = {**os.environ, "PYTHONPATH": str(source)}

    def generator(self, root: Path | None = None) -> Step:
        return ([str(self.source / GENERATOR), *[str(self.out)] * 3],
                {**self.env, "MULTIUPLINK_ROOT_DIR": str(root or self.root)})

    def generate(self, env: dict[str, str] | None = None) -> Step:
        return (["/usr/bin/python3", "-m", "multiuplink_networkd", "generate", "--root-dir", str(self.root)],
                env or self.env)

    def cold(self) -> None:
        """Empty output directories, no cache and nothing rendered yet: the state at boot."""
        shutil.rmtree(self.out, ignore_errors=True)
        self.out.mkdir()
        shutil.rmtree(self.root / "run", ignore_errors=True)
        shutil.rmtree(self.root / "var", ignore_errors=True)  # an older tree's generator cache

    def check(self) -> None:
        """Both steps must really do their work, or we time a failure."""
        timed([self.generator(), self.generate()], self.cold)
        (self.out / "multi-user.target.wants" / "multiuplink-configure.service").lstat()
        assert (self.root / "run/multiuplink/manifest.json").is_file(), self.root


def run_suite(uplinks: int, runs: int, base: Path, before: Path | None) -> dict[str, float]:
    after = Tree(REPO, base, uplinks, "")
    plain_root = make_root(base, uplinks, False)
    env = dict(os.environ)
    commands: dict[str, tuple[list[Step], Callable[[], None]]] = {
        "netplan": ([([NETPLAN_GENERATE, "--root-dir", str(after.root)], env)], nothing),
        "python": ([(["/usr/bin/python3", "-I", "-S", "-c", "pass"], env)], nothing),
        "cold": ([after.generator()], after.cold),
        "no-stanza": ([after.generator(plain_root)], after.cold),
        "generate": ([after.generate()], after.cold),
        "generate-plain-pyyaml": ([after.generate({**after.env, cyaml_env(): "1"})], after.cold),
        "boot": ([after.generator(), after.generate()], after.cold),
    }
    after.check()
    if before is not None:
        old = Tree(before, base, uplinks, "-before")
        old.check()
        commands["cold-before"] = ([old.generator()], old.cold)
        commands["boot-before"] = ([old.generator(), old.generate()], old.cold)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (steps, prepare) in commands.items():
            samples[name].append(timed(steps, prepare))
    return {name: statistics.median(values) for name, values in samples.items()}


def peak_rss_kib(argv: list[str], env: dict[str, str], prefix: tuple[str, ...] = ()) -> int:
    """Peak resident memory of ``argv`` (and what it runs, nft included), by GNU time run after ``prefix``.

    Not ``os.wait4`` here: a child's ru_maxrss starts at the size of the process that forked it, so every
    figure would be at least this bench's own ~14 MiB. GNU time is small; what it forks starts small.
    """
    with tempfile.NamedTemporaryFile("r") as report:
        subprocess.run([*prefix, TIME, "-f", "%M", "-o", report.name, *argv], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        return int(report.read().split()[-1])


def peak_memory(uplinks: int, base: Path) -> dict[str, int]:
    """Peak resident memory (KiB) of the boot generator, of 'multiuplink generate' and, as root, of
    'multiuplink apply --boot' in a network namespace of its own (its ruleset is loaded there; no networkd)."""
    root = make_root(base / f"memory-{uplinks}", uplinks, True)
    out = base / f"memory-out-{uplinks}"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cli = ["/usr/bin/python3", "-m", "multiuplink_networkd"]
    found = {"generator": peak_rss_kib([str(REPO / GENERATOR), *[str(out)] * 3],
                                       {**env, "MULTIUPLINK_ROOT_DIR": str(root)}),
             "generate": peak_rss_kib([*cli, "generate", "--root-dir", str(root)], env)}
    if os.geteuid() == 0:
        namespace = f"mu-memory-{os.getpid()}"
        subprocess.run(["ip", "netns", "add", namespace], check=True)
        try:
            found["apply"] = peak_rss_kib([*cli, "apply", "--boot", "--root-dir", str(root)], env,
                                          ("ip", "netns", "exec", namespace))
        finally:
            subprocess.run(["ip", "netns", "del", namespace], check=True)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--before", type=Path, metavar="TREE",
                        help="a source tree (e.g. a git worktree of an older commit) whose boot work runs beside")
    args = parser.parse_args()
    if not fast_path_available():
        print("NOTE: the PyYAML fast path (config/cyaml.py) fell back to plain PyYAML here;"
              " 'generate' below is the plain-PyYAML figure")
    with tempfile.TemporaryDirectory(prefix="mu-bench-") as tmp:
        for uplinks in (2, 128):
            medians = run_suite(uplinks, args.runs, Path(tmp), args.before)
            netplan, python = medians["netplan"], medians["python"]
            print(f"{uplinks} uplinks, median of {args.runs} interleaved runs:")
            ratio = medians["cold"] / netplan
            print(f"  generator            {ratio:5.2f}x netplan's generator (target <= {COLD_TARGET}x)"
                  f"{'' if ratio <= COLD_TARGET else '  OVER TARGET'}")
            ratio = medians["no-stanza"] / python
            print(f"  generator no-stanza  {ratio:5.2f}x bare python3 -I -S (target <= {NO_STANZA_TARGET}x)"
                  f"{'' if ratio <= NO_STANZA_TARGET else '  OVER TARGET'}")
            print(f"  'multiuplink generate' (the unit's parse and render) {medians['generate'] / netplan:5.2f}x"
                  f" netplan's generator; with plain PyYAML {medians['generate-plain-pyyaml'] / netplan:5.2f}x"
                  " (why config/cyaml.py exists)")
            print(f"  boot work, generator + generate: {medians['boot'] / netplan:5.2f}x netplan's generator")
            if "boot-before" in medians:
                print(f"  generator of {args.before}, without its cache: {medians['cold-before'] / netplan:5.2f}x"
                      " netplan's generator")
                print(f"  boot work of {args.before}: {medians['boot-before'] / netplan:5.2f}x netplan's generator;"
                      f" this tree's is {medians['boot'] / medians['boot-before']:4.2f}x of it")
            print(f"  (netplan's generator itself: {netplan / python:4.2f}x bare python3)")
            memory = peak_memory(uplinks, Path(tmp))
            print("  peak memory (GNU time's maximum resident set size): " + ", ".join(
                f"{name} {kib / 1024:.1f} MiB" for name, kib in memory.items())
                  + ("" if "apply" in memory else " (apply: needs root)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
