"""Compare a frame with a case's example frame, loosened by JSONPath matchers.

Theory of operation: a case step holds a concrete, schema-valid example frame and, under
``match``, a map from JSONPath (the subset ``$``, ``.name``, ``['any key']``, ``[index]``) to a
matcher. :func:`compare_frame` walks the example: where a path has a matcher, the actual value
must satisfy it (``type``, ``regex``, ``any`` or ``pid``; ``optional`` lets the key be absent);
everywhere else the actual value must equal the example as JSON (``true`` is not ``1``; ``1``
equals ``1.0``). Keys the example does not name are ignored, as receivers ignore unknown keys
(conformance/README.md, "Framing"). The result is the first difference, with its path, or ``None``.

:func:`materialize` does the reverse for the scripted child: it turns an example into the frame
to send, putting the child's real pid wherever a ``pid`` matcher stands.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "JSON_TYPES",
    "Mismatch",
    "PathError",
    "brief",
    "check_matcher",
    "compare_frame",
    "format_path",
    "get_path",
    "json_equal",
    "json_type",
    "materialize",
    "parse_path",
]

#: The type names a ``type`` matcher may use (those of JSON Schema).
JSON_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")

PathStep = str | int
Path = tuple[PathStep, ...]
#: The child's pid, or a predicate telling whether a pid belongs to the child.
PidCheck = int | Callable[[int], bool] | None

_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]|\['([^']*)'\]")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class PathError(ValueError):
    """A matcher key is not a JSONPath of the supported subset."""


@dataclass(frozen=True)
class Mismatch:
    """The first place where an actual frame differs from the example."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def parse_path(text: str) -> Path:
    """Split ``$.a['b c'][0]`` into ``("a", "b c", 0)``.

    Raises:
        PathError: ``text`` is not ``$`` followed by ``.name``, ``['key']`` or ``[n]`` steps.
    """
    if not text.startswith("$"):
        raise PathError(f"JSONPath {text!r} must start with '$'")
    steps: list[PathStep] = []
    pos = 1
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None:
            raise PathError(
                f"JSONPath {text!r}: cannot read step at character {pos} "
                f"(use .name, ['key'] or [index])"
            )
        name, index, quoted = m.groups()
        steps.append(int(index) if index is not None else (name if name is not None else quoted))
        pos = m.end()
    return tuple(steps)


def format_path(path: Path) -> str:
    """The JSONPath text of ``path`` (the inverse of :func:`parse_path`)."""
    out = ["$"]
    for step in path:
        if isinstance(step, int):
            out.append(f"[{step}]")
        elif _IDENT.match(step):
            out.append(f".{step}")
        else:
            out.append(f"['{step}']")
    return "".join(out)


def get_path(value: Any, path: Path) -> tuple[bool, Any]:
    """Return ``(True, value at path)`` or ``(False, None)`` when the path does not exist."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return False, None
        elif not isinstance(value, dict) or step not in value:
            return False, None
        value = value[step]
    return True, value


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value (an integral float counts as ``integer``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a decoded JSON value: {type(value).__name__}")


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: booleans are not numbers, ``1 == 1.0``, order of keys is free."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def brief(value: Any, limit: int = 160) -> str:
    """``value`` as compact JSON, cut to ``limit`` characters for messages."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
    # A lone surrogate cannot be printed; show it escaped instead.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > limit:
        return f"{text[:limit]}... ({len(text)} chars)"
    return text


def _type_matches(wanted: str, value: Any) -> bool:
    actual = json_type(value)
    return actual == wanted or (wanted == "number" and actual == "integer")


def check_matcher(
    matcher: dict[str, Any], present: bool, value: Any, pid: PidCheck = None
) -> str | None:
    """Return why ``value`` fails ``matcher``, or ``None`` when it passes.

    Args:
        present: whether the key exists at all (``value`` is ignored when it does not).
        pid: the child's real pid, or a predicate saying whether a pid is the child's (a host
            may run the runtime through a wrapper such as ``uv run``); ``None``: any integer.
    """
    if not present:
        return None if matcher.get("optional") else "missing (a matcher requires it)"
    if "any" in matcher:
        return None
    if "type" in matcher:
        wanted = matcher["type"]
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        if any(_type_matches(name, value) for name in names):
            return None
        return f"expected type {' or '.join(names)}, got {json_type(value)} {brief(value)}"
    if "regex" in matcher:
        if not isinstance(value, str):
            return f"expected a string matching /{matcher['regex']}/, got {brief(value)}"
        if re.search(matcher["regex"], value) is None:
            return f"expected a string matching /{matcher['regex']}/, got {brief(value)}"
        return None
    if "pid" in matcher:
        if json_type(value) != "integer" or isinstance(value, bool):
            return f"expected the child's pid (an integer), got {brief(value)}"
        if callable(pid) and not pid(int(value)):
            return f"expected the child's real pid (or a descendant's), got {brief(value)}"
        if isinstance(pid, int) and value != pid:
            return f"expected the child's real pid {pid}, got {brief(value)}"
        return None
    raise ValueError(f"matcher {matcher!r} has none of type, regex, any, pid")


def compare_frame(
    expected: Any,
    actual: Any,
    matchers: dict[Path, dict[str, Any]] | None = None,
    pid: PidCheck = None,
) -> Mismatch | None:
    """Return the first difference between ``actual`` and the example ``expected``, or ``None``.

    Args:
        matchers: parsed matcher paths (see :func:`parse_path`) to matcher objects.
        pid: the child's real pid, for ``pid`` matchers.
    """
    return _compare(expected, True, actual, (), matchers or {}, pid)


def _compare(
    expected: Any,
    present: bool,
    actual: Any,
    path: Path,
    matchers: dict[Path, dict[str, Any]],
    pid: PidCheck,
) -> Mismatch | None:
    matcher = matchers.get(path)
    if matcher is not None:
        problem = check_matcher(matcher, present, actual, pid)
        return None if problem is None else Mismatch(format_path(path), problem)
    if not present:
        return Mismatch(format_path(path), f"missing, expected {brief(expected)}")
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return Mismatch(format_path(path), f"expected an object, got {brief(actual)}")
        for key, sub in expected.items():
            found = key in actual
            diff = _compare(sub, found, actual.get(key), (*path, key), matchers, pid)
            if diff is not None:
                return diff
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return Mismatch(format_path(path), f"expected an array, got {brief(actual)}")
        for i, sub in enumerate(expected):
            if i >= len(actual):
                return Mismatch(
                    format_path(path),
                    f"expected {len(expected)} items, got {len(actual)}: {brief(actual)}",
                )
            diff = _compare(sub, True, actual[i], (*path, i), matchers, pid)
            if diff is not None:
                return diff
        if len(actual) != len(expected):
            return Mismatch(format_path(path), f"expected {len(expected)} items, got {len(actual)}")
        return None
    if json_equal(expected, actual):
        return None
    return Mismatch(format_path(path), f"expected {brief(expected)}, got {brief(actual)}")


def materialize(example: dict[str, Any], matchers: dict[Path, dict[str, Any]], pid: int) -> Any:
    """The frame a scripted child sends for ``example``: ``pid`` matchers get the real pid."""
    frame = json.loads(json.dumps(example))
    for path, matcher in matchers.items():
        if "pid" in matcher and path:
            parent_found, parent = get_path(frame, path[:-1])
            if parent_found:
                parent[path[-1]] = pid
    return frame
