"""``gust check``: every problem ``gust parse`` reports, import-time failures at the right line,
and what Python runs differing from what Gust reads; through the library and the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _host import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gust.check import check_paths
from gust.parser import parse_file

FIXTURES = REPO / "tests" / "parse_fixtures"


def dags(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(text))
    return folder


def lines_of(folder: Path, **options: object) -> list[str]:
    result = check_paths([str(folder)], **options)  # type: ignore[arg-type]
    return [str(p) for p in result.problems]


def gust(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gust", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


# -- every kind of problem gust parse reports ------------------------------------------------


def expected_from_parse(path: Path) -> set[tuple[int, str]]:
    """What `gust parse` says about a file, as (line, text) pairs."""
    out = set()
    for entry in parse_file(str(path)):
        if entry["error"]:
            out.add((entry["error"]["line"], entry["error"]["description"]))
        for message in entry["messages"]:
            head, _, text = message.partition(": ")
            text = text.removeprefix("also an error: ")
            out.add((int(head.removeprefix("line ")), text))
    return out


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.py")))
def test_each_problem_of_gust_parse_is_a_line(fixture: str) -> None:
    path = FIXTURES / fixture
    result = check_paths([str(path)], load=False)
    found = {(p.line, p.message) for p in result.problems}
    assert expected_from_parse(path) <= found
    assert all(p.file == str(path) for p in result.problems)


PARSE_KINDS = {
    "syntax": ("x = 1\nclass A(\n", 2, "syntax error: "),
    "nul": ("from gust import Dag\n\n\x00\n", 3, "syntax error"),
    "duplicate": (
        """\
        from gust import Dag, task
        class D(Dag):
            @task
            def a(self, ctx): ...
            @task
            def a(self, ctx): ...
        """,
        6,
        "duplicate task name 'a' in D",
    ),
    "unknown_downstream": (
        """\
        from gust import Dag, task
        class D(Dag):
            @task(downstream="ghost")
            def a(self, ctx): ...
        """,
        3,
        "task 'a' names downstream 'ghost', which is not a task of D",
    ),
    "cycle": (
        """\
        from gust import Dag, task
        class D(Dag):
            @task(downstream="b")
            def a(self, ctx): ...
            @task(downstream="a")
            def b(self, ctx): ...
        """,
        3,
        "the downstream links of D form a cycle: a -> b -> a",
    ),
    "callback": (
        """\
        from gust import Dag
        class D(Dag):
            def __init__(self):
                super().__init__(on_finished_callback="gone")
        """,
        4,
        "on_finished_callback 'gone' names no method of D",
    ),
    "task_arguments": (
        """\
        from gust import Dag, task
        class D(Dag):
            @task(save="yes")
            def a(self, ctx): ...
        """,
        3,
        "@task of 'a': save must be True or False, not 'yes'",
    ),
    "not_static": (
        """\
        from gust import Dag, task
        import random
        class D(Dag):
            @task(downstream=random.choice(["b"]))
            def a(self, ctx): ...
            @task
            def b(self, ctx): ...
        """,
        4,
        "downstream of task 'a' cannot be read statically",
    ),
}


@pytest.mark.parametrize("kind", sorted(PARSE_KINDS))
def test_parse_problems_with_their_line(tmp_path: Path, kind: str) -> None:
    text, line, message = PARSE_KINDS[kind]
    folder = dags(tmp_path, broken=text)
    problems = check_paths([str(folder)], load=False).problems
    assert any(p.line == line and message in p.message for p in problems), problems
    assert all(p.source == "parse" for p in problems)


def test_a_second_dag_class_is_a_problem(tmp_path: Path) -> None:
    folder = dags(
        tmp_path,
        two="""\
        from gust import Dag, task


        class First(Dag):
            @task
            def a(self, ctx): ...


        class Second(Dag):
            @task
            def b(self, ctx): ...
        """,
    )
    assert lines_of(folder) == [
        f"{folder}/two.py:9: Second is a second DAG class in this file: Gust runs only the "
        "first (First); move Second to a file of its own"
    ]


# -- import-time failures, at the line where they happened -----------------------------------


def test_a_missing_module_is_reported_at_its_import_line(tmp_path: Path) -> None:
    folder = dags(
        tmp_path,
        etl="""\
        import json

        from gust import Dag, task
        import pandas_is_not_installed_here as pd


        class Etl(Dag):
            @task
            def a(self, ctx): ...
        """,
    )
    assert lines_of(folder) == [
        f"{folder}/etl.py:4: importing the file failed: ModuleNotFoundError: No module named "
        "'pandas_is_not_installed_here'"
    ]


def test_an_exception_at_import_and_one_raised_in_a_helper(tmp_path: Path) -> None:
    folder = dags(
        tmp_path,
        helpers="""\
        def settings():
            raise KeyError("WAREHOUSE_URL")
        """,
        direct="""\
        from gust import Dag, task

        LIMIT = int("ten")


        class D(Dag):
            @task
            def a(self, ctx): ...
        """,
        indirect="""\
        from gust import Dag, task
        import helpers

        CONFIG = helpers.settings()


        class D(Dag):
            @task
            def a(self, ctx): ...
        """,
    )
    assert lines_of(folder) == [
        f"{folder}/direct.py:3: importing the file failed: ValueError: invalid literal for int() "
        "with base 10: 'ten'",
        f"{folder}/indirect.py:4: importing the file failed: KeyError: 'WAREHOUSE_URL' (raised at "
        f"{folder}/helpers.py:2)",
    ]


def test_a_syntax_error_in_a_helper_points_at_the_import(tmp_path: Path) -> None:
    folder = dags(
        tmp_path,
        broken_helper="def f(:\n",
        uses="""\
        from gust import Dag, task
        from broken_helper import f
        class D(Dag):
            @task
            def a(self, ctx): ...
        """,
    )
    helper, line = lines_of(folder)
    # Gust parses every .py file of its folder: the helper itself is a parse error there too.
    assert helper.startswith(f"{folder}/broken_helper.py:1: syntax error: ")
    assert line.startswith(f"{folder}/uses.py:2: importing the file failed: SyntaxError: ")
    assert line.endswith(f"(raised at {folder}/broken_helper.py:1)")


def test_code_that_works_beside_the_file_but_not_from_gusts_temp_copy(tmp_path: Path) -> None:
    folder = dags(
        tmp_path,
        reads="""\
        import os
        from gust import Dag, task

        QUERY = open(os.path.join(os.path.dirname(__file__), "query.sql")).read()


        class D(Dag):
            @task
            def a(self, ctx): ...
        """,
    )
    (folder / "query.sql").write_text("select 1")
    [line] = lines_of(folder)
    assert line.startswith(f"{folder}/reads.py:4: importing the file failed: FileNotFoundError:")
    assert "(Gust runs the file from a copy in " in line


def test_exits_and_crashes_at_import(tmp_path: Path) -> None:
    folder = dags(
        tmp_path,
        exits="""\
        import sys
        from gust import Dag, task
        sys.exit("no config")
        class D(Dag):
            @task
            def a(self, ctx): ...
        """,
        hard_exit="""\
        import os
        from gust import Dag, task
        print("about to leave")
        os._exit(3)
        class D(Dag):
            @task
            def a(self, ctx): ...
        """,
        segfault="""\
        import ctypes
        from gust import Dag, task

        ctypes.string_at(0)
        class D(Dag):
            @task
            def a(self, ctx): ...
        """,
    )
    assert lines_of(folder) == [
        f"{folder}/exits.py:3: importing the file failed: SystemExit: no config",
        f"{folder}/hard_exit.py:0: the process exited with status 3 while importing the file "
        "(its last words: about to leave)",
        f"{folder}/segfault.py:4: the process crashed while importing the file (Segmentation "
        "fault)",
    ]


@pytest.mark.timeout(60)
def test_an_import_that_hangs_is_cut_at_the_timeout_with_its_line(tmp_path: Path) -> None:
    folder = dags(
        tmp_path,
        hangs="""\
        import time
        from gust import Dag, task

        def wait_for_ever():
            while True:
                time.sleep(0.05)

        wait_for_ever()
        class D(Dag):
            @task
            def a(self, ctx): ...
        """,
    )
    started = time.monotonic()
    [line] = lines_of(folder, timeout=1.0)
    assert time.monotonic() - started < 30
    assert line in (
        f"{folder}/hangs.py:8: importing the file did not finish within 1 s",
        f"{folder}/hangs.py:6: importing the file did not finish within 1 s",
    )


@pytest.mark.timeout(60)
def test_threads_children_and_prints_at_import_do_not_disturb_the_check(tmp_path: Path) -> None:
    marker = tmp_path / "daemon.pid"
    folder = dags(
        tmp_path,
        noisy=f"""\
        import subprocess, sys, threading, time
        from gust import Dag, task

        print('{{"problems": [{{"line": 1, "message": "forged"}}]}}')
        sys.stdout.flush()
        threading.Thread(target=time.sleep, args=(600,)).start()  # not a daemon
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                start_new_session=False)
        open({str(marker)!r}, "w").write(str(proc.pid))


        class D(Dag):
            @task
            def a(self, ctx): ...
        """,
    )
    started = time.monotonic()
    assert lines_of(folder) == []
    assert time.monotonic() - started < 30
    pid = int(marker.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the process the DAG started at import outlived the check")


def test_user_code_never_runs_in_the_checkers_process(tmp_path: Path) -> None:
    record = tmp_path / "pid"
    folder = dags(
        tmp_path,
        records=f"""\
        import os
        from gust import Dag, task
        open({str(record)!r}, "w").write(str(os.getpid()))
        class Records(Dag):
            @task
            def a(self, ctx): ...
        """,
    )
    before = set(sys.modules)
    assert lines_of(folder) == []
    assert int(record.read_text()) != os.getpid()
    assert not [m for m in set(sys.modules) - before if "records" in m]


# -- what Python runs differs from what Gust reads -------------------------------------------


def test_creating_the_dag_fails_at_the_line_in_init(tmp_path: Path) -> None:
    folder = dags(
        tmp_path,
        init="""\
        import os
        from gust import Dag, task


        class D(Dag):
            def __init__(self):
                super().__init__(schedule="@daily")
                self.url = os.environ["SURELY_NOT_SET_ANYWHERE_URL"]

            @task
            def a(self, ctx): ...
        """,
    )
    assert lines_of(folder) == [
        f"{folder}/init.py:8: Dag 'D' could not be created: KeyError: 'SURELY_NOT_SET_ANYWHERE_URL'"
    ]


def test_tasks_and_options_gust_parse_cannot_see(tmp_path: Path) -> None:
    folder = dags(
        tmp_path,
        shared="""\
        from gust import task


        class Common:
            @task
            def notify(self, ctx): ...

            def finished(self, status, run): ...
        """,
        dynamic="""\
        import importlib

        from gust import Dag, task

        Common = importlib.import_module("shared").Common  # gust parse follows a plain import
        NEXT = ["load"]
        NEXT.append("publish")


        class D(Common, Dag):
            def __init__(self):
                super().__init__(schedule=" ".join(["@daily"]), on_finished_callback="finished")

            @task(downstream=NEXT)
            def extract(self, ctx): ...

            @task
            def load(self, ctx): ...

            @task
            def publish(self, ctx): ...
        """,
    )
    got = lines_of(folder)
    path = f"{folder}/dynamic.py"
    assert (
        f"{path}:10: 'notify' of D is a task when it runs ({folder}/shared.py:5), but gust "
        "parse cannot see it, so Gust never runs it" in got
    )
    assert (
        f"{path}:10: schedule of D is '@daily' when it runs, but gust parse reads None, and "
        "Gust follows gust parse" in got
    )
    assert any(
        line.startswith(f"{path}:14: task 'extract' of D has downstream=['load', 'publish'] ")
        and line.endswith(
            "but gust parse reads downstream=['load'] save=False, and Gust follows gust parse"
        )
        for line in got
    ), got
    # The parser's own note about the schedule, found without running anything.
    assert any(
        line.startswith(f"{path}:12: schedule in D.__init__ cannot be read statically")
        for line in got
    )


def test_a_callback_gust_run_done_cannot_find(tmp_path: Path) -> None:
    folder = dags(
        tmp_path,
        base="""\
        class Base:
            pass
        """,
        cb="""\
        from gust import Dag, task
        from base import Base


        class D(Base, Dag):
            def __init__(self):
                super().__init__(on_finished_callback="done")

            @task
            def a(self, ctx): ...
        """,
    )
    got = lines_of(folder)
    assert (
        f"{folder}/cb.py:5: on_finished_callback: Callback 'done' not found on dag 'D': gust "
        "run done will fail" in got
    )


# -- the command line --------------------------------------------------------------------------


def test_cli_lines_exit_status_and_summary(tmp_path: Path) -> None:
    folder = dags(
        tmp_path,
        good="""\
        from gust import Dag, task
        class Good(Dag):
            @task
            def a(self, ctx): ...
        """,
        bad="""\
        from gust import Dag, task
        import missing_module_for_check
        class Bad(Dag):
            @task
            def a(self, ctx): ...
        """,
        helpers="X = 1\n",
    )
    (folder / "sub").mkdir()
    (folder / "sub" / "ignored.py").write_text("this is not python")
    proc = gust("check", cwd=folder)
    assert proc.returncode == 1
    assert proc.stdout == (
        "bad.py:2: importing the file failed: ModuleNotFoundError: No module named "
        "'missing_module_for_check'\n"
    )
    assert proc.stderr == "gust check: 1 problem in 1 of 2 DAG files\n"

    clean = gust("check", "good.py", "helpers.py", cwd=folder)
    assert (clean.returncode, clean.stdout) == (0, "")
    assert clean.stderr == "gust check: 1 DAG file, no problems\n"

    static = gust("check", "--no-import", ".", cwd=folder)
    assert (static.returncode, static.stdout) == (0, "")


def test_cli_json_and_missing_paths(tmp_path: Path) -> None:
    dags(
        tmp_path,
        cyc="""\
        from gust import Dag, task
        class C(Dag):
            @task(downstream="a")
            def a(self, ctx): ...
        """,
    )
    proc = gust("check", "--json", "dags", "nowhere.py", cwd=tmp_path)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report == {
        "ok": False,
        "checked": ["dags/cyc.py"],
        "skipped": [],
        "problems": [
            {
                "file": "nowhere.py",
                "line": 0,
                "message": "no such file or folder",
                "source": "path",
            },
            {
                "file": "dags/cyc.py",
                "line": 3,
                "message": "the downstream links of C form a cycle: a -> a",
                "source": "parse",
            },
        ],
    }
    usage = gust("check", "--timeout", "0", cwd=tmp_path)
    assert usage.returncode == 2 and "--timeout" in usage.stderr


def test_the_check_command_stays_off_the_fast_path() -> None:
    from gust._entry import plan

    assert plan(["check", "dags"]) is None  # click handles it; the fast path knows 3 commands


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    source=st.text(max_size=300)
    | st.sampled_from(
        ["from gust import Dag\nclass D(Dag):\n    @task(\n", "class D(gust.Dag): pass\n"]
    ).flatmap(lambda head: st.text(max_size=80).map(lambda tail: head + tail))
)
def test_any_file_gives_problems_never_a_crash(
    tmp_path_factory: pytest.TempPathFactory, source: str
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "any.py").write_text(source, encoding="utf-8", errors="surrogatepass")
    result = check_paths([str(folder)], load=False)
    assert result.checked + result.skipped == [str(folder / "any.py")]
    assert all(
        str(p).startswith(f"{folder}/any.py:") and "\n" not in p.message for p in result.problems
    )


def test_a_file_name_that_is_not_utf8_is_still_reported(tmp_path: Path) -> None:
    folder = os.fsencode(tmp_path)
    with open(os.path.join(folder, b"caf\xe9.py"), "w") as handle:
        handle.write("from gust import Dag, task\nimport nope_mod\nclass D(Dag):\n    pass\n")
    proc = subprocess.run(
        [sys.executable, "-m", "gust", "check", "."],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == (
        b"caf\\udce9.py:2: importing the file failed: ModuleNotFoundError: No module named "
        b"'nope_mod'\n"
    )


def test_a_module_that_forks_at_import_gets_one_answer(tmp_path: Path) -> None:
    folder = dags(
        tmp_path,
        forks="""\
        import os
        import time
        from gust import Dag, task

        CHILD = os.fork()  # the child goes on importing, as a careless module's would
        if CHILD:
            time.sleep(1)  # the forked child gets through the whole check first


        class D(Dag):
            @task(downstream="b")
            def a(self, ctx): ...

            @task
            def b(self, ctx): ...
        """,
    )
    assert lines_of(folder) == []


@pytest.mark.timeout(60)
def test_a_daemon_started_at_import_does_not_outlive_the_command(tmp_path: Path) -> None:
    marker = tmp_path / "daemon.pid"
    dags(
        tmp_path,
        daemon=f"""\
        import subprocess, sys
        from gust import Dag, task

        code = "import time; time.sleep(600)"
        # Double fork: the daemon's parent exits at once, so it is nobody's child any more.
        launcher = subprocess.Popen([sys.executable, "-c",
            "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', " + repr(code)
            + "], start_new_session=True); open({str(marker)!r}, 'w').write(str(p.pid))"])
        launcher.wait()


        class D(Dag):
            @task
            def a(self, ctx): ...
        """,
    )
    proc = gust("check", "dags", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pid = int(marker.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        pytest.fail("the daemon the DAG started at import outlived gust check")
