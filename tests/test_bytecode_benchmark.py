"""benchmarks/bytecode.py: a smoke run (one run per variant; no timing assertions)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _host import REPO


@pytest.mark.timeout(180)
@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not on PATH: it builds the projects")
def test_smoke_run_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bytecode.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bytecode.py"),
            "--repeat",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Task start-up and compiled bytecode, median of 1 runs")
    data = json.loads(out.read_text())
    names = [row["name"] for row in data["rows"]]
    assert names == [
        "python -c pass",
        "gust task run, compiled at install",
        "gust task run, not compiled: first start (writes the cache)",
        "gust task run, not compiled, PYTHONDONTWRITEBYTECODE=1",
        "gust task run, not compiled, cache written by a first start",
        "uv run gust task run, compiled at install",
        "uv run gust task run, not compiled, PYTHONDONTWRITEBYTECODE=1",
    ]
    assert data["rows"][0]["x_bare"] == 1.0
    for row in data["rows"]:
        assert math.isfinite(row["median_ms"]) and row["median_ms"] > 0
        assert row["name"] in proc.stdout
    assert set(data["sync_s"]) == {"uv sync --compile-bytecode", "uv sync"}


def test_a_bad_repeat_is_a_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bytecode.py"), "--repeat", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--repeat must be 1 or more" in proc.stderr
