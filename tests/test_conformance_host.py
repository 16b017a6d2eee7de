"""Host mode of the conformance suite: green on our harness and on a small host, red on broken
hosts; and transcripts recorded by ``python -m gust.harness --record`` replay green.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gust.conformance.cases import Suite, load_cases
from gust.conformance.schema import SchemaSet

REPO = Path(__file__).resolve().parents[1]
SUITE = Suite(REPO / "conformance")
SCHEMAS = SchemaSet(SUITE.schema_dir)

HARNESS = [
    sys.executable,
    "-m",
    "gust.harness",
    "{dag_file}",
    "--dag",
    "{dag}",
    "--task",
    "{task}",
    "--run-id",
    "{run_id}",
    "--store",
    "{store}",
    "--gust-cmd",
    "{gust}",
    "--no-color",
]


def conformance(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gust.conformance", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )


def test_every_host_case_passes_against_our_harness(tmp_path: Path) -> None:
    proc = conformance("host", "--report-dir", str(tmp_path), "--", *HARNESS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    host_cases = [c.name for c in load_cases(SUITE, SCHEMAS, role="host")]
    lines = proc.stdout.splitlines()
    assert lines[-1] == f"{len(host_cases)} passed, 0 failed"
    assert [line.split()[1] for line in lines[:-1]] == host_cases

    report = json.loads((tmp_path / "y_secret_found.json").read_text())
    assert report["mode"] == "host" and report["verdict"] == "pass"
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["argv --file"]["ok"] and checks["argv --ctx-json"]["ok"]
    assert checks["step 2 (h2c reply)"]["ok"]
    assert checks["host outcome"]["ok"] and report["exit"] == 0
    h2c = b"".join(bytes.fromhex(w["hex"]) for w in report["wire"] if w["dir"] == "h2c")
    assert b'"value":"conf-tok-4711"' in h2c  # the harness answered from the store
    oversize = json.loads((tmp_path / "n_child_oversize_header.json").read_text())
    assert oversize["exit"] == 1  # the harness reported the task failed, and did not hang


SMALL_HOST = r'''
"""A small host: runs `GUST task run` once, answers calls from the store, exits 0 iff the task
succeeded. argv[1] names a fault to inject (none, wrong_shape, hang_on_oversize)."""
import json, os, subprocess, sys
from gust.protocol import FrameDecoder, ProtocolError, encode_frame, reply_error, reply_ok

fault, gust, dag_file, dag, task, ctx_json, store_path = sys.argv[1:8]
with open(store_path) as f:
    store = json.load(f)
child = subprocess.Popen(
    [gust, "task", "run", "--file", dag_file, "--dag", dag, "--task", task,
     "--ctx-json", ctx_json],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=os.path.dirname(dag_file))

def answer(call):
    if call["op"] == "get_secret_by_name":
        secret = store["secrets"].get(call["name"])
        if secret is None:
            return reply_error("secret_not_found")
        if fault == "wrong_shape":
            return reply_ok({"secret": secret["value"]})
        return reply_ok({"id": 1, "name": call["name"], **secret})
    result = store["runs"].get(str(call["run_id"]), {}).get(call["name"])
    if result is None:
        return reply_error("task_not_found")
    return reply_ok({"id": 2, "result": result})

outcome = None
def handle(frame):
    global outcome
    if frame.get("type") == "call":
        child.stdin.write(encode_frame(answer(frame)))
        child.stdin.flush()
    elif frame.get("type") == "result":
        outcome = frame.get("ok")

def read_exact(n):
    data = b""
    while len(data) < n:
        chunk = child.stdout.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data

if fault == "hang_on_oversize":  # trusts every length header: waits for 64 MiB forever
    while (header := read_exact(4)) is not None:
        payload = read_exact(int.from_bytes(header, "big"))
        if payload is None:
            break
        handle(json.loads(payload))
else:
    decoder = FrameDecoder()
    try:
        while chunk := child.stdout.read1(65536):
            decoder.feed(chunk)
            for frame in decoder.frames():
                handle(frame)
        decoder.eof()
    except ProtocolError as exc:
        print(f"task failed: protocol error {exc.code}: {exc}", file=sys.stderr)
        child.kill()
child.stdin.close()
code = child.wait()
sys.exit(0 if outcome is True and code == 0 else 1)
'''

SMALL_HOST_CASES = [
    "y_success",
    "y_task_failure",
    "y_secret_found",
    "y_upstream_found",
    "y_upstream_not_found",
    "n_child_garbage",
    "n_child_oversize_header",
    "n_child_eof_mid_frame",
    "n_child_exit_without_result",
]


@pytest.fixture(scope="module")
def small_host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hosts") / "small_host.py"
    path.write_text(SMALL_HOST, encoding="utf-8")
    return path


def _small_host_command(small_host: Path, fault: str) -> list[str]:
    return [
        sys.executable,
        str(small_host),
        fault,
        "{gust}",
        "{dag_file}",
        "{dag}",
        "{task}",
        "{ctx_json}",
        "{store}",
    ]


def test_a_small_correct_host_is_green_too(small_host: Path) -> None:
    args = [a for c in SMALL_HOST_CASES for a in ("--case", c)]
    proc = conformance("host", *args, "--", *_small_host_command(small_host, "none"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == f"{len(SMALL_HOST_CASES)} passed, 0 failed"


def test_a_host_answering_with_the_wrong_shape_fails_with_the_difference(
    small_host: Path,
) -> None:
    cmd = _small_host_command(small_host, "wrong_shape")
    proc = conformance("host", "--case", "y_secret_found", "--", *cmd)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line, summary = proc.stdout.splitlines()
    assert line.startswith("FAIL y_secret_found (")
    assert "step 2 (h2c reply) schema: $.data: 'id' is a required property" in line, line
    assert summary == "0 passed, 1 failed"


def test_a_host_that_hangs_on_an_oversize_header_fails_on_time(small_host: Path) -> None:
    cmd = _small_host_command(small_host, "hang_on_oversize")
    proc = conformance("host", "--case", "n_child_oversize_header", "--timeout", "2", "--", *cmd)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = proc.stdout.splitlines()[0]
    assert line.startswith("FAIL n_child_oversize_header (")
    assert "host finished: the host did not finish within 2 s (it hangs on this exchange)" in line


def test_a_host_that_never_runs_the_task_is_told_so(tmp_path: Path) -> None:
    proc = conformance("host", "--case", "y_success", "--", sys.executable, "-c", "pass")
    assert proc.returncode == 1
    assert "the host never started the case's task (--dag Basics --task succeed)" in proc.stdout
    assert "host outcome" not in proc.stdout


def test_the_scripted_child_refuses_to_run_by_hand() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUST_CONFORMANCE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "gust.conformance.scripted_child", "task", "run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "GUST_CONFORMANCE_CASE" in proc.stderr and "not by hand" in proc.stderr


def test_harness_recordings_replay_green_in_both_modes(tmp_path: Path) -> None:
    record = tmp_path / "recorded"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gust.harness",
            str(SUITE.dags_dir / "host_calls.py"),
            "--run-id",
            "7",
            "--store",
            str(SUITE.store_file),
            "--record",
            str(record),
            "--no-color",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    names = sorted(p.stem for p in record.glob("*.json"))
    tasks = ("produce", "secret_found", "secret_missing", "upstream_found", "upstream_missing")
    assert {f"y_host_calls_{t}" for t in tasks} <= set(names)  # one per task of the DAG
    n = len(names)
    proc = conformance("validate", "--transcripts", str(record))
    assert proc.returncode == 0 and f"{n} cases valid" in proc.stdout, proc.stdout + proc.stderr
    proc = conformance("runtime", "--transcripts", str(record))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == f"{n} passed, 0 failed"
    picked = ["--case", "y_host_calls_secret_found", "--case", "y_host_calls_upstream_found"]
    proc = conformance("host", "--transcripts", str(record), *picked, "--", *HARNESS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == "2 passed, 0 failed"
