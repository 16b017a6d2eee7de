"""The task child's sandbox (issue 3), proved through the real CLI as a subprocess.

Each test runs ``python -m gust task run`` on a task of ``sandbox_dags/sandbox.py`` under the
test host of ``_host.py`` (independent of ``gust.harness``), which fails on a torn frame and on a
child still running after its deadline, so no test can hang.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _host import CLOSE_STDIN, NO_REPLY, REPO, SANDBOX_DAGS, Host, Later, gust_argv, task_argv

from gust.protocol import FrameDecoder, reply_error, reply_ok
from gust.sandbox import SIGNAL_GRACE

SANDBOX = SANDBOX_DAGS / "sandbox.py"

TOKEN = "s3cr3t-token-value"
SECRETS: dict[str, Any] = {
    "PLAIN": {"id": 1, "name": "PLAIN", "value_type": "string", "value": "plain-secret"},
    "TOKEN": {"id": 2, "name": "TOKEN", "value_type": "string", "value": TOKEN},
    "SHORT": {"id": 3, "name": "SHORT", "value_type": "string", "value": "abc"},
    "DB": {
        "id": 4,
        "name": "DB",
        "value_type": "json",
        "value": json.dumps(
            {
                "user": "admin-user",
                "password": "hunter2-pw",
                "port": 5432,
                "pin": "123",
                "nested": {"key": "abc"},
            }
        ),
    },
}


def run(task: str, **kw: Any) -> Host:
    return Host(task_argv(SANDBOX, "Sandbox", task), **kw).run()


def secret_table(frame: dict[str, Any]) -> Any:
    name = frame["name"]
    return reply_ok(SECRETS[name]) if name in SECRETS else reply_error("secret_not_found")


# -- stdout, fd 1, child processes, stdin -----------------------------------------------------


def test_printed_lines_become_info_logs() -> None:
    host = run("prints")
    assert host.returncode == 0, host.stderr
    assert host.types() == ["start"] + ["log"] * 6 + ["result"]
    assert host.frames[0] == {"type": "start", "pid": host.pid}
    assert host.logs() == [
        ("info", "hello"),
        ("info", "two words 3"),
        ("info", "line one"),
        ("info", "line two"),
        ("info", "no end continued"),
        ("info", ""),
    ]
    assert host.value == "printed"


def test_a_partial_line_is_flushed_as_a_log_when_the_task_ends() -> None:
    host = run("partial_line")
    assert host.types() == ["start", "log", "result"]
    assert host.logs() == [("info", "first half, no newline")]


def test_stdout_buffer_and_reconfigure_work() -> None:
    host = run("stdout_buffer")
    assert host.logs() == [("info", "bytes é line"), ("info", "and a rest")]
    assert host.value == 1  # fileno(): fd 1, which now points at stderr


def test_raw_writes_to_fd_1_go_to_stderr_and_frames_stay_decodable() -> None:
    host = run("fd1_frame_header")
    assert host.returncode == 0, host.stderr
    assert host.types() == ["start", "log", "result"]
    assert host.logs() == [("info", "after the raw writes")]
    assert host.value == "raw"
    assert struct.pack(">I", 5) + b"FAKE!" in host.stderr_bytes
    assert struct.pack(">I", 1 << 30) in host.stderr_bytes
    assert b"via __stdout__ fd" in host.stderr_bytes
    assert b"via __stdout__ print, never flushed" in host.stderr_bytes


def test_child_processes_write_to_stderr_read_nothing_and_inherit_no_channel() -> None:
    host = run("child_processes")
    assert host.types() == ["start", "result"]
    assert "from echo" in host.stderr
    assert "from os.system" in host.stderr
    assert host.value == {"probe_failed": True, "child_stdin": ""}


def test_reading_stdin_sees_nothing_and_cannot_steal_the_reply() -> None:
    # The host writes a reply before the task even reads stdin: were stdin the channel,
    # sys.stdin.read() would swallow it. It stays in the pipe, where the runtime finds it
    # before the task's first call and refuses it, since no call was waiting for it.
    host = run("reads_stdin", preload=[reply_ok(SECRETS["PLAIN"])])
    assert host.returncode == 0, host.stderr
    assert host.types() == ["start", "log", "result"]  # the call never went out
    value = host.value
    assert value.pop("secret").startswith(
        "HostProtocolError: get_secret_by_name('PLAIN') cannot be made: the host broke the "
        "protocol: the host sent reply #1 but only 0 call(s) were made"
    )
    assert value == {"read": "", "input": "EOFError", "raw": ""}
    assert host.logs() == [("info", "prompt> ")]  # input()'s prompt, an unfinished line


def run_with_redirections(task: str, redirections: str) -> tuple[int, list[dict[str, Any]], bytes]:
    """Run ``task`` of the sandbox DAG under ``sh -c 'exec gust ... REDIRECTIONS'`` (``<&-``
    closes stdin), with no host answering: its status, frames and stderr."""
    command = " ".join(
        [sys.executable, "-m", "gust", *(f"'{a}'" for a in task_argv(SANDBOX, "Sandbox", task))]
    )
    proc = subprocess.run(
        ["sh", "-c", f"exec {command} {redirections}"], capture_output=True, cwd=REPO, timeout=15
    )
    decoder = FrameDecoder()
    decoder.feed(proc.stdout)
    frames = decoder.frames()
    decoder.eof()
    return proc.returncode, frames, proc.stderr


def test_closed_stdin_and_stderr_at_start_are_survivable() -> None:
    # A launcher may start us without stdin or stderr: calls then fail at once, frames flow.
    returncode, frames, _ = run_with_redirections("call_then_return", "<&- 2>&-")
    assert returncode == 0
    assert [f["type"] for f in frames] == ["start", "call", "error", "result"]
    assert frames[-1]["error"]["type"] == "gust.errors.HostGoneError"
    assert "get_secret_by_name('ANY')" in frames[-1]["error"]["details"]


def test_a_task_started_without_stdin_reads_it_as_empty() -> None:
    returncode, frames, stderr = run_with_redirections("reads_stdin", "<&-")
    assert returncode == 0, stderr
    assert [f["type"] for f in frames] == ["start", "call", "log", "result"]  # the prompt: last
    value = frames[-1]["data"]["value"]
    assert value.pop("secret") == (
        "HostGoneError: the host closed the channel while we waited for the reply to "
        "get_secret_by_name('PLAIN')"
    )
    assert value == {"read": "", "input": "EOFError", "raw": ""}


def test_raw_writes_to_fd_1_stay_out_of_the_frames_when_stderr_was_closed() -> None:
    returncode, frames, stderr = run_with_redirections("fd1_frame_header", "<&- 2>&-")
    assert returncode == 0, stderr
    assert [f["type"] for f in frames] == ["start", "log", "result"]
    assert frames[-1]["data"]["value"] == "raw"


def test_a_closed_stdout_at_start_fails_with_status_2_and_says_why() -> None:
    returncode, frames, stderr = run_with_redirections("prints", ">&-")
    assert (returncode, frames) == (2, [])
    assert stderr.decode() == (
        "gust task run: cannot use stdin/stdout as the protocol channel: "
        "file descriptor 1 (stdout) is not open\n"
    )


def test_prints_to_dunder_stdout_are_on_stderr_before_the_result_frame(
    write_dag: Callable[..., Path], gust_task: Callable[..., Host]
) -> None:
    """A host may kill the child as soon as it has the result: nothing printed may be lost."""
    dag = write_dag(
        "unflushed.py",
        """
        import atexit
        import sys
        import time

        from gust import Dag, task


        class Unflushed(Dag):
            @task
            def t(self, ctx):
                print("printed to sys.__stdout__, never flushed", file=sys.__stdout__)
                atexit.register(time.sleep, 10)  # the exit is slow: the host will not wait
                return "done"
        """,
    )

    def kill_on_result(host: Host, frame: dict[str, Any]) -> None:
        if frame["type"] == "result":
            host.signal(signal.SIGKILL)

    host = gust_task(dag, "Unflushed", "t", on_frame=kill_on_result)
    assert host.value == "done"
    assert host.returncode == -signal.SIGKILL
    assert "printed to sys.__stdout__, never flushed" in host.stderr


def test_unflushed_prints_to_dunder_stdout_are_dropped_quietly_when_stderr_is_gone(
    write_dag: Callable[..., Path],
) -> None:
    """A host that stopped reading stderr must not cost the task its result."""
    dag = write_dag(
        "unflushed.py",
        """
        import sys

        from gust import Dag, task


        class Unflushed(Dag):
            @task
            def t(self, ctx):
                print("to fd 1, which is stderr now", file=sys.__stdout__)
                return "done"
        """,
    )
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to the child's stderr now fails with EPIPE
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as Gust starts us
    try:
        proc = subprocess.run(
            gust_argv(*task_argv(dag, "Unflushed", "t")),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=write_end,
            cwd=REPO,
            env=env,
            timeout=15,
        )
    finally:
        os.close(write_end)
    decoder = FrameDecoder()
    decoder.feed(proc.stdout)
    frames = decoder.frames()
    assert proc.returncode == 0
    assert [f["type"] for f in frames] == ["start", "result"]
    assert frames[-1]["data"]["value"] == "done"


# -- threads ----------------------------------------------------------------------------------


def test_eight_threads_logging_500_lines_each_give_exactly_4000_frames() -> None:
    host = run("threads_log")
    assert host.returncode == 0, host.stderr
    assert host.types() == ["start"] + ["log"] * 4000 + ["result"]
    expected = set()
    for n in range(8):
        how, level = [("print", "info"), ("log", "info"), ("logging", "warning")][n % 3]
        expected |= {(level, f"t{n} {how} {i}") for i in range(500)}
    logs = host.logs()
    assert set(logs) == expected and len(logs) == 4000
    for n in range(8):  # each thread's lines arrive in the order it wrote them
        mine = [int(m.rsplit(" ", 1)[1]) for _, m in logs if m.startswith(f"t{n} ")]
        assert mine == list(range(500))


def test_logging_is_not_blocked_by_a_call_waiting_for_its_reply() -> None:
    def after_300_logs(host: Host) -> bool:
        call_at = host.types().index("call")
        return host.types()[call_at:].count("log") >= 300

    answers = {"SLOW": Later(reply_ok({"value": 42}), after_300_logs)}
    host = run("slow_call_while_logging", answers=answers, timeout=10)
    assert host.returncode == 0, host.stderr
    assert host.value == 42
    assert host.types().count("log") == 300


def test_calls_from_threads_are_serialised_and_matched() -> None:
    def by_name(frame: dict[str, Any]) -> dict[str, Any]:
        return reply_ok({"id": 1, "result": {"name": frame["name"]}})

    host = run("concurrent_calls", answers=by_name)
    assert host.value == []  # every thread got the reply to its own call
    assert host.calls == 40
    assert host.max_in_flight == 1


def test_a_non_daemon_thread_left_running_does_not_keep_the_process_alive() -> None:
    host = run("leftover_thread")
    assert host.returncode == 0, host.stderr
    assert host.value == "returned"
    assert set(host.types()[1:-1]) <= {"log"}  # nothing follows the final result
    result_at = host.times[-1]
    assert host.exited_at - result_at < 2.0, "the leftover thread kept the process alive"


# -- logging ----------------------------------------------------------------------------------


def test_logging_levels_reach_the_host_and_the_authors_handler_still_works() -> None:
    host = run("logging_levels")
    logs = host.logs()
    assert logs[:5] == [
        ("info", "root info"),
        ("warning", "careful now"),
        ("error", "it broke"),
        logs[3],
        ("critical", "very bad"),
    ]
    level, text = logs[3]
    assert level == "error"
    assert text.startswith("with traceback\nTraceback (most recent call last):")
    assert "KeyError: 'missing-key'" in text
    assert "debug" not in " ".join(host.messages())
    # The author's own handler saw everything its logger let through, debug included.
    for line in (
        "AUTHOR DEBUG author debug",
        "AUTHOR WARNING careful now",
        "AUTHOR ERROR it broke",
    ):
        assert line in host.stderr


def test_gust_log_level_debug_lets_debug_records_through() -> None:
    host = run("logging_levels", env={"GUST_LOG_LEVEL": "DEBUG"})
    assert ("debug", "root debug") in host.logs()
    assert ("debug", "author debug") in host.logs()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GUST_LOG_LEVEL", "loud", "GUST_LOG_LEVEL must be a logging level"),
        ("GUST_CALL_TIMEOUT", "soon", "GUST_CALL_TIMEOUT must be a positive number of seconds"),
        ("GUST_CALL_TIMEOUT", "-1", "GUST_CALL_TIMEOUT must be a positive number of seconds"),
    ],
)
def test_bad_environment_settings_fail_with_their_own_message(
    name: str, value: str, message: str
) -> None:
    error = run("prints", env={name: value}).failure()
    assert error["message"].startswith(message)
    assert repr(value) in error["message"]


# -- odd results ------------------------------------------------------------------------------


def test_non_finite_numbers_become_null_with_a_warning_naming_where() -> None:
    host = run("nan_result")
    assert host.value == {"ok": 1.5, "rows": [1, None], "inf": None, "dec": None}
    warnings = [m for level, m in host.logs() if level == "warning"]
    assert len(warnings) == 3
    for where in ("$.rows[1]", "$.inf", "$.dec"):
        assert any(where in w and "null" in w for w in warnings), (where, warnings)


def test_dates_decimals_sets_and_friends_are_encoded() -> None:
    assert run("rich_result").value == {
        "when": "2024-05-06T07:08:09+00:00",
        "day": "2024-05-06",
        "at": "07:08:00",
        "amount": "12.50",
        "tags": ["a", "b", "c"],
        "pair": [1, 2],
        "id": "12345678-1234-5678-1234-567812345678",
        "path": "/tmp/x",
        "point": {"x": 1, "y": 2.5},
        "colour": "red",
        "3": "int key",
    }


def test_an_object_in_the_result_fails_naming_its_type_and_path() -> None:
    error = run("object_result").failure()
    assert "'object'" in error["message"]
    assert "$.rows[3]" in error["message"]
    assert error["type"] == "gust.values.UnsupportedValueError"


def test_save_true_with_a_list_fails_clearly_and_with_a_dict_succeeds() -> None:
    error = run("save_list").failure()
    assert "save=True" in error["message"]
    assert "dict" in error["message"] and "list" in error["message"]
    assert run("save_dict").value == {"saved": True}


def test_lone_surrogates_give_valid_utf8_and_strict_json() -> None:
    host = run("surrogates")
    raw = bytes(host.raw)
    raw.decode("utf-8")  # strict: raises on any invalid byte
    assert b"NaN" not in raw and b"Infinity" not in raw
    assert host.messages() == ["lone \ufffd surrogate", "printed \ufffd too", "logged \ufffd"]
    assert host.value == {"lone": "a\ufffdb", "pair": "\U0001f600", "key\ufffd": 1}


# -- endings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "exc_type", "details"),
    [
        ("exit_0", "SystemExit", "0"),
        ("exit_3", "SystemExit", "3"),
        ("keyboard_interrupt", "KeyboardInterrupt", "KeyboardInterrupt"),
        ("generator_exit", "GeneratorExit", "closing"),
    ],
)
def test_base_exceptions_are_reported_in_band(task: str, exc_type: str, details: str) -> None:
    error = run(task).failure()
    assert error["message"] == "Task execution failed"
    assert error["type"] == exc_type
    assert error["details"] == details
    assert exc_type in error["traceback"]


def _signal_on(message: str, signum: int) -> Callable[[Host, dict[str, Any]], None]:
    def act(host: Host, frame: dict[str, Any]) -> None:
        if frame.get("msg") == message:
            host.signal(signum)

    return act


@pytest.mark.parametrize(
    ("task", "signum"),
    [("sleeps", signal.SIGTERM), ("sleeps", signal.SIGINT), ("async_sleeps", signal.SIGTERM)],
)
def test_a_signal_while_sleeping_is_reported_and_the_process_exits_promptly(
    task: str, signum: int
) -> None:
    host = run(task, on_frame=_signal_on("sleeping", signum))
    name = signal.Signals(signum).name
    error = host.failure()
    assert error["message"] == f"Task interrupted by {name}"
    assert name in error["details"] and name in host.trace
    if task == "sleeps":
        assert host.messages() == ["sleeping", "finally ran"]  # the task's finally ran
    assert host.exited_at - host.signalled_at < SIGNAL_GRACE, "it waited for the watchdog"


def test_a_task_swallowing_the_signal_is_reported_by_the_watchdog() -> None:
    host = run("swallows_signals", on_frame=_signal_on("swallowing", signal.SIGTERM))
    error = host.failure()
    assert error["message"] == "Task interrupted by SIGTERM"
    assert "did not stop within" in error["details"]
    assert "swallowed one" in host.messages()
    took = host.exited_at - host.signalled_at
    assert SIGNAL_GRACE - 0.1 <= took < SIGNAL_GRACE + 3


def test_sigterm_while_the_dag_file_is_still_importing_is_reported() -> None:
    def on_start(host: Host, frame: dict[str, Any]) -> None:
        if frame["type"] == "start":
            host.signal(signal.SIGTERM)

    host = Host(
        task_argv(SANDBOX_DAGS / "hangs_on_import.py", "Hangs", "t"), on_frame=on_start
    ).run()
    assert host.failure()["message"] == "Task interrupted by SIGTERM"
    assert host.exited_at - host.signalled_at < SIGNAL_GRACE


def test_a_signal_while_waiting_for_a_reply_is_reported() -> None:
    def on_call(host: Host, frame: dict[str, Any]) -> None:
        if frame["type"] == "call":
            host.signal(signal.SIGTERM)

    host = run("call_then_return", answers={"ANY": NO_REPLY}, on_frame=on_call)
    assert host.failure()["message"] == "Task interrupted by SIGTERM"
    assert host.exited_at - host.signalled_at < SIGNAL_GRACE


def test_a_signal_arriving_mid_frame_waits_until_the_frame_is_whole() -> None:
    # The host stops reading for a moment, so the child is blocked inside the write of a 1 MB
    # frame when the signal comes; the decoder raising on a torn frame would fail this test.
    def on_second_log(host: Host, frame: dict[str, Any]) -> None:
        if frame["type"] == "log" and host.types().count("log") == 2:
            time.sleep(0.2)
            host.signal(signal.SIGTERM)

    host = run("big_logs_forever", on_frame=on_second_log)
    assert host.failure()["message"] == "Task interrupted by SIGTERM"
    assert len(host.messages()) >= 2
    assert all(len(m) == 1_000_000 for m in host.messages())
    assert host.exited_at - host.signalled_at < SIGNAL_GRACE


# -- secrets ----------------------------------------------------------------------------------


def test_a_leaked_secret_is_masked_in_every_log_error_and_trace() -> None:
    host = run("leaks_secret", answers=secret_table)
    error = host.failure()
    assert TOKEN.encode() not in host.raw  # nowhere in any frame
    assert host.messages() == ["log says ***", "print says ***", "logging says ***"]
    assert error["details"] == "exception holds ***"
    assert "cause holds ***" in error["traceback"]
    assert "exception holds ***" in error["traceback"]
    assert "cause holds ***" in host.trace and "exception holds ***" in host.trace


def test_results_are_data_and_are_not_masked() -> None:
    host = run("returns_secret", answers=secret_table)
    assert host.messages() == ["returning ***"]
    assert host.value == {"secret": TOKEN}


def test_a_warning_about_the_result_is_masked_but_the_result_is_not() -> None:
    host = run("unmasked_warning", answers=secret_table)
    assert host.value == {f"k{TOKEN}": None}
    [warning] = host.messages()
    assert "['k***']" in warning and TOKEN not in warning


def test_the_string_leaves_of_a_json_secret_are_masked() -> None:
    host = run("json_secret", answers=secret_table)
    assert host.messages() == [
        "whole ***",
        "user *** password *** port 5432 pin 123 key abc",  # numbers and short leaves stay
    ]


def test_secrets_shorter_than_four_characters_are_not_masked() -> None:
    host = run("short_secret", answers=secret_table)
    assert host.messages() == ["short abc stays readable in abc-abc"]


# -- host trouble -----------------------------------------------------------------------------


def test_a_host_closing_stdin_during_a_call_ends_the_task_naming_the_call() -> None:
    host = run("call_then_return", answers={"ANY": CLOSE_STDIN}, timeout=10)
    error = host.failure()
    assert error["message"] == "Task execution failed"
    assert error["type"] == "gust.errors.HostGoneError"
    assert "get_secret_by_name('ANY')" in error["details"]
    assert host.exited_at - host.times[1] < 3  # from the call to the exit


def test_gust_call_timeout_bounds_a_call_and_its_late_reply_is_skipped() -> None:
    def after_the_next_call(host: Host) -> bool:
        return host.types().count("call") >= 2

    answers = {
        "NEVER": Later(reply_ok({"late": "reply to NEVER"}), after_the_next_call),
        "AFTER": reply_ok({"reply": "to AFTER"}),
    }
    host = run("timed_out_call", answers=answers, env={"GUST_CALL_TIMEOUT": "0.5"})
    value = host.value
    assert value["second"] == {"reply": "to AFTER"}, "the late reply was taken for the next call"
    assert value["first"].startswith("CallTimeoutError: no answer within 0.5 s")
    assert "GUST_CALL_TIMEOUT" in value["first"]
    assert "get_secret_by_name('NEVER')" in value["first"]
    assert 0.45 <= value["elapsed"] < 5


def test_a_call_the_host_never_answers_fails_the_task_after_the_timeout() -> None:
    host = run("call_then_return", answers={"ANY": NO_REPLY}, env={"GUST_CALL_TIMEOUT": "0.3"})
    error = host.failure()
    assert error["type"] == "gust.errors.CallTimeoutError"
    assert "get_secret_by_name('ANY')" in error["details"]


def test_a_host_gone_from_stdout_ends_the_child_quietly_with_status_141() -> None:
    def close_after_start(host: Host, frame: dict[str, Any]) -> None:
        if frame["type"] == "start":
            host.close_stdout()

    host = run("logs_forever", on_frame=close_after_start, timeout=10)
    assert host.returncode == 141, host.stderr
    assert "Traceback" not in host.stderr
    assert "Logging error" not in host.stderr
    assert host.stderr.strip() == "gust task run: the host stopped reading frames; exiting"


def test_calls_inside_run_done_raise_at_once() -> None:
    argv = ["run", "done", "--file", str(SANDBOX), "--dag", "Sandbox", "--fn-name",
            "callback_calls", "--status", "ok", "--run-id", "9"]  # fmt: skip
    host = Host(argv, answers=secret_table, timeout=10).run()
    assert host.returncode == 1
    # The print, then the refused call: it goes out unanswered (Gust ignores run done's
    # stdout; a host can note it) and the callback fails at once, without waiting.
    assert host.types() == ["log", "call"]
    assert host.logs() == [("info", "callback ok")]
    assert "NotInTaskError" in host.stderr
    assert "get_secret_by_name('TOKEN') cannot be answered here" in host.stderr
    assert "no host answers calls inside `gust run done`" in host.stderr


# -- forked children --------------------------------------------------------------------------


def test_a_forked_child_cannot_write_into_the_frame_stream() -> None:
    host = run("forks", answers=secret_table)
    assert host.returncode == 0, host.stderr
    assert host.types() == ["start", "log", "result"]
    assert host.logs() == [("info", "parent after fork")]
    assert "[gust info] from the forked child xxx" in host.stderr
    assert "[gust info] forked log" in host.stderr
    assert "forked call: NotInTaskError" in host.stderr
    assert "a process forked from the task has no host channel" in host.stderr


def test_a_forked_child_gets_the_signal_handlers_from_before_the_task(
    write_dag: Callable[..., Path], gust_task: Callable[..., Host]
) -> None:
    """SIGTERM kills a forked worker the default way, not by raising in it."""
    dag = write_dag(
        "forks.py",
        """
        import os
        import signal
        import time

        from gust import Dag, task


        class Forks(Dag):
            @task
            def child_gets_sigterm(self, ctx):
                pid = os.fork()
                if pid == 0:
                    try:
                        os.kill(os.getpid(), signal.SIGTERM)
                        time.sleep(5)
                    finally:
                        os._exit(0)
                _, status = os.waitpid(pid, 0)
                return os.waitstatus_to_exitcode(status)
        """,
    )
    host = gust_task(dag, "Forks", "child_gets_sigterm")
    assert host.value == -signal.SIGTERM
    assert "Exception ignored" not in host.stderr


def test_a_multiprocessing_pool_works_and_its_workers_die_on_terminate() -> None:
    host = run("pool", timeout=20)
    assert host.returncode == 0, host.stderr
    assert host.value == [0, 1, 4, 9]
    assert host.messages() == ["pool done"]
    assert host.stderr.count("worker squares") == 4


@pytest.mark.parametrize("own_handler", [False, True])
def test_sigterm_after_the_result_ends_the_process_the_default_way(
    write_dag: Callable[..., Path], gust_task: Callable[..., Host], own_handler: bool
) -> None:
    """Once the result is out nothing is left to report: a SIGTERM during the exit (here from
    an atexit handler the task left, so that it lands after the result for certain) kills the
    process by that signal, with no frame after the result; also when the task had installed
    a SIGTERM handler of its own, which is off once the task's code is over."""
    dag = write_dag(
        "slow_exit.py",
        f"""
        import atexit
        import os
        import signal
        import time

        from gust import Dag, task


        def terminated_while_exiting():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)


        class SlowExit(Dag):
            @task
            def t(self, ctx):
                if {own_handler}:
                    signal.signal(signal.SIGTERM, lambda signum, frame: print("task's handler"))
                atexit.register(terminated_while_exiting)
                return "done"
        """,
    )
    host = gust_task(dag, "SlowExit", "t")
    assert host.types() == ["start", "result"]
    assert host.value == "done"
    assert host.returncode == -signal.SIGTERM, host.stderr
    assert "task's handler" not in host.stderr


@pytest.mark.parametrize("stream", ["__stdout__", "__stderr__"])
def test_a_task_that_detaches_a_standard_stream_still_gets_its_result(
    write_dag: Callable[..., Path], gust_task: Callable[..., Host], stream: str
) -> None:
    """The runtime flushes the task's original streams on the way out; a stream the task
    detached (or closed) must not turn its success into the runtime's own ValueError."""
    dag = write_dag(
        "detach.py",
        f"""
        import sys

        from gust import Dag, task


        class Detach(Dag):
            @task
            def t(self, ctx):
                sys.{stream}.write("unflushed ")
                sys.{stream}.detach()
                return "detached"
        """,
    )
    host = gust_task(dag, "Detach", "t")
    assert host.types() == ["start", "result"], host.stderr
    assert host.value == "detached"
    assert host.returncode == 0, host.stderr
