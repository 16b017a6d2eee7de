"""Secret masking: values obtained through ``get_secret_by_name`` never leave in clear text.

The rules, pure and reusable (the runtime masks its frames and the task's ``sys.stderr`` with
them; a host can mask what it records the same way):

- A secret's **text forms** (:func:`secret_forms`) are masked wherever they appear: the value
  itself; each line of a multi-line value (a printed secret reaches the host line by line); and
  the escaped forms Python gives a string: the inside of its ``repr()`` (so ``str(KeyError(s))``
  and ``%r`` too), of its ``ascii()``, of its ``json.dumps()`` with and without
  ``ensure_ascii``, and those escaped once more (a ``repr`` of a ``repr``).
- A secret's **leaves** (:func:`secret_leaves`): for JSON data (``value_type`` ``json``) every
  string inside it; for a string that is itself JSON text of an object or array (as
  ``GUST_SECRET_*`` values and some stores deliver JSON secrets, with ``value_type``
  ``string``), every string inside that too, since authors ``json.loads`` it and log a field.
  Numbers, booleans and keys are not secrets.
- Forms shorter than :data:`MIN_SECRET_LENGTH` (4) characters are not masked: masking ``"a"``
  or ``"on"`` would make logs unreadable. So a line of a multi-line secret shorter than that
  stays visible; pick secrets accordingly.
- Each occurrence becomes :data:`MASK` (``***``), longest form first. Results are data and are
  never masked.
"""

from __future__ import annotations

import threading

TYPE_CHECKING = False  # typing is not imported at run time: every task start pays for imports
if TYPE_CHECKING:
    import re
    from collections.abc import Iterable
    from typing import Any, Final

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "SecretMasker",
    "mask_text",
    "secret_forms",
    "secret_leaves",
]

MASK: Final = "***"
MIN_SECRET_LENGTH: Final = 4


def _escapes(text: str) -> list[str]:
    """``text`` as it appears inside a Python or JSON string literal, in every quoting style.

    ``repr()`` and ``ascii()`` quote with ``'`` (escaping ``'``) unless the string holds a
    ``'`` and no ``"``; a string nested in a bigger one takes the bigger one's style, so both
    styles are produced (the ``"`` style only for text without ``"``, as Python never uses it
    otherwise).
    """
    import json  # loaded by the runtime already; kept local so `import gust.masking` is free

    forms = [json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]]
    for quote in (repr, ascii):
        forms.append(quote(text + "'\"")[1:-4])  # both quotes inside: the ' style, escaped
        if '"' not in text:
            forms.append(quote(text + "'")[1:-2])  # a ' inside and no ": the " style
    return forms


def secret_forms(text: str) -> set[str]:
    """Every form of ``text`` worth masking (see the module docstring), each long enough."""
    pieces = [text, *text.splitlines()]
    forms = set(pieces)
    for piece in pieces:
        once = _escapes(piece)
        forms.update(once)
        for escaped in once:
            if escaped != piece:
                forms.update(_escapes(escaped))
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def secret_leaves(value: Any) -> list[str]:
    """The strings of a secret value: itself, or the strings inside JSON data or JSON text."""
    found: list[str] = []
    _collect(value, found, 0)
    return found


def _collect(value: Any, out: list[str], depth: int) -> None:
    if depth > 100:  # a secret is never that deep; refuse to recurse without bound
        return
    if isinstance(value, str):
        out.append(value)
        stripped = value.strip()
        if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
            import json

            try:
                parsed = json.loads(stripped)
            except (ValueError, RecursionError):
                return
            _collect(parsed, out, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, out, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _collect(item, out, depth + 1)


class SecretMasker:
    """Remembers secret values and hides them in text; thread-safe.

    Attributes:
        pattern: a regex matching every registered form (longest first), or ``None`` while
            none is registered; hot paths test it directly instead of calling :meth:`mask`.
        longest: the length of the longest registered form (0 when none).
    """

    __slots__ = ("_forms", "_lock", "longest", "pattern")

    def __init__(self, secrets: Iterable[Any] = ()) -> None:
        self._forms: set[str] = set()
        self.pattern: re.Pattern[str] | None = None
        self.longest = 0
        self._lock = threading.Lock()
        for secret in secrets:
            self.register(secret)

    def __bool__(self) -> bool:
        return self.pattern is not None

    def register(self, value: Any) -> None:
        """Register a secret value: a string, or JSON data (its string leaves are masked)."""
        new: set[str] = set()
        for leaf in secret_leaves(value):
            new |= secret_forms(leaf)
        with self._lock:
            new -= self._forms
            if not new:
                return
            import re  # only once a secret exists: most tasks have none

            self._forms |= new
            ordered = sorted(self._forms, key=lambda s: (-len(s), s))
            self.longest = len(ordered[0])
            self.pattern = re.compile("|".join(map(re.escape, ordered)))

    def mask(self, text: str) -> str:
        """Return ``text`` with every registered form replaced by ``***``."""
        pattern = self.pattern
        if pattern is None:
            return text
        return pattern.sub(MASK, text)

    def after_fork(self) -> None:
        """Renew the lock in a forked child (another thread may have held it at the fork)."""
        self._lock = threading.Lock()


def mask_text(text: str, secrets: Iterable[Any]) -> str:
    """``text`` with every form of every secret in ``secrets`` masked (a one-off masker)."""
    return SecretMasker(secrets).mask(text)
