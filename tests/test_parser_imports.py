"""``gust parse`` follows imports of the DAG's folder, statically, with the rules of one file.

The common pattern: a base ``Dag`` class in a module of the DAGs folder, each DAG deriving from
it. Each test writes a small DAGs folder and runs the real CLI in it (as Gust does); nothing is
imported or run. Where a base cannot be read, the answer says exactly why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_parser import assert_shape, dag_like_sources, strict_loads

from gust.parser import render_file

BASE = """\
from gust import Dag, task


class BaseDag(Dag):
    def __init__(self):
        super().__init__(schedule="@daily", on_finished_callback="done")

    @task(downstream="transform")
    def extract(self, ctx): ...

    @task(downstream="load")
    def transform(self, ctx): ...

    def done(self, status, run): ...
"""

SALES = """\
{imports}
from gust import task


class Sales({base}):
    @task(save=True)
    def load(self, ctx): ...
"""

SALES_TASKS = {
    "extract": {"downstream": ["transform"], "save": False},
    "transform": {"downstream": ["load"], "save": False},
    "load": {"downstream": [], "save": True},
}


def folder_of(tmp_path: Path, files: dict[str, str]) -> Path:
    """A DAGs folder holding ``files`` (relative path -> text)."""
    dags = tmp_path / "dags"
    for name, text in files.items():
        path = dags / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return dags


def parse(dags: Path, name: str = "sales.py") -> list[dict[str, Any]]:
    """``gust parse --file NAME`` in the DAGs folder, as Gust runs it: exit 0, one JSON line."""
    done = subprocess.run(
        [sys.executable, "-m", "gust", "parse", "--file", name],
        cwd=dags,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode(errors="replace")
    entries = json.loads(done.stdout.decode("ascii"))
    for entry in entries:
        assert list(entry)[:2] == ["name", "mod"]
    return entries


def only(entries: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(entries) == 1, entries
    return entries[0]


# ---- a base class of the folder is read --------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "imports", "base"),
    [
        ({"base_dags.py": BASE}, "from base_dags import BaseDag", "BaseDag"),
        ({"base_dags.py": BASE}, "import base_dags", "base_dags.BaseDag"),
        ({"base_dags.py": BASE}, "from base_dags import BaseDag as Base", "Base"),
        ({"lib/__init__.py": "", "lib/base.py": BASE}, "from lib.base import BaseDag", "BaseDag"),
        ({"lib/__init__.py": "", "lib/base.py": BASE}, "from lib import base", "base.BaseDag"),
        ({"lib/__init__.py": "", "lib/base.py": BASE}, "import lib.base", "lib.base.BaseDag"),
        ({"ns/base.py": BASE}, "from ns.base import BaseDag", "BaseDag"),  # namespace package
        (
            {"lib/__init__.py": "from .base import BaseDag\n", "lib/base.py": BASE},
            "from lib import BaseDag",  # re-exported by the package
            "BaseDag",
        ),
        ({"base_dags.py": BASE}, "from base_dags import *", "BaseDag"),
        (
            {"base_dags.py": BASE + "\nAlias = BaseDag\n"},
            "from base_dags import Alias",  # a name bound to the class
            "Alias",
        ),
    ],
    ids=[
        "from-import",
        "import-module",
        "import-as",
        "package-module",
        "from-package-import-module",
        "import-dotted",
        "namespace-package",
        "package-re-export",
        "star-import",
        "alias",
    ],
)
def test_a_dag_deriving_from_a_base_of_the_folder_gets_its_tasks_and_options(
    tmp_path: Path, files: dict[str, str], imports: str, base: str
) -> None:
    dags = folder_of(tmp_path, {**files, "sales.py": SALES.format(imports=imports, base=base)})
    entry = only(parse(dags))
    assert entry["mod"] == "Sales" and entry["error"] == {}, entry
    assert entry["messages"] == []
    assert entry["task_list"] == ["extract", "transform", "load"]
    assert entry["tasks"] == SALES_TASKS
    assert entry["stages"] == [["extract"], ["transform"], ["load"]]
    assert entry["options"] == {"schedule": "@daily", "on_finished_callback": "done"}
    assert entry["file_path"] == str(dags / "sales.py")


def test_a_relative_import_is_followed_and_its_run_time_failure_said(tmp_path: Path) -> None:
    dags = folder_of(
        tmp_path,
        {
            "base.py": BASE,
            "sales.py": SALES.format(imports="from .base import BaseDag", base="BaseDag"),
        },
    )
    entry = only(parse(dags))
    assert entry["error"] == {} and entry["tasks"] == SALES_TASKS
    assert entry["messages"] == [
        "line 1: from .base import ... is a relative import: gust task run loads the DAG file as "
        "a top-level module, where it fails; write from base import ..., which works from the "
        "DAGs folder"
    ]


def test_constants_and_gust_names_come_through_imports(tmp_path: Path) -> None:
    dags = folder_of(
        tmp_path,
        {
            "settings.py": """\
                import os

                SCHEDULE = "0 6 * * MON-FRI"
                FIRST = "b"
                LATER = "c"
                FIRST = LATER  # as bound once the module has run
                FROM_ENV = os.environ.get("X", "a")
            """,
            "tools.py": "from gust import task as step, Dag as Base\n",
            "sales.py": """\
                import settings
                from settings import FIRST, FROM_ENV
                from tools import Base, step


                class Sales(Base):
                    def __init__(self):
                        super().__init__(schedule=settings.SCHEDULE)

                    @step(downstream=FIRST)
                    def a(self, ctx): ...

                    @step(downstream=FROM_ENV)
                    def b(self, ctx): ...

                    @step
                    def c(self, ctx): ...
            """,
        },
    )
    entry = only(parse(dags))
    assert entry["error"] == {}
    assert entry["task_list"] == ["a", "b", "c"]
    assert entry["tasks"]["a"]["downstream"] == ["c"]
    assert entry["options"]["schedule"] == "0 6 * * MON-FRI"
    assert entry["messages"] == [
        "line 13: downstream of task 'b' cannot be read statically: 'FROM_ENV' (line 2) comes "
        "from settings.py: 'FROM_ENV' (line 7) cannot be read: os.environ.get('X', 'a') is not a "
        "literal; left at []"
    ]


def test_problems_in_a_base_module_point_at_the_dag_and_name_the_file(tmp_path: Path) -> None:
    broken_base = BASE.replace('downstream="load"', 'downstream="lod"').replace(
        'on_finished_callback="done"', 'on_finished_callback="don"'
    )
    dags = folder_of(
        tmp_path,
        {
            "base_dags.py": broken_base,
            "sales.py": SALES.format(imports="from base_dags import BaseDag", base="BaseDag"),
        },
    )
    entry = only(parse(dags))
    assert entry["error"] == {
        "file": str(dags / "sales.py"),
        "line": 5,  # the class statement of the DAG: the other file has no line here
        "description": "base_dags.py line 11: task 'transform' names downstream 'lod', which is "
        "not a task of Sales; did you mean 'load'?",
    }
    assert entry["messages"] == [
        "line 5: also an error: base_dags.py line 6: on_finished_callback 'don' names no method "
        "of Sales; did you mean 'done'?"
    ]


# ---- what cannot be read is said, exactly ------------------------------------------------------


def hidden(dags: Path, line: int, reason: str, base: str = "BaseDag") -> None:
    """The DAG's entry: its own tasks, and the error saying why its base's cannot be seen."""
    entry = only(parse(dags))
    assert entry["mod"] == "Sales" and entry["task_list"] == ["load"]
    assert entry["error"] == {
        "file": str(dags / "sales.py"),
        "line": line,
        "description": f"the tasks of Sales cannot be seen: its base {base} cannot be read: "
        + reason.format(dags=dags),
    }


def test_a_base_from_no_module_of_the_folder_is_an_error_when_the_class_has_tasks(
    tmp_path: Path,
) -> None:
    dags = folder_of(
        tmp_path,
        {"sales.py": SALES.format(imports="from base_dags import BaseDag", base="BaseDag")},
    )
    hidden(
        dags,
        5,
        "base_dags is not a module of the DAG's folder {dags} (no base_dags.py or "
        "base_dags/__init__.py there; an installed package is never read)",
    )


def test_a_helper_class_of_an_installed_package_is_not_a_dag(tmp_path: Path) -> None:
    dags = folder_of(
        tmp_path,
        {
            "helpers.py": """\
                from requests import Session
                from gust import log


                class Client(Session):
                    def fetch(self): ...
            """
        },
    )
    assert parse(dags, "helpers.py") == []


def test_a_base_module_with_a_syntax_error_is_an_error_even_without_tasks(tmp_path: Path) -> None:
    dags = folder_of(
        tmp_path,
        {
            "base_dags.py": "from gust import Dag\n\nclass BaseDag(Dag)\n    pass\n",
            "sales.py": "from base_dags import BaseDag\n\n\nclass Sales(BaseDag):\n    pass\n",
        },
    )
    entry = only(parse(dags))
    assert entry["mod"] == "Sales" and entry["task_list"] == []
    assert entry["error"]["line"] == 4
    assert entry["error"]["description"].startswith(
        "the tasks of Sales cannot be seen: its base BaseDag cannot be read: base_dags.py line 3: "
        "syntax error: expected ':'"
    )


def test_an_undefined_name_an_import_cycle_and_an_oversized_module_are_said(
    tmp_path: Path,
) -> None:
    sales = SALES.format(imports="from base_dags import BaseDag", base="BaseDag")
    dags = folder_of(tmp_path, {"base_dags.py": "X = 1\n", "sales.py": sales})
    hidden(dags, 5, "BaseDag is not defined in base_dags.py")

    cycle = tmp_path / "cycle"
    cycle.mkdir()
    dags = folder_of(
        cycle,
        {
            "base_dags.py": "from middle import BaseDag\n",
            "middle.py": "from base_dags import BaseDag\n",
            "sales.py": sales,
        },
    )
    hidden(
        dags, 5, "the imports of BaseDag form a cycle: base_dags.py -> middle.py -> base_dags.py"
    )

    back = tmp_path / "back"
    back.mkdir()
    dags = folder_of(
        back,
        {
            "base_dags.py": "from sales import Mixin\n\n\nclass BaseDag(Mixin):\n    pass\n",
            "sales.py": sales + "\n\nclass Mixin:\n    pass\n",
        },
    )
    entry = only(parse(dags))
    assert entry["error"]["line"] == 5
    assert entry["error"]["description"] == (
        "base_dags.py line 4: the tasks of Sales cannot be seen: BaseDag's base Mixin cannot be "
        "read: the imports form a cycle: sales.py -> base_dags.py -> sales.py"
    )

    huge = tmp_path / "huge"
    huge.mkdir()
    dags = folder_of(huge, {"sales.py": sales})
    with open(dags / "base_dags.py", "wb") as handle:
        handle.truncate(9 * 1024 * 1024)  # sparse: refused from its size
    hidden(
        dags,
        5,
        "cannot read {dags}/base_dags.py: it is 9.0 MiB, more than the 8.0 MiB (8,388,608 "
        "bytes) gust parse reads",
    )


def test_modules_imported_in_a_chain_deeper_than_the_bound_are_said(tmp_path: Path) -> None:
    root = "from gust import Dag, task\n\n\nclass B0(Dag):\n    @task\n    def t0(self, ctx): ...\n"
    files = {"m0.py": root}
    for i in range(1, 20):
        files[f"m{i}.py"] = (
            f"from gust import task\nfrom m{i - 1} import B{i - 1}\n\n\n"
            f"class B{i}(B{i - 1}):\n    @task\n    def t{i}(self, ctx): ...\n"
        )
    files["sales.py"] = SALES.format(imports="from m19 import B19", base="B19")
    dags = folder_of(tmp_path, files)
    entry = only(parse(dags))
    # m19 ... m4 are read (16 deep); m3 is not: B4's base cannot be read
    assert entry["error"]["description"] == (
        "m4.py line 5: the tasks of Sales cannot be seen: B4's base B3 cannot be read: m3.py is "
        "imported more than 16 modules deep"
    )
    assert entry["error"]["line"] == 5
    assert entry["task_list"] == [f"t{i}" for i in range(4, 20)] + ["load"]


def test_a_world_writable_folder_is_never_imported_from(tmp_path: Path) -> None:
    dags = folder_of(
        tmp_path,
        {
            "base_dags.py": BASE,
            "sales.py": SALES.format(imports="from base_dags import BaseDag", base="BaseDag"),
        },
    )
    os.chmod(dags, 0o777)
    try:
        hidden(
            dags,
            5,
            "the DAG's folder {dags} is a temp dir or world-writable, so gust never imports "
            "from it",
        )
    finally:
        os.chmod(dags, 0o755)


def test_a_dag_with_an_unreadable_mixin_says_what_is_not_seen(tmp_path: Path) -> None:
    dags = folder_of(
        tmp_path,
        {
            "sales.py": """\
                from gust import Dag, task
                from mixins import Notify


                class Sales(Notify, Dag):
                    @task
                    def load(self, ctx): ...
            """
        },
    )
    entry = only(parse(dags))
    assert entry["error"] == {} and entry["task_list"] == ["load"]
    assert entry["messages"] == [
        f"line 5: base Notify of Sales cannot be read: mixins is not a module of the DAG's "
        f"folder {dags} (no mixins.py or mixins/__init__.py there; an installed package is "
        "never read); any task or option it defines is not seen"
    ]


def test_the_standard_library_is_never_a_sibling(tmp_path: Path) -> None:
    # A json.py in the folder is not what `import json` imports: the standard library is first.
    dags = folder_of(
        tmp_path,
        {
            "json.py": BASE,
            "sales.py": """\
                from abc import ABC
                from json import BaseDag
                from gust import Dag, task


                class Sales(Dag, ABC):
                    @task
                    def load(self, ctx): ...


                class Other(BaseDag):
                    pass
            """,
        },
    )
    entry = only(parse(dags))
    assert (entry["mod"], entry["error"], entry["messages"]) == ("Sales", {}, [])


def test_a_harness_dry_run_of_a_dag_on_a_base_class_runs_every_task(tmp_path: Path) -> None:
    sales = SALES.format(imports="from base_dags import BaseDag", base="BaseDag")
    sales = sales.replace("def load(self, ctx): ...", "def load(self, ctx):\n        return {}")
    dags = folder_of(tmp_path, {"base_dags.py": BASE, "sales.py": sales})
    done = subprocess.run(
        [sys.executable, "-m", "gust.harness", "sales.py", "--json"],
        cwd=dags,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "ok" and report["mod"] == "Sales"
    assert {name: task["status"] for name, task in report["tasks"].items()} == {
        "extract": "ok",
        "transform": "ok",
        "load": "ok",
    }
    assert report["callback"]["status"] == "ok"


def test_the_modules_read_share_one_budget_and_a_count(tmp_path: Path) -> None:
    comments = "#\n" * 300_000  # 600,000 tokens each: cheap to parse, heavy to count
    mixins = {f"m{i}.py": f"class M{i}:\n    pass\n" for i in range(70)}
    names = ", ".join(f"M{i}" for i in range(70))
    imports = "".join(f"from m{i} import M{i}\n" for i in range(70))
    dags = folder_of(
        tmp_path,
        {
            "a.py": "from gust import Dag\n\n\nclass A(Dag):\n    pass\n" + comments,
            "b.py": "class B:\n    pass\n" + comments,
            **mixins,
            "sales.py": "from a import A\nfrom b import B\n" + imports + "\n\n"
            f"class Sales(A, B, {names}):\n    pass\n",
        },
    )
    entry = only(parse(dags))
    assert entry["mod"] == "Sales" and entry["error"] == {}
    line = 75  # the class statement
    assert entry["messages"][0] == (
        f"line {line}: base B of Sales cannot be read: b.py is not read: with it, the modules the "
        "DAG imports would hold more than 8 MiB or 1,000,000 tokens, the most gust parse reads "
        "for them together; any task or option it defines is not seen"
    )
    capped = [m for m in entry["messages"] if "gust parse reads at most 64 modules" in m]
    assert len(capped) == 70 - 62  # a.py, b.py (tried) and m0 ... m61 are the 64 modules
    assert capped[0] == (
        f"line {line}: base M62 of Sales cannot be read: m62.py is not read: gust parse reads at "
        "most 64 modules; any task or option it defines is not seen"
    )


# ---- any folder of DAG-like modules gives well-formed output -----------------------------------

MODULES = ["a", "b", "pkg.c"]
IMPORT_LINES = st.sampled_from(
    [
        "from a import C0, C1",
        "from a import *",
        "import b",
        "from b import C0 as D0, X",
        "from pkg.c import C0",
        "from pkg import c",
        "from .a import C1",
        "from nowhere import C0",
        "from json import C0",
        "from a import NAMES, X",
    ]
)


@st.composite
def dag_folders(draw: st.DrawFn) -> dict[str, str]:
    """A DAGs folder: modules a, b and pkg.c importing each other (cycles too), and dag.py."""
    files: dict[str, str] = {"pkg/__init__.py": draw(st.sampled_from(["", "from .c import *\n"]))}
    for name in MODULES:
        imports = draw(st.lists(IMPORT_LINES, max_size=3))
        body = draw(dag_like_sources())
        files[name.replace(".", "/") + ".py"] = "\n".join(imports) + "\n" + body
    imports = draw(st.lists(IMPORT_LINES, min_size=1, max_size=4))
    bases = draw(
        st.lists(st.sampled_from(["C0", "C1", "D0", "b.C0", "c.C1", "Dag", "X"]), max_size=3)
    )
    files["dag.py"] = (
        "\n".join(imports)
        + "\nfrom gust import Dag, task\n\n\n"
        + f"class Dag0({', '.join(bases) or 'object'}):\n"
        + "    @task(downstream=X)\n    def first(self, ctx): ...\n"
    )
    return files


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dag_folders())
def test_any_folder_of_dag_like_modules_gives_well_formed_output(files: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as home:
        os.chmod(home, 0o755)  # a trusted folder, so imports are followed
        for name, text in files.items():
            path = Path(home) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        rendered = render_file(os.path.join(home, "dag.py"))
        assert rendered == render_file(os.path.join(home, "dag.py"))  # the same bytes
    rendered.encode("ascii")
    for entry in strict_loads(rendered):
        assert_shape(entry)


def test_star_imports_that_come_back_add_nothing_and_end(tmp_path: Path) -> None:
    dags = folder_of(
        tmp_path,
        {
            "a.py": "from a import *\nfrom b import *\n" + BASE,
            "b.py": "from a import *\nfrom b import *\n",
            "sales.py": SALES.format(imports="from b import *", base="BaseDag"),
        },
    )
    entry = only(parse(dags))
    assert entry["error"] == {} and entry["tasks"] == SALES_TASKS
