"""`gust task run` through the real CLI: frame order, exact messages, calls, importability."""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

from _host import DAGS, Host

BASIC = DAGS / "basic.py"

SECRETS = {"TOKEN": {"id": "sec-1", "name": "TOKEN", "value_type": "string", "value": "tok-9876"}}
TASKS = {"first": {"id": 11, "result": {"n": 1}}}


def gust_host(frame: dict) -> dict:
    """Answers exactly as Gust's adapter does."""
    if frame["op"] == "get_secret_by_name":
        if frame["name"] in SECRETS:
            return {"type": "reply", "ok": True, "data": SECRETS[frame["name"]]}
        if frame["name"] == "BROKEN":
            return {"type": "reply", "ok": False, "error": "database_unavailable"}
        return {"type": "reply", "ok": False, "error": "secret_not_found"}
    if frame["name"] in TASKS:
        return {"type": "reply", "ok": True, "data": TASKS[frame["name"]]}
    return {"type": "reply", "ok": False, "error": "task_not_found"}


def assert_failure(ex, message: str, exc_type: str | None = None) -> dict:
    assert ex.returncode == 0, ex.stderr
    assert ex.types()[0] == "start"
    assert ex.types()[-2:] == ["error", "result"], ex.types()
    error, result = ex.frames[-2], ex.frames[-1]
    assert error["ok"] is False and isinstance(error["trace"], str)
    assert result["ok"] is False
    assert result["error"]["message"] == message, result
    assert message in error["trace"]
    if exc_type is not None:
        assert result["error"]["type"] == exc_type
        assert isinstance(result["error"]["details"], str)
        assert "traceback" in result["error"]
    return result["error"]


def test_success_sequence_start_first_with_real_pid(gust_task: Callable[..., Host]) -> None:
    ex = gust_task(BASIC, "Basic", "first", '{"run_id": 7, "params": {"x": [1, 2]}}')
    assert ex.returncode == 0, ex.stderr
    assert ex.types() == ["start", "log", "result"]
    assert ex.frames[0] == {"type": "start", "pid": ex.pid}
    assert ex.frames[1] == {"type": "log", "level": "debug", "msg": "first runs"}
    assert ex.result == {
        "type": "result",
        "ok": True,
        "data": {"value": {"ctx": {"run_id": 7, "params": {"x": [1, 2]}}, "helper": "from beside"}},
    }


def test_calls_use_gusts_reply_shapes_and_not_found_is_none(gust_task: Callable[..., Host]) -> None:
    ex = gust_task(BASIC, "Basic", "second", answers=gust_host)
    assert ex.returncode == 0, ex.stderr
    calls = [f for f in ex.frames if f["type"] == "call"]
    assert calls == [
        {"type": "call", "op": "get_task_by_name_run", "run_id": 1, "name": "first"},
        {"type": "call", "op": "get_task_by_name_run", "run_id": 1, "name": "nope"},
        {"type": "call", "op": "get_secret_by_name", "name": "TOKEN"},
        {"type": "call", "op": "get_secret_by_name", "name": "MISSING"},
    ]
    assert ex.result["data"]["value"] == {
        "up": {"id": 11, "result": {"n": 1}},
        "missing": None,
        "secret_id": "sec-1",
        "no_secret": None,
    }


def test_other_host_error_raises_and_names_it(gust_task: Callable[..., Host]) -> None:
    ex = gust_task(BASIC, "Basic", "host_error", answers=gust_host)
    error = assert_failure(ex, "Task execution failed", "gust.errors.CallError")
    assert "database_unavailable" in error["details"]


def test_task_exception_is_error_then_result(gust_task: Callable[..., Host]) -> None:
    ex = gust_task(BASIC, "Basic", "fails")
    assert ex.types() == ["start", "log", "error", "result"]
    error = assert_failure(ex, "Task execution failed", "ValueError")
    assert error["details"] == "the thing broke"
    assert 'raise ValueError("the thing broke")' in error["traceback"]
    assert "gust/runtime.py" not in error["traceback"], "gust's own frames are noise"
    assert "ValueError: the thing broke" in ex.frames[-2]["trace"]


def test_ctx_json_is_optional(gust_task: Callable[..., Host]) -> None:
    ex = gust_task(BASIC, "Basic", "first", None)
    assert ex.result["data"]["value"]["ctx"] == {}


def test_missing_file(tmp_path: Path, gust_task: Callable[..., Host]) -> None:
    missing = tmp_path / "nowhere.py"
    error = assert_failure(
        gust_task(missing, "Basic", "first"), f"Failed to load module from {missing}"
    )
    assert error["type"] == "FileNotFoundError"


def test_syntax_error_names_the_line(tmp_path: Path, gust_task: Callable[..., Host]) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from gust import Dag\n\nclass Bad(Dag)\n    pass\n")
    error = assert_failure(gust_task(bad, "Bad", "t"), f"Failed to load module from {bad}", None)
    assert error["type"] == "SyntaxError"
    assert "line 3" in error["traceback"]


def test_import_error_of_the_module(tmp_path: Path, gust_task: Callable[..., Host]) -> None:
    bad = tmp_path / "imports.py"
    bad.write_text("import no_such_module_for_gust\n")
    error = assert_failure(gust_task(bad, "X", "t"), f"Failed to load module from {bad}")
    assert error["type"] == "ModuleNotFoundError"
    assert "no_such_module_for_gust" in error["details"]


def test_unknown_dag_task_and_not_callable(gust_task: Callable[..., Host]) -> None:
    assert_failure(gust_task(BASIC, "Nope", "first"), "Dag 'Nope' not found in module")
    assert_failure(gust_task(BASIC, "Basic", "nope"), "Task 'nope' not found on dag 'Basic'")
    assert_failure(
        gust_task(BASIC, "Basic", "not_callable"),
        "Task 'not_callable' on dag 'Basic' is not callable",
    )


def test_dag_constructor_failure_is_reported(gust_task: Callable[..., Host]) -> None:
    error = assert_failure(gust_task(BASIC, "Broken", "t"), "Dag 'Broken' could not be created")
    assert error["details"] == "cannot build this dag"


def test_plain_class_and_plain_callable_attribute_run(gust_task: Callable[..., Host]) -> None:
    assert gust_task(BASIC, "Plain", "run").result["data"]["value"] == {"plain": True}
    ex = gust_task(BASIC, "Basic", "plain_method")
    assert ex.result["data"]["value"] == "not a task but callable"
    assert gust_task(BASIC, "Second", "only").result["data"]["value"] == "second dag"


def test_none_result(gust_task: Callable[..., Host]) -> None:
    assert gust_task(BASIC, "Basic", "returns_none").result == {
        "type": "result",
        "ok": True,
        "data": {"value": None},
    }


def test_working_directory_is_importable(tmp_path: Path, gust_task: Callable[..., Host]) -> None:
    dag_dir = tmp_path / "dags"
    work = tmp_path / "work"
    dag_dir.mkdir()
    work.mkdir()
    (work / "cwd_helper.py").write_text("VALUE = 'from cwd'\n")
    (dag_dir / "uses_cwd.py").write_text(
        "from cwd_helper import VALUE\nfrom gust import Dag, task\n\n"
        "class UsesCwd(Dag):\n    @task\n    def t(self, ctx):\n        return VALUE\n"
    )
    ex = gust_task(dag_dir / "uses_cwd.py", "UsesCwd", "t", cwd=work)
    assert ex.result["data"]["value"] == "from cwd"


def test_start_arrives_even_when_the_import_hangs(gust_task: Callable[..., Host]) -> None:
    def cancel(host: Host, frame: dict) -> None:
        if frame["type"] == "start":
            host.signal(signal.SIGKILL)  # what Gust does to cancel

    ex = gust_task(DAGS / "hangs_on_import.py", "Hangs", "t", on_frame=cancel, timeout=10)
    assert ex.frames == [{"type": "start", "pid": ex.pid}]
    assert ex.returncode == -signal.SIGKILL


def test_runs_from_a_temp_copy_named_like_gusts(gust_task: Callable[..., Host]) -> None:
    copy = Path(tempfile.gettempdir()) / "gust_py_dag_4242_basic.py"
    shutil.copy(BASIC, copy)
    try:
        # Gust runs with the DAGs folder as working directory: helpers there stay importable.
        ex = gust_task(copy, "Basic", "first", cwd=DAGS)
        assert ex.result["data"]["value"]["helper"] == "from beside"
    finally:
        copy.unlink()


def test_stdout_holds_only_frames_even_with_user_prints(
    tmp_path: Path, gust_task: Callable[..., Host]
) -> None:
    dag = tmp_path / "printer.py"
    dag.write_text(
        "print('at import')\nfrom gust import Dag, task\n\n"
        "class Printer(Dag):\n    @task\n    def t(self, ctx):\n        print('in task')\n"
        "        return 1\n"
    )
    ex = gust_task(dag, "Printer", "t")
    assert ex.types() == ["start", "log", "log", "result"]
    assert ex.logs() == [("info", "at import"), ("info", "in task")]
    assert json.loads(json.dumps(ex.frames)) == ex.frames
