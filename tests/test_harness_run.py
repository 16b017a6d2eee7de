"""run_dag / run_plan through the library API, with an observer watching the run, and the
human view rendered into a string."""

from __future__ import annotations

import glob
import io
import json
import os
import sys
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
from gust.harness.run import RunControl, run_plan

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
    threads = set(threading.enumerate())
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_dag(str(dag), observer=Interrupt(), max_parallel=2)
    assert time.monotonic() - start < 10
    assert set(threading.enumerate()) == threads  # the exception went on after the workers ended
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


# -- a run stopped by a RunControl ------------------------------------------------------------


class Interrupts(Recorder):
    """Interrupts the run ``times`` times when a task logs "ready"; keeps run_interrupted."""

    def __init__(self, control: RunControl, times: int = 1) -> None:
        super().__init__()
        self.control, self.times = control, times
        self.answers: list[bool] = []

    def task_log(self, name: str, entry: Any) -> None:
        super().task_log(name, entry)
        if entry["msg"] == "ready":
            self.answers += [self.control.interrupt() for _ in range(self.times)]

    def run_interrupted(self, hard: bool, grace: float) -> None:
        with self.lock:
            self.calls.append(("run_interrupted", hard, grace))


INTERRUPTED = """\
import time
from gust import Dag, log, task

class Stopped(Dag):
    def __init__(self):
        super().__init__(on_finished_callback="done")

    @task(downstream="later")
    def slow(self, ctx):
        try:
            log("ready")
            time.sleep(30)
        finally:
            open("cleaned_up", "w").close()

    @task
    def queued(self, ctx):
        open("queued_ran", "w").close()

    @task
    def later(self, ctx):
        open("later_ran", "w").close()

    def done(self, status, run):
        open("callback_ran", "w").close()
"""


def test_an_interrupt_stops_the_running_task_gracefully_and_starts_nothing_more(
    write_dag: DagWriter, tmp_path: Path
) -> None:
    dag = write_dag("stopped.py", INTERRUPTED)
    control = RunControl()
    assert control.interrupt() is False  # no run attached yet
    seen = Interrupts(control)
    start = time.monotonic()
    report = run_dag(str(dag), control=control, observer=seen, max_parallel=1, grace=5, retries=2)
    assert time.monotonic() - start < 20  # the 30 s sleep was cut short
    assert (report.status, report.exit_code, report.callback) == ("interrupted", 130, None)
    assert seen.answers == [True] and control.requests == 1
    assert ("run_interrupted", False, 5) in seen.calls
    slow = report.tasks["slow"]
    # SIGTERM, not SIGKILL: the task's finally block ran; no retry after an interrupt.
    assert (slow.status, slow.attempts, slow.retry_delays) == ("interrupted", 1, [])
    assert slow.error is not None
    assert slow.error["message"] == "interrupted: its process group got SIGTERM"
    assert "where" not in slow.error
    assert (tmp_path / "cleaned_up").exists()
    # Both the task queued behind it in its stage and the next stage's task never started.
    for name in ("queued", "later"):
        task_report = report.tasks[name]
        assert (task_report.name, task_report.status, task_report.attempts) == (
            name,
            "interrupted",
            0,
        )
        assert task_report.error == {"message": "the run was interrupted before this task started"}
        assert ("task_finished", name, "interrupted") in seen.calls
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".py"] == ["cleaned_up"]
    assert control.interrupt() is False  # the run detached itself when it ended


def test_a_second_interrupt_kills_at_once_a_task_that_ignores_sigterm(write_dag: DagWriter) -> None:
    dag = write_dag(
        "stubborn.py",
        """\
        import signal, time
        from gust import Dag, log, task

        class Stubborn(Dag):
            @task
            def stubborn(self, ctx):
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                log("ready")
                time.sleep(30)
        """,
    )
    control = RunControl()
    seen = Interrupts(control, times=2)
    start = time.monotonic()
    report = run_dag(str(dag), control=control, observer=seen, grace=30)
    assert time.monotonic() - start < 20  # neither the sleep nor the 30 s grace was waited out
    assert seen.answers == [True, True] and control.requests == 2
    interrupted = [c for c in seen.calls if c[0] == "run_interrupted"]
    assert interrupted == [("run_interrupted", False, 30), ("run_interrupted", True, 30)]
    assert report.status == "interrupted"
    assert report.tasks["stubborn"].status == "interrupted"


# -- retries, the callback, --task ------------------------------------------------------------


class Watcher(Recorder):
    """A Recorder that also keeps stderr lines, retried outcomes and run_started."""

    def __init__(self) -> None:
        super().__init__()
        self.retried: list[tuple[str, int, str]] = []
        self.started: list[tuple[Any, ...]] = []

    def run_started(self, plan: Any, run_id: int, stages: Any) -> None:
        self.started.append((plan.mod, run_id, [list(s) for s in stages]))

    def task_stderr(self, name: str, line: str) -> None:
        with self.lock:
            self.calls.append(("task_stderr", name, line))

    def task_retrying(self, name: str, attempt: int, outcome: Any, delay: float) -> None:
        super().task_retrying(name, attempt, outcome, delay)
        with self.lock:
            self.retried.append((name, attempt, outcome.error["details"]))

    def callback_stderr(self, fn: str, line: str) -> None:
        self.calls.append(("callback_stderr", fn, line))


FLAKY = """\
import os, sys
from gust import Dag, get_task_by_name_run, log, task

class Flaky(Dag):
    @task(downstream="after", save=True)
    def flaky(self, ctx):
        first = not os.path.exists("tried")
        open("tried", "w").close()
        get_task_by_name_run("ghost", ctx["run_id"])
        log("first try" if first else "second try")
        print("stderr of the " + ("first" if first else "second") + " try", file=sys.stderr)
        if first:
            raise RuntimeError("not yet")
        return {"n": 2}

    @task
    def after(self, ctx):
        return get_task_by_name_run("flaky", ctx["run_id"])
"""


def test_a_task_that_fails_once_then_succeeds_keeps_both_attempts_in_its_report(
    write_dag: DagWriter,
) -> None:
    dag = write_dag("flaky.py", FLAKY)
    seen = Watcher()
    before = time.monotonic()
    # A second attempt a second after the first: its log's time counted from the run's start
    # is after the span's start, counted from the child's start it would be long before.
    report = run_dag(str(dag), retries=2, backoff=1.0, observer=seen, run_id=7)
    elapsed = time.monotonic() - before
    assert (report.status, report.exit_code) == ("ok", 0)
    flaky = report.tasks["flaky"]
    assert (flaky.status, flaky.attempts, flaky.value, flaky.error) == ("ok", 2, {"n": 2}, None)
    assert flaky.exit_code == 0
    assert flaky.retry_delays == [1.0]
    assert seen.retried == [("flaky", 1, "not yet")]
    assert [(e["msg"], e["attempt"]) for e in flaky.logs] == [("first try", 1), ("second try", 2)]
    ghost = "get_task_by_name_run('ghost', 7) found no task"
    assert [w.split(":", 1)[0] for w in flaky.warnings] == ["attempt 1", "attempt 2"]
    assert all(w.split(": ", 1)[1].startswith(ghost) for w in flaky.warnings), flaky.warnings
    # stderr: every line reached the observer; the report keeps the last attempt's tail.
    assert ("task_stderr", "flaky", "stderr of the first try") in seen.calls
    assert ("task_stderr", "flaky", "stderr of the second try") in seen.calls
    assert flaky.stderr_tail == "stderr of the second try"
    # One span per attempt, on the run's time axis (milliseconds), in order.
    assert [{k: s[k] for k in ("attempt", "status", "exit_code")} for s in flaky.spans] == [
        {"attempt": 1, "status": "error", "exit_code": 0},
        {"attempt": 2, "status": "ok", "exit_code": 0},
    ]
    times = [t for s in flaky.spans for t in (s["start_s"], s["end_s"])]
    assert times == sorted(times) and times[0] >= 0 and times[-1] <= round(report.duration_s, 3)
    assert all(t == round(t, 3) for t in times)
    assert flaky.spans[1]["start_s"] >= flaky.spans[0]["end_s"] + 1.0 - 0.002  # ms rounding
    assert flaky.spans[1]["start_s"] <= flaky.logs[1]["t"] <= flaky.spans[1]["end_s"]
    assert 0 < flaky.duration_s <= report.duration_s <= elapsed
    # The downstream task reads the saved value of the attempt that succeeded; the first task
    # of a run with an empty store gets id 1, kept over its retries.
    assert report.tasks["after"].value == {"id": 1, "result": {"n": 2}}
    assert report.tasks["after"].warnings == []
    json.loads(report.to_text())


CALLBACK_FAILS = """\
import sys
from gust import Dag, log, task

class Ends(Dag):
    def __init__(self):
        super().__init__(on_finished_callback="done")

    @task(downstream="both")
    def left(self, ctx):
        if {fail!r}:
            raise RuntimeError("left broke")

    @task(downstream="both")
    def right(self, ctx):
        if {fail!r}:
            raise RuntimeError("right broke")

    @task
    def both(self, ctx):
        log("joining", level="warning")
        return "joined"

    def done(self, status, run):
        log(f"done with {{status}}", level="warning")
        print("the callback complains", file=sys.stderr)
        raise RuntimeError("callback broke")
"""


def test_a_failing_callback_after_successful_tasks_makes_the_run_callback_failed(
    write_dag: DagWriter,
) -> None:
    dag = write_dag("ends.py", CALLBACK_FAILS.format(fail=False))
    seen = Watcher()
    report = run_dag(str(dag), observer=seen)
    assert [t.status for t in report.tasks.values()] == ["ok"] * 3
    assert (report.status, report.exit_code) == ("callback_failed", 1)
    # Without retries a warning carries no "attempt N: " prefix.
    level_note = (
        "a log line at level 'warning': Gust stores every log line as info (it ignores the level)"
    )
    assert report.tasks["both"].warnings == [level_note]
    callback = report.callback
    assert callback is not None
    assert (callback.fn, callback.run_status, callback.status) == ("done", "ok", "error")
    assert callback.exit_code == 1
    assert callback.error is not None
    assert callback.error["message"] == "exited with status 1; its stderr says why"
    # The traceback names the author's file, not the temp copy the harness ran.
    assert f'File "{dag}", line 26, in done' in callback.error["stderr_tail"]
    assert "gust_py_dag_" not in callback.error["stderr_tail"]
    assert [e["msg"] for e in callback.logs] == ["done with ok"]
    assert callback.warnings == [level_note]
    assert ("callback_stderr", "done", "the callback complains") in seen.calls
    assert seen.calls[-2:] == [
        ("callback_finished", "done", "error"),
        ("run_finished", "callback_failed"),
    ]
    # The callback ran after the last task, within the run.
    last_end = max(s["end_s"] for t in report.tasks.values() for s in t.spans)
    assert last_end <= round(callback.start_s, 3)  # spans are rounded to the millisecond
    assert callback.duration_s > 0 and callback.start_s + callback.duration_s <= report.duration_s


def test_a_task_with_two_failed_upstreams_names_both_and_a_failing_callback_keeps_error(
    write_dag: DagWriter,
) -> None:
    dag = write_dag("ends.py", CALLBACK_FAILS.format(fail=True))
    report = run_dag(str(dag))
    both = report.tasks["both"]
    assert (both.status, both.attempts) == ("upstream_failed", 0)
    assert both.error == {"message": "upstream task(s) did not succeed: left, right"}
    assert (report.status, report.exit_code) == ("error", 1)
    assert report.callback is not None
    assert (report.callback.run_status, report.callback.status) == ("error", "error")


def test_a_task_run_runs_only_that_task_with_upstream_results_from_the_store() -> None:
    seen = Watcher()
    report = run_dag(
        str(DAGS / "hello_world.py"), store=str(STORE), task="prepare", run_id=1, observer=seen
    )
    assert seen.started == [("HelloWorld", 1, [["prepare"]])]
    assert report.stages == [["prepare"]]
    assert list(report.tasks) == ["prepare"]
    assert report.tasks["prepare"].value == {"said": "bonjour, world"}  # the store's run 1
    assert report.callback is None  # the callback belongs to whole runs
    assert (report.status, report.exit_code) == ("ok", 0)
    assert report.graph == {"hello": ["prepare"], "prepare": []}


def test_a_retry_wait_cut_short_by_an_interrupt_starts_no_new_attempt(
    write_dag: DagWriter,
) -> None:
    dag = write_dag(
        "fails.py",
        """\
        from gust import Dag, task

        class Fails(Dag):
            @task
            def fails(self, ctx):
                raise RuntimeError("no")
        """,
    )
    control = RunControl()

    class InterruptOnRetry(Recorder):
        def task_retrying(self, name: str, attempt: int, outcome: Any, delay: float) -> None:
            super().task_retrying(name, attempt, outcome, delay)
            control.interrupt()

    seen = InterruptOnRetry()
    report = run_dag(str(dag), retries=1, control=control, observer=seen)
    fails = report.tasks["fails"]
    assert seen.calls[:3] == [
        ("task_started", "fails", 1),
        ("task_retrying", "fails", 1, 1.0),  # the default backoff: 1 s before the first retry
        ("task_finished", "fails", "error"),
    ]
    assert (fails.status, fails.attempts, fails.retry_delays) == ("error", 1, [1.0])
    assert report.status == "interrupted"


def test_children_see_the_dags_folder_and_no_secret_variables(
    write_dag: DagWriter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag = write_dag(
        "env.py",
        """\
        import os
        from gust import Dag, get_secret_by_name, log, task

        class Env(Dag):
            @task
            def env(self, ctx):
                log("token is " + get_secret_by_name("TOKEN")["value"])
                return {
                    "cwd": os.getcwd(),
                    "uv": os.environ.get("UV_WORKING_DIR"),
                    "secrets": sorted(k for k in os.environ if k.startswith("GUST_SECRET_")),
                    "path": os.environ.get("PATH"),
                }
        """,
    )
    monkeypatch.setenv("GUST_SECRET_LEAKED", "from the harness's own environment")
    report = run_dag(str(dag), environ={"GUST_SECRET_TOKEN": "s3cr3t-token"})
    env = report.tasks["env"]
    assert env.status == "ok", env.error
    # Secrets come only as replies (from ``environ``, here), masked in what the harness keeps.
    assert [e["msg"] for e in env.logs] == ["token is ***"]
    assert env.value == {
        "cwd": os.path.realpath(tmp_path),
        "uv": str(tmp_path),
        "secrets": [],
        "path": os.environ["PATH"],
    }


def test_a_failure_points_at_the_authors_file_and_line(write_dag: DagWriter) -> None:
    dag = write_dag(
        "boom.py",
        """\
        from gust import Dag, task

        def explode():
            raise ValueError("kaboom")

        class Boom(Dag):
            @task
            def boom(self, ctx):
                explode()
        """,
    )
    report = run_dag(str(dag))
    error = report.tasks["boom"].error
    assert error is not None
    assert error["where"] == {"file": str(dag), "line": 4, "function": "explode"}


def test_one_worker_runs_the_tasks_of_a_stage_one_after_the_other(write_dag: DagWriter) -> None:
    dag = write_dag(
        "pair.py",
        """\
        import time
        from gust import Dag, task

        class Pair(Dag):
            @task
            def one(self, ctx):
                time.sleep(0.3)
                return 1

            @task
            def two(self, ctx):
                time.sleep(0.3)
                return 2
        """,
    )
    # run_plan with nothing but the plan: an empty store, this interpreter, no observer.
    report = run_plan(parse_dag_file(str(dag), default_gust_cmd()), max_parallel=1)
    assert report.stages == [["one", "two"]]
    assert [(t.status, t.value) for t in report.tasks.values()] == [("ok", 1), ("ok", 2)]
    one, two = (report.tasks[n].spans[0] for n in ("one", "two"))
    assert one["end_s"] <= two["start_s"] or two["end_s"] <= one["start_s"], (one, two)


def test_record_dir_gets_one_transcript_per_attempt_and_a_failed_write_is_a_warning(
    write_dag: DagWriter, tmp_path: Path
) -> None:
    dag = write_dag("flaky.py", FLAKY)
    record = tmp_path / "rec"
    (record / "y_flaky_after.json").mkdir(parents=True)  # a file cannot be written there
    report = run_dag(str(dag), retries=1, backoff=0, record_dir=str(record))
    assert report.status == "ok"
    assert sorted(p.name for p in record.iterdir()) == [
        "y_flaky_after.json",
        "y_flaky_flaky.json",
        "y_flaky_flaky_attempt2.json",
    ]
    case = json.loads((record / "y_flaky_flaky_attempt2.json").read_text())
    assert case["dag"] == str(dag)
    assert case["argv"][:4] == ["task", "run", "--file", "{dag_file}"]
    kinds = [(s["dir"], s["frame"]["type"]) for s in case["steps"]]
    assert kinds == [("c2h", "start"), ("c2h", "call"), ("h2c", "reply"), ("c2h", "log"),
                     ("c2h", "result")]  # fmt: skip
    (warning,) = report.tasks["after"].warnings
    assert warning.startswith("attempt 1: --record: transcript flaky_after not written: ")


# -- refusals before anything runs, and the default parallelism -------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retries": -1}, "retries must be a whole number, 0 or more, not -1"),
        ({"retries": 1.5}, "retries must be a whole number, 0 or more, not 1.5"),
        ({"retries": True}, "retries must be a whole number, 0 or more, not True"),
        ({"max_parallel": 0}, "max-parallel must be a whole number, 1 or more, not 0"),
        ({"max_parallel": 2.5}, "max-parallel must be a whole number, 1 or more, not 2.5"),
        ({"max_parallel": True}, "max-parallel must be a whole number, 1 or more, not True"),
        ({"timeout": 0}, "timeout must be a positive number, not 0"),
        ({"timeout": float("inf")}, "timeout must be a positive number, not inf"),
        ({"grace": -0.5}, "grace must be zero or more, not -0.5"),
        ({"grace": float("nan")}, "grace must be zero or more, not nan"),
        ({"backoff": -1}, "backoff must be zero or more, not -1"),
        ({"backoff": float("inf")}, "backoff must be zero or more, not inf"),
        # The smallest values allowed pass, so the task is what is refused.
        (
            {
                "retries": 0,
                "max_parallel": 1,
                "grace": 0,
                "backoff": 0,
                "timeout": 0.001,
                "task": "ghost",
            },
            "--task 'ghost': DAG HelloWorld has no such task (its tasks: hello, prepare)",
        ),
    ],
)
def test_run_plan_refuses_each_bad_option_with_its_message(
    kwargs: dict[str, Any], message: str
) -> None:
    plan = parse_dag_file(str(DAGS / "hello_world.py"), default_gust_cmd())
    with pytest.raises(UsageError) as caught:
        run_plan(plan, **kwargs)
    assert str(caught.value) == message


def test_a_task_of_another_dag_class_of_the_file_is_looked_up_in_that_class(
    write_dag: DagWriter,
) -> None:
    dag = write_dag(
        "two.py",
        """\
        from gust import Dag, task

        class Empty(Dag):
            pass

        class Second(Dag):
            @task
            def only(self, ctx):
                return 1
        """,
    )
    with pytest.raises(UsageError) as caught:
        run_dag(str(dag), task="ghost")
    assert str(caught.value) == "--task 'ghost': DAG Empty has no such task (its tasks: none)"
    with pytest.raises(UsageError) as caught:
        run_dag(str(dag), dag="Second", task="ghost")
    assert str(caught.value) == "--task 'ghost': DAG Second has no such task (its tasks: only)"


def test_the_default_parallelism_is_bound_by_memory_available_in_proc_meminfo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gust.harness import run as run_module
    from gust.harness.run import MEMORY_PER_TASK, default_max_parallel

    def fake_open(path: str, *args: Any, **kwargs: Any) -> io.StringIO:
        if path != "/proc/meminfo":
            raise FileNotFoundError(path)
        kib = 3 * MEMORY_PER_TASK // 1024 - 1  # one KiB short of three tasks' worth
        return io.StringIO(f"MemTotal:       16384000 kB\nMemAvailable:   {kib} kB\n")

    monkeypatch.setattr(run_module, "open", fake_open, raising=False)
    assert default_max_parallel(cpus=64) == 2
    # A whole number of tasks, also when the memory is not a multiple of MEMORY_PER_TASK.
    assert default_max_parallel(cpus=2, available=4 * MEMORY_PER_TASK - 1) == 3
    assert type(default_max_parallel(cpus=2, available=4 * MEMORY_PER_TASK - 1)) is int


def test_the_default_parallelism_counts_cpus_without_an_affinity_mask(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gust.harness.run import default_max_parallel

    def no_affinity(pid: int) -> set[int]:
        raise OSError("no affinity here")

    monkeypatch.setattr(os, "sched_getaffinity", no_affinity)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert default_max_parallel(available=None) == 12
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # unknown: one CPU
    assert default_max_parallel(available=None) == 4


WRAPPER = """\
import os, sys
os.environ["STARTED_BY"] = "wrapper"
os.execv(sys.executable, [sys.executable, "-m", "gust", *sys.argv[1:]])
"""


@pytest.mark.parametrize("html", [None, "wrapped.html"])
def test_gust_cmd_starts_the_parse_every_task_and_the_callback(
    write_dag: DagWriter, tmp_path: Path, html: str | None
) -> None:
    wrapper = tmp_path / "wrapper.py"
    wrapper.write_text(WRAPPER)
    dag = write_dag(
        "wrapped.py",
        """\
        import os
        from gust import Dag, log, task

        class Wrapped(Dag):
            def __init__(self):
                super().__init__(on_finished_callback="done")

            @task
            def where(self, ctx):
                return os.environ.get("STARTED_BY")

            def done(self, status, run):
                log(f"callback started by {os.environ.get('STARTED_BY')}")
        """,
    )
    page = None if html is None else tmp_path / html
    report = run_dag(str(dag), gust_cmd=[sys.executable, str(wrapper)], html=page)
    assert report.tasks["where"].value == "wrapper"
    assert report.callback is not None
    assert [e["msg"] for e in report.callback.logs] == ["callback started by wrapper"]


def test_html_writes_the_report_page_and_a_path_that_cannot_be_written_is_refused(
    tmp_path: Path,
) -> None:
    with pytest.raises(UsageError) as caught:
        run_dag(str(DAGS / "hello_world.py"), html=tmp_path)  # a directory
    assert str(caught.value).startswith(f"html {tmp_path}: cannot be written: ")
    page = tmp_path / "run.html"
    report = run_dag(str(DAGS / "hello_world.py"), store=str(STORE), html=page, run_id=5)
    assert report.tasks["hello"].value == {"greeting": "hello", "run_id": 5}
    assert report.tasks["hello"].logs[0]["msg"] == "token found: True (***)"  # from the store
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    embedded = text.split('<script type="application/json" id="gust-report">', 1)[1]
    assert json.loads(embedded.split("</script>", 1)[0]) == json.loads(report.to_text())


def test_with_no_grace_an_interrupt_kills_a_task_still_cleaning_up(write_dag: DagWriter) -> None:
    dag = write_dag(
        "slow_cleanup.py",
        """\
        import signal, time
        from gust import Dag, log, task

        def clean_up_slowly(signum, frame):
            time.sleep(1)
            raise SystemExit(0)

        class SlowCleanup(Dag):
            @task
            def slow(self, ctx):
                signal.signal(signal.SIGTERM, clean_up_slowly)
                log("ready")
                time.sleep(30)
        """,
    )
    control = RunControl()
    report = run_dag(str(dag), control=control, observer=Interrupts(control), grace=0)
    error = report.tasks["slow"].error
    assert error is not None
    assert error["message"] == "interrupted: its process group got SIGTERM, then SIGKILL"
