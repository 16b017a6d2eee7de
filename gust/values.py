"""Turn a task's return value into strict JSON data, or say exactly what cannot be sent.

The rules: ``datetime``/``date``/``time`` become ISO 8601 strings; ``Decimal``,
``UUID`` and paths become strings; sets, frozensets and tuples become lists (sets sorted when
their items can be ordered, so output is stable); dataclass instances become objects; enum
members become their value; non-finite floats become ``null`` with a warning naming where.
Anything else raises :class:`UnsupportedValueError` naming the type and the JSONPath-like
location (for example ``$.rows[3]``), as do values JSON could carry but this runtime cannot send
faithfully: two dict keys that become the same string, ints past Python's digit limit, and
containers nested more than :data:`MAX_DEPTH` deep.

Every task pays for this module's imports, so it imports none of the modules whose types it
converts: a value can only be a ``Decimal`` if ``decimal`` is already loaded, so the classes
are looked up in ``sys.modules`` when a value is not plain JSON data.
"""

from __future__ import annotations

import contextlib
import math
import sys

from gust.errors import GustError

TYPE_CHECKING = False  # typing is not imported at run time: every task start pays for imports
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Final

__all__ = ["MAX_DEPTH", "UnsupportedValueError", "to_json_value"]

#: Containers nested deeper than this are refused (deeper data would exhaust the recursion of
#: the encoder, and of many hosts' decoders, without saying where).
MAX_DEPTH: Final = 200


class UnsupportedValueError(GustError, TypeError):
    """A value has no JSON form under the rules of this module.

    Attributes:
        path: where the value sits, as ``$`` followed by ``.key`` and ``[index]`` steps.
        type_name: the offending value's type.
    """

    def __init__(self, path: str, type_name: str, why: str = "") -> None:
        super().__init__(
            f"value of type {type_name!r} at {path} has no JSON form" + (f": {why}" if why else "")
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
        UnsupportedValueError: a value (or dict key) has no JSON form, containers are nested
            more than :data:`MAX_DEPTH` deep, or an int has more digits than Python prints.
    """
    return _convert(value, warn, path, set(), 0)


def _convert(
    value: Any, warn: Callable[[str], None] | None, path: str, seen: set[int], depth: int
) -> Any:
    cls = type(value)
    if cls is str or cls is bool or value is None:
        return value
    if cls is int:
        return _int(value, path)
    if cls is float:
        return _float(value, warn, path)
    if isinstance(value, dict):
        _enter(value, path, seen, depth)
        out = {}
        for key, item in value.items():
            skey = _dict_key(key, path)
            step = path + _key_step(skey)
            if skey in out:
                raise UnsupportedValueError(
                    step, _type_name(key), f"another key of this dict is also sent as {skey!r}"
                )
            out[skey] = _convert(item, warn, step, seen, depth + 1)
        seen.discard(id(value))
        return out
    if isinstance(value, (list, tuple)):
        _enter(value, path, seen, depth)
        out_list = []
        for i, item in enumerate(value):
            out_list.append(_convert(item, warn, f"{path}[{i}]", seen, depth + 1))
        seen.discard(id(value))
        return out_list
    return _convert_other(value, warn, path, seen, depth)


def _convert_other(
    value: Any, warn: Callable[[str], None] | None, path: str, seen: set[int], depth: int
) -> Any:
    modules = sys.modules
    enum = modules.get("enum")
    if enum is not None and isinstance(value, enum.Enum):
        return _convert(value.value, warn, path, seen, depth)
    if isinstance(value, str):  # subclasses of str
        return str.__str__(value)
    if isinstance(value, int):  # subclasses of int (IntEnum already handled above)
        return _int(int(value), path)
    if isinstance(value, float):
        return _float(float(value), warn, path)
    if isinstance(value, (set, frozenset)):
        items = list(value)
        with contextlib.suppress(TypeError):  # items of mixed types keep their iteration order
            items.sort()
        return _convert(items, warn, path, seen, depth)
    dt = modules.get("datetime")
    if dt is not None and isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    decimal = modules.get("decimal")
    if decimal is not None and isinstance(value, decimal.Decimal):
        if not value.is_finite():  # float() refuses a signalling NaN: map NaNs by hand
            return _float(math.nan if value.is_nan() else float(value), warn, path)
        return str(value)
    uuid = modules.get("uuid")
    if uuid is not None and isinstance(value, uuid.UUID):
        return str(value)
    pathlib = modules.get("pathlib")
    if pathlib is not None and isinstance(value, pathlib.PurePath):
        return str(value)
    if hasattr(type(value), "__dataclass_fields__") and not isinstance(value, type):
        # Only dataclasses carry that attribute, so the module is loaded.
        dataclasses = modules["dataclasses"]
        _enter(value, path, seen, depth)
        out = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            out[f.name] = _convert(item, warn, path + _key_step(f.name), seen, depth + 1)
        seen.discard(id(value))
        return out
    raise UnsupportedValueError(path, _type_name(value))


def _int(value: int, path: str) -> int:
    # Python refuses to print ints past a digit limit (3.11+), so the encoder would fail later
    # without saying where. Each decimal digit takes over 3 bits: smaller ints need no test.
    limit = _max_int_digits()
    if limit and value.bit_length() > limit * 3:
        try:
            int.__repr__(value)
        except ValueError:
            raise UnsupportedValueError(
                path, "int", f"it has more than {limit} digits, Python's limit for printing"
            ) from None
    return value


def _max_int_digits() -> int:
    get = getattr(sys, "get_int_max_str_digits", None)
    return get() if get is not None else 0


def _float(value: float, warn: Callable[[str], None] | None, path: str) -> float | None:
    if math.isfinite(value):
        return value
    if warn is not None:
        warn(f"result value {value!r} at {path} is not valid JSON; sent as null")
    return None


def _dict_key(key: Any, path: str) -> str:
    if isinstance(key, str):
        return str.__str__(key)
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    enum = sys.modules.get("enum")
    if enum is not None and isinstance(key, enum.Enum) and isinstance(key.value, str):
        return key.value
    if isinstance(key, int):
        try:
            return int.__repr__(int(key))
        except ValueError:  # past Python's digit limit for printing ints
            raise UnsupportedValueError(
                f"{path}[<int key>]", "int", f"a dict key has more than {_max_int_digits()} digits"
            ) from None
    if isinstance(key, float):
        return float.__repr__(float(key))
    raise UnsupportedValueError(
        f"{path}[{key!r}]", _type_name(key), "dict keys must be strings or numbers"
    )


def _enter(container: Any, path: str, seen: set[int], depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise UnsupportedValueError(
            path, _type_name(container), f"it is nested more than {MAX_DEPTH} levels deep"
        )
    if id(container) in seen:
        raise UnsupportedValueError(path, _type_name(container), "it contains itself")
    seen.add(id(container))


def _type_name(value: Any) -> str:
    cls = type(value)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
