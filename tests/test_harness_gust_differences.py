"""Where a dry run would differ from Gust, the harness says so in the task's report (issue 17)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DAG = """\
from gust import Dag, get_task_by_name_run, log, task

class Differs(Dag):
    @task(downstream="reader")
    def unsaved(self, ctx):
        return {"rows": 3}

    @task
    def reader(self, ctx):
        got = get_task_by_name_run("unsaved", ctx["run_id"])
        log("debugging", level="debug")
        log("and again", level="warning")
        return got["result"]
"""


@pytest.mark.timeout(60)
def test_reading_an_unsaved_result_and_log_levels_are_flagged(tmp_path: Path) -> None:
    (tmp_path / "differs.py").write_text(DAG)
    proc = subprocess.run(
        [sys.executable, "-m", "gust.harness", "differs.py", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    reader = json.loads(proc.stdout)["tasks"]["reader"]
    assert reader["value"] == {}  # what Gust would hand over, too
    assert reader["warnings"] == [
        "get_task_by_name_run('unsaved', 1): task 'unsaved' has save=False, so Gust keeps no "
        "result and answers {} (as the harness did); set @task(save=True) on 'unsaved' to pass "
        "its value",
        "a log line at level 'debug': Gust stores every log line as info (it ignores the level)",
    ]
    view = subprocess.run(
        [sys.executable, "-m", "gust.harness", "differs.py", "--no-color"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert (
        "reader     warning: get_task_by_name_run('unsaved', 1): task 'unsaved' has save=False"
        in view.stdout
    )


CALLBACK = """\
from gust import Dag, get_secret_by_name, task

class Calls(Dag):
    def __init__(self):
        super().__init__(on_finished_callback="done")

    @task
    def only(self, ctx):
        return 1

    def done(self, status, run):
        get_secret_by_name("TOKEN")
"""


@pytest.mark.timeout(60)
def test_a_callback_that_calls_the_host_is_flagged(tmp_path: Path) -> None:
    (tmp_path / "calls.py").write_text(CALLBACK)
    proc = subprocess.run(
        [sys.executable, "-m", "gust.harness", "calls.py", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    report = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert report["status"] == "callback_failed"
    callback = report["callback"]
    assert callback["status"] == "error"
    assert callback["warnings"] == [
        "a call of 'get_secret_by_name' where no host answers calls (Gust answers none in "
        "`run done`; the call raised NotInTaskError); no reply sent"
    ]
    assert "NotInTaskError" in callback["error"]["stderr_tail"]
