"""Reading source: a DAG file's name, path and bytes, and its syntax tree.

Nothing here imports or runs the file: its bytes are read and handed to :func:`ast.parse`.
Every way that can fail (a missing or special file, a syntax error, a NUL byte, source too
deeply nested for Python's parser) becomes a :class:`SourceError` with the line to point at.
"""

from __future__ import annotations

import ast
import os
import stat
import warnings

TYPE_CHECKING = False  # typing is only for the type checker: `gust parse` starts on every edit
if TYPE_CHECKING:
    from typing import Final

#: ``error.line`` of a file that could not be read at all (it has no line to point at).
UNREADABLE_FILE_LINE: Final = 0


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


def read_source(path: str) -> bytes:
    """The file's bytes.

    Raises:
        SourceError: the file cannot be read (line :data:`UNREADABLE_FILE_LINE`).
    """
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise OSError(f"it is {kind}")
        with open(path, "rb") as handle:
            return handle.read()
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SourceError(UNREADABLE_FILE_LINE, f"cannot read {path}: {reason}") from None


def _syntax_error_line(error: SyntaxError, source: bytes) -> int:
    if error.lineno:
        return error.lineno
    if b"\0" in source:  # Python 3.11 reports a NUL byte without a line
        return source.count(b"\n", 0, source.index(b"\0")) + 1
    return 1


def parse_source(source: bytes, file_path: str) -> tuple[ast.Module, list[tuple[int, str]]]:
    """The syntax tree of ``source``, and the compiler's warnings as ``(line, text)``.

    The caller must keep the cyclic garbage collector off while it uses the tree (see
    :func:`gust.parser.parse_file`).

    Raises:
        SourceError: ``source`` is not valid Python, or too deeply nested to parse.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
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
            raise SourceError(
                1, "the file is too large or too deeply nested for Python to parse it"
            ) from None
    return tree, [(w.lineno or 0, f"{w.category.__name__}: {w.message}") for w in caught]
