"""The harness store: the secrets and earlier run results Gust would keep in PostgreSQL.

A store is one JSON file::

    {"secrets": {"NAME": {"value": "...", "value_type": "string" | "json", "id": 7}
                         | "a plain string"},
     "runs": {"<run id>": {"<task>": {<the task's saved result, a JSON object>}}}}

Both top-level keys are optional. :func:`load_store` reads and checks the whole file at once, so
a malformed store is refused before any task starts, with a :class:`~gust.harness.errors.StoreError`
that names the file, the key (``runs["1"]["hello"]``) and what was expected there.

Gust hands tasks database ids; the harness makes them up: a store secret or stored task is
numbered from 1 in file order unless the secret gives its own ``id``. A secret missing from the
store is looked up in the environment as ``GUST_SECRET_<NAME>`` (a ``string`` secret, id 0), so
real credentials need not be written into a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from gust.harness.errors import StoreError

__all__ = ["ENV_SECRET_PREFIX", "Secret", "Store", "StoredTask", "load_store", "parse_run_id"]

#: Environment variables named ``GUST_SECRET_<NAME>`` supply secrets the store lacks.
ENV_SECRET_PREFIX: Final = "GUST_SECRET_"

_VALUE_TYPES: Final = ("string", "json")
_SECRET_KEYS: Final = ("value", "value_type", "id")


@dataclass(frozen=True)
class Secret:
    """One secret, as Gust's ``get_secret_by_name`` reply describes it."""

    id: int | str
    name: str
    value_type: str
    value: Any

    def reply_data(self) -> dict[str, Any]:
        """The ``data`` of Gust's reply: ``{"id", "name", "value_type", "value"}``."""
        return {
            "id": self.id,
            "name": self.name,
            "value_type": self.value_type,
            "value": self.value,
        }


@dataclass(frozen=True)
class StoredTask:
    """A task of an earlier run: its made-up id and its saved result."""

    id: int
    result: dict[str, Any]


@dataclass
class Store:
    """Secrets and earlier runs; an empty store is valid (every lookup then misses)."""

    secrets: dict[str, Secret] = field(default_factory=dict)
    runs: dict[int, dict[str, StoredTask]] = field(default_factory=dict)
    source: str | None = None

    def secret(self, name: str, environ: Mapping[str, str] | None = None) -> Secret | None:
        """The secret called ``name``: from the store, else from ``GUST_SECRET_<NAME>``."""
        found = self.secrets.get(name)
        if found is not None:
            return found
        env = os.environ if environ is None else environ
        value = env.get(ENV_SECRET_PREFIX + name)
        if value is None:
            return None
        return Secret(id=0, name=name, value_type="string", value=value)

    def task(self, run_id: int, name: str) -> StoredTask | None:
        """The task ``name`` of the stored run ``run_id``, if the store has it."""
        return self.runs.get(run_id, {}).get(name)

    def max_task_id(self) -> int:
        """The largest id given to a stored task (0 when there is none)."""
        return max((t.id for run in self.runs.values() for t in run.values()), default=0)


def parse_run_id(raw: Any) -> int | None:
    """A run id as an ``int``: an integer, or a string of decimal digits; else ``None``."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        text = raw.strip()
        if text.lstrip("-").isdigit() and text.lstrip("-").isascii():
            return int(text)
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _at(*keys: str) -> str:
    return "".join(f"[{json.dumps(k, ensure_ascii=False)}]" for k in keys)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _Checker:
    """Walks the decoded store, building it and raising on the first thing out of shape."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> StoreError:
        place = f" at {where}" if where else ""
        return StoreError(f"store {self.source}{place}: {message}")

    def store(self, data: Any) -> Store:
        if not isinstance(data, dict):
            raise self.fail(
                "",
                'expected a JSON object with "secrets" and/or "runs", got ' + _kind(data),
            )
        for key in data:
            if key not in ("secrets", "runs"):
                raise self.fail(
                    "", f'unknown top-level key {json.dumps(key)} (expected "secrets" or "runs")'
                )
        return Store(
            secrets=self.secrets(data.get("secrets", {})),
            runs=self.runs(data.get("runs", {})),
            source=self.source,
        )

    def secrets(self, raw: Any) -> dict[str, Secret]:
        if not isinstance(raw, dict):
            raise self.fail(
                _at("secrets"),
                f"expected an object mapping secret names to secrets, got {_kind(raw)}",
            )
        out: dict[str, Secret] = {}
        for number, (name, entry) in enumerate(raw.items(), start=1):
            out[name] = self.secret(name, entry, number)
        return out

    def secret(self, name: str, entry: Any, number: int) -> Secret:
        where = _at("secrets", name)
        if isinstance(entry, str):
            return Secret(id=number, name=name, value_type="string", value=entry)
        if not isinstance(entry, dict):
            raise self.fail(
                where,
                'expected a string or an object {"value": ..., "value_type": "string"|"json"}, '
                f"got {_kind(entry)}",
            )
        for key in entry:
            if key not in _SECRET_KEYS:
                raise self.fail(
                    where,
                    f"unknown key {json.dumps(key)} (expected "
                    + ", ".join(json.dumps(k) for k in _SECRET_KEYS)
                    + ")",
                )
        if "value" not in entry:
            raise self.fail(where, 'missing "value"')
        value_type = entry.get("value_type", "string")
        if value_type not in _VALUE_TYPES:
            raise self.fail(
                _at("secrets", name, "value_type"),
                f'expected "string" or "json", got {json.dumps(value_type)}',
            )
        value = entry["value"]
        if value_type == "string" and not isinstance(value, str):
            raise self.fail(
                _at("secrets", name, "value"),
                f'a "string" secret needs a string value, got {_kind(value)} '
                '(set "value_type": "json" for a structured value)',
            )
        secret_id = entry.get("id", number)
        if isinstance(secret_id, bool) or not isinstance(secret_id, (int, str)):
            raise self.fail(
                _at("secrets", name, "id"),
                f"expected an integer or a string, got {_kind(secret_id)}",
            )
        return Secret(id=secret_id, name=name, value_type=value_type, value=value)

    def runs(self, raw: Any) -> dict[int, dict[str, StoredTask]]:
        if not isinstance(raw, dict):
            raise self.fail(
                _at("runs"), f"expected an object mapping run ids to runs, got {_kind(raw)}"
            )
        out: dict[int, dict[str, StoredTask]] = {}
        next_id = 1
        for key, run in raw.items():
            run_id = parse_run_id(key)
            if run_id is None:
                raise self.fail(_at("runs", key), 'a run id must be an integer such as "1"')
            if run_id in out:
                raise self.fail(_at("runs", key), f"run {run_id} is given twice")
            if not isinstance(run, dict):
                raise self.fail(
                    _at("runs", key),
                    f"expected an object mapping task names to saved results, got {_kind(run)}",
                )
            tasks: dict[str, StoredTask] = {}
            for task, result in run.items():
                if not isinstance(result, dict):
                    raise self.fail(
                        _at("runs", key, task),
                        f"expected the task's saved result as a JSON object, got {_kind(result)}",
                    )
                tasks[task] = StoredTask(id=next_id, result=result)
                next_id += 1
            out[run_id] = tasks
        return out


def load_store(path: str | os.PathLike[str] | None) -> Store:
    """Read and check a store file; ``None`` gives an empty store.

    Raises:
        StoreError: the file cannot be read, is not strict JSON, or is out of shape; the
            message names the file and the key.
    """
    if path is None:
        return Store()
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise StoreError(f"store {source}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"store {source}: cannot be read: {exc}") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise StoreError(
            f"store {source}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError as exc:
        raise StoreError(f"store {source}: not valid JSON: {exc}") from None
    return _Checker(source).store(data)
