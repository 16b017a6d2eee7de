"""Turn a task's return value into strict JSON data, or say exactly what cannot be sent.

The rules (SPEC §5): ``datetime``/``date``/``time`` become ISO 8601 strings; ``Decimal``,
``UUID`` and paths become strings; sets, frozensets and tuples become lists (sets sorted when
their items can be ordered, so output is stable); dataclass instances become objects; enum
members become their value; non-finite floats become ``null`` with a warning naming where.
Anything else raises :class:`UnsupportedValueError` naming the type and the JSONPath-like
location (for example ``$.rows[3]``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import enum
import math
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from gust.errors import GustError

__all__ = ["UnsupportedValueError", "to_json_value"]

_PLAIN = (str, int, type(None))  # bool is an int


class UnsupportedValueError(GustError, TypeError):
    """A value has no JSON form under the rules of SPEC §5.

    Attributes:
        path: where the value sits, as ``$`` followed by ``.key`` and ``[index]`` steps.
        type_name: the offending value's type.
    """

    def __init__(self, path: str, type_name: str, why: str = "") -> None:
        super().__init__(
            f"value of type {type_name!r} at {path} cannot be sent as JSON"
            + (f": {why}" if why else "")
        )
        self.path = path
        self.type_name = type_name


def _key_step(key: str) -> str:
    return f".{key}" if key.isidentifier() else f"[{key!r}]"


def to_json_value(value: Any, warn: Callable[[str], None] | None = None, path: str = "$") -> Any:
    """Return ``value`` as plain JSON data (dict, list, str, int, finite float, bool, None).

    Args:
        value: what the task returned.
        warn: called with a message for each lossy conversion (non-finite floats).
        path: the location of ``value``, used in messages.

    Raises:
        UnsupportedValueError: a value (or dict key) has no JSON form.
    """
    return _convert(value, warn, path, set())


def _convert(value: Any, warn: Callable[[str], None] | None, path: str, seen: set[int]) -> Any:
    cls = type(value)
    if cls in (str, int, bool) or value is None:
        return value
    if cls is float:
        return _float(value, warn, path)
    if isinstance(value, dict):
        _enter(value, path, seen)
        out = {}
        for key, item in value.items():
            skey = _dict_key(key, path)
            out[skey] = _convert(item, warn, path + _key_step(skey), seen)
        seen.discard(id(value))
        return out
    if isinstance(value, (list, tuple)):
        _enter(value, path, seen)
        out_list = [_convert(item, warn, f"{path}[{i}]", seen) for i, item in enumerate(value)]
        seen.discard(id(value))
        return out_list
    if isinstance(value, enum.Enum):
        return _convert(value.value, warn, path, seen)
    if isinstance(value, _PLAIN):  # subclasses of str/int (IntEnum already handled above)
        return str(value) if isinstance(value, str) else int(value)
    if isinstance(value, float):
        return _float(float(value), warn, path)
    if isinstance(value, (set, frozenset)):
        items = list(value)
        with contextlib.suppress(TypeError):  # mixed types keep their iteration order
            items.sort()
        return [_convert(item, warn, f"{path}[{i}]", seen) for i, item in enumerate(items)]
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        if not value.is_finite():
            return _float(float(value), warn, path)
        return str(value)
    if isinstance(value, (uuid.UUID, PurePath)):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        _enter(value, path, seen)
        out = {
            f.name: _convert(getattr(value, f.name), warn, path + _key_step(f.name), seen)
            for f in dataclasses.fields(value)
        }
        seen.discard(id(value))
        return out
    raise UnsupportedValueError(path, _type_name(value))


def _float(value: float, warn: Callable[[str], None] | None, path: str) -> float | None:
    if math.isfinite(value):
        return value
    if warn is not None:
        warn(f"result value {value!r} at {path} is not valid JSON; sent as null")
    return None


def _dict_key(key: Any, path: str) -> str:
    if isinstance(key, str):
        return str(key)
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, (int, float)):
        return str(int(key)) if isinstance(key, int) else repr(float(key))
    if isinstance(key, enum.Enum) and isinstance(key.value, str):
        return key.value
    raise UnsupportedValueError(
        f"{path}[{key!r}]", _type_name(key), "dict keys must be strings or numbers"
    )


def _enter(container: Any, path: str, seen: set[int]) -> None:
    if id(container) in seen:
        raise UnsupportedValueError(path, _type_name(container), "it contains itself")
    seen.add(id(container))


def _type_name(value: Any) -> str:
    cls = type(value)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
