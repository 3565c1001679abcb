"""The one module that writes the output files: the whole set switches from old to new as one unit.

A switch (:func:`write_tree`) stages every new or changed file as a temporary
``.NAME.RANDOM.tmp`` beside its target (created with ``O_EXCL``, written and
synced), then commits by writing the journal (``run/multiuplink/journal``: the
renames and removals to do), then renames and removes, and deletes the
journal. Killed before the commit, the old set is untouched; killed after it,
the journal says how to finish. Every run that writes holds one lock
(:func:`locked`), and taking it first completes a committed switch and removes
every temporary file a killed run left: so whoever runs next (``generate``,
``apply``, the boot unit's ``apply --boot``) finds the complete old or the
complete new set. All paths go through :class:`~.rootdir.RootDir`: never
through a symlink, never out of the root.
"""

from __future__ import annotations

import fcntl
import fnmatch
import json
import os
import stat
from contextlib import contextmanager

from .. import paths
from ..errors import FilesystemError
from .rootdir import ENCODING, RootDir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

FILE_MODE = 0o644
LOCK_MODE = 0o600
"""Only root may open the lock: anyone who can open a file can hold its flock, and stall every run."""
_TEMPORARY = ".{name}.*.tmp"
_STATE_FILES = (*paths.OWNED_GLOBS, paths.JOURNAL, paths.APPLYING)
"""Every name a temporary file of ours can stand beside."""
_DROPIN_DIR = os.path.dirname(paths.networkd_dropin("*"))


class Changes:
    """What a write did, so the caller reloads only what changed."""

    __slots__ = ("removed", "written")

    def __init__(self) -> None:
        self.written: list[str] = []
        self.removed: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.written or self.removed)


def is_owned(relative: str, globs: Iterable[str] = paths.OWNED_GLOBS) -> bool:
    """Whether ``relative`` is one of our names, matched component by component (``*`` never spans a ``/``)."""
    parts = relative.split("/")
    return any(len(pattern.split("/")) == len(parts) and all(
        fnmatch.fnmatchcase(part, wanted) for part, wanted in zip(parts, pattern.split("/"), strict=True))
        for pattern in globs)


def owned_files(root: str, globs: Iterable[str] = paths.OWNED_GLOBS) -> list[str]:
    """The regular files under ``root`` that match our owned names (not through symlinks): relative, sorted."""
    with RootDir(root) as tree:
        return sorted({found for pattern in globs for found in tree.glob(pattern)})


def read_owned(root: str) -> dict[str, str]:
    """The owned files under ``root`` as they are now: ``{relative path: text}``."""
    with RootDir(root) as tree:
        texts = {relative: tree.read(relative) for pattern in paths.OWNED_GLOBS for relative in tree.glob(pattern)}
    return {relative: text for relative, text in sorted(texts.items()) if text is not None}


@contextmanager
def locked(root: str) -> Iterator[None]:
    """Serialise every run that writes under ``root`` (generate, apply, try); first finish what a killed run left."""
    with RootDir(root) as tree:
        directory = tree.directory(paths.STATE_DIR, create=True)
        try:  # O_RDONLY: an existing lock still works on a read-only file system
            fd = os.open(os.path.basename(paths.LOCK_FILE), os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         LOCK_MODE, dir_fd=directory)
        except OSError as error:
            raise tree.refused("open", paths.LOCK_FILE, error) from None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise FilesystemError(f"cannot lock {os.path.join(root, paths.LOCK_FILE)}: not a regular file")
        if stat.S_IMODE(status.st_mode) != LOCK_MODE:
            try:
                os.fchmod(fd, LOCK_MODE)
            except OSError:
                pass  # read-only: nothing else can change there either
        fcntl.flock(fd, fcntl.LOCK_EX)
        recover(root)
        yield
    finally:
        os.close(fd)


def recover(root: str) -> bool:
    """Complete a switch a killed run committed, and remove what killed runs left; True if one was completed."""
    with RootDir(root) as tree:
        journal = tree.read(paths.JOURNAL)
        if journal is not None:
            renames, removals = _parse_journal(journal)
            _switch(tree, renames, removals)
        for pattern in _STATE_FILES:
            directory, _, name = pattern.rpartition("/")
            for temporary in tree.glob(f"{directory}/{_TEMPORARY.format(name=name)}"):
                tree.remove(temporary)
        for directory in _dropin_dirs(tree):
            tree.remove_if_empty(directory)
    return journal is not None


def write_tree(root: str, files: dict[str, str]) -> Changes:
    """Make the owned files under ``root`` exactly ``files``, as one switch; call it holding :func:`locked`."""
    changes = Changes()
    with RootDir(root) as tree:
        renames: list[tuple[str, str, str]] = []
        try:
            for relative in sorted(files):
                if not is_owned(relative):
                    raise ValueError(f"not a file this package owns: {relative}")
                if tree.read(relative) != files[relative]:
                    renames.append(_stage(tree, relative, files[relative]))
                    changes.written.append(relative)
            changes.removed = sorted(relative for pattern in paths.OWNED_GLOBS for relative in tree.glob(pattern)
                                     if relative not in files)
            if changes:
                for directory in sorted({directory for directory, _, _ in renames}):
                    tree.sync(directory)  # the staged files are durable before the journal says to use them
                _replace(tree, paths.JOURNAL, json.dumps({"rename": renames, "remove": changes.removed}))
        except BaseException as error:
            _discard(tree, renames)
            if isinstance(error, FilesystemError):
                raise FilesystemError(f"{error}; the previous files are in place") from None
            raise
        if changes:
            _switch(tree, renames, changes.removed)
    return changes


def write_unapplied(root: str, files: dict[str, str]) -> Changes:
    """``generate``: write ``files`` without applying them. The host is then behind its files, so this leaves
    apply's marker (:data:`~..paths.APPLYING`, with the manifest the host may still follow) for the next apply."""
    with locked(root):
        if read_state(root, paths.APPLYING) is None and read_owned(root) != files:
            write_state(root, paths.APPLYING, read_state(root, paths.MANIFEST) or "")
        return write_tree(root, files)


def read_state(root: str, relative: str) -> str | None:
    """One of our own state files (not through a symlink); None if it is absent."""
    with RootDir(root) as tree:
        return tree.read(relative)


def write_state(root: str, relative: str, text: str | None) -> None:
    """Replace one of our own state files atomically, or remove it (``None``)."""
    with RootDir(root) as tree:
        if text is None:
            tree.remove(relative)
            tree.sync(os.path.dirname(relative))
        elif tree.read(relative) != text:
            _replace(tree, relative, text)


def _stage(tree: RootDir, relative: str, text: str) -> tuple[str, str, str]:
    """Write ``text`` beside ``relative`` under a fresh temporary name; ``(directory, temporary, name)``."""
    directory, _, name = relative.rpartition("/")
    if tree.kind(relative) == stat.S_IFDIR:  # the rename would fail after the commit: refuse now
        raise FilesystemError(f"cannot write {tree.shown(relative)}: it is a directory")
    temporary = _TEMPORARY.format(name=name).replace("*", os.urandom(6).hex())
    tree.create(relative, temporary, text.encode(**ENCODING), FILE_MODE)
    return directory, temporary, name


def _replace(tree: RootDir, relative: str, text: str) -> None:
    """One file, atomically: staged, renamed, its directory synced."""
    directory, temporary, name = _stage(tree, relative, text)
    try:
        tree.rename(directory, temporary, name)
    except BaseException:
        _discard(tree, [(directory, temporary, name)])
        raise
    tree.sync(directory)


def _discard(tree: RootDir, renames: list[tuple[str, str, str]]) -> None:
    """Undo staging: remove the temporary files and the directories made for them (best effort: we are failing)."""
    try:
        for directory, temporary, _ in renames:
            tree.remove(f"{directory}/{temporary}")
        for directory in reversed(tree.created):
            tree.remove_if_empty(directory)
    except FilesystemError:
        pass  # the next run's recovery removes them


def _switch(tree: RootDir, renames: Iterable[tuple[str, str, str]], removals: Iterable[str]) -> None:
    """The committed part: renames (skipping those done before a kill), removals, then the journal goes."""
    touched = set()
    try:
        for directory, temporary, name in renames:
            if tree.kind(f"{directory}/{temporary}") == stat.S_IFREG:
                tree.rename(directory, temporary, name)
            touched.add(directory)
        for relative in removals:
            tree.remove(relative)
            touched.add(os.path.dirname(relative))
        for directory in sorted(touched):
            if is_owned(directory, [_DROPIN_DIR]):
                tree.remove_if_empty(directory)  # a .network.d directory we emptied goes; one holding others' stays
            tree.sync(directory)
        tree.remove(paths.JOURNAL)
        tree.sync(paths.STATE_DIR)
    except FilesystemError as error:
        raise FilesystemError(f"{error}; the new files are committed, the next run completes the switch") from None


def _dropin_dirs(tree: RootDir) -> list[str]:
    return tree.glob(_DROPIN_DIR, files=False)


def _parse_journal(text: str) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The journal's renames and removals, only those of our own names; nothing from a damaged one."""
    try:
        data = json.loads(text)
        renames = [(str(directory), str(temporary), str(name)) for directory, temporary, name in data["rename"]]
        removals = [str(relative) for relative in data["remove"]]
    except (ValueError, TypeError, KeyError, RecursionError):
        return [], []
    renames = [(directory, temporary, name) for directory, temporary, name in renames
               if is_owned(f"{directory}/{name}") and "/" not in temporary
               and fnmatch.fnmatchcase(temporary, _TEMPORARY.format(name=name))]
    return renames, [relative for relative in removals if is_owned(relative)]
