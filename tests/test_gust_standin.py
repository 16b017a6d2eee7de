"""Our CLI under Gust's own adapter, played on a real Erlang port by ../shared/gust-standin.

These tests show what Gust itself would record. They skip, saying why, where elixir (Debian's
`elixir` and `erlang-jiffy`) or the stand-in is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STANDIN = REPO.parent / "shared" / "gust-standin" / "standin.exs"
GUST_EXE = Path(sys.executable).parent / "gust"
HELLO = REPO / "harness" / "dags" / "hello_world.py"
BASIC = REPO / "tests" / "dags" / "basic.py"

pytestmark = [
    pytest.mark.skipif(shutil.which("elixir") is None, reason="elixir is not installed"),
    pytest.mark.skipif(not STANDIN.exists(), reason=f"no Gust stand-in at {STANDIN}"),
    pytest.mark.skipif(not GUST_EXE.exists(), reason=f"no gust console script at {GUST_EXE}"),
]

STORE = {
    "secrets": {"GREETING_TOKEN": {"id": "s1", "value_type": "string", "value": "hunter2-token"}},
    "tasks": {"hello": {"id": 11, "result": {"greeting": "hello", "run_id": 1}}},
}


def standin(*args: str, tmp_path: Path | None = None) -> dict:
    out = subprocess.run(
        ["elixir", str(STANDIN), *args], capture_output=True, text=True, timeout=60
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no verdict from the stand-in: {out.stdout!r} {out.stderr!r}"
    return json.loads(lines[-1])


def task_verdict(tmp_path: Path, file: Path, mod: str, task: str, ctx: str = '{"run_id": 1}'):
    store = tmp_path / "store.json"
    store.write_text(json.dumps(STORE))
    return standin("task", str(GUST_EXE), str(file), mod, task, ctx, str(store))


def test_example_tasks_succeed_under_gust(tmp_path: Path) -> None:
    hello = task_verdict(tmp_path, HELLO, "HelloWorld", "hello")
    assert hello["outcome"] == "ok", hello
    assert hello["value"] == {"greeting": "hello", "run_id": 1}
    assert hello["pid_first"] is True and isinstance(hello["pid"], int)
    assert hello["warnings"] == []
    assert hello["logs"] == [{"level": "info", "msg": "token found: True (***)"}]
    prepare = task_verdict(tmp_path, HELLO, "HelloWorld", "prepare")
    assert prepare["outcome"] == "ok", prepare
    assert prepare["value"] == {"said": "hello, world"}
    assert prepare["warnings"] == []


def test_failure_reaches_gust_with_its_trace(tmp_path: Path) -> None:
    verdict = task_verdict(tmp_path, BASIC, "Basic", "fails")
    assert verdict["outcome"] == "error", verdict
    assert verdict["reason"].startswith("task_failed: Task execution failed: ValueError: the thing")
    assert 'raise ValueError("the thing broke")' in verdict["reason"]
    assert verdict["logs"] == [{"level": "info", "msg": "about to fail"}]
    # Our final `result ok:false` is unknown to Gust today, and only that: nothing else is lost.
    assert len(verdict["warnings"]) == 1
    assert "Received unknown port message" in verdict["warnings"][0]


def test_pre_task_error_reaches_gust(tmp_path: Path) -> None:
    verdict = task_verdict(tmp_path, BASIC, "Basic", "nope")
    assert verdict["outcome"] == "error", verdict
    assert "Task 'nope' not found on dag 'Basic'" in verdict["reason"]
    bad_ctx = task_verdict(tmp_path, BASIC, "Basic", "first", "{oops")
    assert bad_ctx["outcome"] == "error"
    assert "ctx-json is not valid JSON" in bad_ctx["reason"]


def test_mapped_task_ctx_with_params(tmp_path: Path) -> None:
    verdict = task_verdict(tmp_path, BASIC, "Basic", "first", '{"run_id": 3, "params": {"k": 1}}')
    assert verdict["outcome"] == "ok", verdict
    assert verdict["value"]["ctx"] == {"run_id": 3, "params": {"k": 1}}


def test_callback_under_gust() -> None:
    ok = standin("done", str(GUST_EXE), str(HELLO), "done_my_run", "ok", "1")
    assert ok["outcome"] == "ok" and ok["exit"] == 0, ok
    failing = standin("done", str(GUST_EXE), str(BASIC), "finished_badly", "error", "1")
    assert failing["outcome"] == "error" and failing["exit"] == 1, failing
