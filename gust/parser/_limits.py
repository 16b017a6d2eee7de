"""How much one parse may cost: the bounds that keep ``gust parse`` within bounded memory and time.

Gust runs ``gust parse`` on every change of every file of the DAGs folder, so no input (a 2 GB
file, generated code, a constant defined in terms of itself ten levels deep, thousands of
subclasses of a large base) may end in a hang or in gigabytes of memory. Each bound is checked
before the work it bounds, and passing it is reported in-band, never as a crash:

- :data:`MAX_SOURCE_BYTES`: a larger file is refused from its size, before it is read.
- :data:`MAX_SOURCE_TOKENS`: Python's parser needs up to about 1 KB of memory per token, so a
  file with more tokens is refused before it is parsed (:func:`count_tokens` counts them on the
  raw bytes in linear time). Together with Python's own nesting limits (200 parentheses, 100
  indentation levels), a parse stays under about 1 GB and a few seconds whatever the file holds.
- :data:`MAX_VALUES`: the literal values read statically, over the whole parse; a value past the
  budget is left at its default with a message.
- :data:`MAX_MRO`: the classes in one class's method resolution order.
- :data:`MAX_OUTPUT`: the tasks, links and problems listed over all the entries of a file; a DAG
  class past the budget gets an entry with an error instead of its tasks.
- :data:`MAX_MESSAGES` and :data:`MAX_MESSAGE_CHARS`: the messages of one entry, and the length
  of each message and error description.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is only for the type checker: `gust parse` starts on every edit
if TYPE_CHECKING:
    from typing import Final

#: The largest DAG file (or sibling module) ``gust parse`` reads: 8 MiB.
MAX_SOURCE_BYTES: Final = 8 * 1024 * 1024
#: The most tokens a file may hold (see :func:`count_tokens`): about 40,000 tasks.
MAX_SOURCE_TOKENS: Final = 1_000_000
#: The most literal values (each element of a list counts) read in one parse.
MAX_VALUES: Final = 1_000_000
#: The most classes in the method resolution order of one class.
MAX_MRO: Final = 100
#: The most tasks, downstream links and problems listed over all the entries of one file
#: (at most about 15 MB of JSON).
MAX_OUTPUT: Final = 200_000
#: The most messages one entry lists (one more says how many were left out).
MAX_MESSAGES: Final = 100
#: The longest message or error description, in characters.
MAX_MESSAGE_CHARS: Final = 2_000

_WORD = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
_BLANK = b" \t\f\r"
# Every byte becomes w (part of a name, number or word: ASCII letters, digits, "_" and every
# non-ASCII byte), a blank (space, tab, form feed, carriage return) or p (anything else).
_CLASSES = bytes(
    ord("w") if byte in _WORD or byte >= 0x80 else ord(" ") if byte in _BLANK else ord("p")
    for byte in range(256)
)


def count_tokens(source: bytes) -> int:
    """The tokens of ``source`` as ``gust parse`` counts them: on the bytes, in linear time.

    A token here is a run of word bytes (ASCII letters, digits, ``_``, any non-ASCII byte) or
    any single other byte that is not a blank (space, tab, form feed, carriage return): every
    punctuation mark, quote and line end counts, and so do the words of comments and strings.
    That is about what Python's parser spends memory on, and seldom fewer than it finds.
    """
    classes = source.translate(_CLASSES)
    runs = classes.count(b" w") + classes.count(b"pw") + classes.startswith(b"w")
    return classes.count(b"p") + runs


class Budget:
    """What one parse has spent of :data:`MAX_VALUES` and :data:`MAX_OUTPUT`, and of the
    sibling modules it reads (their bytes and tokens together stay within one file's bounds)."""

    __slots__ = ("output", "sibling_bytes", "sibling_tokens", "values")

    def __init__(self) -> None:
        self.values = 0
        self.output = 0
        self.sibling_bytes = 0
        self.sibling_tokens = 0
