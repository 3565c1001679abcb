"""Build the Debian package from a copy of the source tree, once per test session.

``build_deb(tmpdir)`` copies the project's files (git's tracked and untracked,
not ignored ones) into ``tmpdir`` and runs ``dpkg-buildpackage -us -uc -b``
there, never in the checkout, so no debian/ build artefacts are left in it.
Later calls in the same process return the same .deb. The build runs with a
plain system PATH and environment, as on a clean Debian machine (a pyenv or
venv python first in PATH would otherwise be the one pybuild calls).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "multiuplink-networkd"
BUILD_TOOLS = ("dpkg-buildpackage", "dpkg-checkbuilddeps")
_IGNORED = shutil.ignore_patterns(".git", ".pybuild", "__pycache__", "*.pyc", ".*_cache", ".venv", "build",
                                  "dist", "*.egg-info", ".benchmarks")

_cache: dict[str, Path] = {}
BUILD_SECONDS: dict[str, float] = {}
"""How long each .deb of the session took to build, by file name (reports print it)."""


class BuildError(RuntimeError):
    """dpkg-buildpackage failed; the message ends with the end of its log."""


def build_environment(home: Path) -> dict[str, str]:
    """What a clean machine's root shell would have: no pyenv, venv, PYTHONPATH or CI knobs."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home), "LC_ALL": "C.UTF-8",
           "TMPDIR": str(home)}
    if "DEB_BUILD_OPTIONS" in os.environ:
        env["DEB_BUILD_OPTIONS"] = os.environ["DEB_BUILD_OPTIONS"]
    return env


def missing_build_tools() -> str | None:
    """Why the package cannot be built here, or None."""
    for tool in BUILD_TOOLS:
        if not shutil.which(tool):
            return f"{tool} missing (apt-get install dpkg-dev)"
    check = subprocess.run(["dpkg-checkbuilddeps"], cwd=REPO, capture_output=True, text=True, check=False)
    if check.returncode != 0:
        return f"build dependencies missing, install them with 'apt-get build-dep -y ./': {check.stderr.strip()}"
    return None


def copy_source(dest: Path) -> Path:
    """The project's files, as a source package would hold them, in ``dest/multiuplink-networkd``."""
    tree = dest / PACKAGE
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=False) if shutil.which("git") else None
    if listed is None or listed.returncode != 0:  # not a git checkout: copy all but caches and build output
        shutil.copytree(REPO, tree, ignore=_IGNORED, symlinks=True)
        return tree
    for name in sorted(set(listed.stdout.decode().split("\0")) - {""}):
        source = REPO / name
        if source.is_file() or source.is_symlink():  # listed but deleted in the work tree: skip
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name, follow_symlinks=False)
    return tree


def _build(tmpdir: Path, *options: str) -> Path:
    tree = copy_source(tmpdir)
    log = tmpdir / "build.log"
    with log.open("w") as stream:
        result = subprocess.run(["dpkg-buildpackage", "-us", "-uc", *options], cwd=tree, stdout=stream,
                                stderr=subprocess.STDOUT, env=build_environment(tmpdir), check=False)
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise BuildError(f"dpkg-buildpackage {' '.join(options)} failed (exit {result.returncode}), "
                         f"log {log}:\n{tail}")
    return tree


def build_deb(tmpdir: Path | str) -> Path:
    """The binary package ``multiuplink-networkd_<version>_all.deb``, built in ``tmpdir`` on the first call."""
    if "deb" not in _cache or not _cache["deb"].exists():
        tmpdir = Path(tmpdir)
        _build(tmpdir, "-b")
        [deb] = tmpdir.glob(f"{PACKAGE}_*_all.deb")
        _cache["deb"] = deb
    return _cache["deb"]


def build_dsc(tmpdir: Path | str) -> Path:
    """The source package's .dsc, built in ``tmpdir`` on the first call (build dependencies not needed)."""
    if "dsc" not in _cache or not _cache["dsc"].exists():
        tmpdir = Path(tmpdir)
        _build(tmpdir, "-S", "-d")
        [dsc] = tmpdir.glob(f"{PACKAGE}_*.dsc")
        _cache["dsc"] = dsc
    return _cache["dsc"]
