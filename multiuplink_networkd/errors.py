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
        message = printable(self.message)
        lines = [f"{printable(repr(pos))}: {message}" if pos else message]
        if pos and read_line:
            source = read_line(pos)
            if source is not None and "\0" not in source:  # binary (/proc/self/environ...): never echoed
                lines.extend(_excerpt(source, pos.column))
        if self.hint:
            lines.append(f"hint: {printable(self.hint)}")
        return "\n".join(lines)


MESSAGE_MAX = 400
"""Longest message shown whole; a megabyte value in it is cut in the middle."""
EXCERPT_MAX = 160
"""Characters of a source line echoed around the caret."""


def printable(text: str, limit: int = MESSAGE_MAX) -> str:
    """``text`` safe for a terminal or the journal: control and format characters escaped, long text cut."""
    if len(text) > limit:
        text = f"{text[:limit * 3 // 4]}...{text[-limit // 4:]}"
    return "".join(char if char.isprintable() else _escape(char) for char in text)


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _excerpt(source: str, column: int) -> list[str]:
    """The source line, escaped and cut to a window around ``column``, and a caret under that column.

    The caret line repeats the tabs before the column and pads each other cell to
    the width it takes on a terminal, so the caret stands under its character."""
    import unicodedata

    cells = [char if char == "\t" or char.isprintable() else _escape(char) for char in source]
    index = min(max(column - 1, 0), len(cells))
    start = max(0, min(index - EXCERPT_MAX * 2 // 3, len(cells) - EXCERPT_MAX))
    end = min(len(cells), start + EXCERPT_MAX)
    before, after = ("..." if start else ""), ("..." if end < len(cells) else "")
    pad = [" " * len(before)]
    for cell in cells[start:index]:
        wide = len(cell) == 1 and unicodedata.east_asian_width(cell) in "WF"
        pad.append("\t" if cell == "\t" else " " * (2 if wide else len(cell)))
    return [before + "".join(cells[start:end]) + after, "".join(pad) + "^"]


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
