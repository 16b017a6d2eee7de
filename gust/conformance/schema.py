"""Validate frames and case files against the suite's JSON Schemas (draft 2020-12).

Theory of operation: :class:`SchemaSet` loads every ``*.schema.json`` of a folder and indexes
it by its ``$id``; schemas refer to each other by those ids. Validation uses the ``jsonschema``
package when it is importable (the optional ``conformance`` extra) and otherwise a small
validator of our own, so the suite runs on a bare install. The built-in validator implements
exactly the keywords our schemas use (listed in :data:`BUILTIN_KEYWORDS`) and refuses to load a
schema with any other keyword, so a schema edit can never be silently half-checked.

Errors come back as a list of ``"<JSONPath>: <what is wrong>"`` strings, empty when valid.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from gust.conformance.matchers import json_equal, json_type

__all__ = [
    "BUILTIN_KEYWORDS",
    "SchemaError",
    "SchemaSet",
    "jsonschema_available",
]

#: Keywords the built-in validator checks; annotations it accepts and ignores are included.
BUILTIN_KEYWORDS: Final = frozenset(
    {
        # annotations and structure
        "$schema", "$id", "$defs", "$comment", "title", "description", "examples", "default",
        # references and combinators
        "$ref", "allOf", "anyOf", "oneOf", "not", "if", "then", "else",
        # any instance
        "type", "enum", "const",
        # objects
        "properties", "patternProperties", "additionalProperties", "required",
        "propertyNames", "minProperties", "maxProperties",
        # arrays
        "items", "minItems", "maxItems", "uniqueItems",
        # numbers and strings
        "minimum", "maximum", "minLength", "maxLength", "pattern",
    }
)  # fmt: skip

_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SUBSCHEMA_SINGLE = ("not", "if", "then", "else", "items", "additionalProperties", "propertyNames")


class SchemaError(ValueError):
    """A schema file is unreadable, has no ``$id``, or uses a keyword we cannot check."""


def jsonschema_available() -> bool:
    """Whether the optional ``jsonschema`` package (with ``referencing``) can be imported."""
    try:
        import jsonschema  # noqa: F401
        import referencing  # noqa: F401
    except ImportError:
        return False
    return True


def _walk_keywords(schema: Any, where: str) -> Iterator[tuple[str, str]]:
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        yield key, where
        if key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            for name, sub in value.items():
                yield from _walk_keywords(sub, f"{where}/{key}/{name}")
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            for i, sub in enumerate(value):
                yield from _walk_keywords(sub, f"{where}/{key}/{i}")
        elif key in _SUBSCHEMA_SINGLE:
            yield from _walk_keywords(value, f"{where}/{key}")


def _step(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 80 else text[:80] + "..."


class _Builtin:
    """The subset of draft 2020-12 our schemas use, over an id-indexed registry."""

    def __init__(self, registry: dict[str, dict[str, Any]]) -> None:
        self.registry = registry

    def _resolve(self, ref: str, root: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        uri, _, fragment = ref.partition("#")
        doc = root if not uri else self.registry.get(uri)
        if doc is None:
            raise SchemaError(f"$ref {ref!r} names no loaded schema")
        target: Any = doc
        for part in filter(None, fragment.split("/")):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                raise SchemaError(f"$ref {ref!r}: no {part!r} in the target schema")
            target = target[part]
        return target, doc

    def errors(self, schema: Any, instance: Any, path: str, root: dict[str, Any]) -> list[str]:
        if schema is True:
            return []
        if schema is False:
            return [f"{path}: nothing is allowed here"]
        out: list[str] = []
        s = schema
        if "$ref" in s:
            target, doc = self._resolve(s["$ref"], root)
            out += self.errors(target, instance, path, doc)
        if "type" in s:
            names = [s["type"]] if isinstance(s["type"], str) else s["type"]
            actual = json_type(instance)
            if not any(n == actual or (n == "number" and actual == "integer") for n in names):
                out.append(
                    f"{path}: expected {' or '.join(names)}, got {actual} {_short(instance)}"
                )
                return out  # the keywords below assume the right type
        if "const" in s and not json_equal(s["const"], instance):
            out.append(f"{path}: must be {_short(s['const'])}, got {_short(instance)}")
        if "enum" in s and not any(json_equal(v, instance) for v in s["enum"]):
            choices = ", ".join(_short(v) for v in s["enum"])
            out.append(f"{path}: must be one of {choices}, got {_short(instance)}")
        if isinstance(instance, dict):
            out += self._object(s, instance, path, root)
        if isinstance(instance, list):
            out += self._array(s, instance, path, root)
        if isinstance(instance, str):
            if "minLength" in s and len(instance) < s["minLength"]:
                out.append(f"{path}: shorter than {s['minLength']} characters")
            if "maxLength" in s and len(instance) > s["maxLength"]:
                out.append(f"{path}: longer than {s['maxLength']} characters")
            if "pattern" in s and re.search(s["pattern"], instance) is None:
                out.append(f"{path}: {_short(instance)} does not match /{s['pattern']}/")
        if json_type(instance) in ("integer", "number"):
            if "minimum" in s and instance < s["minimum"]:
                out.append(f"{path}: {instance} is below the minimum {s['minimum']}")
            if "maximum" in s and instance > s["maximum"]:
                out.append(f"{path}: {instance} is above the maximum {s['maximum']}")
        for sub in s.get("allOf", ()):
            out += self.errors(sub, instance, path, root)
        if "anyOf" in s and not any(not self.errors(x, instance, path, root) for x in s["anyOf"]):
            out.append(f"{path}: matches none of the allowed forms (anyOf)")
        if "oneOf" in s:
            passing = sum(1 for x in s["oneOf"] if not self.errors(x, instance, path, root))
            if passing != 1:
                out.append(
                    f"{path}: must match exactly one of {len(s['oneOf'])} forms (oneOf), "
                    f"matches {passing}"
                )
        if "not" in s and not self.errors(s["not"], instance, path, root):
            out.append(f"{path}: matches a form that is not allowed (not)")
        if "if" in s:
            branch = "then" if not self.errors(s["if"], instance, path, root) else "else"
            if branch in s:
                out += self.errors(s[branch], instance, path, root)
        return out

    def _object(self, s: dict[str, Any], obj: dict[str, Any], path: str, root: Any) -> list[str]:
        out: list[str] = []
        for key in s.get("required", ()):
            if key not in obj:
                out.append(f"{path}: missing required key {key!r}")
        if "minProperties" in s and len(obj) < s["minProperties"]:
            out.append(f"{path}: needs at least {s['minProperties']} keys")
        if "maxProperties" in s and len(obj) > s["maxProperties"]:
            out.append(f"{path}: allows at most {s['maxProperties']} keys")
        props = s.get("properties", {})
        patterns = s.get("patternProperties", {})
        for key, value in obj.items():
            sub_path = _step(path, key)
            covered = False
            if key in props:
                covered = True
                out += self.errors(props[key], value, sub_path, root)
            for pattern, sub in patterns.items():
                if re.search(pattern, key):
                    covered = True
                    out += self.errors(sub, value, sub_path, root)
            if not covered and "additionalProperties" in s:
                extra = s["additionalProperties"]
                if extra is False:
                    out.append(f"{path}: key {key!r} is not allowed here")
                else:
                    out += self.errors(extra, value, sub_path, root)
            if "propertyNames" in s:
                for problem in self.errors(s["propertyNames"], key, f"key {key!r}", root):
                    out.append(f"{path}: {problem}")
        return out

    def _array(self, s: dict[str, Any], arr: list[Any], path: str, root: Any) -> list[str]:
        out: list[str] = []
        if "minItems" in s and len(arr) < s["minItems"]:
            out.append(f"{path}: needs at least {s['minItems']} items")
        if "maxItems" in s and len(arr) > s["maxItems"]:
            out.append(f"{path}: allows at most {s['maxItems']} items")
        if s.get("uniqueItems"):
            for i, item in enumerate(arr):
                if any(json_equal(item, other) for other in arr[:i]):
                    out.append(f"{_step(path, i)}: repeats an earlier item")
        if "items" in s:
            for i, item in enumerate(arr):
                out += self.errors(s["items"], item, _step(path, i), root)
        return out


class SchemaSet:
    """The schemas of one folder, ready to validate instances by schema name.

    Args:
        folder: holds ``<name>.schema.json`` files, each with a unique ``$id``.
        backend: ``"auto"`` (``jsonschema`` when importable, else built-in), ``"builtin"`` or
            ``"jsonschema"``.

    Raises:
        SchemaError: a file is not JSON, lacks ``$id``, or (built-in) uses an unknown keyword;
            ``backend="jsonschema"`` without the package installed.
    """

    def __init__(self, folder: str | Path, backend: str = "auto") -> None:
        self.folder = Path(folder)
        self.by_name: dict[str, dict[str, Any]] = {}
        self.by_id: dict[str, dict[str, Any]] = {}
        files = sorted(self.folder.glob("*.schema.json"))
        if not files:
            raise SchemaError(f"no *.schema.json files in {self.folder}")
        for file in files:
            try:
                schema = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise SchemaError(f"{file}: cannot read schema: {exc}") from None
            if not isinstance(schema, dict) or not isinstance(schema.get("$id"), str):
                raise SchemaError(f"{file}: a schema must be an object with a string $id")
            if schema["$id"] in self.by_id:
                raise SchemaError(f"{file}: $id {schema['$id']!r} is used twice")
            self.by_name[file.name.removesuffix(".schema.json")] = schema
            self.by_id[schema["$id"]] = schema
        if backend == "auto":
            backend = "jsonschema" if jsonschema_available() else "builtin"
        if backend == "builtin":
            for name, schema in self.by_name.items():
                for key, where in _walk_keywords(schema, name):
                    if key not in BUILTIN_KEYWORDS:
                        raise SchemaError(
                            f"{name}.schema.json at {where}: keyword {key!r} is not supported by "
                            f"the built-in validator; install the 'conformance' extra or drop it"
                        )
            self._builtin = _Builtin(self.by_id)
        elif backend == "jsonschema":
            if not jsonschema_available():
                raise SchemaError("backend 'jsonschema' asked for, but it is not installed")
            self._validators = self._jsonschema_validators()
        else:
            raise SchemaError(f"unknown schema backend {backend!r}")
        self.backend = backend

    def _jsonschema_validators(self) -> dict[str, Any]:
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource

        registry = Registry().with_resources(
            (sid, Resource.from_contents(schema)) for sid, schema in self.by_id.items()
        )
        out = {}
        for name, schema in self.by_name.items():
            Draft202012Validator.check_schema(schema)
            out[name] = Draft202012Validator(schema, registry=registry)
        return out

    def names(self) -> list[str]:
        """The schema names (file names without ``.schema.json``)."""
        return sorted(self.by_name)

    def validate(self, name: str, instance: Any) -> list[str]:
        """Return the problems of ``instance`` against schema ``name`` (empty: valid).

        Raises:
            KeyError: no schema has that name.
        """
        if name not in self.by_name:
            raise KeyError(f"no schema named {name!r} in {self.folder}")
        if self.backend == "builtin":
            return self._builtin.errors(self.by_name[name], instance, "$", self.by_name[name])
        out = []
        for err in self._validators[name].iter_errors(instance):
            path = "$"
            for key in err.absolute_path:
                path = _step(path, key)
            out.append(f"{path}: {err.message}")
        return out

    def check_c2h(self, frame: Any) -> list[str]:
        """Problems of a child-to-host frame."""
        return self.validate("c2h", frame)

    def check_h2c(self, frame: Any, op: str | None = None) -> list[str]:
        """Problems of a host-to-child frame; ``op`` is the call it answers, when known."""
        name = f"reply-{op}" if op and f"reply-{op}" in self.by_name else "h2c"
        return self.validate(name, frame)
