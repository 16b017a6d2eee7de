"""Reading a DAG file the way Gust does: by running ``gust parse``, never by importing it.

:func:`parse_dag_file` runs ``<gust-cmd> parse --file <path>`` in the DAGs folder (with
``UV_WORKING_DIR`` set, as Gust sets it), reads stdout as the JSON list ``gust parse`` prints and
picks one entry: the first, as Gust does, or the one whose class is ``--dag``. An in-band parse
error is refused with ``file:line: description``; so is output Gust itself could not use (a task
without a ``downstream`` list, a ``file_path`` that is not absolute, a cycle Gust would crash on).

Stages are computed the way Gust computes them, from the ``downstream`` links alone: each stage
holds the tasks whose upstream tasks are all in earlier stages. Within a stage the tasks keep
the file's order. :func:`temp_copy` makes the copy Gust runs tasks from,
``<tmp>/gust_py_dag_<runtime id>_<basename>``, and removes it afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from gust import _process
from gust.harness.errors import DagFileError, UsageError

__all__ = ["PARSE_TIMEOUT", "DagPlan", "TaskSpec", "compute_stages", "parse_dag_file", "temp_copy"]

#: Seconds ``gust parse`` may take (a first ``uv run`` may have to build an environment).
PARSE_TIMEOUT: Final = 300.0


@dataclass(frozen=True)
class TaskSpec:
    """One task of a DAG: what Gust reads from the parse output."""

    name: str
    downstream: tuple[str, ...]
    save: bool


@dataclass(frozen=True)
class DagPlan:
    """A parsed DAG, ready to run.

    Attributes:
        name: Gust's name for the DAG: the file's stem (what the callback gets as ``--dag``).
        mod: the DAG class, passed to ``gust task run --dag``.
        file: the absolute path of the original file (``file_path`` of the parse output).
        folder: the DAGs folder, the working directory of every child.
        tasks: the tasks in file order.
        stages: the tasks grouped in stages, as Gust computes them.
        on_finished_callback: the callback method, if any.
        messages: the parser's notes about what it could not read statically.
    """

    name: str
    mod: str
    file: str
    folder: str
    tasks: Mapping[str, TaskSpec]
    stages: tuple[tuple[str, ...], ...]
    on_finished_callback: str | None = None
    schedule: str | None = None
    messages: tuple[str, ...] = ()

    def upstream(self, name: str) -> list[str]:
        """The tasks that list ``name`` as downstream, in file order."""
        ups = self.__dict__.get("_upstream")
        if ups is None:  # computed once: a run asks for every task's upstream tasks
            ups = {n: [] for n in self.tasks}
            for spec in self.tasks.values():
                for down in spec.downstream:
                    if down in ups and spec.name not in ups[down]:
                        ups[down].append(spec.name)
            object.__setattr__(self, "_upstream", ups)
        return list(ups.get(name, ()))


def compute_stages(tasks: Mapping[str, TaskSpec]) -> tuple[tuple[str, ...], ...]:
    """Group ``tasks`` in stages from their downstream links, keeping file order in a stage.

    A task's stage is one more than the latest stage of its upstream tasks (Kahn's algorithm,
    linear in the number of links).

    Raises:
        DagFileError: a downstream names no task, or the links form a cycle.
    """
    waiting: dict[str, int] = {name: 0 for name in tasks}
    for spec in tasks.values():
        for down in dict.fromkeys(spec.downstream):
            if down not in waiting:
                raise DagFileError(f"task {spec.name!r} has downstream {down!r}, which is no task")
            waiting[down] += 1
    level = {name: 0 for name in tasks}
    ready = [name for name, count in waiting.items() if count == 0]
    placed = 0
    while ready:
        name = ready.pop()
        placed += 1
        for down in dict.fromkeys(tasks[name].downstream):
            level[down] = max(level[down], level[name] + 1)
            waiting[down] -= 1
            if waiting[down] == 0:
                ready.append(down)
    if placed < len(tasks):
        stuck = ", ".join(n for n in tasks if waiting[n] > 0)
        raise DagFileError(f"the downstream links form a cycle through: {stuck}")
    stages: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for name in tasks:  # file order within a stage
        stages[level[name]].append(name)
    return tuple(tuple(stage) for stage in stages)


def _run_parse(argv: list[str], folder: str, timeout: float) -> tuple[int, str, str]:
    env = dict(os.environ, UV_WORKING_DIR=folder)
    try:
        code, out, err = _process.run_to_end(argv, cwd=folder, env=env, timeout=timeout)
    except OSError as exc:
        raise UsageError(f"--gust-cmd: cannot start {argv[0]!r}: {exc}") from None
    except TimeoutError:
        raise DagFileError(f"`{' '.join(argv)}` did not finish within {timeout:g} s") from None
    except _process.OutputTooLargeError as exc:
        raise DagFileError(f"`{' '.join(argv)}` {exc} on stdout; killed") from None
    return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.rstrip().split("\n")[-lines:])


_LINE_PREFIX = re.compile(r"line (\d+): (?:also an error: )?")


def _located(message: Any, path: str) -> str:
    """A parser message as ``file:line: text`` (``line N: ...`` is how the parser places it);
    one that is not an error (a value left at its default, a second DAG class) says ``note``."""
    text = message if isinstance(message, str) else json.dumps(message)
    found = _LINE_PREFIX.match(text)
    if found is None:
        return f"{path}: {text}"
    kind = "" if "also an error: " in found.group(0) else "note: "
    return f"{path}:{found.group(1)}: {kind}{text[found.end() :]}"


def _check_entry(entry: Any, path: str) -> DagPlan:
    where = f"`gust parse` output for {path}"
    if not isinstance(entry, dict):
        raise DagFileError(f"{where}: an entry is not an object")
    raw_messages = entry.get("messages") if isinstance(entry.get("messages"), list) else []
    messages = [_located(m, path) for m in raw_messages]
    error = entry.get("error")
    if isinstance(error, dict) and error:
        line = error.get("line")
        file = error.get("file") or path
        description = error.get("description", "parsing error")
        place = f"{file}:{line}" if isinstance(line, int) else str(file)
        problems = [f"{place}: {description}", *messages]
        if len(problems) == 1:
            raise DagFileError(problems[0])
        raise DagFileError(
            f"gust parse found {len(problems)} problems in {path} (Gust shows the first as its "
            "parsing error):\n" + "\n".join(problems)
        )
    mod = entry.get("mod")
    tasks_raw = entry.get("tasks")
    file_path = entry.get("file_path")
    if not isinstance(mod, str) or not mod:
        raise DagFileError(f"{where}: 'mod' is not a class name: {mod!r}")
    if not isinstance(tasks_raw, dict):
        raise DagFileError(f"{where}: 'tasks' is not an object")
    if not isinstance(file_path, str) or not os.path.isabs(file_path):
        raise DagFileError(f"{where}: 'file_path' must be an absolute path, got {file_path!r}")
    order = entry.get("task_list")
    names = [n for n in order if n in tasks_raw] if isinstance(order, list) else []
    names += [n for n in tasks_raw if n not in names]
    tasks: dict[str, TaskSpec] = {}
    for name in names:
        spec = tasks_raw[name]
        down = spec.get("downstream") if isinstance(spec, dict) else None
        if not isinstance(down, list) or not all(isinstance(d, str) for d in down):
            raise DagFileError(
                f"{where}: task {name!r} has no 'downstream' list of names (Gust would drop or "
                "crash on it)"
            )
        tasks[name] = TaskSpec(name=name, downstream=tuple(down), save=spec.get("save") is True)
    options = entry.get("options") if isinstance(entry.get("options"), dict) else {}
    callback = options.get("on_finished_callback")
    schedule = options.get("schedule")
    return DagPlan(
        name=os.path.splitext(os.path.basename(path))[0],
        mod=mod,
        file=file_path,
        folder=os.path.dirname(path),
        tasks=tasks,
        stages=compute_stages(tasks),
        on_finished_callback=callback if isinstance(callback, str) and callback else None,
        schedule=schedule if isinstance(schedule, str) else None,
        messages=tuple(messages),
    )


def parse_dag_file(
    file: str, gust_cmd: Sequence[str], *, dag: str | None = None, timeout: float = PARSE_TIMEOUT
) -> DagPlan:
    """Run ``gust parse`` on ``file`` and return the chosen DAG.

    Args:
        gust_cmd: how to start the runtime, for example ``["uv", "run", "gust"]``.
        dag: the DAG class to take; ``None`` takes the first, as Gust does.

    Raises:
        DagFileError: the file is missing, the parser failed or reported an error, or its
            output cannot be run; the message says where (``file:line`` when known).
        UsageError: ``gust_cmd`` cannot be started, or ``dag`` names no DAG of the file.
    """
    path = os.path.abspath(file)
    if not os.path.isfile(path):
        raise DagFileError(f"{file}: no such DAG file")
    argv = [*gust_cmd, "parse", "--file", path]
    code, out, err = _run_parse(argv, os.path.dirname(path), timeout)
    if code != 0:
        detail = f"\n{_tail(err)}" if err.strip() else ""
        raise DagFileError(
            f"`{' '.join(argv)}` failed with exit status {code} (Gust shows: Parse file command "
            f"failed, exit: {code}){detail}"
        )
    try:
        entries = json.loads(out)
    except ValueError as exc:
        raise DagFileError(
            f"`gust parse` printed something that is not JSON ({exc}); stdout began with "
            f"{out[:200]!r}"
        ) from None
    if not isinstance(entries, list):
        raise DagFileError(f"`gust parse` printed {type(entries).__name__}, not a JSON list")
    if not entries:
        raise DagFileError(f"{file}: no Dag class in this file (Gust: Not a GustPy file)")
    if dag is None:
        return _check_entry(entries[0], path)
    for entry in entries:
        if isinstance(entry, dict) and entry.get("mod") == dag:
            return _check_entry(entry, path)
    known = ", ".join(repr(e.get("mod")) for e in entries if isinstance(e, dict)) or "none"
    raise UsageError(f"--dag {dag!r}: {file} has no such DAG class (its DAGs: {known})")


@contextlib.contextmanager
def temp_copy(path: str) -> Iterator[str]:
    """Copy ``path`` to ``<tmp>/gust_py_dag_<runtime id>_<basename>`` for the run; remove after.

    Raises:
        DagFileError: the file cannot be read or the copy cannot be written.
    """
    try:
        with open(path, "rb") as handle:
            content = handle.read()
            mode = os.fstat(handle.fileno()).st_mode & 0o777  # never more readable than this
    except OSError as exc:
        raise DagFileError(f"{path}: cannot be read for the run: {exc}") from None
    base = os.path.basename(path)
    while True:
        copy = os.path.join(
            tempfile.gettempdir(), f"gust_py_dag_{secrets.randbelow(1 << 31) + 1}_{base}"
        )
        try:
            fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        except OSError as exc:
            raise DagFileError(f"cannot write the run copy {copy}: {exc}") from None
        break
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)  # exactly the original's, whatever the umask
            out.write(content)
        yield copy
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(copy)
