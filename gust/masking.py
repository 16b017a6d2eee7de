"""Secret masking: values obtained through ``get_secret_by_name`` never leave in clear text.

Every string the host hands out as a secret (for a JSON secret, each string leaf too) is
registered; from then on :meth:`SecretMasker.mask` replaces each registered value, longest first,
with ``***`` in log messages, error messages and traces. Values shorter than
:data:`MIN_SECRET_LENGTH` are not masked: masking ``"a"`` or ``"on"`` would make logs unreadable.
Results are data and are never masked.
"""

from __future__ import annotations

import threading

TYPE_CHECKING = False  # typing is not imported at run time: every task start pays for imports
if TYPE_CHECKING:
    import re
    from typing import Any, Final

__all__ = ["MASK", "MIN_SECRET_LENGTH", "SecretMasker"]

MASK: Final = "***"
MIN_SECRET_LENGTH: Final = 4


class SecretMasker:
    """Remembers secret values and hides them in text.

    Attributes:
        pattern: a regex matching every registered value (longest first), or ``None`` while
            none is registered; hot paths test it directly instead of calling :meth:`mask`.
    """

    __slots__ = ("_lock", "_values", "pattern")

    def __init__(self) -> None:
        self._values: set[str] = set()
        self.pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return self.pattern is not None

    def register(self, value: Any) -> None:
        """Register every string in ``value`` (a string, or JSON data whose leaves are masked)."""
        found: list[str] = []
        _collect_strings(value, found)
        with self._lock:
            new = {s for s in found if len(s) >= MIN_SECRET_LENGTH} - self._values
            if not new:
                return
            import re  # only once a secret exists: most tasks have none

            self._values |= new
            ordered = sorted(self._values, key=lambda s: (-len(s), s))
            self.pattern = re.compile("|".join(map(re.escape, ordered)))

    def mask(self, text: str) -> str:
        """Return ``text`` with every registered secret replaced by ``***``."""
        pattern = self.pattern
        if pattern is None:
            return text
        return pattern.sub(MASK, text)

    def after_fork(self) -> None:
        """Renew the lock in a forked child (another thread may have held it at the fork)."""
        self._lock = threading.Lock()


def _collect_strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_strings(item, out)
    elif isinstance(value, list):
        for item in value:
            _collect_strings(item, out)
