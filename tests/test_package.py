"""The package as installed in every DAG environment: cheap import, small public surface."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import gust
from gust import Dag, task
from gust.dag import TASK_ATTR, TaskOptions


def test_import_gust_does_not_import_click_or_heavy_modules() -> None:
    code = (
        "import sys, gust; "
        "heavy = [m for m in ('click', 'asyncio', 'gust.cli', 'gust.harness', 'gust.parser') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version_matches_pyproject(repo: Path) -> None:
    # tomllib is 3.11+; the [project] table is simple enough to read with a pattern.
    text = (repo / "pyproject.toml").read_text()
    assert re.search(r'^version = "(.+)"$', text, re.M).group(1) == gust.__version__ == "0.2.0"
    assert re.search(r'^name = "(.+)"$', text, re.M).group(1) == "gust-py"
    assert re.search(r"^dependencies = (.+)$", text, re.M).group(1) == '["click>=8.1"]'


def test_public_surface_and_typing_marker() -> None:
    assert set(gust.__all__) >= {
        "Dag",
        "task",
        "log",
        "get_task_by_name_run",
        "get_secret_by_name",
        "send_frame",
        "_read_frame",
    }
    assert (Path(gust.__file__).parent / "py.typed").exists()


def test_cli_help_and_version_as_subprocess() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gust", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("parse", "task", "run"):
        assert command in out.stdout
    version = subprocess.run(
        [sys.executable, "-m", "gust", "--version"], capture_output=True, text=True, check=True
    )
    assert "0.2.0" in version.stdout


def test_usage_errors_exit_2_with_a_message() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gust", "task", "run", "--file", "x.py"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "Missing option '--dag'" in out.stderr


def test_task_decorator_forms_keep_an_ordinary_method() -> None:
    class D(Dag):
        def __init__(self) -> None:
            super().__init__(schedule="@daily", on_finished_callback="cb", owner="me")

        @task
        def a(self, ctx: dict) -> int:
            return ctx["n"] + 1

        @task()
        def b(self, ctx: dict) -> None: ...

        @task(downstream="a", save=True)
        def c(self, ctx: dict) -> None: ...

        @task(downstream=["a", "b"])
        def d(self, ctx: dict) -> None: ...

    dag = D()
    assert dag.a({"n": 1}) == 2  # callable as a plain method in a unit test
    assert getattr(D.a, TASK_ATTR) == TaskOptions()
    assert getattr(D.b, TASK_ATTR) == TaskOptions()
    assert getattr(D.c, TASK_ATTR) == TaskOptions(("a",), True)
    assert getattr(D.d, TASK_ATTR) == TaskOptions(("a", "b"), False)
    assert dag.schedule == "@daily" and dag.on_finished_callback == "cb"
    assert dag.options == {"schedule": "@daily", "on_finished_callback": "cb", "owner": "me"}

    class NoInit(Dag):
        pass

    assert NoInit().options == {"schedule": None, "on_finished_callback": None}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"downstream": 3}, "downstream"),
        ({"downstream": ["a", 1]}, "downstream"),
        ({"save": "yes"}, "save"),
    ],
)
def test_task_decorator_rejects_bad_options(kwargs: dict, message: str) -> None:
    with pytest.raises(gust.TaskOptionError, match=message) as info:
        task(**kwargs)
    assert isinstance(info.value, TypeError)  # what earlier releases raised


def test_runtime_calls_outside_a_task_are_clear(capsys: pytest.CaptureFixture[str]) -> None:
    gust.log("hello from a unit test", level="warning")
    assert capsys.readouterr().err == "[gust warning] hello from a unit test\n"
    with pytest.raises(gust.NotInTaskError, match="get_secret_by_name needs a host"):
        gust.get_secret_by_name("X")
    with pytest.raises(gust.NotInTaskError, match="get_task_by_name_run needs a host"):
        gust.get_task_by_name_run("t", 1)


def test_gust_help_points_at_the_harness() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gust", "--help"], capture_output=True, text=True, check=True
    )
    assert "gust harness DAG_FILE" in out.stdout
    assert "python -m gust.harness" in out.stdout
    assert re.search(r"harness +Run a DAG locally as Gust would", out.stdout)


_RUNTIME_MODULES = [
    "gust",
    "gust.errors",
    "gust.protocol",
    "gust._channel",
    "gust.calls",
    "gust.masking",
    "gust.sandbox",
    "gust.values",
    "gust.invoke",
    "gust.runtime",
    "gust.commands",
    "gust.dag",
    "gust._entry",
    "gust.cli",
    "gust._logbridge",
    "gust._loghandler",
]


def test_every_error_of_the_runtime_is_a_gust_error() -> None:
    import importlib

    from gust.sandbox import TaskInterrupted

    found = []
    for name in _RUNTIME_MODULES:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == name
            ):
                found.append(value)
    assert len(found) >= 10
    # A signal is not an error: like KeyboardInterrupt it must pass `except Exception`.
    errors = [cls for cls in found if cls is not TaskInterrupted]
    assert [cls for cls in errors if not issubclass(cls, gust.GustError)] == []
    assert not issubclass(TaskInterrupted, Exception)


def test_every_failure_of_a_call_is_a_call_error() -> None:
    for cls in (
        gust.HostGoneError,
        gust.CallTimeoutError,
        gust.HostProtocolError,
        gust.NotInTaskError,
    ):
        assert issubclass(cls, gust.CallError), cls
    refused = gust.CallError.refused("get_secret_by_name", "db_down")
    assert (refused.op, refused.error) == ("get_secret_by_name", "db_down")
    assert str(refused) == "get_secret_by_name failed: host answered 'db_down'"


def test_log_levels_outside_a_task(capsys: pytest.CaptureFixture[str]) -> None:
    gust.log("loud", level="ERROR")
    assert capsys.readouterr().err == "[gust error] loud\n"
    with pytest.raises(gust.LogLevelError, match="not 'trace'"):
        gust.log("x", level="trace")
    with pytest.raises(ValueError, match="one of debug, info, warning, error, critical"):
        gust.log("x", level=20)
