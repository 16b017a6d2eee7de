"""Validate frames and case files against the suite's JSON Schemas (draft 2020-12).

Theory of operation: :class:`SchemaSet` loads every ``*.schema.json`` of a folder, indexes it by
its ``$id`` (schemas refer to each other by those ids) and validates with ``jsonschema``, the
ecosystem's validator, which the runner gets from the ``conformance`` extra. Only the runner
process validates: the ``gust`` runtime and the scripted child never import this module's
dependency, and :func:`require_jsonschema` turns a missing extra into one line that names the
install command.

Errors come back as a list of ``"<JSONPath>: <what is wrong>"`` strings, empty when valid.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

__all__ = ["INSTALL_HINT", "MissingExtraError", "SchemaError", "SchemaSet", "require_jsonschema"]

#: What to run when the ``conformance`` extra is missing.
INSTALL_HINT: Final = (
    "pip install 'gust-py[conformance]' (in a checkout: uv sync --extra conformance)"
)


class SchemaError(ValueError):
    """A schema file is unreadable, has no ``$id``, or is not a valid draft 2020-12 schema."""


class MissingExtraError(RuntimeError):
    """``jsonschema`` (the ``conformance`` extra) cannot be imported."""


def require_jsonschema() -> None:
    """Check that the ``conformance`` extra is installed.

    Raises:
        MissingExtraError: with a one-line message naming the install command.
    """
    try:
        import jsonschema  # noqa: F401
        import referencing  # noqa: F401
    except ImportError:
        raise MissingExtraError(
            f"the conformance runner needs the 'conformance' extra (jsonschema): {INSTALL_HINT}"
        ) from None


def _step(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


class SchemaSet:
    """The schemas of one folder, ready to validate instances by schema name.

    Args:
        folder: holds ``<name>.schema.json`` files, each with a unique ``$id``.

    Raises:
        MissingExtraError: ``jsonschema`` is not installed.
        SchemaError: a file is not JSON, lacks ``$id``, or is not a valid schema.
    """

    def __init__(self, folder: str | Path) -> None:
        require_jsonschema()
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError as InvalidSchema
        from referencing import Registry, Resource

        self.folder = Path(folder)
        self.by_name: dict[str, dict[str, Any]] = {}
        by_id: dict[str, dict[str, Any]] = {}
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
            if schema["$id"] in by_id:
                raise SchemaError(f"{file}: $id {schema['$id']!r} is used twice")
            try:
                Draft202012Validator.check_schema(schema)
            except InvalidSchema as exc:
                raise SchemaError(
                    f"{file}: not a valid draft 2020-12 schema: {exc.message}"
                ) from None
            self.by_name[file.name.removesuffix(".schema.json")] = schema
            by_id[schema["$id"]] = schema
        registry = Registry().with_resources(
            (sid, Resource.from_contents(schema)) for sid, schema in by_id.items()
        )
        self._validators = {
            name: Draft202012Validator(schema, registry=registry)
            for name, schema in self.by_name.items()
        }

    def names(self) -> list[str]:
        """The schema names (file names without ``.schema.json``)."""
        return sorted(self.by_name)

    def validate(self, name: str, instance: Any) -> list[str]:
        """Return the problems of ``instance`` against schema ``name`` (empty: valid).

        Raises:
            KeyError: no schema has that name.
        """
        if name not in self._validators:
            raise KeyError(f"no schema named {name!r} in {self.folder}")
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
