"""run_dag / run_plan through the library API, with an observer watching the run, and the
human view rendered into a string."""

from __future__ import annotations

import glob
import io
import json
import os
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _host import REPO, DagWriter

from gust.harness import HumanView, RunObserver, UsageError, load_store, parse_dag_file, run_dag
from gust.harness.host import default_gust_cmd
from gust.harness.run import run_plan

DAGS = REPO / "harness" / "dags"
STORE = REPO / "harness" / "store.json"


class Recorder(RunObserver):
    """Keeps every hook call, and how many tasks ran at once."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def task_started(self, name: str, attempt: int) -> None:
        with self.lock:
            self.calls.append(("task_started", name, attempt))
            self.running += 1
            self.peak = max(self.peak, self.running)

    def task_log(self, name: str, entry: Any) -> None:
        with self.lock:
            self.calls.append(("task_log", name, entry["msg"]))

    def task_retrying(self, name: str, attempt: int, outcome: Any, delay: float) -> None:
        with self.lock:
            self.calls.append(("task_retrying", name, attempt, delay))

    def task_finished(self, report: Any) -> None:
        with self.lock:
            if report.attempts:
                self.running -= 1
            self.calls.append(("task_finished", report.name, report.status))

    def callback_started(self, fn: str, status: str) -> None:
        self.calls.append(("callback_started", fn, status))

    def callback_log(self, fn: str, entry: Any) -> None:
        self.calls.append(("callback_log", fn, entry["msg"]))

    def callback_finished(self, report: Any) -> None:
        self.calls.append(("callback_finished", report.fn, report.status))

    def run_finished(self, report: Any) -> None:
        self.calls.append(("run_finished", report.status))


def test_hello_world_through_the_library_and_its_json_report() -> None:
    # run 5 is not in the store: prepare sees this run's hello, not the store's
    seen = Recorder()
    report = run_dag(str(DAGS / "hello_world.py"), store=str(STORE), observer=seen, run_id=5)
    assert report.exit_code == 0
    assert seen.calls == [
        ("task_started", "hello", 1),
        ("task_log", "hello", "token found: True (***)"),
        ("task_finished", "hello", "ok"),
        ("task_started", "prepare", 1),
        ("task_log", "prepare", "hello, world"),
        ("task_finished", "prepare", "ok"),
        ("callback_started", "done_my_run", "ok"),
        ("callback_log", "done_my_run", "run 5 finished with status ok"),
        ("callback_finished", "done_my_run", "ok"),
        ("run_finished", "ok"),
    ]
    # The report as --json and --report write it.
    data = json.loads(report.to_text())
    assert list(data) == [
        "dag", "mod", "file", "run_id", "status", "duration_s", "tasks", "callback", "graph",
    ]  # fmt: skip
    assert (data["dag"], data["mod"], data["run_id"], data["status"]) == (
        "hello_world",
        "HelloWorld",
        5,
        "ok",
    )
    assert data["file"] == str(DAGS / "hello_world.py")
    assert list(data["tasks"]) == ["hello", "prepare"]
    hello = data["tasks"]["hello"]
    assert list(hello) == [
        "status", "attempts", "duration_s", "value", "error", "logs", "exit_code", "warnings",
        "retry_delays", "spans", "stderr_tail",
    ]  # fmt: skip
    assert hello["value"] == {"greeting": "hello", "run_id": 5}
    assert (hello["status"], hello["attempts"], hello["error"], hello["exit_code"]) == (
        "ok",
        1,
        None,
        0,
    )
    assert [set(e) for e in hello["logs"]] == [{"t", "level", "msg", "attempt"}]
    assert hello["logs"][0]["msg"] == "token found: True (***)"
    assert data["tasks"]["prepare"]["value"] == {"said": "hello, world"}
    callback = data["callback"]
    assert callback["fn"] == "done_my_run"
    assert (callback["run_status"], callback["status"], callback["exit_code"]) == ("ok", "ok", 0)
    assert [e["msg"] for e in callback["logs"]] == ["run 5 finished with status ok"]


def test_failing_skips_downstream_without_starting_it_runs_the_rest_and_reports_error() -> None:
    seen = Recorder()
    report = run_dag(str(DAGS / "failing.py"), store=load_store(STORE), observer=seen)
    assert report.exit_code == 1 and report.status == "error"
    assert ("task_started", "publish", 1) not in seen.calls
    assert ("task_finished", "publish", "upstream_failed") in seen.calls
    assert ("task_finished", "summarize", "ok") in seen.calls
    assert ("callback_started", "report", "error") in seen.calls
    tasks = json.loads(report.to_text())["tasks"]
    assert {n: t["status"] for n, t in tasks.items()} == {
        "extract": "error",
        "publish": "upstream_failed",
        "audit": "ok",
        "summarize": "ok",
    }
    extract = tasks["extract"]
    assert extract["error"]["message"] == "Task execution failed"
    assert extract["error"]["type"] == "ValueError"
    assert extract["error"]["details"] == "the source table is empty"
    assert [e["msg"] for e in extract["logs"]] == ["connecting to ***"]  # a json secret, masked
    publish = tasks["publish"]
    assert (publish["attempts"], publish["logs"], publish["exit_code"]) == (0, [], None)
    assert publish["error"] == {"message": "upstream task(s) did not succeed: extract"}
    assert tasks["audit"]["logs"][0]["level"] == "warning"
    assert report.callback is not None
    assert (report.callback.run_status, report.callback.status) == ("error", "ok")
    assert [e["msg"] for e in report.callback.logs] == ["run 1 ended with status error"]


def test_diamond_runs_its_four_middle_tasks_at_once() -> None:
    seen = Recorder()
    report = run_dag(str(DAGS / "diamond.py"), max_parallel=4, observer=seen)
    assert report.exit_code == 0
    assert report.stages == [["source"], ["north", "east", "south", "west"], ["sink"]]
    assert [t.status for t in report.tasks.values()] == ["ok"] * 6
    assert seen.peak == 4
    # Each middle task sleeps a second: their processes ran at once when every one of them
    # started before any of them ended (no clock bound, so a loaded machine cannot fail it).
    spans = [report.tasks[name].spans[0] for name in ("north", "east", "south", "west")]
    assert max(s["start_s"] for s in spans) < min(s["end_s"] for s in spans), spans
    assert report.tasks["sink"].value == {
        "total": 36,
        "parts": {"north": 3, "east": 7, "south": 11, "west": 15},
    }
    assert report.callback is None


def test_four_retries_wait_s_2s_4s_8s(write_dag: DagWriter) -> None:
    dag = write_dag(
        "always.py",
        """\
        from gust import Dag, task

        class Always(Dag):
            @task
            def fails(self, ctx):
                raise RuntimeError("no")
        """,
    )
    seen = Recorder()
    report = run_dag(str(dag), retries=4, backoff=0.05, observer=seen)
    fails = report.tasks["fails"]
    assert (report.exit_code, fails.status, fails.attempts) == (1, "error", 5)
    delays = [0.05, 0.1, 0.2, 0.4]
    assert fails.retry_delays == delays
    retrying = [c for c in seen.calls if c[0] == "task_retrying"]
    assert retrying == [("task_retrying", "fails", n, d) for n, d in enumerate(delays, 1)]
    assert [c for c in seen.calls if c[0] == "task_started"] == [
        ("task_started", "fails", n) for n in range(1, 6)
    ]
    # Each next attempt really waited its delay (a lower bound only: no clock can fail it).
    for delay, before, after in zip(delays, fails.spans, fails.spans[1:], strict=False):
        assert after["start_s"] - before["end_s"] >= delay - 0.002, (delay, before, after)


def test_interrupting_a_run_kills_its_tasks_and_removes_the_copy(tmp_path: Path) -> None:
    dag = tmp_path / "slow_one.py"
    dag.write_text(
        textwrap.dedent(
            """\
            import os, time
            from gust import Dag, log, task

            def note_pid():
                with open(f"{os.getpid()}.pid", "w") as f:
                    f.write("")

            class SlowOne(Dag):
                @task
                def talks(self, ctx):
                    note_pid()
                    time.sleep(0.5)
                    log("hi")
                    time.sleep(30)

                @task
                def sleeps(self, ctx):
                    note_pid()
                    time.sleep(30)
            """
        )
    )

    class Interrupt(RunObserver):
        def task_log(self, name: str, entry: Any) -> None:
            raise KeyboardInterrupt

    pattern = os.path.join(tempfile.gettempdir(), "gust_py_dag_*_slow_one.py")
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_dag(str(dag), observer=Interrupt(), max_parallel=2)
    assert time.monotonic() - start < 10
    assert glob.glob(pattern) == []
    pids = [int(p.stem) for p in tmp_path.glob("*.pid")]
    assert len(pids) == 2
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_human_view_colours_and_live_line_on_a_terminal() -> None:
    out = io.StringIO()
    run_dag(
        str(DAGS / "failing.py"),
        store=str(STORE),
        observer=HumanView(out, color=True, live=True),
    )
    text = out.getvalue()
    assert "\x1b[32m+ ok\x1b[0m" in text  # a StringIO has no encoding: ASCII marks
    assert "\x1b[31m" in text  # the failed task in red
    assert "\x1b[33mWARNING auditing yesterday's load\x1b[0m" in text
    assert "\x1b[36mrunning: " in text
    assert "\r\x1b[K" in text  # the live line is redrawn in place


def test_run_plan_refuses_bad_options() -> None:
    plan = parse_dag_file(str(DAGS / "hello_world.py"), default_gust_cmd())
    for kwargs, word in [
        ({"retries": -1}, "retries"),
        ({"max_parallel": 0}, "max-parallel"),
        ({"timeout": -1.0}, "timeout"),
        ({"backoff": float("nan")}, "backoff"),
        ({"task": "ghost"}, "ghost"),
    ]:
        with pytest.raises(UsageError, match=word):
            run_plan(plan, **kwargs)


def test_the_default_parallelism_rule() -> None:
    from gust.harness.run import MAX_DEFAULT_PARALLEL, MEMORY_PER_TASK, default_max_parallel

    assert default_max_parallel(cpus=2, available=None) == 8
    assert default_max_parallel(cpus=2, available=3 * MEMORY_PER_TASK) == 3  # memory binds
    assert default_max_parallel(cpus=2, available=0) == 1  # never less than one
    assert default_max_parallel(cpus=64, available=None) == MAX_DEFAULT_PARALLEL
    assert default_max_parallel(cpus=0, available=None) == 4
    assert default_max_parallel() >= 1
