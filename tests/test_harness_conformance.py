"""The harness against the conformance suite: as a host it passes every host case (a scripted
child plays each exchange, bad children included), and what ``--record`` writes replays green
against the runtime."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def conformance(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gust.conformance", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_harness_passes_every_host_case() -> None:
    proc = conformance(
        "host", "--jobs", str(min(4, os.cpu_count() or 2)), "--",
        sys.executable, "-m", "gust.harness", "{dag_file}", "--task", "{task}",
        "--run-id", "{run_id}", "--store", "{store}", "--gust-cmd", "{gust}",
        "--timeout", "20", "--grace", "1", "--json",
    )  # fmt: skip
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lines[-1].endswith("passed, 0 failed")
    assert int(lines[-1].split()[0]) >= 10  # the suite has cases, and all of them ran
    assert not [line for line in lines[:-1] if not line.startswith("PASS ")]


def test_recorded_transcripts_replay_green(tmp_path: Path) -> None:
    record = tmp_path / "rec"
    for dag in ("hello_world", "failing"):
        run = subprocess.run(
            [sys.executable, "-m", "gust.harness", f"harness/dags/{dag}.py", "--store",
             "harness/store.json", "--record", str(record), "--json"],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert run.returncode in (0, 1), run.stderr
    names = sorted(p.stem for p in record.glob("*.json"))
    assert names == [
        "y_failing_audit",
        "y_failing_extract",
        "y_failing_summarize",
        "y_hello_world_hello",
        "y_hello_world_prepare",
    ]  # publish never ran (upstream_failed): nothing to record
    proc = conformance("runtime", "--transcripts", str(record))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "5 passed, 0 failed"
