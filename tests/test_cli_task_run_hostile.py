"""Hostile tasks, hosts and inputs against the real CLI (issue 10, the child side).

Each test runs ``python -m gust task run`` on a task of ``sandbox_dags/hostile.py`` under the
test host of ``_host.py``, which fails on any torn frame (its decoder raises), on a
second final frame, and on a process still alive after its deadline. A hang is a failure: the
deadlines are generous (the machine is shared) but always there.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _host import NO_REPLY, REPO, SANDBOX_DAGS, Host, task_argv

from gust.protocol import MAX_TEXT, encode_frame, reply_error, reply_ok

HOSTILE = SANDBOX_DAGS / "hostile.py"

#: Quotes, a backslash, a newline, non-ASCII and an emoji: every escape Python may apply.
NASTY = "pa\"ss'w\\ord-line-one\nséc€et-😀-line-two"
DBTEXT = json.dumps({"user": "admin-user", "password": "hunter2-pw", "port": 5432})
SECRETS = {
    "NASTY": {"id": 1, "name": "NASTY", "value_type": "string", "value": NASTY},
    "DBTEXT": {"id": 2, "name": "DBTEXT", "value_type": "string", "value": DBTEXT},
}


def argv(task: str, file: Path = HOSTILE, ctx: str | None = '{"run_id": 1}') -> list[str]:
    return task_argv(file, "Hostile", task, ctx)


def run(task: str, **kw: Any) -> Host:
    kw.setdefault("timeout", 30.0)
    return Host(argv(task), **kw).run()


def secrets(frame: dict[str, Any]) -> dict[str, Any]:
    found = SECRETS.get(frame["name"])
    return reply_ok(found) if found else reply_error("secret_not_found")


def assert_one_whole_result(host: Host) -> dict[str, Any]:
    assert host.returncode == 0, host.stderr
    types = host.types()
    assert types[0] == "start" and types.count("start") == 1
    assert types.count("result") == 1 and types[-1] == "result", types
    assert host.result["ok"] is True, (
        host.result,
        [f for f in host.frames if f["type"] == "error"],
    )
    return host.result


# -- signals: frames stay whole, no deadlock ---------------------------------------------------


@pytest.mark.timeout(90)
def test_an_alarm_handler_that_raises_never_tears_a_frame() -> None:
    host = run("alarm_raises_while_logging")
    value = assert_one_whole_result(host)["data"]["value"]
    assert value["alarms"] > 0, "the alarm never fired: the test proved nothing"
    msgs = host.messages()
    # Every frame arrived whole (the host's decoder fails on a torn one), each at most once;
    # an attempt a handler interrupted went out whole or not at all.
    numbers = [int(m[:6]) for m in msgs]
    assert numbers == sorted(set(numbers))
    assert msgs and all(m[6:] == "a" * 300_000 for m in msgs)
    assert len(msgs) >= value["attempts"] - value["alarms"]


@pytest.mark.timeout(90)
def test_a_handler_that_logs_while_the_main_thread_writes_does_not_deadlock() -> None:
    host = run("usr1_handler_logs")
    value = assert_one_whole_result(host)["data"]["value"]
    assert value["handled"] > 0
    msgs = host.messages()
    assert msgs.count("from the handler") == value["handled"]
    big = [m for m in msgs if m != "from the handler"]
    assert [m[:6] for m in big] == [f"{i:06d}" for i in range(200)]
    assert all(m[6:] == "b" * 300_000 for m in big)


def test_a_handler_still_armed_after_the_task_cannot_disturb_the_end() -> None:
    host = run("handler_left_armed")
    assert assert_one_whole_result(host)["data"]["value"] == "armed"
    assert "Alarm" not in host.stderr


# -- forks: only the process that sent start speaks ----------------------------------------------


def test_a_fork_returning_into_the_task_sends_no_second_result() -> None:
    host = run("fork_returns_into_task")
    result = assert_one_whole_result(host)
    assert result["data"]["value"] == {"pid": host.frames[0]["pid"]}
    assert host.messages() == [f"after fork in {host.frames[0]['pid']}"]
    assert "forked from the task, returned from it" in host.stderr
    assert "[gust info] after fork in" in host.stderr  # the child's log, as text


def test_a_forked_child_never_writes_frames_into_a_users_file_on_the_same_descriptor() -> None:
    host = run("fork_child_reuses_descriptors")
    result = assert_one_whole_result(host)
    path = Path(result["data"]["value"]["file"])
    try:
        assert path.read_bytes() == b"", "the forked child wrote into the user's file"
    finally:
        path.unlink(missing_ok=True)
    assert "[gust info] child logs" in host.stderr


# -- endings: settled and gone within the bound ----------------------------------------------------


def test_an_atexit_handler_that_sleeps_cannot_keep_the_process_alive() -> None:
    host = run("atexit_sleeps", timeout=20)  # the handler sleeps 600 s
    marker = Path(assert_one_whole_result(host)["data"]["value"]["marker"])
    try:
        assert marker.read_text() == "ran", "quick atexit handlers must still run"
    finally:
        marker.unlink(missing_ok=True)


def test_a_non_daemon_thread_that_sleeps_cannot_keep_the_process_alive() -> None:
    host = run("thread_sleeps_forever", timeout=20)
    assert assert_one_whole_result(host)["data"]["value"] == "left a thread"


def test_a_non_daemon_multiprocessing_child_cannot_keep_the_process_alive() -> None:
    host = run("mp_child_sleeps", timeout=20)
    child = assert_one_whole_result(host)["data"]["value"]["child"]
    os.kill(child, signal.SIGKILL)  # the orphan is the test's to clean up


# -- secrets: nowhere the host records or shows ---------------------------------------------------


def _visible(host: Host) -> str:
    """Everything the host got, frames decoded (escapes undone) and raw, and stderr."""
    return "\n".join([json.dumps(host.frames, ensure_ascii=False), str(host.raw), host.stderr])


def _assert_hidden(text: str) -> None:
    for piece in ["pa\"ss'w\\ord-line-one", "séc€et-😀-line-two", "hunter2-pw", "admin-user"]:
        for form in {piece, repr(piece)[1:-1], ascii(piece)[1:-1], json.dumps(piece)[1:-1]}:
            assert form not in text, form


def test_a_secret_is_masked_in_every_form_frame_and_stream() -> None:
    host = run("secret_everywhere", answers=secrets)
    error = host.failure()
    _assert_hidden(_visible(host))
    msgs = host.messages()
    assert msgs[:2] == ["***", "***"]  # printed: one frame per line of the secret
    assert msgs[2:] == [
        "log ***",
        "repr '***'",
        "ascii '***'",
        'json "***"',
        'json raw "***"',
        "dict {'k': ['***']}",
        "keyerror '***'",
    ]
    assert error["type"] == "hostile.Err_***"
    assert error["details"] == "message ***"
    assert "stderr ***" in host.stderr
    assert "split *** across writes" in host.stderr
    assert "warning ***" in host.stderr
    assert "RuntimeError: thread ***" in host.stderr


def test_a_secret_as_a_key_error_is_masked_in_its_repr_form() -> None:
    host = run("secret_in_key_error", answers=secrets)
    error = host.failure()
    assert error["type"] == "KeyError"
    assert error["details"] == "'***'"
    _assert_hidden(_visible(host))


def test_the_leaves_of_a_secret_whose_text_is_a_json_object_are_masked() -> None:
    host = run("json_text_secret", answers=secrets)
    assert assert_one_whole_result(host)["ok"] is True
    assert host.messages() == ["user *** password *** port 5432"]
    assert "stderr password ***" in host.stderr
    _assert_hidden(_visible(host))


# -- failures are never lost -----------------------------------------------------------------------


def test_an_exception_whose_str_and_repr_raise_is_still_reported_with_its_type() -> None:
    error = run("str_raises").failure()
    assert error["type"].endswith("Unprintable")
    assert error["details"] == f"<str() of the {error['type']} raised RuntimeError>"
    assert "Unprintable" in error["traceback"]


def test_a_key_error_whose_key_has_a_raising_repr_is_reported() -> None:
    error = run("repr_raises_in_key").failure()
    assert error["type"] == "KeyError"
    assert error["details"] == "<str() of the KeyError raised ValueError>"


@pytest.mark.timeout(90)
def test_a_40_mb_message_is_cut_to_the_cap_saying_how_much() -> None:
    host = run("huge_message")
    error = host.failure()
    assert error["type"] == "ValueError"
    for text in (error["details"], error["traceback"], host.trace):
        assert len(text) <= MAX_TEXT
        assert text.endswith(f"characters; a frame carries at most {MAX_TEXT}]")
    assert "of 40000000 characters" in error["details"]
    assert len(host.raw) < 8 * MAX_TEXT  # every frame far under the hosts' 64 MiB


@pytest.mark.timeout(90)
def test_a_40_mb_log_line_is_cut_to_the_cap() -> None:
    host = run("huge_log")
    assert assert_one_whole_result(host)["ok"] is True
    [msg] = host.messages()
    assert len(msg) <= MAX_TEXT and msg.startswith("LLLL")
    assert msg.endswith(f"of 40000000 characters; a frame carries at most {MAX_TEXT}]")


# -- replies out of turn ---------------------------------------------------------------------------


def test_a_second_reply_to_one_call_is_never_taken_as_the_answer_to_the_next() -> None:
    def twice(host: Host, frame: dict[str, Any]) -> None:
        if frame.get("type") == "call" and frame["name"] == "A":
            # A buggy host answers A twice; the duplicate must not become B's answer.
            for value in ("A", "A again"):
                host.proc.stdin.write(encode_frame(reply_ok({"value": value})))
            host.proc.stdin.flush()

    def answers(frame: dict[str, Any]) -> Any:
        return NO_REPLY if frame["name"] == "A" else reply_ok({"value": frame["name"]})

    host = run("two_calls", answers=answers, on_frame=twice)
    value = assert_one_whole_result(host)["data"]["value"]
    assert value["first"] == {"value": "A"}
    prefix = "HostProtocolError: get_secret_by_name('{}') cannot be made: the host broke the "
    assert value["second"].startswith(prefix.format("B"))
    assert "reply #2 but only 1 call(s) were made" in value["second"]
    assert value["third"].startswith(prefix.format("C"))  # no reply can be trusted any more
    assert [f["name"] for f in host.frames if f["type"] == "call"] == ["A"]


# -- bad input -------------------------------------------------------------------------------------


SHAPE = "ctx-json has the wrong shape"


@pytest.mark.parametrize(
    ("ctx", "message", "detail"),
    [
        ("[" * 30_000 + "]" * 30_000, "ctx-json is not valid JSON", "--ctx-json is nested too"),
        ('{"run_id": 1', "ctx-json is not valid JSON", "--ctx-json: Expecting"),
        ("{not json", "ctx-json is not valid JSON", "--ctx-json: Expecting property name"),
        ('"run"', "ctx-json must be a JSON object", "--ctx-json holds a string"),
        ("[1, 2]", "ctx-json must be a JSON object", "--ctx-json holds an array"),
        ("null", "ctx-json must be a JSON object", "--ctx-json holds null"),
        ('{"run_id": "7"}', SHAPE, '--ctx-json: "run_id" must be an integer'),
        ('{"run_id": true}', SHAPE, '--ctx-json: "run_id" must be an integer'),
        ('{"run_id": 1, "params": [1]}', SHAPE, '--ctx-json: "params" must be'),
    ],
)
def test_a_bad_ctx_json_is_an_input_error_naming_the_option(
    ctx: str, message: str, detail: str
) -> None:
    error = Host(argv("says_hi", ctx=ctx), timeout=30).run().failure()
    assert error["message"] == message
    assert error["type"] == "gust.runtime.ContextError"
    assert error["details"].startswith(detail), error["details"]


def test_a_dag_file_whose_name_is_not_utf8_runs_and_every_frame_is_utf8(tmp_path: Path) -> None:
    name = os.fsdecode(b"dag_\xff\xfe.py")  # undecodable bytes, as a filesystem may hold
    target = tmp_path / name
    target.write_bytes(HOSTILE.read_bytes())
    ok = Host(argv("says_hi", file=target), timeout=30).run()  # the decoder is strict UTF-8
    assert assert_one_whole_result(ok)["data"]["value"] == {"run_id": 1}
    failed = Host(argv("str_raises", file=target), timeout=30).run()
    assert "dag_\ufffd\ufffd.py" in failed.failure()["traceback"]
    missing = Host(argv("says_hi", file=tmp_path / os.fsdecode(b"gone_\xff.py")), timeout=30)
    error = missing.run().failure()
    assert error["message"] == "Failed to load module from " + str(tmp_path) + "/gone_\ufffd.py"


# -- the command line ------------------------------------------------------------------------------


def test_task_run_on_a_terminal_points_at_the_harness_instead_of_printing_frames() -> None:
    main, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "gust", *argv("says_hi")],
            stdout=secondary,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            timeout=30,
        )
    finally:
        os.close(secondary)
        os.close(main)
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert "speaks length-prefixed JSON frames" in err
    assert f"python -m gust.harness {HOSTILE} --task says_hi" in err


def test_log_takes_the_five_levels_in_any_case_and_refuses_others() -> None:
    host = run("log_levels")
    assert host.logs()[0] == ("warning", "upper")
    assert assert_one_whole_result(host)["data"]["value"] == (
        "LogLevelError: log level must be one of debug, info, warning, error, critical, "
        "not 'verbose'"
    )


def test_parse_takes_the_file_as_a_positional_argument_too() -> None:
    run_parse = [sys.executable, "-m", "gust", "parse"]
    by_option = subprocess.run([*run_parse, "--file", str(HOSTILE)], capture_output=True)
    positional = subprocess.run([*run_parse, str(HOSTILE)], capture_output=True)
    assert by_option.returncode == positional.returncode == 0
    assert positional.stdout == by_option.stdout
    assert json.loads(positional.stdout)[0]["mod"] == "Hostile"
    both = subprocess.run([*run_parse, str(HOSTILE), "--file", "x.py"], capture_output=True)
    assert both.returncode == 2 and b"not both" in both.stderr
    neither = subprocess.run(run_parse, capture_output=True)
    assert neither.returncode == 2 and b"gust parse FILE" in neither.stderr
