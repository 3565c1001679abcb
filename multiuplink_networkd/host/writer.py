"""The one module that writes files: atomically, only when content changed, removing stale owned files."""

from __future__ import annotations

import fcntl
import glob
import os
from contextlib import contextmanager

from .. import paths

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator


class Changes:
    """What a write did, so the caller reloads only what changed."""

    __slots__ = ("removed", "written")

    def __init__(self) -> None:
        self.written: list[str] = []
        self.removed: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.written or self.removed)

    def touched(self) -> list[str]:
        return sorted(self.written + self.removed)


def write_atomically(path: str, text: str, mode: int = 0o644) -> None:
    """Temp file in the same directory, fsync, rename: readers see the old or the new file, never half."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    temp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise


def owned_files(root: str, globs: Iterable[str] = paths.OWNED_GLOBS) -> list[str]:
    """The files under ``root`` that match our owned names: relative paths, sorted."""
    found = set()
    for pattern in globs:
        for real in glob.glob(os.path.join(root, pattern)):
            found.add(os.path.relpath(real, root))
    return sorted(found)


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def read_owned(root: str) -> dict[str, str]:
    """The owned files under ``root`` as they are now: ``{relative path: text}``."""
    return {relative: read_text(os.path.join(root, relative)) or "" for relative in owned_files(root)}


@contextmanager
def locked(root: str) -> Iterator[None]:
    """Serialise every run that writes under ``root`` (generate, apply, try)."""
    path = os.path.join(root, paths.LOCK_FILE)
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    with open(path, "a", encoding="ascii") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def remember(root: str, relative: str, text: str) -> None:
    """A cache write that may fail (read-only /var): losing it costs only speed."""
    real = os.path.join(root, relative)
    if read_text(real) != text:
        try:
            write_atomically(real, text)
        except OSError:
            pass


def write_tree(root: str, files: dict[str, str]) -> Changes:
    """Make the owned files under ``root`` exactly ``files``: write what differs, remove the rest."""
    changes = Changes()
    for relative in sorted(files):
        real = os.path.join(root, relative)
        if read_text(real) != files[relative]:
            write_atomically(real, files[relative])
            changes.written.append(relative)
    for relative in owned_files(root):
        if relative not in files:
            os.unlink(os.path.join(root, relative))
            changes.removed.append(relative)
            _remove_empty_dropin_dir(os.path.dirname(os.path.join(root, relative)))
    return changes


def _remove_empty_dropin_dir(directory: str) -> None:
    """A ``.network.d`` directory we emptied goes too; one that holds other files stays."""
    if directory.endswith(".network.d"):
        try:
            os.rmdir(directory)
        except OSError:
            pass
