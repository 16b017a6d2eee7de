"""Secret masking: values obtained through ``get_secret_by_name`` never leave in clear text.

Every string the host hands out as a secret (for a JSON secret, each string leaf too) is
registered; from then on :meth:`SecretMasker.mask` replaces each registered value, longest first,
with ``***`` in log messages, error messages and traces. Values shorter than
:data:`MIN_SECRET_LENGTH` are not masked: masking ``"a"`` or ``"on"`` would make logs unreadable.
Results are data and are never masked.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Final

__all__ = ["MASK", "MIN_SECRET_LENGTH", "SecretMasker"]

MASK: Final = "***"
MIN_SECRET_LENGTH: Final = 4


class SecretMasker:
    """Remembers secret values and hides them in text."""

    __slots__ = ("_lock", "_pattern", "_values")

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return self._pattern is not None

    def register(self, value: Any) -> None:
        """Register every string in ``value`` (a string, or JSON data whose leaves are masked)."""
        found: list[str] = []
        _collect_strings(value, found)
        new = {s for s in found if len(s) >= MIN_SECRET_LENGTH} - self._values
        if not new:
            return
        with self._lock:
            self._values |= new
            ordered = sorted(self._values, key=lambda s: (-len(s), s))
            self._pattern = re.compile("|".join(map(re.escape, ordered)))

    def mask(self, text: str) -> str:
        """Return ``text`` with every registered secret replaced by ``***``."""
        pattern = self._pattern
        if pattern is None:
            return text
        return pattern.sub(MASK, text)


def _collect_strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_strings(item, out)
    elif isinstance(value, list):
        for item in value:
            _collect_strings(item, out)
