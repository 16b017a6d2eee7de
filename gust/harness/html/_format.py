"""Small formatting helpers of the page: escaping, cutting, statuses, embedded JSON."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from typing import Any, Final

#: Characters of a task name in a box and of a stage label; of a long text before it is cut;
#: log lines shown before and after a gap; characters of a table cell; names in a story line.
NAME_CHARS: Final = 20
LABEL_CHARS: Final = 22
MAX_TEXT: Final = 20_000
LOG_HEAD: Final = 100
LOG_TAIL: Final = 900
CELL_CHARS: Final = 100
STORY_NAMES: Final = 24

#: status -> (symbol, label). The symbol and the label tell statuses apart without colour.
STATUS: Final = {
    "ok": ("✓", "ok"),
    "error": ("✗", "error"),
    "timeout": ("◷", "timeout"),
    "upstream_failed": ("↷", "upstream failed"),
    "interrupted": ("⊘", "interrupted"),
    "not_run": ("○", "not run"),
    "callback_failed": ("✗", "callback failed"),  # a run's status, never a task's
}
#: The statuses a task's box can have, in the legend's order.
TASK_STATUSES: Final = ("ok", "error", "timeout", "upstream_failed", "interrupted", "not_run")
LEVELS: Final = ("debug", "info", "warning", "error", "critical")


def esc(text: object) -> str:
    """Escaped for element text and attribute values alike."""
    return html.escape(str(text), quote=True)


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def block(text: str) -> str:
    """A long text for a ``<pre>``: cut at ``MAX_TEXT`` characters, saying so."""
    if len(text) <= MAX_TEXT:
        return esc(text)
    more = len(text) - MAX_TEXT
    return (
        esc(text[:MAX_TEXT])
        + f'<span class="cut">… {more:,} more characters: the whole text is in the report JSON '
        "embedded in this page (script#gust-report)</span>"
    )


def secs(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "?"
    if value < 60:
        return f"{value:.2f}s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes}m{seconds:02d}s"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def json_text(value: Any, indent: int | None = 2) -> str:
    try:
        return json.dumps(value, indent=indent, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def status_parts(status: str) -> tuple[str, str, str]:
    """(css class, symbol, label) of a status; an unknown one keeps its own name."""
    if status in STATUS:
        symbol, label = STATUS[status]
        return f"st-{status}", symbol, label
    return "st-unknown", "?", status


def badge(status: str) -> str:
    css, symbol, label = status_parts(status)
    return f'<span class="badge {css}">{symbol} {esc(label)}</span>'


def reason(error: Any) -> str:
    """One line saying why something failed."""
    if not isinstance(error, Mapping):
        return ""
    kind, details = error.get("type"), error.get("details")
    if isinstance(kind, str) and isinstance(details, str):
        return cut(f"{kind}: {details}".strip().split("\n", 1)[0], 200)
    return cut(str(error.get("message", "")).strip().split("\n", 1)[0], 200)


def embedded_json(data: Any) -> str:
    """``data`` as JSON text that can sit inside ``<script>``: no ``<``, ``>`` or ``&``."""
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:  # NaN or infinity in a hand-built report: null, as the runtime does
        text = json.dumps(finite(data), ensure_ascii=False, separators=(",", ":"))
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text


def finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
