"""Promises of the harness pinned at their exact edges (issue 16): limits, tails, transitivity.

Each test is written so that the natural mistake (an off-by-one, the head kept instead of the
tail, a skip that is not transitive) fails it.
"""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest
from _host import harness_json

from gust import protocol

run_json = harness_json


ONE = """\
from gust import Dag, task

class One(Dag):
    @task
    def only(self, ctx):
        return 1
"""

# A runtime that sends one log frame whose payload is exactly SIZE bytes, then a result.
SIZED_RUNTIME = """\
import json, os, struct, sys
if sys.argv[1:2] == ["parse"]:
    os.execv(sys.executable, [sys.executable, "-m", "gust", *sys.argv[1:]])
size = int(os.environ["FRAME_PAYLOAD"])
def frame(payload):
    os.write(1, struct.pack(">I", len(payload)) + payload)
frame(json.dumps({"type": "start", "pid": os.getpid()}).encode())
head = b'{"type":"log","level":"info","msg":"'
tail = b'"}'
frame(head + b"x" * (size - len(head) - len(tail)) + tail)
frame(json.dumps({"type": "result", "ok": True, "data": {"value": "done"}}).encode())
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("payload", "ok"), [(4096, True), (4097, False)])
def test_a_frame_exactly_at_the_limit_passes_and_one_byte_more_is_oversize(tmp_path, payload, ok):
    (tmp_path / "one.py").write_text(ONE)
    runtime = tmp_path / "sized.py"
    runtime.write_text(SIZED_RUNTIME)
    code, report = run_json(
        "one.py", "--max-frame-size", "4096",
        "--gust-cmd", shlex.join([sys.executable, str(runtime)]),
        cwd=tmp_path,
        env={"FRAME_PAYLOAD": str(payload)},
    )  # fmt: skip
    only = report["tasks"]["only"]
    if ok:
        assert (code, only["status"], only["value"]) == (0, "ok", "done")
        assert len(only["logs"][0]["msg"]) == payload - len(
            '{"type":"log","level":"info","msg":""}'
        )
    else:
        assert (code, only["status"]) == (1, "error")
        assert only["error"]["protocol_error"]["code"] == "oversize"
        assert "4097 bytes, over the limit of 4096" in only["error"]["message"]


def test_the_frame_limit_flag_accepts_exactly_the_protocol_maximum(tmp_path):
    (tmp_path / "one.py").write_text(ONE)
    top = str(protocol.MAX_FRAME_FORMAT)
    assert run_json("one.py", "--max-frame-size", top, cwd=tmp_path)[0] == 0
    over = subprocess.run(
        [sys.executable, "-m", "gust.harness", "one.py", "--max-frame-size", str(int(top) + 1)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert over.returncode == 2 and "--max-frame-size" in over.stderr


NOISY = """\
import os, sys
from gust import Dag, task

class Noisy(Dag):
    @task
    def noisy(self, ctx):
        for i in range(1, 101):
            print(f"stderr line {i}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(3)
"""


@pytest.mark.timeout(60)
def test_the_stderr_tail_is_the_last_twenty_lines(tmp_path):
    (tmp_path / "noisy.py").write_text(NOISY)
    code, report = run_json("noisy.py", cwd=tmp_path)
    assert code == 1
    tail = report["tasks"]["noisy"]["error"]["stderr_tail"].split("\n")
    assert tail == [f"stderr line {i}" for i in range(81, 101)]


CHAIN = """\
import time
from gust import Dag, task

class Chain(Dag):
    @task(downstream="b")
    def a(self, ctx):
        if {mode!r} == "error":
            raise RuntimeError("a broke")
        time.sleep(30)

    @task(downstream="c")
    def b(self, ctx):
        open("b_ran", "w").close()

    @task
    def c(self, ctx):
        open("c_ran", "w").close()

    @task(downstream="y")
    def x(self, ctx):
        return "x"

    @task
    def y(self, ctx):
        return "y"
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("mode", "status", "timeout"), [("error", "error", "30"), ("timeout", "timeout", "5")]
)
def test_upstream_failed_is_transitive_and_an_independent_branch_still_runs(
    tmp_path, mode, status, timeout
):
    (tmp_path / "chain.py").write_text(CHAIN.format(mode=mode))
    code, report = run_json("chain.py", "--timeout", timeout, "--grace", "0.5", cwd=tmp_path)
    assert code == 1
    tasks = report["tasks"]
    assert tasks["a"]["status"] == status
    assert (tasks["b"]["status"], tasks["b"]["attempts"]) == ("upstream_failed", 0)
    assert (tasks["c"]["status"], tasks["c"]["attempts"]) == ("upstream_failed", 0)
    assert tasks["b"]["error"]["message"] == "upstream task(s) did not succeed: a"
    assert tasks["c"]["error"]["message"] == "upstream task(s) did not succeed: b"
    assert not (tmp_path / "b_ran").exists() and not (tmp_path / "c_ran").exists()
    assert (tasks["x"]["value"], tasks["y"]["value"]) == ("x", "y")
