"""Reading source: a DAG file's name, path and bytes, and its syntax tree.

Nothing here imports or runs the file: its bytes are read and handed to :func:`ast.parse`.
Every way that can fail (a missing or special file, a file over the size or token bounds of
:mod:`gust.parser._limits`, a syntax error, a NUL byte, source too deeply nested for Python's
parser) becomes a :class:`SourceError` with the line to point at. The file is opened without
blocking and read up to one byte past the bound, so a FIFO, a device or a 2 GB sparse file
costs nothing.
"""

from __future__ import annotations

import _thread
import ast
import os
import stat
import warnings

from gust.parser._limits import MAX_MESSAGES, MAX_SOURCE_BYTES, MAX_SOURCE_TOKENS, count_tokens

TYPE_CHECKING = False  # typing is only for the type checker: `gust parse` starts on every edit
if TYPE_CHECKING:
    from typing import Final

#: ``error.line`` of a file that could not be read at all (it has no line to point at).
UNREADABLE_FILE_LINE: Final = 0

_WARNINGS = _thread.allocate_lock()  # _thread, not threading: `gust parse` imports no more


class SourceError(Exception):
    """The file cannot be read or parsed: ``line`` and ``description`` say where and why."""

    def __init__(self, line: int, description: str) -> None:
        super().__init__(description)
        self.line = line
        self.description = description


def stem(path: str) -> str:
    """Gust's name for the DAG in ``path``: ``Path.basename(file, ".py")``."""
    base = os.path.basename(path)
    return base[:-3] if base.endswith(".py") and len(base) > 3 else base


def absolute(path: str) -> str:
    """``path`` made absolute, or as given when that is impossible."""
    try:
        return os.path.abspath(path)
    except (OSError, ValueError):  # the working directory is gone, or the path holds a NUL
        return path


def is_utf8(path: str) -> bool:
    """Whether ``path`` is text UTF-8 can carry (not bytes the file system decoded as escapes)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(path: str) -> str:
    """``path`` as a message shows it: bytes that are not UTF-8 as ``\\xNN`` escapes."""
    if is_utf8(path):
        return path
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _size(count: int) -> str:
    return f"{count:,} bytes" if count < 1024 * 1024 else f"{count / 1048576:,.1f} MiB"


def read_source(path: str, limit: int = MAX_SOURCE_BYTES) -> bytes:
    """The file's bytes, when it is a regular file of at most ``limit`` bytes.

    Raises:
        SourceError: the file cannot be read, or is too large (line
            :data:`UNREADABLE_FILE_LINE`).
    """
    where = shown(path)
    try:
        # Non-blocking: opening a FIFO for reading must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
                raise OSError(f"it is {kind}")
            data = _read_at_most(fd, limit + 1) if info.st_size <= limit else b""
        finally:
            os.close(fd)
        if info.st_size > limit or len(data) > limit:  # /proc files say 0 bytes
            size = f"it is {_size(info.st_size)}" if info.st_size > limit else "it holds"
            raise OSError(
                f"{size}, more than the {_size(limit)} ({limit:,} bytes) gust parse reads"
            )
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SourceError(UNREADABLE_FILE_LINE, f"cannot read {where}: {reason}") from None
    return data


def _read_at_most(fd: int, count: int) -> bytes:
    chunks: list[bytes] = []
    while count > 0:
        chunk = os.read(fd, min(count, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def check_tokens(source: bytes, path: str, limit: int = MAX_SOURCE_TOKENS) -> int:
    """The tokens of ``source`` (:func:`~gust.parser._limits.count_tokens`).

    Raises:
        SourceError: there are more than ``limit``: parsing it would take too much memory.
    """
    tokens = count_tokens(source)
    if tokens > limit:
        raise SourceError(
            UNREADABLE_FILE_LINE,
            f"cannot read {shown(path)}: it holds {tokens:,} tokens, more than the {limit:,} "
            "gust parse reads (about 40,000 tasks; the bound keeps a parse under about 1 GB of "
            "memory)",
        )
    return tokens


def _syntax_error_line(error: SyntaxError, source: bytes) -> int:
    if error.lineno:
        return error.lineno
    if b"\0" in source:  # Python 3.11 reports a NUL byte without a line
        return source.count(b"\n", 0, source.index(b"\0")) + 1
    return 1


def parse_source(source: bytes, file_path: str) -> tuple[ast.Module, list[tuple[int, str]], int]:
    """The syntax tree of ``source``, and the compiler's warnings as ``(line, text)``.

    At most ``MAX_MESSAGES + 1`` warnings are kept (an entry lists no more), and the number of
    the others is returned with them, so a file of warnings costs no memory per warning. The
    caller must keep the cyclic garbage collector off while it uses the tree (see
    :func:`gust.parser.parse_file`).

    Returns:
        The tree, the warnings kept, and how many more there were.

    Raises:
        SourceError: ``source`` is not valid Python, or too deeply nested to parse.
    """
    kept: list[tuple[int, str]] = []
    dropped = 0

    def collect(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: object = None,
        line: str | None = None,
    ) -> None:
        nonlocal dropped
        if len(kept) > MAX_MESSAGES:
            dropped += 1
        else:
            kept.append((lineno or 0, f"{category.__name__}: {message}"))

    # The warnings machinery is global: one parse at a time redirects it (gust check parses in
    # threads). Compiling holds the GIL throughout anyway, so nothing runs slower.
    with _WARNINGS, warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = collect
        try:
            tree = ast.parse(source, filename=file_path)
        except SyntaxError as exc:
            where = f" (column {exc.offset})" if exc.offset else ""
            description = f"syntax error: {exc.msg or 'invalid syntax'}{where}"
            raise SourceError(_syntax_error_line(exc, source), description) from None
        except ValueError as exc:  # Python 3.10 rejects a NUL byte with a ValueError
            line = _syntax_error_line(SyntaxError(str(exc)), source)
            raise SourceError(line, f"syntax error: {exc}") from None
        except (RecursionError, MemoryError):
            # Within the token bound, both mean the parser's stack overflowed.
            raise SourceError(
                1, "the file is too deeply nested (or too complex) for Python to parse it"
            ) from None
    return tree, kept, dropped
