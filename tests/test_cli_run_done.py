"""`gust run done`: the finished-run callback, as Gust invokes it."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from _host import DAGS, run_gust

BASIC = DAGS / "basic.py"


def done(
    file: Path, dag: str, fn: str, status: str = "ok", run_id: str = "5", flag: str = "--fn-name"
):
    return run_gust(
        "run",
        "done",
        "--file",
        str(file),
        "--dag",
        dag,
        flag,
        fn,
        "--status",
        status,
        "--run-id",
        run_id,
        cwd=DAGS,
    )


@pytest.fixture
def gust_copy():
    """The DAG copied to the temp dir the way Gust does before a run."""
    copy = Path(tempfile.gettempdir()) / "gust_py_dag_77_basic.py"
    shutil.copy(BASIC, copy)
    yield copy
    copy.unlink()


def test_success_exits_0_without_result_frame() -> None:
    ex = done(BASIC, "Basic", "finished", "upstream_failed")
    assert ex.returncode == 0, ex.stderr
    assert "result" not in ex.types() and "start" not in ex.types()
    assert ex.logs() == [("info", 'callback upstream_failed {"run_id": 5}')]
    assert "printed upstream_failed" in ex.stderr


def test_fn_name_alias_and_an_integer_run_id() -> None:
    ex = done(BASIC, "Basic", "finished", "ok", "42", flag="--fn_name")
    assert ex.returncode == 0, ex.stderr
    assert ex.logs() == [("info", 'callback ok {"run_id": 42}')]


@pytest.mark.parametrize("run_id", ["run-abc", "1.5", "", "0x10"])
def test_a_run_id_that_is_not_an_integer_is_a_usage_error(run_id: str) -> None:
    # Gust always sends an integer; both the fast path and click refuse anything else.
    ex = done(BASIC, "Basic", "finished", "ok", run_id)
    assert ex.returncode == 2
    assert ex.frames == []
    assert f"Invalid value for '--run-id': {run_id!r} is not a valid integer" in ex.stderr


def test_file_stem_names_the_dag_of_a_temp_copy(gust_copy: Path) -> None:
    # Gust passes the ORIGINAL file's stem while running the copy.
    ex = done(gust_copy, "basic", "finished", "error")
    assert ex.returncode == 0, ex.stderr
    assert ex.logs() == [("info", 'callback error {"run_id": 5}')]


def test_failure_prints_traceback_and_exits_1() -> None:
    ex = done(BASIC, "Basic", "finished_badly", "error")
    assert ex.returncode == 1
    assert "Traceback (most recent call last)" in ex.stderr
    assert "RuntimeError: callback failed for error" in ex.stderr


@pytest.mark.parametrize(
    ("dag", "fn", "expected"),
    [
        ("Nope", "finished", "Dag 'Nope' not found in module"),
        ("Basic", "nope", "Callback 'nope' not found on dag 'Basic'"),
        ("Basic", "not_callable", "Callback 'not_callable' on dag 'Basic' is not callable"),
    ],
)
def test_unknown_names_are_clear(dag: str, fn: str, expected: str) -> None:
    ex = done(BASIC, dag, fn)
    assert ex.returncode == 1
    assert expected in ex.stderr
