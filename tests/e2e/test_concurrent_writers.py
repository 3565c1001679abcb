"""Twenty writers at once (``generate`` and ``apply --boot``, real nft), while the stanza keeps changing.

Every run must finish without a crash; the files are one complete set at the
end, and one more apply makes the kernel exactly what that set asks for.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from multiuplink_networkd import paths
from tests.outputs import STANZA, STANZAS, expected_footprint, footprint, make_root, rendered, set_stanza

from .bare_host import Kernel, kernel, multiuplink, stub_bin

WRITERS = 20


def flip_stanza(root: Path, stop: threading.Event) -> None:
    """Switch between two stanzas as an editor saving the file would (write, then rename), until ``stop``."""
    for turn in range(1_000_000):
        if stop.wait(0.005):
            return
        text = STANZAS["two" if turn % 2 else "moved"]
        assert text is not None
        (root / f"{STANZA}.new").write_text(text)
        (root / f"{STANZA}.new").chmod(0o600)  # as netplan wants; others may not read it
        os.replace(root / f"{STANZA}.new", root / STANZA)


def run_files(root: Path) -> dict[str, str]:
    return {path: text for path, text in footprint(root).items() if path.startswith("run/")}


def test_twenty_writers_at_once(links: str, loaded: Callable[[dict[str, str]], Kernel], tmp_path: Path) -> None:
    bin_dir = stub_bin(tmp_path / "bin")
    root = make_root(tmp_path / "root", "two")
    sets = [expected_footprint(rendered(root))]
    set_stanza(root, "moved")
    sets.append(expected_footprint(rendered(root)))
    stop = threading.Event()
    flipper = threading.Thread(target=flip_stanza, args=(root, stop))
    flipper.start()
    try:
        commands = [["generate"] if number % 2 else ["apply", "--boot"] for number in range(WRITERS)]
        writers = [multiuplink(links, bin_dir, *command, "--root-dir", str(root)) for command in commands]
        results = [(command[0], *writer.communicate(timeout=120), writer.returncode)
                   for command, writer in zip(commands, writers, strict=True)]
    finally:
        stop.set()
        flipper.join()
    assert [(command, err, code) for command, _, err, code in results if code or err] == []
    worked = sum(bool(out.strip()) and "unchanged" not in out for _, out, _, _ in results)
    print(f"\n{WRITERS} writers, {worked} of them changed something")
    assert run_files(root) in sets
    done = multiuplink(links, bin_dir, "apply", "--boot", "--root-dir", str(root))
    assert done.wait(timeout=60) == 0, done.communicate()
    assert run_files(root) == expected_footprint(rendered(root))
    assert not (root / paths.APPLYING).exists()
    assert kernel(links) == loaded(rendered(root))
