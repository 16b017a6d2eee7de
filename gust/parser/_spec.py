"""The output spec: the JSON entries Gust reads, one per DAG class.

Each entry has exactly the keys of :data:`ENTRY_KEYS`, in that order. The problems found while
reading a DAG become its ``error`` (the earliest error by line) and its ``messages`` (every
other note and error, sorted by line, each prefixed with ``line N:``). Every string is valid
Unicode, and :func:`render` dumps the entries as one line of ASCII JSON, so the same file always
gives the same bytes.
"""

from __future__ import annotations

import ast
import json

from gust.parser._classes import Task
from gust.parser._graph import stages as layer_stages
from gust.parser._limits import MAX_MESSAGE_CHARS, MAX_MESSAGES, MAX_OUTPUT
from gust.parser._options import OPTION_NAMES, origin, read_options
from gust.parser._problems import Problems, did_you_mean
from gust.parser._schedule import ScheduleError, check_schedule
from gust.parser._scope import DELETED, END
from gust.protocol import scrub_surrogates

TYPE_CHECKING = False  # typing is only for the type checker: `gust parse` starts on every edit
if TYPE_CHECKING:
    from typing import Any, Final

    from gust.parser._classes import Class, Member
    from gust.parser._module import Module

# How many later DAG classes of a file the note on several DAG classes names one by one.
_SEVERAL_NAMED: Final = 10
#: The keys of an entry, in the order Gust's adapter expects them.
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


def entries(
    module: Module, file_messages: list[tuple[int, str]], unlisted: int = 0
) -> list[dict[str, Any]]:
    """One entry per DAG class of ``module``, in source order.

    ``file_messages`` go into every entry (the compiler's warnings), and ``unlisted`` more
    that were not kept count among the messages an entry does not list.

    Listing a DAG costs the weight of every class of its method resolution order; once the
    entries of the file would cost more than :data:`~gust.parser._limits.MAX_OUTPUT`, a DAG
    gets an entry with an error in place of its tasks.
    """
    found = []
    budget = module.budget
    chosen = [(cls, _hidden(cls)) for cls in module.classes]
    chosen = [(cls, hidden) for cls, hidden in chosen if cls.is_dag or hidden is not None]
    file_messages = [*file_messages, *module.notes]
    if len(chosen) > 1:
        file_messages += _several([cls for cls, _ in chosen])
    for cls, hidden in chosen:
        cost = sum(c.weight for c in cls.mro)
        if budget.output + cost > MAX_OUTPUT:
            found.append(_unlisted(module, cls))
            continue
        budget.output += cost
        found.append(_entry(module, cls, file_messages, unlisted, hidden))
    return found


def _hidden(cls: Class) -> tuple[int, str] | None:
    """Why the tasks of ``cls``, not known to be a DAG, cannot be seen, when it looks like one.

    It looks like a DAG when a base cannot be read (the standard library's aside) and the class
    has ``@task`` methods, passes ``schedule`` or ``on_finished_callback`` to a base's
    ``__init__``, or has a base in a module of the DAG's folder that could not be used. A class
    with none of these (a helper deriving from an installed package's class) is not reported.
    """
    if cls.is_dag:
        return None
    unseen = [(owner, found) for owner in cls.mro for found in owner.unseen]
    if not unseen:
        return None
    looks = any(found[3] for _, found in unseen) or _passes_options(cls)
    looks = looks or any(isinstance(m, Task) for c in cls.mro for m in c.members.values())
    if not looks:
        return None
    owner, (line, base, reason, _) = unseen[0]
    whose = "its base" if owner is cls else f"{owner.name}'s base"
    text = f"the tasks of {cls.name} cannot be seen: {whose} {base} cannot be read: {reason}"
    if owner.module.is_root:
        return line, text
    return cls.node.lineno, f"{owner.module.display} line {line}: {text}"


def _passes_options(cls: Class) -> bool:
    """Whether some ``__init__`` of ``cls``'s method resolution order passes a DAG option by
    name to a call (as ``super().__init__(schedule=...)`` does)."""
    for owner in cls.mro:
        if owner.init_node is None:
            continue
        for sub in ast.walk(owner.init_node):
            if isinstance(sub, ast.Call) and any(k.arg in OPTION_NAMES for k in sub.keywords):
                return True
    return False


def _several(dags: list[Class]) -> list[tuple[int, str]]:
    """The notes every entry of a file with several DAG classes gets: Gust runs the first.

    One per later class, at its line, in the words ``gust check`` uses for the same fact (so
    it shows them once); past :data:`_SEVERAL_NAMED` classes, one line counts the rest.
    """
    first = dags[0].name
    notes = [
        (
            cls.node.lineno,
            f"{cls.name} is a second DAG class in this file: Gust runs only the first "
            f"({first}); move {cls.name} to a file of its own",
        )
        for cls in dags[1 : _SEVERAL_NAMED + 1]
    ]
    if len(dags) > _SEVERAL_NAMED + 1:
        more = len(dags) - _SEVERAL_NAMED - 1
        notes.append(
            (
                dags[_SEVERAL_NAMED + 1].node.lineno,
                f"{more:,} more DAG classes follow in this file; Gust runs only the first "
                f"({first})",
            )
        )
    return notes


def _unlisted(module: Module, dag: Class) -> dict[str, Any]:
    description = (
        f"{dag.name} is not listed: with it, the DAG classes of this file would list more than "
        f"{MAX_OUTPUT:,} tasks, links and problems, the most gust parse lists for one file"
    )
    return {
        "name": module.stem,
        "mod": dag.name,
        "error": {"file": module.file_path, "line": dag.node.lineno, "description": description},
        "messages": [],
        "task_list": [],
        "stages": [],
        "tasks": {},
        "file_path": module.file_path,
        "options": dict.fromkeys(OPTION_NAMES),
    }


def cut(text: str) -> str:
    """``text`` as valid Unicode, cut to :data:`~gust.parser._limits.MAX_MESSAGE_CHARS`."""
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 3] + "..."
    return clean(text)


def _listed(messages: list[tuple[int, str]], unlisted: int) -> list[str]:
    """``messages`` as the entry lists them: by line, without repeats, at most MAX_MESSAGES,
    then how many more there are (``unlisted`` of them were never kept)."""
    messages.sort(key=lambda m: m[0])
    lines: dict[str, int] = {}
    for line, text in messages:
        lines.setdefault(cut(f"line {line}: {text}"), line)
    texts = list(lines)
    if len(texts) <= MAX_MESSAGES and not unlisted:
        return texts
    shown = texts[:MAX_MESSAGES]
    left = len(texts) - len(shown) + unlisted
    first = lines[texts[len(shown)] if len(texts) > len(shown) else texts[-1]]
    return [*shown, f"line {first}: {left:,} more messages not listed"]


def _entry(
    module: Module,
    dag: Class,
    file_messages: list[tuple[int, str]],
    unlisted: int,
    hidden: tuple[int, str] | None = None,
) -> dict[str, Any]:
    problems = Problems()
    problems.messages.extend(file_messages)
    anchor = dag.node.lineno
    if hidden is not None:
        problems.error(*hidden)
    last = module.lookup(dag.name, END)
    if last is not None and last.index != dag.index:
        if last.how == DELETED:
            text = (
                f"class {dag.name} is deleted by the del statement at line {last.line}; it does "
                "not exist once the file has run"
            )
        else:
            text = (
                f"class {dag.name} is bound again by {last.how} at line {last.line}; only that "
                "later binding exists once the file has run"
            )
        problems.error(dag.node.lineno, text)
    effective: dict[str, Task | Member] = {}
    for cls in reversed(dag.mro):
        problems.extend_from(origin(cls.module), anchor, cls.problems)
        effective.update(cls.members)
        if cls.is_dag:  # a hidden class's first unreadable base is its error already
            for line, base, reason, _ in cls.unseen:
                found = Problems()
                found.message(
                    line,
                    f"base {base} of {cls.name} cannot be read: {reason}; any task or option "
                    "it defines is not seen",
                )
                problems.extend_from(origin(cls.module), anchor, found)
    tasks = [m for m in effective.values() if isinstance(m, Task)]
    for task in tasks:
        problems.extend_from(origin(task.module), anchor, task.problems)
    stages = layer_stages(dag, tasks, effective, problems)
    options, places = read_options(dag, problems)

    def place(name: str, text: str) -> tuple[int, str]:
        line, where = places[name]
        return (line, text) if where is None else (anchor, f"{where} line {line}: {text}")

    callback = options["on_finished_callback"]
    if callback is not None and callback not in effective:
        external = [name for cls in dag.mro for name in cls.external]
        if external:
            problems.message(
                *place(
                    "on_finished_callback",
                    f"on_finished_callback {callback!r} is not a method of {dag.name} as "
                    f"gust parse reads it; it may come from {', '.join(external)}",
                )
            )
        else:
            methods = (name for name in effective if not name.startswith("__"))
            problems.error(
                *place(
                    "on_finished_callback",
                    f"on_finished_callback {callback!r} names no method of {dag.name}"
                    + did_you_mean(callback, methods),
                )
            )
    schedule = options["schedule"]
    if schedule is not None:
        try:
            check_schedule(schedule)
        except ScheduleError as exc:
            shown = repr(schedule if len(schedule) <= 60 else schedule[:57] + "...")
            problems.error(
                *place("schedule", f"schedule {shown} is not one Gust understands: {exc}")
            )
    error: dict[str, Any] = {}
    messages = problems.messages
    if problems.errors:
        first = min(range(len(problems.errors)), key=lambda k: problems.errors[k][0])
        line, text = problems.errors[first]
        error = {"file": module.file_path, "line": line, "description": cut(text)}
        messages = messages + [
            (line, f"also an error: {text}")
            for k, (line, text) in enumerate(problems.errors)
            if k != first
        ]
    texts = _listed(messages, unlisted)
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
            "error": {"file": file_path, "line": line, "description": cut(description)},
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
