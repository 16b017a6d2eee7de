"""Gust's exact exchange for the README's example DAG: parse, run both tasks, then the callback.

This plays Gust's adapter (README: "Running under Gust") step by step in Python, with Gust's
reply shapes, and checks what Gust would read at each step.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _host import REPO, run_gust

EXAMPLE = REPO / "harness" / "dags" / "hello_world.py"


def test_parse_then_run_every_task_then_callback() -> None:
    dags_folder = EXAMPLE.parent
    parsed = subprocess.run(
        [sys.executable, "-m", "gust", "parse", "--file", str(EXAMPLE)],
        capture_output=True,
        text=True,
        cwd=dags_folder,
        check=True,
    )
    entry = json.loads(parsed.stdout)[0]  # Gust takes the first entry only
    assert entry["error"] == {}
    assert entry["mod"] == "HelloWorld"
    assert entry["name"] == "hello_world"
    assert Path(entry["file_path"]).is_absolute()
    assert entry["options"] == {"schedule": "@daily", "on_finished_callback": "done_my_run"}
    tasks = entry["tasks"]
    assert all(isinstance(t["downstream"], list) for t in tasks.values())
    assert entry["stages"] == [["hello"], ["prepare"]]

    # Gust copies the file to the temp dir and runs every task of the run from the copy.
    copy = Path(tempfile.gettempdir()) / f"gust_py_dag_99_{EXAMPLE.name}"
    shutil.copy(entry["file_path"], copy)
    saved: dict[str, dict] = {}
    secrets = {"GREETING_TOKEN": {"id": 5, "value_type": "string", "value": "tok-123456"}}

    def answer(frame: dict) -> dict:
        if frame["op"] == "get_secret_by_name":
            secret = secrets.get(frame["name"])
            if secret is None:
                return {"type": "reply", "ok": False, "error": "secret_not_found"}
            return {"type": "reply", "ok": True, "data": {**secret, "name": frame["name"]}}
        assert frame["run_id"] == 1
        return {"type": "reply", "ok": True, "data": {"id": 1, "result": saved[frame["name"]]}}

    try:
        for stage in entry["stages"]:
            for name in stage:
                ex = run_gust(
                    "task",
                    "run",
                    "--file",
                    str(copy),
                    "--dag",
                    entry["mod"],
                    "--task",
                    name,
                    "--ctx-json",
                    json.dumps({"run_id": 1}),
                    answer=answer,
                    cwd=dags_folder,
                )
                assert ex.returncode == 0, ex.stderr
                assert ex.frames[0] == {"type": "start", "pid": ex.pid}
                result = ex.result
                assert result["ok"] is True, result
                value = result["data"]["value"]
                if tasks[name]["save"]:
                    assert isinstance(value, dict)
                saved[name] = value if tasks[name]["save"] else {}
                assert "tok-123456" not in json.dumps(ex.logs()), "secrets are masked in logs"
        assert saved["hello"] == {"greeting": "hello", "run_id": 1}
        done = run_gust(
            "run",
            "done",
            "--file",
            str(copy),
            "--dag",
            entry["name"],
            "--fn-name",
            entry["options"]["on_finished_callback"],
            "--status",
            "ok",
            "--run-id",
            "1",
            cwd=dags_folder,
        )
        assert done.returncode == 0, done.stderr
        assert done.logs() == [("info", "run 1 finished with status ok")]
    finally:
        copy.unlink()
