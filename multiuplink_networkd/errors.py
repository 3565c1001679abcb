"""The two kinds of failure the user sees.

:class:`ConfigError`: a problem in the user's files, in netplan's format
(``path:line:col: message``, source line, caret, hint); nothing is written.
:class:`HostError`: the host refused something we asked (a loader, a file
system, networkd); the caller keeps or restores the previous configuration.
:class:`FilesystemError`, the file system's refusal, has an exit code of its own.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


class Position:
    """Where a value stands in a source file (1-based line and column)."""

    __slots__ = ("column", "line", "path")

    def __init__(self, path: str, line: int, column: int) -> None:
        self.path = path
        self.line = line
        self.column = column

    def __repr__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Position) and (self.path, self.line, self.column) == (
            other.path, other.line, other.column)

    def __hash__(self) -> int:
        return hash((self.path, self.line, self.column))


class ConfigError(Exception):
    """One problem in the user's files; ``hint`` says how to fix it."""

    def __init__(self, position: Position | None, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.position = position
        self.message = message
        self.hint = hint

    def sort_key(self) -> tuple[str, int, int, str]:
        pos = self.position
        return (pos.path, pos.line, pos.column, self.message) if pos else ("", 0, 0, self.message)

    def format(self, read_line: ReadLine | None = None) -> str:
        """Render like netplan: location, message, the source line and a caret, then the hint."""
        pos = self.position
        lines = [f"{pos!r}: {self.message}" if pos else self.message]
        if pos and read_line:
            source = read_line(pos)
            if source is not None:
                lines.append(source)
                lines.append(" " * (pos.column - 1) + "^")
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


class ConfigErrors(Exception):
    """Every problem found in one run, sorted by place, so the user fixes them all at once."""

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        self.errors = sorted(errors, key=ConfigError.sort_key)
        super().__init__(f"{len(self.errors)} error(s)")

    def format(self, read_line: ReadLine | None = None) -> str:
        return "\n".join(e.format(read_line) for e in self.errors)


class HostError(Exception):
    """The host refused an action: a command failed, a file could not be written, networkd did not follow."""


class FilesystemError(HostError):
    """The file system refused: full, read-only, a symlink or a file where we write; the message names the path."""


if TYPE_CHECKING:
    from collections.abc import Callable

    ReadLine = Callable[[Position], "str | None"]
