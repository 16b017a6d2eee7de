"""What the parser says about a file: errors and messages, each with its line.

Also how code and values are quoted in them: a snippet of source or a value's ``repr``, cut to a
readable length, never failing on a value too large to print.
"""

from __future__ import annotations

import ast

TYPE_CHECKING = False  # typing is only for the type checker: `gust parse` starts on every edit
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Final

#: How many characters of an expression or a value a message quotes.
SNIPPET_LENGTH: Final = 60


class Problems:
    """Errors and messages of one thing (a task, a class, an entry), each with its line."""

    __slots__ = ("errors", "messages")

    def __init__(self) -> None:
        self.errors: list[tuple[int, str]] = []
        self.messages: list[tuple[int, str]] = []

    def error(self, line: int, text: str) -> None:
        self.errors.append((line, text))

    def message(self, line: int, text: str) -> None:
        self.messages.append((line, text))

    def extend(self, other: Problems) -> None:
        self.errors.extend(other.errors)
        self.messages.extend(other.messages)

    def extend_from(self, origin: str | None, anchor: int, other: Problems) -> None:
        """Add ``other``'s problems, found in the module ``origin`` names (None: the DAG file
        itself). Lines of another file cannot point into the DAG file: they go to ``anchor``
        (the DAG class's line), and the text says where they are (``base.py line 12: ...``)."""
        if origin is None:
            self.extend(other)
            return
        self.errors.extend((anchor, f"{origin} line {line}: {text}") for line, text in other.errors)
        self.messages.extend(
            (anchor, f"{origin} line {line}: {text}") for line, text in other.messages
        )


def snippet(node: ast.AST) -> str:
    """The source of ``node``, cut to :data:`SNIPPET_LENGTH` characters."""
    try:
        text = ast.unparse(node)
    except (RecursionError, ValueError):  # too deep; an int too long to print in decimal
        return f"the expression at line {getattr(node, 'lineno', '?')}"
    if len(text) > SNIPPET_LENGTH:
        text = text[: SNIPPET_LENGTH - 3] + "..."
    return text


def describe(value: object) -> str:
    """``value`` as a message shows it: its ``repr``, cut, and its type."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print in decimal (sys.get_int_max_str_digits)
        text = "a value too large to show"
    if len(text) > SNIPPET_LENGTH:
        text = text[: SNIPPET_LENGTH - 3] + "..."
    return f"{text} ({type(value).__name__})"


#: Names longer than this get no "did you mean" (comparing them would cost too much).
_SUGGEST_LENGTH: Final = 100


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``candidates`` to ``name``, else ``""``."""
    if len(name) > _SUGGEST_LENGTH:
        return ""
    import difflib  # only when a name is misspelled: importing it costs every parse otherwise

    close = difflib.get_close_matches(name, [c for c in candidates if c != name], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
