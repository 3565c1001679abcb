"""Files below a root directory, reached through directory descriptors and never through a symbolic link.

Every directory is opened one component at a time, relative to its parent's
descriptor, with ``O_NOFOLLOW``: a symlink planted anywhere below the root
(``run/multiuplink``, a ``.network.d`` directory, a file we own) can neither
redirect a write nor a removal out of the root. The root itself is followed:
the caller named it. Directories we create get an explicit mode, whatever the
umask. Every refusal of the file system is a :class:`FilesystemError` that
names the path.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat

from ..errors import FilesystemError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType

DIR_MODE = 0o755
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a FIFO must not hang us
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
ENCODING = {"encoding": "utf-8", "errors": "surrogateescape"}
"""Hand-edited bytes that are not UTF-8 read back and restore exactly."""


class RootDir:
    """The root, and the directories below it that this run opened (closed on exit)."""

    def __init__(self, root: str) -> None:
        self.root = root
        try:
            self._fds = {"": os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)}
        except OSError as error:
            raise FilesystemError(f"cannot open {root}: {error.strerror}") from None
        self.created: list[str] = []
        """Directories this instance made, parents first."""

    def __enter__(self) -> RootDir:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def shown(self, relative: str) -> str:
        return os.path.join(self.root, relative)

    def refused(self, action: str, relative: str, error: OSError) -> FilesystemError:
        reason = "a symbolic link (never followed)" if error.errno == errno.ELOOP else error.strerror
        return FilesystemError(f"cannot {action} {self.shown(relative)}: {reason}")

    def directory(self, relative: str, create: bool = False) -> int | None:
        """A descriptor of ``relative`` (made with :data:`DIR_MODE` if ``create``); None if it is absent."""
        if relative in self._fds:
            return self._fds[relative]
        parent_path, _, name = relative.rpartition("/")
        if name in ("", ".", ".."):
            raise ValueError(f"not a plain path below the root: {relative!r}")
        parent = self.directory(parent_path, create)
        if parent is None:
            return None
        fd = self._open_directory(parent, name, relative, create)
        if fd is not None:
            self._fds[relative] = fd
        return fd

    def _open_directory(self, parent: int, name: str, relative: str, create: bool) -> int | None:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                return None
        except NotADirectoryError:
            if not create:
                return None  # not ours to read through; a write says why
            raise FilesystemError(f"cannot write into {self.shown(relative)}: "
                                  f"{self._what(parent, name)}, not a directory") from None
        except OSError as error:
            raise self.refused("open", relative, error) from None
        try:
            os.mkdir(name, DIR_MODE, dir_fd=parent)
            self.created.append(relative)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
            os.fchmod(fd, DIR_MODE)  # mkdir's mode passes through the umask
        except OSError as error:
            raise self.refused("create directory", relative, error) from None
        return fd

    def _locate(self, relative: str) -> tuple[int | None, str]:
        """The descriptor of ``relative``'s directory (None if it is absent) and its last component."""
        parent_path, _, name = relative.rpartition("/")
        return self.directory(parent_path), name

    @staticmethod
    def _what(parent: int, name: str) -> str:
        mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
        return "a symbolic link (never followed)" if stat.S_ISLNK(mode) else "it is a file"

    def read(self, relative: str) -> str | None:
        """The text of a regular file; None if there is none (absent, a symlink, a FIFO, a directory)."""
        parent, name = self._locate(relative)
        if parent is None:
            return None
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=parent)
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ELOOP, errno.ENXIO):
                return None
            raise self.refused("read", relative, error) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
        except OSError as error:
            raise self.refused("read", relative, error) from None
        finally:
            os.close(fd)
        return b"".join(chunks).decode(**ENCODING)

    def create(self, beside: str, name: str, data: bytes, mode: int) -> None:
        """A new file ``name`` in the directory of ``beside`` (``O_EXCL``: never an existing file or symlink),
        on disk before it returns; a refusal names ``beside``, the file it is made for."""
        directory = os.path.dirname(beside)
        parent = self.directory(directory, create=True)
        assert parent is not None
        try:
            fd = os.open(name, _CREATE_FLAGS, mode, dir_fd=parent)
        except OSError as error:
            raise self.refused("write", beside, error) from None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, mode)  # the umask applies to open's mode too
            os.fsync(fd)
        except OSError as error:
            self.remove(f"{directory}/{name}")
            raise self.refused("write", beside, error) from None
        finally:
            os.close(fd)

    def kind(self, relative: str) -> int | None:
        """``stat.S_IFMT`` of what is at ``relative`` (a symlink is itself); None if nothing."""
        parent, name = self._locate(relative)
        if parent is None:
            return None
        try:
            return stat.S_IFMT(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise self.refused("examine", relative, error) from None

    def rename(self, directory: str, old: str, new: str) -> None:
        parent = self.directory(directory)
        try:
            if parent is None:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
            os.rename(old, new, src_dir_fd=parent, dst_dir_fd=parent)
        except OSError as error:
            raise self.refused("replace", f"{directory}/{new}", error) from None

    def remove(self, relative: str) -> bool:
        """Unlink a file (a symlink itself, never its target); False if it was gone already."""
        parent, name = self._locate(relative)
        try:
            if parent is None:
                return False
            os.unlink(name, dir_fd=parent)
        except FileNotFoundError:
            return False
        except OSError as error:
            raise self.refused("remove", relative, error) from None
        return True

    def remove_if_empty(self, relative: str) -> None:
        """Remove a directory this run may have emptied; one that still holds anything stays."""
        parent, name = self._locate(relative)
        if parent is None:
            return
        fd = self._fds.pop(relative, None)
        if fd is not None:
            os.close(fd)
        try:
            os.rmdir(name, dir_fd=parent)
        except OSError:
            pass

    def sync(self, directory: str) -> None:
        """Make the renames and removals in ``directory`` durable."""
        fd = self.directory(directory)
        if fd is not None:
            try:
                os.fsync(fd)
            except OSError as error:
                raise self.refused("sync", directory, error) from None

    def glob(self, pattern: str, files: bool = True) -> list[str]:
        """Relative paths matching ``pattern`` (fnmatch per component), through real directories only.

        The last component matches regular files (or, with ``files=False``, directories); never a symlink.
        """
        found = [""]
        parts = pattern.split("/")
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            wanted = stat.S_IFREG if last and files else stat.S_IFDIR
            found = [match for base in found for match in self._matches(base, part, wanted)]
        return sorted(found)

    def _matches(self, base: str, part: str, wanted: int) -> list[str]:
        join = f"{base}/" if base else ""
        if not any(char in part for char in "*?["):
            return [join + part] if self.kind(join + part) == wanted else []
        fd = self.directory(base)
        if fd is None:
            return []
        try:
            with os.scandir(fd) as entries:
                names = [entry.name for entry in entries if fnmatch.fnmatchcase(entry.name, part)]
        except OSError as error:
            raise self.refused("list", base, error) from None
        return [join + name for name in names if self.kind(join + name) == wanted]
