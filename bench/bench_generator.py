#!/usr/bin/python3
"""Boot-path cost of the multiuplink generator, as ratios to baselines measured in the same run.

Baselines: netplan's own C generator (``/lib/netplan/generate --root-dir``)
on the same netplan config, and a bare ``python3 -I -S -c pass``. Runs are
interleaved round-robin so machine noise hits every command alike; medians
are compared. Prints ratios only (and the targets), never bare times.

    /usr/bin/python3 bench/bench_generator.py [--runs N]
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
GENERATOR = REPO / "units" / "multiuplink-generator"
NETPLAN_GENERATE = "/lib/netplan/generate"
TARGETS = {"cold": 3.0, "unchanged": 1.5}
NO_STANZA_TARGET = 1.2


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


def make_root(base: Path, uplinks: int, with_stanza: bool) -> Path:
    root = base / f"root-{uplinks}-{'stanza' if with_stanza else 'plain'}"
    (root / "etc/netplan/multiuplink.d").mkdir(parents=True)
    (root / "etc/netplan/50-uplinks.yaml").write_text(netplan_yaml(uplinks))
    (root / "etc/netplan/50-uplinks.yaml").chmod(0o600)  # netplan warns about readable configs
    if with_stanza:
        (root / "etc/netplan/multiuplink.d/uplinks.yaml").write_text(stanza_yaml(uplinks))
        (root / "etc/netplan/multiuplink.d/uplinks.yaml").chmod(0o600)  # and so do we
    return root


def cyaml_env() -> str:
    """The variable that makes the generator use plain PyYAML instead of its C-parser-only fast path."""
    sys.path.insert(0, str(REPO))
    from multiuplink_networkd.config import cyaml

    return cyaml.PLAIN_ENV


def fast_path_available() -> bool:
    """Whether the generator's PyYAML fast path loads with the interpreter that runs it at boot."""
    probe = "from multiuplink_networkd.config import cyaml; raise SystemExit(0 if cyaml.FAST else 1)"
    return subprocess.run(["/usr/bin/python3", "-I", "-c", f"import sys; sys.path.insert(0, {str(REPO)!r}); {probe}"],
                          check=False).returncode == 0


def timed(argv: list[str], env: dict[str, str], prepare: Callable[[], None] | None = None) -> float:
    if prepare is not None:
        prepare()
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run_suite(uplinks: int, runs: int, base: Path) -> dict[str, float]:
    stanza_root = make_root(base, uplinks, True)
    plain_root = make_root(base, uplinks, False)
    out = base / f"out-{uplinks}"
    env = dict(os.environ)
    cache = stanza_root / "var/lib/multiuplink/validated"

    def generator(root: Path) -> tuple[list[str], dict[str, str]]:
        return [str(GENERATOR), str(out), str(out), str(out)], {**env, "MULTIUPLINK_ROOT_DIR": str(root)}

    def clear_out() -> None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()

    def cold() -> None:
        clear_out()
        cache.unlink(missing_ok=True)

    # Record "inputs valid" the way a successful boot-time apply does.
    subprocess.run([sys.executable, "-m", "multiuplink_networkd", "generate", "--root-dir", str(stanza_root)],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    sys.path.insert(0, str(REPO))
    from multiuplink_networkd import __version__
    from multiuplink_networkd.config import inputs

    fingerprint = inputs.fingerprint(str(stanza_root), __version__)

    def unchanged() -> None:
        clear_out()
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(fingerprint)

    netplan_out = base / f"netplan-{uplinks}"
    plain_pyyaml = {**env, cyaml_env(): "1"}
    commands: dict[str, tuple[Callable[[], tuple[list[str], dict[str, str]]], Callable[[], None] | None]] = {
        "netplan": (lambda: ([NETPLAN_GENERATE, "--root-dir", str(stanza_root)], env), None),
        "python": (lambda: (["/usr/bin/python3", "-I", "-S", "-c", "pass"], env), None),
        "cold": (lambda: generator(stanza_root), cold),
        "cold-plain-pyyaml": (lambda: (generator(stanza_root)[0], {**generator(stanza_root)[1], **plain_pyyaml}),
                              cold),
        "unchanged": (lambda: generator(stanza_root), unchanged),
        "no-stanza": (lambda: generator(plain_root), clear_out),
        "generate-cli": (lambda: (["/usr/bin/python3", "-m", "multiuplink_networkd", "generate", "--root-dir",
                                   str(netplan_out)], {**env, "PYTHONPATH": str(REPO)}), None),
    }
    shutil.copytree(stanza_root, netplan_out)
    for check in ("cold", "unchanged"):  # both paths must really enable the unit, or we time a failure
        argv, run_env = commands[check][0]()
        timed(argv, run_env, commands[check][1])
        (out / "multi-user.target.wants" / "multiuplink-configure.service").lstat()
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (argv_env, prepare) in commands.items():
            argv, run_env = argv_env()
            samples[name].append(timed(argv, run_env, prepare))
    return {name: statistics.median(values) for name, values in samples.items()}


def peak_rss_kib(argv: list[str], env: dict[str, str]) -> int:
    """ru_maxrss of the child itself (``os.wait4``), not of its own children (nft, ip, networkctl)."""
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, argv)
    return usage.ru_maxrss


def peak_memory(uplinks: int, base: Path) -> dict[str, int]:
    """Peak resident memory (KiB) of the boot generator (cold), of 'multiuplink generate' and, as root, of
    'multiuplink apply --boot' in a network namespace of its own (its ruleset is loaded there; no networkd)."""
    root = make_root(base / f"memory-{uplinks}", uplinks, True)
    out = base / f"memory-out-{uplinks}"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cli = ["/usr/bin/python3", "-m", "multiuplink_networkd"]
    found = {"generator, cold": peak_rss_kib([str(GENERATOR), *[str(out)] * 3],
                                             {**env, "MULTIUPLINK_ROOT_DIR": str(root)}),
             "generate": peak_rss_kib([*cli, "generate", "--root-dir", str(root)], env)}
    if os.geteuid() == 0:
        namespace = f"mu-memory-{os.getpid()}"
        subprocess.run(["ip", "netns", "add", namespace], check=True)
        try:
            found["apply"] = peak_rss_kib(["ip", "netns", "exec", namespace, *cli, "apply", "--boot", "--root-dir",
                                           str(root)], env)
        finally:
            subprocess.run(["ip", "netns", "del", namespace], check=True)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    if not fast_path_available():
        print("NOTE: the generator's PyYAML fast path (config/cyaml.py) fell back to plain PyYAML here;"
              " 'cold' below is the plain-PyYAML figure")
    with tempfile.TemporaryDirectory(prefix="mu-bench-") as tmp:
        for uplinks in (2, 128):
            medians = run_suite(uplinks, args.runs, Path(tmp))
            netplan, python = medians["netplan"], medians["python"]
            print(f"{uplinks} uplinks, median of {args.runs} interleaved runs:")
            for case, target in TARGETS.items():
                ratio = medians[case] / netplan
                print(f"  generator {case:<10} {ratio:5.2f}x netplan's generator (target <= {target}x)"
                      f"{'' if ratio <= target else '  OVER TARGET'}")
            plain = medians["cold-plain-pyyaml"] / netplan
            print(f"  generator cold with plain PyYAML {plain:5.2f}x netplan's generator (why config/cyaml.py exists)")
            ratio = medians["no-stanza"] / python
            print(f"  generator no-stanza  {ratio:5.2f}x bare python3 -I -S (target <= {NO_STANZA_TARGET}x)"
                  f"{'' if ratio <= NO_STANZA_TARGET else '  OVER TARGET'}")
            full_render = medians["generate-cli"] / netplan
            print(f"  'multiuplink generate' (full render) {full_render:5.2f}x netplan's generator")
            print(f"  (netplan's generator itself: {netplan / python:4.2f}x bare python3)")
            memory = peak_memory(uplinks, Path(tmp))
            print("  peak memory (ru_maxrss of the Python process): " + ", ".join(
                f"{name} {kib / 1024:.1f} MiB" for name, kib in memory.items())
                  + ("" if "apply" in memory else " (apply: needs root)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
