"""The output spec: the JSON entries Gust reads, one per DAG class (SPEC §5).

Each entry has exactly the keys of :data:`ENTRY_KEYS`, in that order. The problems found while
reading a DAG become its ``error`` (the earliest error by line) and its ``messages`` (every
other note and error, sorted by line, each prefixed with ``line N:``). Every string is valid
Unicode, and :func:`render` dumps the entries as one line of ASCII JSON, so the same file always
gives the same bytes.
"""

from __future__ import annotations

import json

from gust.parser._classes import Task
from gust.parser._graph import stages as layer_stages
from gust.parser._options import OPTION_NAMES, read_options
from gust.parser._problems import Problems
from gust.parser._scope import END
from gust.protocol import scrub_surrogates

TYPE_CHECKING = False  # typing is only for the type checker: `gust parse` starts on every edit
if TYPE_CHECKING:
    from typing import Any, Final

    from gust.parser._classes import Class, Member
    from gust.parser._module import Module

#: The keys of an entry, in the order Gust's adapter (and SPEC §5) expects them.
ENTRY_KEYS: Final = (
    "name",
    "mod",
    "error",
    "messages",
    "task_list",
    "stages",
    "tasks",
    "file_path",
    "options",
)


def clean(text: str) -> str:
    """``text`` as valid Unicode, through the package's one scrub (:func:`scrub_surrogates`).

    A surrogate pair written as two escapes (``"\\ud83d\\ude00"``) is the character it stands
    for; a lone surrogate (from a literal, or a file name that is not UTF-8) becomes U+FFFD.
    """
    return text if text.isascii() else scrub_surrogates(text)


def entries(module: Module, file_messages: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """One entry per DAG class of ``module``, in source order."""
    return [_entry(module, cls, file_messages) for cls in module.classes if cls.is_dag]


def _entry(module: Module, dag: Class, file_messages: list[tuple[int, str]]) -> dict[str, Any]:
    problems = Problems()
    problems.messages.extend(file_messages)
    last = module.scope.before(dag.name, END)
    if last is not None and last.index != dag.index:
        problems.error(
            dag.node.lineno,
            f"class {dag.name} is bound again by {last.how} at line {last.line}; only that "
            "later binding exists once the file has run",
        )
    effective: dict[str, Task | Member] = {}
    for cls in reversed(dag.mro):
        problems.extend(cls.problems)
        effective.update(cls.members)
    tasks = [m for m in effective.values() if isinstance(m, Task)]
    for task in tasks:
        problems.extend(task.problems)
    stages = layer_stages(dag, tasks, effective, problems)
    options, lines = read_options(module, dag, problems)
    callback = options["on_finished_callback"]
    if callback is not None and callback not in effective:
        line = lines["on_finished_callback"]
        external = [name for cls in dag.mro for name in cls.external]
        if external:
            problems.message(
                line,
                f"on_finished_callback {callback!r} is not a method of {dag.name} in this "
                f"file; it may come from {', '.join(external)}",
            )
        else:
            problems.error(line, f"on_finished_callback {callback!r} names no method of {dag.name}")
    error: dict[str, Any] = {}
    messages = problems.messages
    if problems.errors:
        first = min(range(len(problems.errors)), key=lambda k: problems.errors[k][0])
        line, text = problems.errors[first]
        error = {"file": module.file_path, "line": line, "description": clean(text)}
        messages = messages + [
            (line, f"also an error: {text}")
            for k, (line, text) in enumerate(problems.errors)
            if k != first
        ]
    messages.sort(key=lambda m: m[0])
    texts = list(dict.fromkeys(clean(f"line {line}: {text}") for line, text in messages))
    return {
        "name": module.stem,
        "mod": dag.name,
        "error": error,
        "messages": texts,
        "task_list": [t.name for t in tasks],
        "stages": stages,
        "tasks": {
            t.name: {"downstream": [clean(d) for d in t.downstream], "save": t.save} for t in tasks
        },
        "file_path": module.file_path,
        "options": {name: clean(v) if v else v for name, v in options.items()},
    }


def failure(stem: str, file_path: str, line: int, description: str) -> list[dict[str, Any]]:
    """The output for a file that cannot be read or parsed: one entry with ``mod: ""``."""
    return [
        {
            "name": stem,
            "mod": "",
            "error": {"file": file_path, "line": line, "description": clean(description)},
            "messages": [],
            "task_list": [],
            "stages": [],
            "tasks": {},
            "file_path": file_path,
            "options": dict.fromkeys(OPTION_NAMES),
        }
    ]


def render(found: list[dict[str, Any]]) -> str:
    """``found`` as one line of ASCII JSON with a fixed key order, ending in a newline."""
    return json.dumps(found, ensure_ascii=True, allow_nan=False) + "\n"
