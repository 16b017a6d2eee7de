"""The harness store: the secrets and earlier run results Gust would keep in PostgreSQL.

A store is one JSON file::

    {"secrets": {"NAME": {"value": "...", "value_type": "string" | "json", "id": 7}
                         | "a plain string"},
     "runs": {"<run id>": {"<task>": {<the task's saved result, a JSON object>}}}}

Both top-level keys are optional. :func:`load_store` reads and checks the whole file at once, so
a malformed store is refused before any task starts, with a :class:`~gust.harness.errors.StoreError`
that names the file, the key (``runs["1"]["hello"]``) or the line and column, and what was
expected there, in one line. Strict JSON only, and a little stricter: a key given twice in one
object (JSON readers disagree on which one wins), containers nested more than
:data:`MAX_STORE_DEPTH` levels (saved results and JSON secrets may nest as deep as a task's
result may, :data:`gust.values.MAX_DEPTH`), numbers too long for Python to read, and run ids
outside Gust's 64-bit ids are refused.

A previous run's report (``python -m gust.harness ... --json`` or ``--report FILE``) is a store
too: its run, with each task that started, so a ``--task`` run can read its upstream results
from a real run. As in that run, a task's result is what it returned when it succeeded and
saves its result (``save=True``, read from the report's DAG file with ``gust parse``'s parser),
and ``{}`` otherwise; tasks that never started (no attempt: ``upstream_failed``, or interrupted
before they started) are not there. A report has
no secrets: they come from ``GUST_SECRET_<NAME>``.

Gust hands tasks database ids; the harness makes them up: a store secret or stored task is
numbered from 1 in file order unless the secret gives its own ``id``. A secret missing from the
store is looked up in the environment as ``GUST_SECRET_<NAME>`` (a ``string`` secret, id 0), so
real credentials need not be written into a file.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from gust.harness.errors import StoreError
from gust.harness.report import TASK_STATUSES
from gust.values import MAX_DEPTH

__all__ = [
    "ENV_SECRET_PREFIX",
    "MAX_RUN_ID",
    "MAX_STORE_DEPTH",
    "Secret",
    "Store",
    "StoredTask",
    "load_store",
    "parse_run_id",
    "store_from_data",
]

#: Environment variables named ``GUST_SECRET_<NAME>`` supply secrets the store lacks.
ENV_SECRET_PREFIX: Final = "GUST_SECRET_"
#: The largest run id: Gust's ids are 64-bit (PostgreSQL ``bigint``).
MAX_RUN_ID: Final = 2**63 - 1
_RUN_ID_DIGITS: Final = len(str(MAX_RUN_ID))
#: How deep a store file may nest: a saved result or JSON secret sits three levels down
#: (``runs`` / run / task, or ``secrets`` / name / ``value``) and may nest as deep as a task's
#: result may (:data:`gust.values.MAX_DEPTH`).
MAX_STORE_DEPTH: Final = MAX_DEPTH + 3
_KEY_SHOWN: Final = 40
# The keys that make a file a harness report rather than a store (see gust.harness.report).
_REPORT_KEYS: Final = frozenset({"dag", "mod", "file", "run_id", "tasks"})

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
    """A run id as an ``int``: an integer, or a string of decimal digits, within Gust's 64-bit
    ids (:data:`MAX_RUN_ID`); else ``None``."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str):
        text = raw.strip()
        digits = text[1:] if text.startswith("-") else text
        # Checked before int(): a 5,000-digit string is past what int() may convert.
        if not (digits.isascii() and digits.isdigit()) or len(digits) > _RUN_ID_DIGITS:
            return None
        value = int(text)
    else:
        return None
    return value if -MAX_RUN_ID - 1 <= value <= MAX_RUN_ID else None


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


def _key_text(key: str) -> str:
    if len(key) <= _KEY_SHOWN:
        return json.dumps(key, ensure_ascii=False)
    return json.dumps(key[:_KEY_SHOWN], ensure_ascii=False)[:-1] + f'…" ({len(key)} characters)'


def _at(*keys: str | int) -> str:
    return "".join(f"[{k}]" if isinstance(k, int) else f"[{_key_text(k)}]" for k in keys)


class _Duplicates(dict):  # type: ignore[type-arg]
    """An object of the file that gives ``duplicate`` (and maybe more keys) more than once."""

    duplicate: str


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            break
        seen.add(key)
    marked = _Duplicates(obj)
    marked.duplicate = key
    return marked


class _Refused(ValueError):
    """A literal the store may not hold; ``pattern`` finds it in the text (outside strings)."""

    def __init__(self, message: str, pattern: str) -> None:
        super().__init__(message)
        self.pattern = pattern


def _reject_constant(name: str) -> Any:
    raise _Refused(f"{name} is not valid JSON", re.escape(name))


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise _Refused(
            f"the number {text[:40]} is out of range (it would be read as infinity)",
            re.escape(text) + r"(?![0-9.eE+-])",
        )
    return value


# A JSON string, or one of the characters a scan looks for; strings are matched whole so that
# nothing inside them counts.
_STRING = r'"(?:[^"\\]|\\.)*"'


def _position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line} column {column}"


def _find_outside_strings(text: str, pattern: str) -> int | None:
    for match in re.finditer(f"{_STRING}|{pattern}", text, re.S):
        if not match.group().startswith('"'):
            return match.start()
    return None


def _too_deep_at(text: str) -> int | None:
    depth = 0
    for match in re.finditer(_STRING + r"|[\[\]{}]", text, re.S):
        char = match.group()
        if char in "[{":
            depth += 1
            if depth > MAX_STORE_DEPTH:
                return match.start()
        elif char in "]}":
            depth -= 1
    return None


def _too_deep(source: str, text: str) -> StoreError:
    offset = _too_deep_at(text)
    where = "" if offset is None else f" at {_position(text, offset)}"
    return StoreError(
        f"store {source}{where}: nested more than {MAX_STORE_DEPTH} levels deep (a saved "
        f"result or JSON secret may nest at most {MAX_DEPTH} levels, as a task's result may)"
    )


def _decode(source: str, text: str) -> Any:
    """The file's JSON, strictly; every refusal is one :class:`StoreError` line."""
    try:
        return json.loads(
            text,
            object_pairs_hook=_object,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as exc:
        raise StoreError(
            f"store {source}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except _Refused as exc:
        offset = _find_outside_strings(text, exc.pattern)
        where = "" if offset is None else f" at {_position(text, offset)}"
        raise StoreError(f"store {source}{where}: not valid JSON: {exc}") from None
    except RecursionError:
        raise _too_deep(source, text) from None
    except ValueError as exc:
        # What remains is int() refusing a number past Python's digit limit.
        limit = getattr(sys, "get_int_max_str_digits", lambda: 4300)()
        offset = _find_outside_strings(text, rf"-?\d{{{limit + 1},}}")
        if offset is None:
            raise StoreError(f"store {source}: not valid JSON: {exc}") from None
        digits = len(re.match(r"-?(\d+)", text[offset:]).group(1))  # type: ignore[union-attr]
        raise StoreError(
            f"store {source} at {_position(text, offset)}: a number with {digits} digits, more "
            f"than the {limit} Python reads (write an id that long as a string)"
        ) from None


def _check_structure(source: str, text: str, data: Any) -> None:
    """Refuse keys given twice and nesting past :data:`MAX_STORE_DEPTH` (iteratively)."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) >= MAX_STORE_DEPTH:
            raise _too_deep(source, text)
        if isinstance(value, _Duplicates):
            place = f" at {_at(*path)}" if path else ""
            raise StoreError(
                f"store {source}{place}: key {_key_text(value.duplicate)} is given twice in one "
                "object (JSON readers disagree on which one counts)"
            )
        if isinstance(value, dict):
            items: list[tuple[str | int, Any]] = list(value.items())
        elif isinstance(value, list):
            items = list(enumerate(value))
        else:
            continue
        for key, item in reversed(items):  # popped in file order
            if isinstance(item, (dict, list)):
                stack.append((item, (*path, key)))


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
                    "", f'unknown top-level key {_key_text(key)} (expected "secrets" or "runs")'
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
                raise self.fail(
                    _at("runs", key),
                    f'a run id must be an integer such as "1", from {-MAX_RUN_ID - 1} to '
                    f"{MAX_RUN_ID} (Gust's ids are 64-bit)",
                )
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

    def report(self, data: dict[str, Any]) -> Store:
        """A previous run's report as a store holding that one run (see the module docstring)."""
        run_id = parse_run_id(data["run_id"])
        if run_id is None or isinstance(data["run_id"], str):
            raise self.fail(
                _at("run_id"), f"expected the run id as an integer, got {_kind(data['run_id'])}"
            )
        for key in ("mod", "file"):
            if not isinstance(data[key], str) or not data[key]:
                raise self.fail(_at(key), f"expected a non-empty string, got {_kind(data[key])}")
        if not os.path.isabs(data["file"]):
            raise self.fail(_at("file"), "expected the DAG file's absolute path")
        raw = data["tasks"]
        if not isinstance(raw, dict):
            raise self.fail(
                _at("tasks"), f"expected an object mapping task names, got {_kind(raw)}"
            )
        for name, entry in raw.items():
            status = entry.get("status") if isinstance(entry, dict) else None
            if status not in TASK_STATUSES:
                raise self.fail(
                    _at("tasks", name),
                    'expected an object with "status" one of '
                    + ", ".join(json.dumps(s) for s in TASK_STATUSES),
                )
        saved = _saved_tasks(self, data["file"], data["mod"])
        tasks: dict[str, StoredTask] = {}
        for name, entry in raw.items():
            attempts = entry.get("attempts")
            started = (
                attempts >= 1
                if isinstance(attempts, int) and not isinstance(attempts, bool)
                else entry["status"] != "upstream_failed"
            )
            if not started:
                continue  # upstream_failed, or the run was interrupted first: Gust has no task
            value = entry.get("value")
            kept = value if entry["status"] == "ok" and name in saved else {}
            if not isinstance(kept, dict):
                raise self.fail(
                    _at("tasks", name, "value"),
                    f"task {name!r} saves its result, which must be a JSON object, got "
                    f"{_kind(kept)}",
                )
            tasks[name] = StoredTask(id=len(tasks) + 1, result=kept)
        return Store(runs={run_id: tasks}, source=self.source)


def _is_report(data: Any) -> bool:
    """Whether ``data`` is a harness report (``--json`` / ``--report``) rather than a store."""
    return (
        isinstance(data, dict)
        and data.keys() >= _REPORT_KEYS
        and not data.keys() & {"secrets", "runs"}
    )


def _saved_tasks(checker: _Checker, file: str, mod: str) -> set[str]:
    """The tasks of ``mod`` in ``file`` that save their result, read by ``gust parse``'s parser."""
    from gust.parser import parse_file  # only for a report: the parser is large

    entries = parse_file(file)
    for entry in entries:
        if entry.get("mod") == mod:
            tasks = entry.get("tasks") or {}
            return {name for name, spec in tasks.items() if spec.get("save") is True}
    first = entries[0] if entries else {}
    error = first.get("error") or {}
    why = error.get("description") or f"it has no DAG class {mod!r}"
    raise checker.fail(
        _at("file"),
        f"this is a harness report, and its DAG file {file} cannot tell which tasks save "
        f"their results: {why}",
    )


def _read_text(source: str) -> str:
    try:
        with open(source, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        raise StoreError(f"store {source}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"store {source}: cannot be read: {exc}") from None


def _from_text(source: str, text: str) -> Store:
    data = _decode(source, text)
    _check_structure(source, text, data)
    checker = _Checker(source)
    if _is_report(data):
        return checker.report(data)
    return checker.store(data)


def load_store(path: str | os.PathLike[str] | None) -> Store:
    """Read and check a store file, or a harness report used as one; ``None`` gives an empty
    store.

    Raises:
        StoreError: the file cannot be read, is not strict JSON, or is out of shape; the
            one-line message names the file and the key or the line and column.
    """
    if path is None:
        return Store()
    source = os.fspath(path)
    return _from_text(source, _read_text(source))


def store_from_data(data: Mapping[str, Any], source: str = "<data>") -> Store:
    """Build a store from data in the store file's format, checked exactly as a file is.

    The data goes through strict JSON first, as a file would: tuples become lists, integer keys
    (``{"runs": {1: {...}}}``) become strings, and what JSON cannot hold is refused.

    Raises:
        StoreError: the data has no JSON form or is out of shape; ``source`` names it.
    """
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"store {source}: has no JSON form: {exc}") from None
    except RecursionError:
        raise StoreError(
            f"store {source}: nested more than {MAX_STORE_DEPTH} levels deep"
        ) from None
    return _from_text(source, text)
