"""No code injection through the import path (issue 10): only a DAG's real home is importable.

Gust runs every task from a copy of the DAG file in the system temp dir, a folder every user
can write. Each test plants modules named like standard-library modules (and like the DAG's own
helper) in such a folder; importing any of them would create a marker file. The real CLI then
runs the DAG exactly as Gust and the harness do, and no marker may appear, while the helper
beside the DAG in the DAGs folder still imports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _host import task_run

DAG = """
from gust import Dag, task

class Injected(Dag):
    @task
    def uses_imports(self, ctx):
        import decimal
        import helper_beside
        return {"helper": helper_beside.VALUE, "decimal": str(decimal.Decimal("1.5"))}

    @task
    def fails(self, ctx):
        import decimal
        raise ValueError(decimal.Decimal("2"))
"""

PLANTED = ("decimal", "traceback", "helper_beside", "asyncio", "logging")


def plant(folder: Path, marker: Path) -> None:
    """Put modules in ``folder`` that record their import in ``marker`` and then break."""
    for name in PLANTED:
        (folder / f"{name}.py").write_text(
            "import os\n"
            f"with open({str(marker)!r}, 'a') as f:\n"
            f"    f.write({name!r} + '\\n')\n"
            "VALUE = 'planted'\n",
            encoding="utf-8",
        )


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """A private DAGs folder with a DAG and its helper, and a world-writable temp dir."""
    dags = tmp_path / "dags"
    dags.mkdir(mode=0o755)
    (dags / "injected.py").write_text(DAG, encoding="utf-8")
    (dags / "helper_beside.py").write_text("VALUE = 'from the DAGs folder'\n", encoding="utf-8")
    temp = tmp_path / "shared_tmp"
    temp.mkdir()
    temp.chmod(0o1777)  # like /tmp: anyone may plant a file here
    marker = tmp_path / "planted_modules_ran.txt"
    plant(temp, marker)
    copy = temp / "gust_py_dag_42_injected.py"
    shutil.copyfile(dags / "injected.py", copy)
    return {"dags": dags, "temp": temp, "marker": marker, "copy": copy}


def env_with_tmpdir(temp: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(temp)}


def assert_nothing_planted_ran(marker: Path) -> None:
    ran = marker.read_text(encoding="utf-8").split() if marker.exists() else []
    assert ran == [], f"planted modules were imported: {ran}"


def console_script() -> str:
    script = Path(sys.executable).with_name("gust")
    assert script.exists(), f"no console script beside {sys.executable}"
    return str(script)


@pytest.mark.timeout(30)
def test_temp_copy_as_gust_runs_it_imports_nothing_from_the_temp_dir(layout):
    ex = task_run(
        layout["copy"],
        "Injected",
        "uses_imports",
        cwd=layout["dags"],
        env=env_with_tmpdir(layout["temp"]),
    )
    assert ex.result["ok"] is True, ex.frames
    assert ex.result["data"]["value"] == {"helper": "from the DAGs folder", "decimal": "1.5"}
    assert_nothing_planted_ran(layout["marker"])


@pytest.mark.timeout(30)
def test_a_failing_task_formats_its_trace_with_the_real_traceback_module(layout):
    ex = task_run(
        layout["copy"], "Injected", "fails", cwd=layout["dags"], env=env_with_tmpdir(layout["temp"])
    )
    assert ex.result["ok"] is False
    assert ex.result["error"]["type"] == "ValueError"
    assert "Traceback (most recent call last)" in ex.result["error"]["traceback"]
    assert_nothing_planted_ran(layout["marker"])


@pytest.mark.timeout(30)
def test_the_console_script_gust_runs_through_is_just_as_safe(layout):
    """Gust runs ``uv run gust ...``: the console script, not ``python -m gust``."""
    proc = subprocess.run(
        [
            console_script(),
            "task",
            "run",
            "--file",
            str(layout["copy"]),
            "--dag",
            "Injected",
            "--task",
            "fails",
            "--ctx-json",
            '{"run_id": 1}',
        ],
        cwd=layout["dags"],
        env=env_with_tmpdir(layout["temp"]),
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert b"Task execution failed" in proc.stdout
    assert_nothing_planted_ran(layout["marker"])


@pytest.mark.timeout(30)
def test_a_working_directory_others_can_write_is_not_importable(layout):
    """Run from the temp dir itself (cwd world-writable): still nothing planted runs."""
    ex = task_run(
        layout["copy"],
        "Injected",
        "fails",
        cwd=layout["temp"],
        env=env_with_tmpdir(layout["temp"]),
    )
    assert ex.result["ok"] is False
    assert_nothing_planted_ran(layout["marker"])


@pytest.mark.timeout(30)
def test_a_private_temp_dir_is_not_a_dag_home_either(tmp_path, layout):
    private = tmp_path / "private_tmp"
    private.mkdir(mode=0o700)
    plant(private, layout["marker"])
    copy = private / "gust_py_dag_7_injected.py"
    shutil.copyfile(layout["dags"] / "injected.py", copy)
    ex = task_run(
        copy, "Injected", "uses_imports", cwd=layout["dags"], env=env_with_tmpdir(private)
    )
    assert ex.result["ok"] is True, ex.frames
    assert ex.result["data"]["value"]["helper"] == "from the DAGs folder"
    assert_nothing_planted_ran(layout["marker"])


@pytest.mark.timeout(30)
def test_the_dags_folder_cannot_shadow_the_standard_library(layout):
    plant(layout["dags"], layout["marker"])  # decimal.py beside the DAG, in its real home
    (layout["dags"] / "helper_beside.py").write_text("VALUE = 'from the DAGs folder'\n")
    ex = task_run(
        layout["copy"],
        "Injected",
        "uses_imports",
        cwd=layout["dags"],
        env=env_with_tmpdir(layout["temp"]),
    )
    assert ex.result["ok"] is True, ex.frames
    assert ex.result["data"]["value"] == {"helper": "from the DAGs folder", "decimal": "1.5"}
    assert_nothing_planted_ran(layout["marker"])


@pytest.mark.timeout(60)
def test_the_harness_run_imports_the_sibling_and_nothing_planted(layout):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gust.harness",
            str(layout["dags"] / "injected.py"),
            "--task",
            "uses_imports",
            "--json",
        ],
        cwd=layout["dags"].parent,
        env=env_with_tmpdir(layout["temp"]),
        capture_output=True,
        timeout=50,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout)
    assert report["tasks"]["uses_imports"]["value"]["helper"] == "from the DAGs folder"
    assert_nothing_planted_ran(layout["marker"])


PERMS_DAG = """
import os
from gust import Dag, task

class Perms(Dag):
    @task
    def mode(self, ctx):
        return {"mode": oct(os.stat(__file__).st_mode & 0o777), "file": __file__}
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
def test_the_harness_copy_keeps_the_original_permissions(tmp_path, mode):
    dag = tmp_path / "perms.py"
    dag.write_text(PERMS_DAG, encoding="utf-8")
    dag.chmod(mode)
    temp = tmp_path / "tmp"
    temp.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "gust.harness", str(dag), "--json"],
        cwd=tmp_path,
        env=env_with_tmpdir(temp),
        capture_output=True,
        timeout=50,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    value = json.loads(proc.stdout)["tasks"]["mode"]["value"]
    assert value["mode"] == oct(mode)
    assert Path(value["file"]).parent == temp
    assert list(temp.iterdir()) == []  # removed after the run


@pytest.mark.timeout(30)
def test_a_bytecode_cache_planted_beside_the_temp_copy_is_never_run(layout):
    """A pyc matching the copy's size and mtime would be trusted by Python's loader."""
    import importlib.util
    import marshal

    copy = layout["copy"]
    evil = compile(
        f"open({str(layout['marker'])!r}, 'a').write('pyc\\n')\nfrom gust import Dag\n"
        "class Injected(Dag):\n    pass\n",
        str(copy),
        "exec",
    )
    info = copy.stat()
    header = importlib.util.MAGIC_NUMBER + (0).to_bytes(4, "little")
    header += int(info.st_mtime).to_bytes(4, "little") + (info.st_size & 0xFFFFFFFF).to_bytes(
        4, "little"
    )
    cache = Path(importlib.util.cache_from_source(str(copy)))
    cache.parent.mkdir(exist_ok=True)
    cache.write_bytes(header + marshal.dumps(evil))
    ex = task_run(
        copy, "Injected", "uses_imports", cwd=layout["dags"], env=env_with_tmpdir(layout["temp"])
    )
    assert ex.result["ok"] is True, ex.frames
    assert_nothing_planted_ran(layout["marker"])


@pytest.mark.timeout(30)
def test_running_the_temp_copy_leaves_no_bytecode_in_the_temp_dir(layout):
    ex = task_run(
        layout["copy"], "Injected", "uses_imports", cwd=layout["dags"],
        env={**env_with_tmpdir(layout["temp"]), "PYTHONDONTWRITEBYTECODE": ""},
    )  # fmt: skip
    assert ex.result["ok"] is True
    assert not (layout["temp"] / "__pycache__").exists()
