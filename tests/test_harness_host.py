"""The host side of one child (gust.harness.host): fake children that misbehave, and the real
runtime, driven through TaskProcess / run_task / run_callback."""

from __future__ import annotations

import struct
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from _host import HARNESS_DAGS, gone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gust.harness import CallAnswerer, RunTasks, Store, TaskProcess, run_callback, run_task
from gust.harness.store import Secret

HELLO = HARNESS_DAGS / "hello_world.py"

PREAMBLE = textwrap.dedent(
    """\
    import os, struct, sys, time, subprocess
    from gust.protocol import FrameDecoder, encode_frame
    OUT = sys.stdout.buffer
    DEC = FrameDecoder()

    def send(obj):
        OUT.write(encode_frame(obj))
        OUT.flush()

    def raw(data):
        OUT.write(data)
        OUT.flush()

    def reply():
        while True:
            frame = DEC.next_frame()
            if frame is not None:
                return frame
            chunk = os.read(0, 65536)
            if not chunk:
                return None
            DEC.feed(chunk)
    """
)


def child(tmp_path: Path, body: str, name: str = "child.py") -> list[str]:
    """A fake child: a python script speaking (or breaking) the protocol."""
    path = tmp_path / name
    path.write_text(PREAMBLE + textwrap.dedent(body))
    return [sys.executable, str(path)]


def answerer(**secrets: str) -> CallAnswerer:
    store = Store(
        secrets={k: Secret(i, k, "string", v) for i, (k, v) in enumerate(secrets.items())}
    )
    return CallAnswerer(store, 1, RunTasks(), environ={})


# -- well-behaved exchanges --------------------------------------------------------------------


def test_fake_child_gets_gusts_reply_shapes_and_its_result_counts(tmp_path: Path) -> None:
    argv = child(
        tmp_path,
        """
        send({"type": "start", "pid": os.getpid()})
        send({"type": "call", "op": "get_secret_by_name", "name": "TOKEN"})
        a = reply()
        send({"type": "call", "op": "get_secret_by_name", "name": "NOPE"})
        b = reply()
        send({"type": "call", "op": "get_task_by_name_run", "name": "x", "run_id": 1})
        c = reply()
        send({"type": "log", "level": "debug", "msg": "quiet"})
        send({"type": "result", "ok": True, "data": {"value": [a, b, c]}})
        """,
    )
    out = TaskProcess(argv, answer=answerer(TOKEN="t0k")).run()
    assert out.status == "ok", out.error
    secret, missing, task = out.value
    assert secret == {
        "type": "reply",
        "ok": True,
        "data": {"id": 0, "name": "TOKEN", "value_type": "string", "value": "t0k"},
    }
    assert missing == {"type": "reply", "ok": False, "error": "secret_not_found"}
    assert task == {"type": "reply", "ok": False, "error": "task_not_found"}
    assert [(e["level"], e["msg"]) for e in out.logs] == [("debug", "quiet")]
    assert out.exit_code == 0 and out.pid is not None
    assert any("crashes the worker" in w for w in out.warnings)


def test_unknown_op_and_missing_name_get_an_answer_and_a_warning(tmp_path: Path) -> None:
    argv = child(
        tmp_path,
        """
        send({"type": "start", "pid": os.getpid()})
        send({"type": "call", "op": "launch_rockets"})
        a = reply()
        send({"type": "call", "op": "get_task_by_name_run", "name": "x"})
        b = reply()
        send({"type": "result", "ok": True, "data": {"value": [a["error"], b["error"]]}})
        """,
    )
    out = TaskProcess(argv, answer=answerer()).run()
    assert out.status == "ok"
    assert out.value == ["unknown_op", "bad_call"]
    assert any("unknown op 'launch_rockets'" in w for w in out.warnings)
    assert any('no "run_id"' in w for w in out.warnings)


def test_real_runtime_task_and_callback(tmp_path: Path) -> None:
    out = run_task(str(HELLO), "HelloWorld", "hello", answer=answerer(GREETING_TOKEN="abcdef"))
    assert out.status == "ok", out.error
    assert out.value == {"greeting": "hello", "run_id": 1}
    assert out.logs[0]["msg"] == "token found: True (***)"
    assert out.warnings == []
    logs: list[str] = []
    done = run_callback(str(HELLO), "hello_world", "done_my_run", "error", 7,
                        on_log=lambda e: logs.append(e["msg"]))  # fmt: skip
    assert done.status == "ok" and done.exit_code == 0
    assert logs == ["run 7 finished with status error"]


def test_callback_failure_carries_the_traceback_tail(tmp_path: Path) -> None:
    dag = tmp_path / "cb.py"
    dag.write_text(
        textwrap.dedent(
            """\
            from gust import Dag, task

            class Cb(Dag):
                @task
                def a(self, ctx):
                    return 1

                def done(self, status, run):
                    raise RuntimeError("callback broke")
            """
        )
    )
    out = run_callback(str(dag), "cb", "done", "ok", 1)
    assert out.status == "error" and out.exit_code == 1
    assert "exited with status 1" in out.error["message"]
    assert "RuntimeError: callback broke" in out.error["stderr_tail"]


def test_record_keeps_the_exchange_in_wire_order(tmp_path: Path) -> None:
    argv = child(
        tmp_path,
        """
        send({"type": "start", "pid": 42})
        payload = b"{not json"
        raw(struct.pack(">I", len(payload)) + payload)
        send({"type": "call", "op": "get_secret_by_name", "name": "K"})
        reply()
        print("to stderr", file=sys.stderr)
        send({"type": "result", "ok": True, "data": {"value": 1}})
        """,
    )
    out = TaskProcess(argv, answer=answerer(K="v"), record=True).run()
    assert out.status == "ok"
    bad = (struct.pack(">I", 9) + b"{not json").hex()
    assert out.events == [
        {"dir": "c2h", "frame": {"type": "start", "pid": 42}},
        {"dir": "c2h", "raw": bad},
        {"dir": "c2h", "frame": {"type": "call", "op": "get_secret_by_name", "name": "K"}},
        {
            "dir": "h2c",
            "frame": {
                "type": "reply",
                "ok": True,
                "data": {"id": 0, "name": "K", "value_type": "string", "value": "v"},
            },
        },
        {"dir": "c2h", "frame": {"type": "result", "ok": True, "data": {"value": 1}}},
        {"dir": "h2c", "eof": True},
    ]
    assert out.stderr == "to stderr\n"
    assert any("bad_json" in w for w in out.warnings)


def test_result_ok_false_without_error_frame_is_flagged(tmp_path: Path) -> None:
    argv = child(
        tmp_path,
        """
        send({"type": "start", "pid": os.getpid()})
        send({"type": "result", "ok": False, "error": {"message": "nope", "type": "X"}})
        """,
    )
    out = TaskProcess(argv).run()
    assert out.status == "error"
    assert out.error == {"message": "nope", "type": "X"}
    assert any("Gust does not read it" in w for w in out.warnings)


# -- bad children ------------------------------------------------------------------------------


def test_garbage_before_any_frame_is_a_protocol_error_and_the_child_is_killed(
    tmp_path: Path,
) -> None:
    argv = child(
        tmp_path,
        """
        print("about to write garbage", file=sys.stderr, flush=True)
        raw(b"hello, this is no frame at all\\n")
        time.sleep(30)
        """,
    )
    start = time.monotonic()
    out = TaskProcess(argv).run()
    assert time.monotonic() - start < 10
    assert out.status == "error"
    assert out.protocol_error["code"] == "oversize"
    assert out.exit_code == -9
    assert out.error["message"].startswith("protocol error oversize: frame header announces")
    assert "killed by SIGKILL" in out.error["message"]
    assert "about to write garbage" in out.error["stderr_tail"]
    assert out.warnings == []


def test_exit_3_without_a_result(tmp_path: Path) -> None:
    argv = child(
        tmp_path,
        """
        send({"type": "start", "pid": os.getpid()})
        send({"type": "log", "level": "info", "msg": "working"})
        print("boom: disk on fire", file=sys.stderr)
        sys.exit(3)
        """,
    )
    out = TaskProcess(argv).run()
    assert out.status == "error"
    assert out.exit_code == 3
    assert out.protocol_error is None
    assert out.error["message"] == (
        "exited with status 3 without a result (Gust records port_exit: died with: 3)"
    )
    assert out.error["stderr_tail"] == "boom: disk on fire"
    assert [e["msg"] for e in out.logs] == ["working"]


def test_a_100_mib_length_header_is_refused_at_once(tmp_path: Path) -> None:
    argv = child(
        tmp_path,
        """
        send({"type": "start", "pid": os.getpid()})
        raw(struct.pack(">I", 100 * 1024 * 1024) + b"x" * 1000)
        time.sleep(30)
        """,
    )
    start = time.monotonic()
    out = TaskProcess(argv).run()
    assert time.monotonic() - start < 10
    assert out.status == "error"
    assert out.protocol_error == {
        "code": "oversize",
        "message": "frame header announces 104857600 bytes, over the limit of 67108864 bytes",
    }
    assert out.exit_code == -9


def test_eof_inside_a_frame_is_truncated(tmp_path: Path) -> None:
    argv = child(tmp_path, 'send({"type": "start", "pid": 1})\nraw(b"\\x00\\x00\\x00\\x10{")\n')
    out = TaskProcess(argv).run()
    assert out.status == "error"
    assert out.exit_code == 0
    assert out.protocol_error["code"] == "truncated"


def test_timeout_kills_the_whole_group_including_grandchildren(tmp_path: Path) -> None:
    argv = child(
        tmp_path,
        """
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        send({"type": "start", "pid": os.getpid()})
        kid = subprocess.Popen(["sleep", "60"])
        send({"type": "log", "level": "info", "msg": str(kid.pid)})
        time.sleep(60)
        """,
    )
    # The timeout leaves a loaded machine time to start Python and ignore SIGTERM first.
    start = time.monotonic()
    out = TaskProcess(argv, timeout=3, grace=0.3).run()
    assert time.monotonic() - start < 15
    assert out.status == "timeout"
    assert out.exit_code == -9  # it ignored SIGTERM: SIGKILL after the grace period
    assert out.error["message"] == (
        "timed out after 3 s; its process group got SIGTERM, then SIGKILL"
    )
    assert gone(int(out.logs[0]["msg"]))


def test_child_that_never_reads_replies_cannot_block_the_host(tmp_path: Path) -> None:
    argv = child(
        tmp_path,
        """
        send({"type": "start", "pid": os.getpid()})
        for _ in range(300):
            send({"type": "call", "op": "get_secret_by_name", "name": "BIG"})
        send({"type": "result", "ok": True, "data": {"value": "done"}})
        """,
    )
    out = TaskProcess(argv, answer=answerer(BIG="x" * 100_000), timeout=20).run()
    assert out.status == "ok" and out.value == "done"


def test_leftover_holding_stdout_is_killed_and_the_host_returns(tmp_path: Path) -> None:
    argv = child(
        tmp_path,
        """
        send({"type": "start", "pid": os.getpid()})
        kid = subprocess.Popen(["sleep", "60"])  # inherits our stdout: the pipe stays open
        send({"type": "log", "level": "info", "msg": str(kid.pid)})
        send({"type": "result", "ok": True, "data": {"value": 1}})
        os._exit(0)
        """,
    )
    start = time.monotonic()
    out = TaskProcess(argv).run()
    assert time.monotonic() - start < 5
    assert out.status == "ok" and out.value == 1
    assert any("kept its stdout open" in w for w in out.warnings)
    assert gone(int(out.logs[0]["msg"]))


def test_cancel_from_another_thread(tmp_path: Path) -> None:
    argv = child(tmp_path, 'send({"type": "start", "pid": os.getpid()})\ntime.sleep(60)\n')
    proc = TaskProcess(argv)
    threading.Timer(0.3, proc.cancel).start()
    out = proc.run()
    assert out.status == "error"
    assert out.error["message"] == "cancelled: its process group was killed"


def test_a_command_that_cannot_start_is_an_error_not_a_crash(tmp_path: Path) -> None:
    out = TaskProcess([str(tmp_path / "no-such-gust")]).run()
    assert out.status == "error"
    assert "cannot start" in out.error["message"]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="timeout"):
        TaskProcess(["true"], timeout=0)
    with pytest.raises(ValueError, match="grace"):
        TaskProcess(["true"], grace=-1)


# -- arbitrary bytes ---------------------------------------------------------------------------


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.lists(st.binary(max_size=40), max_size=6).map(
            lambda parts: b"".join(struct.pack(">I", len(p)) + p for p in parts)
        ),
    ),
    st.sampled_from([0, 1]),
)
def test_arbitrary_bytes_never_crash_or_hang_the_host(
    tmp_path: Path, data: bytes, code: int
) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(data)
    script = tmp_path / "emit.py"
    script.write_text(
        "import sys\n"
        f"sys.stdout.buffer.write(open({str(blob)!r}, 'rb').read())\n"
        f"sys.stdout.buffer.flush()\nsys.exit({code})\n"
    )
    start = time.monotonic()
    out = TaskProcess([sys.executable, str(script)], answer=answerer(), timeout=10).run()
    assert time.monotonic() - start < 10
    assert out.status in ("ok", "error")
    assert out.exit_code == code or out.protocol_error is not None
    if out.status == "error":
        assert isinstance(out.error["message"], str) and out.error["message"]
    if code != 0:
        assert out.status == "error"
