"""The "no import errors" test every DAG project keeps: gust check over the DAGs folder."""

import subprocess
import sys
from pathlib import Path

DAGS = Path(__file__).resolve().parents[1] / "dags"


def test_every_dag_file_parses_and_imports_cleanly():
    proc = subprocess.run(
        [sys.executable, "-m", "gust", "check", str(DAGS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == "gust check: 1 DAG file, no problems\n"
