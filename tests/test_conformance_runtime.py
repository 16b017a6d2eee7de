"""Runtime mode of the conformance suite: green on our runtime, red on broken ones.

The broken runtimes are our real runtime behind a small proxy that injects exactly one fault
into its frames (or into where it reads its replies from), so each red verdict can only come
from that fault; the same proxy without a fault is green, which shows the proxy is honest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _host import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gust.conformance import runtime_mode
from gust.conformance.cases import Suite, load_cases
from gust.conformance.schema import SchemaSet
from gust.protocol import FrameDecoder

SUITE = Suite(REPO / "conformance")
SCHEMAS = SchemaSet(SUITE.schema_dir)


def conformance(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gust.conformance", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )


def test_every_runtime_case_passes_against_our_runtime(tmp_path: Path) -> None:
    proc = conformance("runtime", "--report-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    runtime_cases = [c.name for c in load_cases(SUITE, SCHEMAS, role="runtime")]
    assert lines[-1] == f"{len(runtime_cases)} passed, 0 failed"
    assert [line.split()[1] for line in lines[:-1]] == runtime_cases
    assert all(line.startswith("PASS ") for line in lines[:-1])

    # the per-case report: checks, the wire both ways, stderr and exit status
    report = json.loads((tmp_path / "y_secret_found.json").read_text())
    assert report["verdict"] == "pass" and report["first_difference"] is None
    assert report["mode"] == "runtime" and report["exit"] == 0
    assert report["command"][-8:-6] == ["--file", str((SUITE.dags_dir / "host_calls.py").resolve())]
    names = [c["name"] for c in report["checks"]]
    assert "step 2 (h2c reply)" in names and names[-4:] == [
        "end of output",
        "exit",
        "outcome",
        "stderr",
    ]
    # every frame crossing the wire, in both directions, was validated against its schema
    frame_steps = [n for n in names if n.startswith("step ") and not n.endswith(" schema")]
    assert [f"{n} schema" for n in frame_steps] == [n for n in names if n.endswith(" schema")]
    # the wire: one entry per frame, in the order and at the time each crossed
    wire = report["wire"]
    assert [(w["dir"], w["frame"]["type"]) for w in wire] == [
        ("c2h", "start"),
        ("c2h", "call"),
        ("h2c", "reply"),
        ("c2h", "log"),
        ("c2h", "result"),
    ]
    assert [w["t"] for w in wire] == sorted(w["t"] for w in wire)
    for w in wire:
        decoder = FrameDecoder()
        decoder.feed(bytes.fromhex(w["hex"]))
        assert decoder.frames() == [w["frame"]]
    assert wire[2]["frame"]["data"]["value"] == "conf-tok-4711"
    failed_report = json.loads((tmp_path / "y_run_done_failure.json").read_text())
    assert failed_report["exit"] == 1 and "RuntimeError" in failed_report["stderr"]


BROKEN_RUNTIME = r'''
"""The real gust behind a proxy that injects one fault (argv[1]) into what it says or hears."""
import json, os, subprocess, sys, threading
from gust.protocol import FrameDecoder, encode_frame

fault, args = sys.argv[1], sys.argv[2:]
real = subprocess.Popen([sys.executable, "-m", "gust", *args],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)

def forward_replies():
    # wrong_descriptor: replies are read from a descriptor that is not the host's stdin
    src = os.open(os.devnull, os.O_RDONLY) if fault == "wrong_descriptor" else 0
    while chunk := os.read(src, 65536):
        real.stdin.write(chunk)
        real.stdin.flush()
    real.stdin.close()

def nan_for_null(value):
    if value is None:
        return float("nan")
    if isinstance(value, dict):
        return {k: nan_for_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nan_for_null(v) for v in value]
    return value

replies = threading.Thread(target=forward_replies, daemon=True)
replies.start()
out = sys.stdout.buffer
decoder = FrameDecoder()
while chunk := real.stdout.read1(65536):
    decoder.feed(chunk)
    for frame in decoder.frames():
        kind = frame.get("type")
        if fault == "no_start" and kind == "start":
            continue
        if fault == "no_error_frame" and kind == "error":
            continue
        if fault == "msg_not_string" and kind == "log":
            frame["msg"] = [frame["msg"]]
        if fault == "nan_result" and kind == "log" and frame["level"] == "warning":
            continue
        if fault == "nan_result" and kind == "result" and frame["ok"]:
            payload = json.dumps(nan_for_null(frame)).encode()
            out.write(len(payload).to_bytes(4, "big") + payload)
            out.flush()
            continue
        out.write(encode_frame(frame))
        if fault == "frame_after_result" and kind == "result":
            out.write(encode_frame({"type": "log", "level": "info", "msg": "one more"}))
        out.flush()
# The real runtime has exited but stays unreaped, so the host, which checks the start frame's
# pid against our descendants as it reads, still finds it there however late it reads. The
# host closes our stdin once it has read our whole output: only then is it reaped.
sys.stdout.close()
os.close(1)  # sys.stdout never closes the descriptor itself
if fault == "wrong_descriptor":
    while os.read(0, 65536):
        pass
else:
    replies.join()
sys.exit(real.wait())
'''


@pytest.fixture(scope="module")
def broken_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("broken") / "broken_runtime.py"
    path.write_text(BROKEN_RUNTIME, encoding="utf-8")
    return path


def test_the_fault_proxy_alone_is_green(broken_runtime: Path) -> None:
    cases = ["y_success", "y_nan_result", "y_task_failure", "y_secret_found", "y_every_log_level"]
    args = [a for c in cases for a in ("--case", c)]
    proc = conformance("runtime", *args, "--", sys.executable, str(broken_runtime), "none")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == "5 passed, 0 failed"


@pytest.mark.parametrize(
    ("fault", "case", "difference"),
    [
        ("no_start", "y_success", 'step 0 (c2h start): $.type: expected "start", got "result"'),
        ("nan_result", "y_nan_result", "step 1 (c2h log): the child's stream broke: bad_json"),
        (
            "no_error_frame",
            "y_task_failure",
            'step 2 (c2h error): $.type: expected "error", got "result"',
        ),
        (
            "wrong_descriptor",
            "y_secret_found",
            'step 3 (c2h log): $.type: expected "log", got "error"',
        ),
        ("msg_not_string", "y_every_log_level", "step 1 (c2h log) schema: $.msg: "),
        ("frame_after_result", "y_success", "end of output: an unexpected frame after the last"),
    ],
)
def test_a_broken_runtime_fails_with_the_case_and_the_difference(
    broken_runtime: Path, fault: str, case: str, difference: str
) -> None:
    proc = conformance("runtime", "--case", case, "--", sys.executable, str(broken_runtime), fault)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line, summary = proc.stdout.splitlines()
    assert line.startswith(f"FAIL {case} (")
    assert difference in line, line
    assert summary == "0 passed, 1 failed"


def test_the_outcome_is_judged_by_the_hosts_exchange_rules(tmp_path: Path) -> None:
    # The same exchange machine as the harness decides how the task ended: a case whose
    # outcome disagrees with its frames and exit status fails on that check.
    case = json.loads((SUITE.transcripts_dir / "y_success.json").read_text())
    case["outcome"] = "failed"
    case["dag"] = str(SUITE.dags_dir / case["dag"])
    (tmp_path / "y_success.json").write_text(json.dumps(case))
    proc = conformance("runtime", "--transcripts", str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0].endswith(
        "outcome: under the host's rules (exit 0 and a success result) the task is ok; "
        "expected failed"
    ), proc.stdout


def test_a_silent_runtime_fails_on_time_instead_of_hanging() -> None:
    silent = [sys.executable, "-c", "import time; time.sleep(30)"]
    proc = conformance("runtime", "--case", "y_success", "--timeout", "1", "--", *silent)
    assert proc.returncode == 1
    assert "FAIL y_success" in proc.stdout
    assert "step 0 (c2h start): no frame within the case's time limit" in proc.stdout


def test_help_names_the_modes_and_every_exit_status() -> None:
    proc = conformance("--help")
    assert proc.returncode == 0
    assert proc.stdout.startswith("Usage: python -m gust.conformance [OPTIONS] COMMAND [ARGS]...")
    for mode in ("host", "runtime", "validate"):
        assert f"\n  {mode} " in proc.stdout
    assert "Exit status: 0 every case passed, 1 a case failed, 2 usage error" in " ".join(
        proc.stdout.split()
    )


def test_usage_errors_exit_2() -> None:
    proc = conformance("runtime", "--case", "no_such_case")
    assert proc.returncode == 2
    assert "no case matches 'no_such_case'" in proc.stderr
    proc = conformance("host", "--case", "y_success")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == "Error: Missing argument 'COMMAND...'."
    proc = conformance("runtime", "--timeout", "0")
    assert proc.returncode == 2
    assert "Invalid value for '--timeout'" in proc.stderr


CALL_CASES = [
    c for c in load_cases(SUITE, SCHEMAS, role="runtime") if any(s.dir == "h2c" for s in c.steps)
]


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    case=st.sampled_from([c for c in CALL_CASES if c.name.startswith("y_")]),
    sizes=st.lists(st.integers(1, 7), min_size=1, max_size=6),
    pause=st.sampled_from([0.0, 0.0005, 0.002]),
)
def test_replies_written_byte_by_byte_with_pauses_are_read_correctly(
    case, sizes: list[int], pause: float
) -> None:
    pieces: list[bytes] = []

    def chunker(data: bytes):
        pos, i = 0, 0
        while pos < len(data):
            size = sizes[i % len(sizes)]
            pieces.append(data[pos : pos + size])
            yield data[pos : pos + size], pause
            pos, i = pos + size, i + 1

    result = runtime_mode.run_case(case, SCHEMAS, chunker=chunker, timeout=20)
    assert result.passed, result.line()
    replies = [w for w in result.wire if w.dir == "h2c"]
    assert b"".join(pieces) == b"".join(w.data for w in replies)  # each reply cut as asked
    assert len(pieces) > len(replies) and max(len(p) for p in pieces) <= max(sizes)
