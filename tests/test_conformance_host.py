"""Host mode of the conformance suite: green on our harness and on a small host written from the
README, red on each kind of broken host (the same small host with one fault switched on), and
transcripts recorded by ``python -m gust.harness --record`` replay green.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _host import REPO

from gust.conformance import host_mode
from gust.conformance.cases import Suite, load_cases
from gust.conformance.report import CaseResult
from gust.conformance.schema import SchemaSet
from gust.protocol import FrameDecoder

SUITE = Suite(REPO / "conformance")
SCHEMAS = SchemaSet(SUITE.schema_dir)
HOST_CASES = {c.name: c for c in load_cases(SUITE, SCHEMAS, role="host")}
SMALL_HOST = Path(__file__).resolve().parent / "hosts" / "small_host.py"

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
    "--timeout",
    "{timeout}",
    "--no-color",
]


def small_host(fault: str, timeout: str = "{timeout}") -> list[str]:
    return [
        sys.executable,
        str(SMALL_HOST),
        fault,
        "{gust}",
        "{dag_file}",
        "{dag}",
        "{task}",
        "{ctx_json}",
        "{store}",
        timeout,
    ]


def conformance(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gust.conformance", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )


@pytest.mark.timeout(150)
def test_every_host_case_passes_against_our_harness(tmp_path: Path) -> None:
    proc = conformance("host", "--jobs", "4", "--report-dir", str(tmp_path), "--", *HARNESS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == f"{len(HOST_CASES)} passed, 0 failed"
    assert [line.split()[1] for line in lines[:-1]] == sorted(HOST_CASES)

    report = json.loads((tmp_path / "y_secret_found.json").read_text())
    assert report["mode"] == "host" and report["verdict"] == "pass"
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["argv --file"]["ok"] and checks["argv --ctx-json"]["ok"] and checks["cwd"]["ok"]
    assert checks["step 2 (h2c reply) schema"]["ok"] and checks["step 2 (h2c reply)"]["ok"]
    assert checks["host outcome"]["ok"] and report["exit"] == 0
    # One wire entry per frame, in wire order, each at the time it crossed (since the case began).
    wire = report["wire"]
    assert [(w["dir"], w["frame"]["type"]) for w in wire] == [
        ("c2h", "start"),
        ("c2h", "call"),
        ("h2c", "reply"),
        ("c2h", "log"),
        ("c2h", "result"),
    ]
    times = [w["t"] for w in wire]
    assert times == sorted(times) and times[0] > 0 and times[-1] <= report["duration_s"]
    assert wire[2]["frame"]["data"]["value"] == "conf-tok-4711"  # answered from the store
    for w in wire:
        decoder = FrameDecoder()
        decoder.feed(bytes.fromhex(w["hex"]))
        assert decoder.frames() == [w["frame"]]

    for name in ("n_child_oversize_header", "n_child_garbage", "n_child_hangs_past_timeout"):
        killed = json.loads((tmp_path / f"{name}.json").read_text())
        assert killed["exit"] == 1, name  # the harness reported the task failed
        check = next(c for c in killed["checks"] if c["name"] == "task process killed")
        assert check["ok"] and "ended" in check["detail"], check
    fault = json.loads((tmp_path / "n_child_oversize_header.json").read_text())
    assert fault["wire"][-1]["error"] == "oversize"


@pytest.mark.timeout(120)
def test_a_small_host_written_from_the_readme_is_green(tmp_path: Path) -> None:
    proc = conformance(
        "host", "--jobs", "4", "--report-dir", str(tmp_path), "--", *small_host("none")
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == f"{len(HOST_CASES)} passed, 0 failed"
    # The scripted child speaks from a grandchild, as Python does under `uv run`.
    report = json.loads((tmp_path / "y_success.json").read_text())
    said = json.loads(report["notes"][-1].removeprefix("host stdout (tail): "))
    assert said["start_pid"] != said["spawned_pid"]
    assert said["outcome"] is True and said["exit"] == 0


# (fault, case, what the case's line must say, the host's {timeout}, the case's time limit)
BROKEN_HOSTS = [
    (
        "wrong_shape",
        "y_secret_found",
        "step 2 (h2c reply) schema: $.data: 'id' is a required property",
        None,
        None,
    ),
    (
        "answer_twice",
        "y_secret_found",
        'stray frame: after step 2 (h2c reply) the host sent {"type":"reply","ok":true,',
        None,
        None,
    ),
    (
        "answer_twice",
        "y_upstream_found",
        'stray frame: after step 2 (h2c reply) the host sent {"type":"reply","ok":true,',
        None,
        None,
    ),
    ("speaks_unasked", "y_success", '"error":"welcome"}, which answers no call', None, None),
    (
        "exit0_is_success",
        "n_child_exit_0_without_result",
        "host outcome: the host exited 0 (ok) for a task whose outcome is 'failed'",
        None,
        None,
    ),
    (
        "exit0_is_success",
        "n_child_eof_mid_frame",
        "host outcome: the host exited 0 (ok) for a task whose outcome is 'failed'",
        None,
        None,
    ),
    (
        "kill_late",
        "n_child_oversize_header",
        "task process killed: start pid ",
        None,
        None,
    ),
    (
        "kill_late",
        "n_child_hangs_past_timeout",
        "still ran 3 s after its start (task timeout 1 s); a host must kill -9 the pid of the "
        "start frame (or the whole process group) at once (within 2 s).",
        None,
        None,
    ),
    (
        "kill_spawned_only",
        "n_child_hangs_past_timeout",
        "The host ended only the process it spawned: under `uv run` that is uv",
        None,
        None,
    ),
    (
        "kill_spawned_only",
        "n_child_garbage",
        "The host ended only the process it spawned: under `uv run` that is uv",
        None,
        None,
    ),
    (
        "never_kills",
        "n_child_oversize_header",
        "still ran 2 s after the framing fault",
        None,
        None,
    ),
    (
        "never_kills",
        "n_child_hangs_past_timeout",
        "still ran 3 s after its start (task timeout 1 s)",
        None,
        None,
    ),
    (
        "trusts_length",
        "n_child_oversize_header",
        "still ran 2 s after the framing fault",
        None,
        None,
    ),
    (
        "never_answers",
        "y_secret_found",
        "host finished: the host did not finish within 3 s: the scripted child was waiting at "
        "step 2 (h2c reply) for the reply to step 1 (c2h call get_secret_by_name) "
        '{"type":"call","op":"get_secret_by_name","name":"CONF_TOKEN"}; wire so far: '
        'c2h {"type":"start","pid":',
        "60",
        3.0,
    ),
    (
        "no_reply_to_bad_calls",
        "n_call_unknown_op",
        "for the reply to step 1 (c2h raw call get_weather)",
        "60",
        3.0,
    ),
    (
        "no_reply_to_bad_calls",
        "n_call_without_run_id",
        "for the reply to step 1 (c2h raw call get_task_by_name_run)",
        "60",
        3.0,
    ),
    (
        "lenient_json",
        "n_child_bad_json_frame",
        "which answers no call",  # the reply to the NaN call: seen before or after step 3
        None,
        None,
    ),
    (
        "lenient_json",
        "n_child_bad_utf8_frame",
        "step 3 (h2c reply): $.ok: expected true, got false",
        None,
        None,
    ),
    (
        "bad_frames_are_fatal",
        "n_child_not_object_frame",
        "after a not_object frame the stream is still in step: a host drops the frame and goes on",
        None,
        None,
    ),
    (
        "drop_env",
        "y_success",
        "scripted child ran: the scripted child refused to run: GUST_CONFORMANCE_SESSION is not "
        "set in its environment: the host must pass its environment on to the child",
        None,
        None,
    ),
    (
        "usage_error",
        "y_success",
        "scripted child ran: the host exited 2 without starting the case's task (--dag Basics "
        "--task succeed) through the scripted child; its stderr ends: usage: small_host.py FAULT",
        None,
        None,
    ),
]


@pytest.fixture(scope="module")
def broken_verdicts() -> dict[tuple[str, str], CaseResult]:
    """Every broken host of the table on its case, all at once (most of them wait on a clock)."""

    def play(row: tuple) -> CaseResult:
        fault, case, _, host_timeout, limit = row
        command = small_host(fault, host_timeout or "{timeout}")
        return host_mode.run_case(HOST_CASES[case], SUITE, SCHEMAS, command, timeout=limit or 20.0)

    with ThreadPoolExecutor(max_workers=len(BROKEN_HOSTS)) as pool:
        results = list(pool.map(play, BROKEN_HOSTS))
    return {(row[0], row[1]): result for row, result in zip(BROKEN_HOSTS, results, strict=True)}


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("fault", "case", "says"),
    [row[:3] for row in BROKEN_HOSTS],
    ids=[f"{row[0]}-{row[1]}" for row in BROKEN_HOSTS],
)
def test_each_broken_host_fails_its_case_saying_why(
    broken_verdicts: dict[tuple[str, str], CaseResult], fault: str, case: str, says: str
) -> None:
    result = broken_verdicts[(fault, case)]
    assert not result.passed
    assert says in result.line(), result.line()


def test_the_console_line_shows_a_hosts_usage_error() -> None:
    proc = conformance("host", "--case", "y_success", "--", *small_host("usage_error"))
    assert proc.returncode == 1
    line, summary = proc.stdout.splitlines()
    assert line.startswith("FAIL y_success (")
    assert line.endswith(
        "scripted child ran: the host exited 2 without starting the case's task (--dag Basics "
        "--task succeed) through the scripted child; its stderr ends: usage: small_host.py FAULT "
        "GUST DAG_FILE DAG TASK CTX_JSON STORE TIMEOUT"
    ), line
    assert summary == "0 passed, 1 failed"


def test_a_host_that_crashes_mid_exchange_shows_its_status_and_stderr(tmp_path: Path) -> None:
    crashing = tmp_path / "crashing_host.py"
    crashing.write_text(
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.argv[1], 'task', 'run', '--file', sys.argv[2], '--dag',\n"
        "    'Basics', '--task', 'succeed', '--ctx-json', sys.argv[3]], stdout=subprocess.PIPE)\n"
        "child.stdout.read(4)\n"
        "sys.stderr.write('host bug: KeyError: pid\\n')\n"
        "sys.exit(3)\n",
        encoding="utf-8",
    )
    cmd = [sys.executable, str(crashing), "{gust}", "{dag_file}", "{ctx_json}"]
    result = host_mode.run_case(HOST_CASES["y_success"], SUITE, SCHEMAS, cmd, timeout=20)
    assert not result.passed
    line = result.line()
    assert "the host exited 3" in line and "its stderr ends: host bug: KeyError: pid" in line


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
    assert "not by hand" in proc.stderr and "python -m gust.conformance host" in proc.stderr


@pytest.mark.timeout(120)
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
