"""The suite ships with the runner: a built wheel holds the cases as real files, and an install of
it checks a runtime from outside any checkout (``uv build`` and ``uv pip install`` work offline,
from the uv cache that ``uv sync`` filled).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from _host import REPO

from gust.conformance.cases import Suite, load_cases
from gust.conformance.schema import SchemaSet

UV = os.environ.get("UV") or shutil.which("uv")
SUITE_FILES = [
    "schema/transcript.schema.json",
    "vectors/framing.json",
    "transcripts/y_success.json",
    "transcripts/n_child_hangs_past_timeout.json",
    "dags/basics.py",
    "dags/store.json",
]

pytestmark = pytest.mark.skipif(UV is None, reason="uv is not on PATH (it runs this suite)")


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=150
    )
    assert proc.returncode == 0, f"{argv}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def test_the_top_level_folder_is_the_same_files_as_the_package_data() -> None:
    for name in ("schema", "vectors", "transcripts", "dags"):
        link = REPO / "conformance" / name
        assert link.is_symlink(), f"{link} must link to the package data, not copy it"
        assert link.resolve() == (REPO / "gust" / "conformance" / "suite" / name).resolve()


@pytest.mark.timeout(240)
def test_an_installed_wheel_checks_a_runtime_outside_the_repository(tmp_path: Path) -> None:
    assert UV is not None
    dist = tmp_path / "dist"
    run(UV, "build", "--offline", "--out-dir", dist, REPO, cwd=tmp_path)
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")

    with zipfile.ZipFile(wheel) as zf:
        members = {i.filename: i for i in zf.infolist()}
    for name in SUITE_FILES:
        info = members[f"gust/conformance/suite/{name}"]
        assert not stat.S_ISLNK(info.external_attr >> 16), f"{name} is a symlink in the wheel"
        assert info.file_size > 0
    with tarfile.open(sdist) as tf:
        tar_members = {m.name.split("/", 1)[1]: m for m in tf.getmembers()}
    for name in SUITE_FILES:
        assert tar_members[f"gust/conformance/suite/{name}"].isfile(), name
    assert tar_members["conformance/README.md"].isfile()

    # A clean venv with the locked dependencies of the `conformance` extra (from the uv cache,
    # as `uv sync` left it), then the wheel itself.
    venv = tmp_path / "venv"
    deps = dict(os.environ, UV_PROJECT_ENVIRONMENT=str(venv))
    run(
        UV, "sync", "--frozen", "--offline", "--no-dev", "--extra", "conformance",
        "--no-install-project", "--python", sys.executable, cwd=REPO, env=deps,
    )  # fmt: skip
    python = venv / "bin" / "python"
    run(UV, "pip", "install", "--offline", "--no-deps", "--python", python, wheel, cwd=tmp_path)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = run(
        python,
        "-c",
        "from gust.conformance.resources import suite_root; print(suite_root())",
        cwd=outside,
        env=env,
    )
    assert Path(where.strip()).is_relative_to(venv), where
    out = run(python, "-m", "gust.conformance", "runtime", "--jobs", "4", cwd=outside, env=env)
    schemas = SchemaSet(REPO / "conformance" / "schema")
    count = len(load_cases(Suite(REPO / "conformance"), schemas, role="runtime"))
    assert out.splitlines()[-1] == f"{count} passed, 0 failed", out
