"""``gust parse``: the JSON Gust reads, through the real CLI and through ``parse_file``.

The fixture DAGs live in ``tests/parse_fixtures``; files that must not be valid Python (syntax
errors, NUL bytes, bad UTF-8) are written to a temporary folder by the tests themselves. Lines
in expectations are looked up in the fixture's text, so a fixture can be edited without
renumbering the tests.
"""

from __future__ import annotations

import itertools
import json
import keyword
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _host import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gust.parser import UNREADABLE_FILE_LINE, parse_file, render_file
from gust.protocol import scrub_surrogates

FIXTURES = Path(__file__).resolve().parent / "parse_fixtures"
HELLO_WORLD = REPO / "harness" / "dags" / "hello_world.py"

KEYS = [
    "name",
    "mod",
    "error",
    "messages",
    "task_list",
    "stages",
    "tasks",
    "file_path",
    "options",
]


def fixture(name: str) -> Path:
    return FIXTURES / f"{name}.py"


def line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    """1-based line of the ``occurrence``-th line of ``path`` containing ``needle``."""
    seen = 0
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in text:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not found {occurrence} time(s) in {path}")


def run_parse(file: str | Path, cwd: Path) -> tuple[str, list[dict[str, Any]]]:
    """Run ``python -m gust parse --file FILE`` as Gust does; return stdout and its JSON."""
    done = subprocess.run(
        [sys.executable, "-m", "gust", "parse", "--file", str(file)],
        cwd=cwd,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    stdout = done.stdout.decode("ascii")  # ASCII only: any JSON decoder, any locale
    assert stdout.endswith("\n") and stdout.count("\n") == 1
    entries = json.loads(stdout)  # the whole of stdout is one JSON document
    assert isinstance(entries, list)
    return stdout, entries


def strict_loads(text: str) -> Any:
    """json.loads that refuses NaN/Infinity, as Gust's decoder does."""

    def refuse(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def assert_shape(entry: dict[str, Any]) -> None:
    """What Gust's adapter relies on, whatever else the entry says."""
    assert list(entry) == KEYS
    assert isinstance(entry["mod"], str)
    assert isinstance(entry["messages"], list)
    assert all(isinstance(m, str) for m in entry["messages"])
    assert os.path.isabs(entry["file_path"])
    assert list(entry["options"]) == ["schedule", "on_finished_callback"]
    error = entry["error"]
    assert error == {} or (list(error) == ["file", "line", "description"])
    if error:
        assert isinstance(error["line"], int) and isinstance(error["description"], str)
    for name, spec in entry["tasks"].items():
        assert list(spec) == ["downstream", "save"], name
        assert isinstance(spec["downstream"], list), name
        assert all(isinstance(d, str) for d in spec["downstream"])
        assert isinstance(spec["save"], bool)
    assert list(entry["tasks"]) == entry["task_list"]


def only(entries: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(entries) == 1, entries
    assert_shape(entries[0])
    return entries[0]


def only_one(items: list[str]) -> str:
    assert len(items) == 1, items
    return items[0]


def by_mod(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    for entry in entries:
        assert_shape(entry)
    return {entry["mod"]: entry for entry in entries}


def write(folder: Path, name: str, source: str | bytes) -> Path:
    path = folder / name
    if isinstance(source, str):
        source = source.encode("utf-8")
    path.write_bytes(source)
    return path


HEADER = "from gust import Dag, task\n\n\n"


# ---- the README's example and the import styles, through the CLI ---------------------------------


def test_spec_example_exactly(tmp_path: Path) -> None:
    path = fixture("spec_example")
    stdout, entries = run_parse(path, cwd=tmp_path)
    entry = only(entries)
    assert list(entry) == KEYS
    assert entry == {
        "name": "spec_example",
        "mod": "MyDag",
        "error": {},
        "messages": [],
        "task_list": ["hello", "prepare"],
        "stages": [["hello"], ["prepare"]],
        "tasks": {
            "hello": {"downstream": ["prepare"], "save": True},
            "prepare": {"downstream": [], "save": False},
        },
        "file_path": str(path),
        "options": {"schedule": "@daily", "on_finished_callback": "done_my_run"},
    }
    assert list(entry["tasks"]["hello"]) == ["downstream", "save"]
    assert stdout == render_file(str(path))


def test_harness_example_dag(tmp_path: Path) -> None:
    _, entries = run_parse(HELLO_WORLD, cwd=tmp_path)
    entry = only(entries)
    assert (entry["name"], entry["mod"], entry["error"]) == ("hello_world", "HelloWorld", {})
    assert entry["stages"] == [["hello"], ["prepare"]]
    assert entry["tasks"]["hello"] == {"downstream": ["prepare"], "save": True}
    assert entry["options"] == {"schedule": "@daily", "on_finished_callback": "done_my_run"}


SHAPE_TASKS = {
    "start": {"downstream": ["left", "right"], "save": False},
    "left": {"downstream": ["end"], "save": True},
    "right": {"downstream": ["end"], "save": False},
    "end": {"downstream": [], "save": False},
}


@pytest.mark.parametrize(
    "name",
    ["alias_from", "alias_module", "alias_task_as", "alias_module_as", "alias_dag_module"],
)
def test_every_import_style(name: str, tmp_path: Path) -> None:
    _, entries = run_parse(fixture(name), cwd=tmp_path)
    entry = only(entries)
    assert entry["name"] == name
    assert entry["mod"] == "Shape"
    assert entry["error"] == {}
    assert entry["messages"] == []
    assert entry["task_list"] == ["start", "left", "right", "end"]
    assert entry["stages"] == [["start"], ["left", "right"], ["end"]]
    assert entry["tasks"] == SHAPE_TASKS
    assert entry["options"] == {"schedule": "@hourly", "on_finished_callback": "finished"}


def test_star_import_and_conditional_import(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "star.py",
        "try:\n    from gust import *\nexcept ImportError:\n    raise\n\n"
        "class Star(Dag):\n    @task(downstream='b')\n    def a(self, ctx): ...\n\n"
        "    @task\n    def b(self, ctx): ...\n",
    )
    entry = only(parse_file(str(path)))
    assert entry["mod"] == "Star" and entry["stages"] == [["a"], ["b"]]


def test_names_that_only_look_like_gust_are_not_gust(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "lookalike.py",
        "from airflow import Dag\nfrom mylib import task\n\n"
        "class NotOurs(Dag):\n    @task\n    def a(self, ctx): ...\n",
    )
    assert parse_file(str(path)) == []
    shadowed = write(
        tmp_path,
        "shadowed.py",
        HEADER + "def task(fn):\n    return fn\n\n\n"
        "class Mine(Dag):\n    @task\n    def a(self, ctx): ...\n",
    )
    entry = only(parse_file(str(shadowed)))
    assert entry["task_list"] == []  # `task` is the local function by the time the class runs


# ---- @task forms, constants, unreadable values -----------------------------------------------


def test_task_forms() -> None:
    entry = only(parse_file(str(fixture("task_forms"))))
    assert entry["error"] == {} and entry["messages"] == []
    assert entry["task_list"] == [
        "bare",
        "called",
        "string",
        "listed",
        "one_name",
        "listed_a",
        "listed_b",
        "tupled",
        "awaited",
    ]
    tasks = entry["tasks"]
    assert tasks["bare"] == {"downstream": [], "save": False}
    assert tasks["called"] == {"downstream": [], "save": False}
    assert tasks["string"] == {"downstream": ["one_name"], "save": False}
    assert tasks["listed"] == {"downstream": ["listed_a", "listed_b"], "save": False}
    assert tasks["one_name"] == {"downstream": ["tupled"], "save": True}
    assert tasks["tupled"] == {"downstream": [], "save": True}  # under another decorator
    assert tasks["awaited"] == {"downstream": [], "save": False}
    assert "helper" not in tasks and "plain" not in tasks
    assert entry["stages"] == [
        ["bare", "called", "string", "listed", "awaited"],
        ["one_name", "listed_a", "listed_b"],
        ["tupled"],
    ]


def test_constants_at_module_and_class_level() -> None:
    entries = by_mod(parse_file(str(fixture("constants"))))
    entry = entries["Constants"]
    assert entry["error"] == {}
    assert entry["messages"] == [
        "line 41: ClassLevelFirst is a second DAG class in this file: Gust runs only the first "
        "(Constants); move ClassLevelFirst to a file of its own"
    ]
    assert entry["options"] == {"schedule": "*/5 * * * *", "on_finished_callback": "finish"}
    assert entry["tasks"]["first"] == {"downstream": ["middle", "last"], "save": True}
    assert entry["tasks"]["middle"] == {"downstream": ["last"], "save": False}
    assert entry["tasks"]["last"] == {"downstream": ["pair_a", "pair_b"], "save": False}
    assert entry["stages"] == [["first"], ["middle"], ["last"], ["pair_a", "pair_b"]]
    # a class-level name hides the module-level one inside the class body
    assert entries["ClassLevelFirst"]["tasks"]["source"]["downstream"] == ["target"]


def test_binding_in_force_at_the_class_statement_is_used(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "order.py",
        HEADER + "NEXT = 'b'\n\n"
        "class Early(Dag):\n    @task(downstream=NEXT)\n    def a(self, ctx): ...\n\n"
        "    @task\n    def b(self, ctx): ...\n\n    @task\n    def c(self, ctx): ...\n\n"
        "NEXT = 'c'\n\n"
        "class Late(Early):\n    @task(downstream=NEXT)\n    def a(self, ctx): ...\n",
    )
    entries = by_mod(parse_file(str(path)))
    assert entries["Early"]["tasks"]["a"]["downstream"] == ["b"]
    assert entries["Late"]["tasks"]["a"]["downstream"] == ["c"]


def test_a_rebound_name_reads_as_bound_where_it_is_used(tmp_path: Path) -> None:
    # A decorator runs with the class statement, a method (so __init__ and the options) once
    # the whole file has run; a class attribute is read as it stood where it was bound.
    path = write(
        tmp_path,
        "rebound.py",
        HEADER + "NEXT = 'b'\nSCHEDULE = '@daily'\nFIRST = 'b'\n"
        "FIRST, SECOND = 'c', FIRST  # the right side is read first: SECOND is 'b'\n"
        "ALIAS = NEXT  # 'b', whatever NEXT becomes\n\n\n"
        "class Rebound(Dag):\n"
        "    LOCAL = 'b'\n"
        "    FINISH = 'nope'\n"
        "    CALLBACK = 'early'\n"
        "    FINISH = CALLBACK  # self.FINISH: this binding, the last, read as it stands\n"
        "    CALLBACK = 'late'\n\n"
        "    def __init__(self):\n"
        "        super().__init__(schedule=SCHEDULE, on_finished_callback=self.FINISH)\n\n"
        "    @task(downstream=NEXT)\n    def a(self, ctx): ...\n\n"
        "    @task(downstream=LOCAL)\n    def x(self, ctx): ...\n\n"
        "    LOCAL = 'c'\n\n"
        "    @task(downstream=LOCAL)\n    def y(self, ctx): ...\n\n"
        "    @task(downstream=[SECOND, ALIAS, FIRST])\n    def z(self, ctx): ...\n\n"
        "    @task\n    def b(self, ctx): ...\n\n"
        "    @task\n    def c(self, ctx): ...\n\n"
        "    def nope(self, status, run): ...\n\n"
        "    def early(self, status, run): ...\n\n"
        "    def late(self, status, run): ...\n\n\n"
        "NEXT = 'c'\nSCHEDULE = '@weekly'\n",
    )
    _, entries = run_parse(path, cwd=tmp_path)
    entry = only(entries)
    assert entry["error"] == {} and entry["messages"] == []
    downstream = {name: spec["downstream"] for name, spec in entry["tasks"].items()}
    assert downstream == {
        "a": ["b"],
        "x": ["b"],
        "y": ["c"],
        "z": ["b", "c"],
        "b": [],
        "c": [],
    }
    assert entry["options"] == {"schedule": "@weekly", "on_finished_callback": "early"}


def test_rebinding_by_walrus_del_or_a_global_declaration_is_not_misread(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rebinders.py",
        HEADER + "WALRUS = 'b'\n(WALRUS := 'c')\n"
        "DELETED = 'b'\ndel DELETED\n"
        "GLOBAL = 'b'\n\n\ndef reset():\n    global GLOBAL\n    GLOBAL = 'c'\n\n\n"
        "class Rebinders(Dag):\n"
        "    @task(downstream=WALRUS)\n    def a(self, ctx): ...\n\n"
        "    @task(downstream=DELETED)\n    def d(self, ctx): ...\n\n"
        "    @task(downstream=GLOBAL)\n    def g(self, ctx): ...\n\n"
        "    @task(downstream=(INNER := 'b'))\n    def i(self, ctx): ...\n\n"
        "    @task(downstream=INNER)\n    def j(self, ctx): ...\n\n"
        "    @task\n    def b(self, ctx): ...\n\n"
        "    @task\n    def gone(self, ctx): ...\n\n"
        "    del gone\n",
    )
    entry = only(parse_file(str(path)))
    assert entry["error"] == {}
    assert entry["task_list"] == ["a", "d", "g", "i", "j", "b"]  # del removed `gone`
    assert all(spec["downstream"] == [] for spec in entry["tasks"].values())
    assert entry["messages"] == [
        "line 17: downstream of task 'a' cannot be read statically: 'WALRUS' is bound at "
        "line 5 by an assignment expression (:=); left at []",
        "line 20: downstream of task 'd' cannot be read statically: 'DELETED' is deleted by "
        "the del statement at line 7; left at []",
        "line 23: downstream of task 'g' cannot be read statically: 'GLOBAL' is declared "
        "global in reset() at line 12, which may rebind it whenever it runs; left at []",
        "line 26: downstream of task 'i' cannot be read statically: (INNER := 'b') is not a "
        "literal; left at []",
        "line 29: downstream of task 'j' cannot be read statically: 'INNER' is bound at line "
        "26 by an assignment expression (:=); left at []",
        "line 38: del removes task 'gone' (line 36) from Rebinders, so it is no longer a task",
    ]


def test_unreadable_values_are_left_at_defaults_with_messages() -> None:
    path = fixture("unreadable")
    entries = by_mod(parse_file(str(path)))
    entry = entries["Unreadable"]
    assert entry["error"] == {}
    assert entry["options"] == {"schedule": None, "on_finished_callback": None}
    assert entry["tasks"] == {
        "a": {"downstream": [], "save": False},
        "b": {"downstream": [], "save": False},
        "c": {"downstream": [], "save": False},
    }
    init_line = line_of(path, "super().__init__(schedule=SCHEDULE")
    expected = [
        (init_line, "schedule", "write self.SCHEDULE"),
        (init_line, "on_finished_callback", "'callback' is a local variable or parameter"),
        (line_of(path, "downstream=pick()"), "downstream of task 'a'", "pick() is not a literal"),
        (line_of(path, "downstream=NAMES"), "downstream of task 'b'", "'NAMES' (line 8)"),
        (line_of(path, "downstream=NAMES"), "save of task 'b'", "bool(os.environ.get"),
        (line_of(path, "downstream=MAYBE"), "downstream of task 'c'", "block at line 9"),
        (line_of(path, "class FromEnvironment"), "FromEnvironment is a second DAG", "(Unreadable)"),
    ]
    assert len(entry["messages"]) == len(expected)
    for message, (line, what, why) in zip(entry["messages"], expected, strict=True):
        assert message.startswith(f"line {line}: {what}"), message
        assert why in message, message
    assert "left at" in entry["messages"][0]
    environment = entries["FromEnvironment"]
    assert environment["options"]["schedule"] is None
    assert environment["messages"] == [
        f"line {line_of(path, 'class FromEnvironment')}: FromEnvironment is a second DAG class in "
        "this file: Gust runs only the first (Unreadable); move FromEnvironment to a file of its "
        "own",
        f"line {line_of(path, 'super().__init__(schedule=WHEN)')}: schedule in "
        "FromEnvironment.__init__ cannot be read statically: 'WHEN' (line 7) cannot be read: "
        "os.environ.get('WHEN', '@daily') is not a literal; left at None",
    ]


def test_option_forms(tmp_path: Path) -> None:
    source = (
        HEADER + "import gust\n\nCB = 'cb'\nOPTS = {'schedule': '@weekly', 'retries': 3}\n\n"
        "class Positional(Dag):\n    def __init__(self):\n"
        "        super().__init__('@hourly', CB)\n\n"
        "    def cb(self, status, run): ...\n\n"
        "class Explicit(Dag):\n    def __init__(self):\n"
        "        gust.Dag.__init__(self, '0 12 * * MON', on_finished_callback='cb')\n\n"
        "    def cb(self, status, run): ...\n\n"
        "class FromDict(Dag):\n    def __init__(self):\n        super().__init__(**OPTS)\n\n"
        "class ExtraKeywords(Dag):\n    def __init__(self):\n"
        "        super().__init__(schedule='*/5 * * * *', owner='me', retries=2)\n\n"
        "class Starred(Dag):\n    def __init__(self, *args):\n        super().__init__(*args)\n\n"
        "class NotAString(Dag):\n    def __init__(self):\n        super().__init__(schedule=5)\n\n"
        "class NoSuper(Dag):\n    def __init__(self):\n        self.ready = True\n\n"
        "class NoInit(Dag):\n    @task\n    def a(self, ctx): ...\n"
    )
    path = write(tmp_path, "options.py", source)
    entries = by_mod(parse_file(str(path)))
    assert list(entries) == [
        "Positional",
        "Explicit",
        "FromDict",
        "ExtraKeywords",
        "Starred",
        "NotAString",
        "NoSuper",
        "NoInit",
    ]
    options = {mod: e["options"] for mod, e in entries.items()}
    assert options["Positional"] == {"schedule": "@hourly", "on_finished_callback": "cb"}
    assert options["Explicit"] == {"schedule": "0 12 * * MON", "on_finished_callback": "cb"}
    assert options["FromDict"] == {"schedule": "@weekly", "on_finished_callback": None}
    assert options["ExtraKeywords"] == {"schedule": "*/5 * * * *", "on_finished_callback": None}
    for mod in ("Starred", "NotAString", "NoSuper", "NoInit"):
        assert options[mod] == {"schedule": None, "on_finished_callback": None}, mod
    assert all(e["error"] == {} for e in entries.values())
    several = [
        f"line {line_of(path, f'class {mod}(')}: {mod} is a second DAG class in this file: Gust "
        f"runs only the first (Positional); move {mod} to a file of its own"
        for mod in list(entries)[1:]
    ]
    for mod in ("Positional", "Explicit", "FromDict", "ExtraKeywords", "NoInit"):
        assert entries[mod]["messages"] == several, mod

    def own(mod: str) -> list[str]:
        return [m for m in entries[mod]["messages"] if m not in several]

    assert "*args cannot be read statically" in only_one(own("Starred"))
    assert "must be a string or None, not 5 (int)" in only_one(own("NotAString"))
    assert "calls neither super().__init__(...) nor" in only_one(own("NoSuper"))


# ---- inheritance and several classes ---------------------------------------------------------


def test_inheritance_within_the_file() -> None:
    path = fixture("inheritance")
    entries = by_mod(parse_file(str(path)))
    assert list(entries) == ["Base", "Child", "GrandChild", "Retimed", "NotATaskAnyMore"]
    base, child = entries["Base"], entries["Child"]
    assert base["task_list"] == ["extract", "transform", "load"]
    assert base["options"] == {"schedule": "@daily", "on_finished_callback": "done"}
    # inherited tasks keep their place; the override replaces `load`; `report` is new
    assert child["task_list"] == ["extract", "transform", "load", "report"]
    assert child["tasks"]["load"] == {"downstream": ["report"], "save": True}
    assert child["stages"] == [["extract"], ["transform"], ["load"], ["report"]]
    assert child["options"] == base["options"] and child["error"] == {}
    grand = entries["GrandChild"]
    assert grand["tasks"] == child["tasks"] and grand["options"] == base["options"]
    # super(Child, self).__init__ goes to Base.__init__, with the keyword overriding it
    assert entries["Retimed"]["options"] == {"schedule": "@hourly", "on_finished_callback": "done"}
    broken = entries["NotATaskAnyMore"]
    assert broken["task_list"] == ["extract", "load"]
    assert broken["error"]["line"] == line_of(path, '@task(downstream="transform")')
    assert (
        "names downstream 'transform', which is not a task of NotATaskAnyMore"
        in (broken["error"]["description"])
    )
    assert (
        f"line {line_of(path, 'def transform(self, ctx): ...', 2)} defines it without @task"
        in (broken["error"]["description"])
    )


def test_mixin_tasks_and_source_order() -> None:
    entries = parse_file(str(fixture("multiple")))
    assert [e["mod"] for e in entries] == ["Second", "First"]
    first = by_mod(entries)["First"]
    assert first["task_list"] == ["not_a_dag_task", "begin"]
    assert first["stages"] == [["begin"], ["not_a_dag_task"]]


def test_callback_from_an_unknown_base_is_a_message(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mixin.py",
        HEADER + "from helpers import Callbacks\n\n\n"
        "class Mixed(Callbacks, Dag):\n    def __init__(self):\n"
        "        super().__init__(on_finished_callback='notify')\n",
    )
    entry = only(parse_file(str(path)))
    assert entry["error"] == {}
    assert entry["options"]["on_finished_callback"] == "notify"
    assert entry["messages"] == [
        f"line 7: base Callbacks of Mixed cannot be read: helpers is not a module of the DAG's "
        f"folder {tmp_path} (no helpers.py or helpers/__init__.py there; an installed package "
        "is never read); any task or option it defines is not seen",
        "line 9: on_finished_callback 'notify' is not a method of Mixed as gust parse reads it; "
        "it may come from Callbacks",
    ]


# ---- every in-band error: one table ---------------------------------------------------------


@dataclass(frozen=True)
class ErrorCase:
    """One input and the one ``error`` ``gust parse`` must report for it, through the CLI.

    ``source``: the file's text or bytes; ``fixture:NAME`` for a fixture file, ``MISSING`` for
    no file, ``FOLDER`` for a directory. ``line``: the error's line, or text whose first line
    it is. ``description``: the exact description (``{path}`` is the file) or, with
    ``exact=False``, a fragment of it (Python's own wording varies between versions).
    ``mod``: the first DAG when the error is on a later one. ``expect``: more fields of the
    entry (``mod: ""`` for a file that cannot be parsed).
    """

    id: str
    source: str | bytes
    line: int | str
    description: str
    exact: bool = True
    mod: str | None = None
    expect: dict[str, Any] = field(default_factory=dict)


def bad_task(decorator: str) -> str:
    return (
        HEADER + f"class Bad(Dag):\n    {decorator}\n    def a(self, ctx): ...\n\n"
        "    @task\n    def b(self, ctx): ...\n"
    )


def chain(name: str, links: dict[str, str]) -> str:
    """A DAG whose tasks, in source order, each name one downstream task (or none)."""
    body = "".join(
        f"    @task(downstream={down!r})\n    def {task}(self, ctx): ...\n\n"
        if down
        else f"    @task\n    def {task}(self, ctx): ...\n\n"
        for task, down in links.items()
    )
    return HEADER + f"class {name}(Dag):\n" + body


UNPARSABLE = {"mod": "", "task_list": [], "tasks": {}, "stages": []}

ERROR_CASES = [
    ErrorCase(
        "duplicate-task",
        "fixture:error_duplicate",
        "def same(self, ctx):  # noqa: F811",
        "duplicate task name 'same' in Duplicate: first defined at line 11, again at line 14",
        # still filled in; the later definition wins, as attribute lookup would have it
        expect={"task_list": ["first", "same"], "stages": [["first"], ["same"]]},
    ),
    ErrorCase(
        "unknown-downstream",
        "fixture:error_unknown_downstream",
        '@task(downstream=["hello_world"])',
        "task 'prepare' names downstream 'hello_world', which is not a task of Unknown; did you "
        "mean 'hello'?",
        expect={"task_list": ["hello", "prepare"]},
    ),
    ErrorCase(
        "misspelled-downstream",
        chain("Typo", {"extract": "trasform", "transform": "", "load": ""}),
        "@task(downstream='trasform')",
        "task 'extract' names downstream 'trasform', which is not a task of Typo; did you mean "
        "'transform'?",
    ),
    ErrorCase(
        "unknown-downstream-like-no-task",
        chain("Far", {"a": "zzz", "b": ""}),
        "@task(downstream='zzz')",
        "task 'a' names downstream 'zzz', which is not a task of Far",
    ),
    ErrorCase(
        "misspelled-callback",
        HEADER + "class Call(Dag):\n    def __init__(self):\n"
        "        super().__init__(on_finished_callback='don_my_run')\n\n"
        "    def done_my_run(self, status, run): ...\n",
        "on_finished_callback='don_my_run'",
        "on_finished_callback 'don_my_run' names no method of Call; did you mean 'done_my_run'?",
    ),
    ErrorCase(
        "schedule-in-words",
        HEADER + "class Words(Dag):\n    def __init__(self):\n"
        "        super().__init__(schedule='every tuesday at noon')\n",
        "schedule='every tuesday at noon'",
        "schedule 'every tuesday at noon' is not one Gust understands: 'every' is not a minute "
        '(0-59); use five cron fields such as "0 12 * * TUE" (minute hour day month weekday) '
        "or one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly",
        expect={"options": {"schedule": "every tuesday at noon", "on_finished_callback": None}},
    ),
    ErrorCase(
        "schedule-shortcut-unknown",
        HEADER + "SCHEDULE = '@every 5m'\n\n\nclass Every(Dag):\n    def __init__(self):\n"
        "        super().__init__(SCHEDULE)\n",
        "super().__init__(SCHEDULE)",
        "schedule '@every 5m' is not one Gust understands: '@every 5m' is not an @ shortcut "
        'Gust knows; use five cron fields such as "0 12 * * TUE" (minute hour day month '
        "weekday) or one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly",
    ),
    ErrorCase(
        "schedule-two-spaces",
        HEADER + "class Spaced(Dag):\n    def __init__(self):\n"
        "        super().__init__(schedule='0  12 * * *')\n",
        "schedule='0  12 * * *'",
        "schedule '0  12 * * *' is not one Gust understands: it has an empty field (fields are "
        "split on single spaces: two in a row, or one at either end, make an empty field); use "
        'five cron fields such as "0 12 * * TUE" (minute hour day month weekday) or one of '
        "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly",
    ),
    ErrorCase(
        "downstream-without-task",
        HEADER + "class Half(Dag):\n    @task(downstream='b')\n    def a(self, ctx): ...\n\n"
        "    def b(self, ctx): ...\n",
        "@task(downstream='b')",
        "task 'a' names downstream 'b', which is not a task of Half (line 8 defines it without "
        "@task)",
    ),
    ErrorCase(
        "cycle-of-two",
        "fixture:error_cycle",
        '@task(downstream="transform")',
        "the downstream links of Cyclic form a cycle: extract -> transform -> extract",
        expect={"stages": [["start"]], "task_list": ["start", "extract", "transform", "load"]},
    ),
    ErrorCase(
        "cycle-of-three",
        chain("Three", {"a": "b", "b": "c", "c": "a"}),
        "@task(downstream='b')",
        "the downstream links of Three form a cycle: a -> b -> c -> a",
    ),
    ErrorCase(
        "cycle-of-three-the-other-way",
        chain("Back", {"a": "c", "b": "a", "c": "b"}),
        "@task(downstream='c')",
        "the downstream links of Back form a cycle: a -> c -> b -> a",
    ),
    ErrorCase(
        "cycle-behind-a-chain",
        chain("Behind", {"x": "y", "y": "d", "b": "c", "c": "d", "d": "b"}),
        "@task(downstream='c')",
        "the downstream links of Behind form a cycle: b -> c -> d -> b",
        expect={"stages": [["x"], ["y"]]},
    ),
    ErrorCase(
        "self-loop",
        chain("Me", {"me": "me"}),
        "@task(downstream='me')",
        "the downstream links of Me form a cycle: me -> me",
    ),
    ErrorCase(
        "callback-naming-no-method",
        "fixture:error_callback",
        'on_finished_callback="on_done"',
        "on_finished_callback 'on_done' names no method of BadCallback; did you mean 'done'?",
        expect={"options": {"schedule": "@daily", "on_finished_callback": "on_done"}},
    ),
    ErrorCase(
        "task-positional-argument",
        bad_task("@task('b')"),
        5,
        "@task of 'a' takes keyword arguments only (downstream=..., save=...), got 'b'",
        expect={"task_list": ["a", "b"]},
    ),
    ErrorCase(
        "task-unknown-option",
        bad_task("@task(downstrem='b')"),
        5,
        "@task of 'a': unknown option 'downstrem' (known: downstream, save)",
    ),
    ErrorCase(
        "task-unknown-option-in-a-mapping",
        bad_task("@task(**{'retries': 3})"),
        5,
        "@task of 'a': unknown option 'retries' (str) (known: downstream, save)",
    ),
    ErrorCase(
        "task-option-twice",
        bad_task("@task(**{'save': True}, save=False)"),
        5,
        "@task of 'a' gets save twice",
    ),
    ErrorCase(
        "task-mapping-that-is-not-one",
        bad_task("@task(**5)"),
        5,
        "@task of 'a': ** takes a mapping, not 5 (int)",
    ),
    ErrorCase(
        "save-not-a-bool",
        bad_task("@task(save='yes')"),
        5,
        "@task of 'a': save must be True or False, not 'yes' (str)",
    ),
    ErrorCase(
        "downstream-a-number",
        bad_task("@task(downstream=3)"),
        5,
        "@task of 'a': downstream must be a task name or a list/tuple of task names, not 3 (int)",
    ),
    ErrorCase(
        "downstream-a-set",
        bad_task("@task(downstream={'b'})"),
        5,
        "@task of 'a': downstream must be a task name or a list/tuple of task names, not "
        "{{'b'}} (set)",
    ),
    ErrorCase(
        "downstream-with-a-number",
        bad_task("@task(downstream=['b', 2])"),
        5,
        "@task of 'a': downstream must be a task name or a list/tuple of task names, not "
        "['b', 2] (list)",
    ),
    ErrorCase(
        "class-bound-again",
        HEADER + "class Twice(Dag):\n    @task\n    def a(self, ctx): ...\n\n\nTwice = None\n",
        "class Twice(Dag):",
        "class Twice is bound again by an assignment at line 9; only that later binding exists "
        "once the file has run",
    ),
    ErrorCase(
        "class-deleted",
        HEADER + "class Gone(Dag):\n    @task\n    def a(self, ctx): ...\n\n\ndel Gone\n",
        "class Gone(Dag):",
        "class Gone is deleted by the del statement at line 9; it does not exist once the file "
        "has run",
    ),
    ErrorCase(
        "inconsistent-bases",
        HEADER + "class A(Dag):\n    pass\n\n\nclass B(A):\n    pass\n\n\n"
        "class C(A, B):\n    pass\n",
        "class C(A, B):",
        "the bases of C cannot be put in a consistent method resolution order (Python refuses "
        "to create this class)",
        mod="A",
    ),
    ErrorCase(
        "same-base-twice",
        HEADER + "class A(Dag):\n    pass\n\n\nclass B(A, A):\n    pass\n",
        "class B(A, A):",
        "class B lists the same base twice",
        mod="A",
    ),
    ErrorCase(
        "syntax-error",
        HEADER + "class Broken(Dag)\n    pass\n",
        4,
        "syntax error: expected ':'",
        exact=False,
        expect=UNPARSABLE,
    ),
    ErrorCase("null-byte", b"x = 1\ny = '\x00'\n", 2, "null bytes", exact=False, expect=UNPARSABLE),
    ErrorCase("not-utf8", b"x = 1\n\n\xff = 2\n", 3, "utf-8", exact=False, expect=UNPARSABLE),
    ErrorCase(
        "unknown-codec",
        b"# -*- coding: no-such-codec -*-\nx = 1\n",
        1,
        "no-such-codec",
        exact=False,
        expect=UNPARSABLE,
    ),
    ErrorCase(
        "nested-parentheses",
        b"x = " + b"(" * 300 + b")" * 300 + b"\n",
        1,
        "too many nested parentheses",
        exact=False,
        expect=UNPARSABLE,
    ),
    ErrorCase(
        "deep-unary-minus",
        b"x = " + b"-" * 100_000 + b"1\n",
        1,
        "the file is too deeply nested (or too complex) for Python to parse it",
        expect=UNPARSABLE,
    ),
    ErrorCase(
        "deep-sum",
        b"x = " + b"a + " * 200_000 + b"1\n",
        1,
        "the file is too deeply nested (or too complex) for Python to parse it",
        expect=UNPARSABLE,
    ),
    ErrorCase(
        "missing-file",
        "MISSING",
        UNREADABLE_FILE_LINE,
        "cannot read {path}: No such file or directory",
        expect=UNPARSABLE,
    ),
    ErrorCase(
        "directory",
        "FOLDER",
        UNREADABLE_FILE_LINE,
        "cannot read {path}: it is a directory",
        expect=UNPARSABLE,
    ),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[case.id for case in ERROR_CASES])
def test_every_error_is_in_band_at_its_line(case: ErrorCase, tmp_path: Path) -> None:
    if isinstance(case.source, str) and case.source.startswith("fixture:"):
        path = fixture(case.source.partition(":")[2])
    else:
        path = tmp_path / "case_dag.py"
        if case.source == "FOLDER":
            path.mkdir()
        elif case.source != "MISSING":
            write(tmp_path, path.name, case.source)
    stdout, entries = run_parse(path, cwd=tmp_path)
    strict_loads(stdout)
    for entry in entries:
        assert_shape(entry)
    if case.mod is None:
        entry = only(entries)
    else:  # the error is on a later class of the file
        assert entries[0]["mod"] == case.mod and entries[0]["error"] == {}
        entry = next(e for e in entries if e["error"])
    assert entry["name"] == path.stem and entry["file_path"] == str(path)
    error = entry["error"]
    assert list(error) == ["file", "line", "description"] and error["file"] == str(path)
    line = case.line if isinstance(case.line, int) else line_of(path, case.line)
    assert error["line"] == line
    description = case.description.format(path=path)
    if case.exact:
        assert error["description"] == description
    else:
        assert description in error["description"]
    for key, value in case.expect.items():
        assert entry[key] == value, key


# ---- in-band errors, each with its line ------------------------------------------------------


def test_values_too_large_to_print_are_described_not_crashed_on(tmp_path: Path) -> None:
    huge = "0x" + "f" * 5000  # a valid literal whose decimal repr Python refuses to build
    path = write(
        tmp_path,
        "huge.py",
        HEADER + "class Huge(Dag):\n    def __init__(self):\n"
        f"        super().__init__(schedule={huge})\n\n"
        f"    @task(downstream={huge})\n    def a(self, ctx): ...\n\n"
        f"    @task(downstream=f({huge}))\n    def b(self, ctx): ...\n",
    )
    entry = only(strict_loads(render_file(str(path))))
    assert entry["error"]["line"] == 8
    assert "not a value too large to show (int)" in entry["error"]["description"]
    assert "line 6: schedule in Huge.__init__ must be a string or None" in entry["messages"][0]
    assert "the expression at line 11 is not a literal" in entry["messages"][1]


def test_several_errors_report_the_first_and_list_the_others(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "many.py",
        HEADER + "class Many(Dag):\n    @task(downstream='nowhere')\n    def a(self, ctx): ...\n\n"
        "    @task(save=1)\n    def b(self, ctx): ...\n",
    )
    entry = only(parse_file(str(path)))
    assert entry["error"]["line"] == 5
    assert entry["messages"] == [
        "line 8: also an error: @task of 'b': save must be True or False, not 1 (int)"
    ]


def test_rebinding_a_task_without_decorator_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rebind.py",
        HEADER + "class Rebind(Dag):\n    @task\n    def a(self, ctx): ...\n\n"
        "    def a(self, ctx): ...\n",
    )
    entry = only(parse_file(str(path)))
    assert entry["task_list"] == [] and entry["error"] == {}
    assert entry["messages"] == [
        "line 8: 'a' of Rebind rebinds task 'a' (line 6) without @task, so it is no longer a task"
    ]


# ---- files that cannot be parsed -------------------------------------------------------------


def test_syntax_error_is_one_entry_with_empty_mod(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.py", HEADER + "class Broken(Dag)\n    pass\n")
    _, entries = run_parse(path, cwd=tmp_path)
    assert entries == [
        {
            "name": "broken",
            "mod": "",
            "error": {
                "file": str(path),
                "line": 4,
                "description": entries[0]["error"]["description"],
            },
            "messages": [],
            "task_list": [],
            "stages": [],
            "tasks": {},
            "file_path": str(path),
            "options": {"schedule": None, "on_finished_callback": None},
        }
    ]
    assert entries[0]["error"]["description"].startswith("syntax error: expected ':'")


def test_a_huge_hex_literal_parses(tmp_path: Path) -> None:
    # its decimal form is over Python's digit limit: only printing it would fail
    path = write(tmp_path, "hex.py", b"x = 0x" + b"f" * 5000 + b"\nclass A:\n    pass\n")
    assert render_file(str(path)) == "[]\n"


def test_no_dag_prints_an_empty_list(tmp_path: Path) -> None:
    stdout, entries = run_parse(fixture("no_dag"), cwd=tmp_path)
    assert stdout == "[]\n" and entries == []
    empty = write(tmp_path, "empty.py", b"")
    assert render_file(str(empty)) == "[]\n"


# ---- output properties -----------------------------------------------------------------------


def test_relative_file_gives_absolute_file_path(tmp_path: Path) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    shutil.copy(fixture("spec_example"), folder / "relative_dag.py")
    _, entries = run_parse(Path("dags") / "relative_dag.py", cwd=tmp_path)
    entry = only(entries)
    assert entry["file_path"] == str(folder / "relative_dag.py")
    assert entry["name"] == "relative_dag" and entry["error"] == {}
    _, missing = run_parse("nope.py", cwd=tmp_path)
    assert only(missing)["file_path"] == str(tmp_path / "nope.py")
    assert only(missing)["error"]["file"] == str(tmp_path / "nope.py")


def test_output_is_byte_identical_across_runs(tmp_path: Path) -> None:
    for name in ("unreadable", "error_cycle", "inheritance"):
        first, _ = run_parse(fixture(name), cwd=tmp_path)
        second, _ = run_parse(fixture(name), cwd=tmp_path)
        assert first == second
        assert first == render_file(str(fixture(name)))


def test_output_is_ascii_strict_json_even_for_odd_strings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "odd_é.py",
        HEADER + "class Odd(Dag):\n"
        "    def __init__(self):\n        super().__init__(schedule='\\ud800 é ☃')\n\n"
        "    @task(downstream='\\udcff')\n    def a(self, ctx): ...\n",
    )
    _, entries = run_parse(path, cwd=tmp_path)
    entry = only(entries)
    assert entry["name"] == "odd_é"
    assert entry["options"]["schedule"] == "\ufffd é ☃"
    assert entry["tasks"]["a"]["downstream"] == ["\ufffd"]
    assert "'\ufffd'" in entry["error"]["description"]  # what the output holds
    for text in (*entry["messages"], entry["error"]["description"], entry["options"]["schedule"]):
        text.encode("utf-8")  # no lone surrogates left


def test_an_escaped_surrogate_pair_comes_out_as_the_character(tmp_path: Path) -> None:
    # "\\ud83d\\ude00" in Python source is two code points; joined, they are one emoji, as the
    # protocol's scrub (gust.protocol.scrub_surrogates) joins them: never two U+FFFD.
    path = write(
        tmp_path,
        "emoji.py",
        HEADER + "class Emoji(Dag):\n"
        "    def __init__(self):\n        super().__init__(schedule='\\ud83d\\ude00')\n\n"
        "    @task(downstream='x\\ud83d\\ude00')\n    def a(self, ctx): ...\n",
    )
    _, entries = run_parse(path, cwd=tmp_path)
    entry = only(entries)
    assert entry["options"]["schedule"] == "\U0001f600"
    assert entry["tasks"]["a"]["downstream"] == ["x\U0001f600"]
    assert entry["error"]["description"].startswith("schedule '\U0001f600' is not one Gust")
    assert any("'x\U0001f600'" in message for message in entry["messages"])
    assert "\ufffd" not in json.dumps(entry, ensure_ascii=False)


SCRUB_CHARS = st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(SCRUB_CHARS, max_size=12))
def test_any_string_value_comes_out_as_the_protocol_scrubs_it(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scrubbed.py"
        path.write_text(
            HEADER + f"class S(Dag):\n    @task(downstream={text!a})\n    def a(self, ctx): ...\n",
            encoding="ascii",
        )
        rendered = render_file(str(path))
    rendered.encode("ascii")
    entry = only(strict_loads(rendered))
    assert entry["tasks"]["a"]["downstream"] == [scrub_surrogates(text)]
    for value in (entry["error"].get("description", ""), *entry["messages"]):
        value.encode("utf-8")  # strict: no lone surrogate survives


def test_compiler_warnings_become_messages(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "warned.py",
        HEADER + "PATTERN = '\\d+'\n\n\nclass Warned(Dag):\n    @task\n    def a(self, ctx): ...\n",
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "gust", "parse", "--file", str(path)],
        cwd=tmp_path,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == b""
    entry = only(json.loads(done.stdout))
    assert len(entry["messages"]) == 1
    assert entry["messages"][0].startswith("line 4: ")
    assert "invalid escape sequence" in entry["messages"][0]


def test_parser_imports_stay_light() -> None:
    code = (
        "import sys; import gust.parser; "
        "print(sorted(m for m in ('click', 'dataclasses', 'inspect', 're', 'typing') "
        "if m in sys.modules and m not in before))"
    )
    done = subprocess.run(
        # json (and the re it loads) is what the parser prints with; `import gust` no longer
        # loads it, as the runtime calls are imported on first use.
        [sys.executable, "-c", "import sys, json, gust; before = set(sys.modules); " + code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout.strip() == "[]"


# ---- random graphs ---------------------------------------------------------------------------

NAME = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True).filter(
    lambda n: not keyword.iskeyword(n) and n != "task"
)


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """Task names in source order, downstream edges, and how each downstream is written."""
    names = draw(st.lists(NAME, min_size=1, max_size=9, unique=True))
    edges: dict[str, list[str]] = {}
    forms: list[str] = []
    for name in names:
        targets = draw(st.lists(st.sampled_from(names), max_size=3, unique=True))
        edges[name] = targets
        choices = ["list", "tuple"] + (["string"] if len(targets) == 1 else [])
        choices += ["bare"] if not targets else []
        forms.append(draw(st.sampled_from(choices)))
    return names, edges, forms


def render_graph(names: list[str], edges: dict[str, list[str]], forms: list[str]) -> str:
    lines = ["from gust import Dag, task", "", "", "class Random(Dag):"]
    for name, form in zip(names, forms, strict=True):
        targets = edges[name]
        if form == "bare":
            lines.append("    @task")
        elif form == "string":
            lines.append(f"    @task(downstream={targets[0]!r})")
        elif form == "tuple":
            lines.append(f"    @task(downstream=({''.join(f'{t!r}, ' for t in targets)}))")
        else:
            lines.append(f"    @task(downstream={targets!r})")
        lines += [f"    def {name}(self, ctx): ...", ""]
    return "\n".join(lines)


def has_cycle(names: list[str], edges: dict[str, list[str]]) -> bool:
    state: dict[str, int] = {}

    def visit(node: str) -> bool:
        state[node] = 1
        for nxt in edges[node]:
            if state.get(nxt) == 1 or (nxt not in state and visit(nxt)):
                return True
        state[node] = 2
        return False

    return any(name not in state and visit(name) for name in names)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_random_graphs_layer_in_source_order_or_report_a_cycle(
    graph: tuple[list[str], dict[str, list[str]], list[str]],
) -> None:
    names, edges, forms = graph
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "random_dag.py"
        path.write_text(render_graph(names, edges, forms), encoding="utf-8")
        entry = only(parse_file(str(path)))
    assert entry["task_list"] == names
    assert {n: entry["tasks"][n]["downstream"] for n in names} == edges
    stage_of = {n: k for k, stage in enumerate(entry["stages"]) for n in stage}
    assert sum(len(stage) for stage in entry["stages"]) == len(stage_of)  # no task twice
    order = {n: i for i, n in enumerate(names)}
    upstream: dict[str, list[str]] = {n: [] for n in names}
    for source, targets in edges.items():
        for target in targets:
            upstream[target].append(source)
    for k, stage in enumerate(entry["stages"]):
        assert stage, "no empty stage"
        assert stage == sorted(stage, key=order.__getitem__), "a stage keeps source order"
        for name in stage:
            # layered after all its upstreams, and right after the last of them (Kahn)
            assert all(stage_of.get(u, k) < k for u in upstream[name])
            assert k == 0 or any(stage_of.get(u) == k - 1 for u in upstream[name])
    if not has_cycle(names, edges):
        assert entry["error"] == {} and entry["messages"] == []
        assert set(stage_of) == set(names)
        return
    error = entry["error"]
    prefix = "the downstream links of Random form a cycle: "
    assert error["description"].startswith(prefix)
    cycle = error["description"][len(prefix) :].split(" -> ")
    assert cycle[0] == cycle[-1] and len(set(cycle[:-1])) == len(cycle) - 1
    for source, target in itertools.pairwise(cycle):
        assert target in edges[source], (source, target)
    first = min(cycle[:-1], key=order.__getitem__)
    assert cycle[0] == first
    source_lines = render_graph(names, edges, forms).splitlines()
    assert source_lines[error["line"]] == f"    def {first}(self, ctx): ..."
    # tasks on a cycle can never be layered
    assert not set(cycle) & set(stage_of)


# ---- arbitrary DAG-like sources never break the parser ---------------------------------------

POOL = ["A", "B", "NAMES", "self", "Dag", "task", "gust", "Base", "x", "os"]
LITERAL = st.one_of(
    st.text(max_size=4).map(repr),
    st.integers(-3, 3).map(repr),
    st.sampled_from(["True", "False", "None", "1.5", "1e999", "...", "b'x'", "-1"]),
)
EXPR = st.recursive(
    st.one_of(LITERAL, st.sampled_from(POOL)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(inner, max_size=3).map(lambda xs: "(" + "".join(x + ", " for x in xs) + ")"),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: "{" + ", ".join(xs) + "}"),
        st.lists(st.tuples(inner, inner), max_size=2).map(
            lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
        ),
        st.tuples(st.sampled_from(POOL), st.sampled_from(["X", "SCHEDULE", "Dag"])).map(".".join),
        st.tuples(st.sampled_from(POOL), inner).map(lambda t: f"{t[0]}({t[1]})"),
        inner.map(lambda x: f"[*{x}]"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} + {t[1]})"),
    ),
    max_leaves=6,
)
ARGUMENT = st.one_of(
    EXPR,
    st.tuples(
        st.sampled_from(["downstream", "save", "schedule", "on_finished_callback", "z"]), EXPR
    ).map(lambda t: f"{t[0]}={t[1]}"),
    EXPR.map(lambda x: f"**{x}"),
    EXPR.map(lambda x: f"*{x}"),
)
CALL_ARGS = st.lists(ARGUMENT, max_size=3).map(", ".join)


@st.composite
def dag_like_sources(draw: st.DrawFn) -> str:
    lines = [draw(st.sampled_from(["import gust", "from gust import Dag, task", "import os"]))]
    lines.append("from gust import task as t, Dag as D")
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(["A", "B", "NAMES", "task", "A, B"]))
        if draw(st.booleans()):
            lines.append(f"{target} = {draw(EXPR)}")
        else:
            lines += [f"if {draw(EXPR)}:", f"    {target} = {draw(EXPR)}"]
    classes: list[str] = []
    for number in range(draw(st.integers(1, 3))):
        name = f"C{number}"
        bases = draw(
            st.lists(st.sampled_from([*classes, "Dag", "gust.Dag", "D", "object"]), max_size=2)
        )
        lines.append(f"class {name}({', '.join(bases)}):")
        lines.append("    X = " + draw(EXPR))
        if draw(st.booleans()):
            call = draw(st.sampled_from(["super().__init__", "Dag.__init__", "Base.__init__"]))
            first = "" if call.startswith("super") else "self, "
            lines += ["    def __init__(self, x=1):", f"        {call}({first}{draw(CALL_ARGS)})"]
        for method in draw(st.lists(st.sampled_from(["a", "b", "c", "done"]), max_size=4)):
            decorator = draw(st.sampled_from(["@task", "@t", "@gust.task", "@other", ""]))
            if decorator and decorator != "@other" and draw(st.booleans()):
                decorator += f"({draw(CALL_ARGS)})"
            if decorator:
                lines.append(f"    {decorator}")
            lines.append(f"    def {method}(self, ctx): ...")
        classes.append(name)
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dag_like_sources())
def test_any_dag_like_source_gives_well_formed_output(source: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.py"
        path.write_text(source, encoding="utf-8")
        text = render_file(str(path))
        assert text == render_file(str(path))
    entries = strict_loads(text)
    text.encode("ascii")
    for entry in entries:
        assert_shape(entry)
        staged = [name for stage in entry["stages"] for name in stage]
        assert len(staged) == len(set(staged)) and set(staged) <= set(entry["task_list"])
        if entry["error"] == {}:
            assert set(staged) == set(entry["task_list"])
