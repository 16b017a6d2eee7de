"""The Elixir host of conformance/hosts/elixir: it passes every host case, and our runtime works
under it end to end, started as Gust starts it (`uv run gust task run ...` through an Erlang port).

They need Debian's `elixir` and `erlang-jiffy` (`.ci/run` installs them where apt exists) and
skip, saying why, where those are missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _host import REPO

from gust.conformance import procwatch
from gust.conformance.cases import Suite, load_cases
from gust.conformance.schema import SchemaSet

HOST = REPO / "conformance" / "hosts" / "elixir" / "host.exs"
HELLO = REPO / "harness" / "dags" / "hello_world.py"
BASIC = REPO / "tests" / "dags" / "basic.py"
HANGS = REPO / "tests" / "dags" / "hangs_on_import.py"
FIXTURES = REPO / "tests" / "parse_fixtures"
UV = shutil.which("uv")
UV_GUST = "uv run gust"  # exactly how Gust starts the runtime


def _jiffy_missing() -> str | None:
    if shutil.which("elixir") is None:
        return "elixir is not installed (Debian: apt-get install elixir erlang-jiffy)"
    probe = subprocess.run(
        ["elixir", "-e", "IO.puts(Code.ensure_loaded?(:jiffy))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.stdout.strip() != "true":
        return "the jiffy JSON library is not installed (Debian: apt-get install erlang-jiffy)"
    return None


_MISSING = _jiffy_missing()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")
needs_uv = pytest.mark.skipif(UV is None, reason="uv is not on PATH")

HOST_COMMAND = [
    "elixir",
    str(HOST),
    "task",
    "--gust",
    "{gust}",
    "--file",
    "{dag_file}",
    "--dag",
    "{dag}",
    "--task",
    "{task}",
    "--ctx-json",
    "{ctx_json}",
    "--store",
    "{store}",
    "--timeout",
    "{timeout}",
]


def conformance(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gust.conformance", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=150,
    )


def host(*args: str, expect: int | None = None) -> dict:
    proc = subprocess.run(
        ["elixir", str(HOST), *args], capture_output=True, text=True, timeout=90, cwd=REPO
    )
    lines = proc.stdout.splitlines()
    assert lines, f"no outcome from the Elixir host: {proc.stderr}"
    outcome = json.loads(lines[-1])
    if expect is not None:
        assert proc.returncode == expect, (proc.returncode, outcome, proc.stderr)
    return outcome


def task(file: Path, dag: str, name: str, ctx: str = '{"run_id": 1}', *more: str) -> dict:
    args = ["task", "--gust", UV_GUST, "--file", str(file), "--dag", dag, "--task", name]
    return host(*args, "--ctx-json", ctx, *more)


@pytest.mark.timeout(170)
def test_every_host_case_passes_against_the_elixir_host() -> None:
    proc = conformance("host", "--jobs", "4", "--", *HOST_COMMAND)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    suite = Suite(REPO / "conformance")
    count = len(load_cases(suite, SchemaSet(suite.schema_dir), role="host"))
    assert proc.stdout.splitlines()[-1] == f"{count} passed, 0 failed"


@pytest.mark.timeout(120)
def test_with_gusts_own_framing_an_oversize_header_goes_unseen() -> None:
    # {:packet, 4}, as Gust's adapter opens the port, buffers whatever length a header announces:
    # the host never sees the fault, and the suite says the task process was not killed.
    cases = ["--case", "n_child_oversize_header", "--case", "n_child_garbage"]
    proc = conformance("host", *cases, "--", *HOST_COMMAND, "--framing", "packet4")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for line in proc.stdout.splitlines()[:-1]:
        assert "task process killed: start pid " in line, line
        assert "still ran 2 s after the framing fault" in line, line


@needs_uv
@pytest.mark.timeout(120)
def test_our_runtime_under_uv_run_through_an_erlang_port() -> None:
    store = str(REPO / "harness" / "store.json")
    hello = task(HELLO, "HelloWorld", "hello", '{"run_id": 1}', "--store", store)
    assert hello["outcome"] == "ok", hello
    assert hello["value"] == {"greeting": "hello", "run_id": 1}
    assert hello["logs"] == [{"level": "info", "msg": "token found: True (***)"}]
    assert hello["exit"] == 0 and hello["warnings"] == []
    # Under `uv run` the port's process is uv: only the start frame names Python.
    assert isinstance(hello["pid"], int) and hello["pid"] != hello["os_pid"]
    prepare = task(HELLO, "HelloWorld", "prepare", '{"run_id": 1}', "--store", store)
    assert prepare["outcome"] == "ok", prepare
    assert prepare["value"] == {"said": "bonjour, world"}  # hello's result from the store


@needs_uv
@pytest.mark.timeout(120)
def test_failures_reach_the_elixir_host_with_their_reason() -> None:
    failed = task(BASIC, "Basic", "fails")
    assert failed["outcome"] == "failed", failed
    assert failed["reason"].startswith("Task execution failed: ValueError: the thing broke")
    assert 'raise ValueError("the thing broke")' in failed["reason"]
    assert failed["logs"] == [{"level": "info", "msg": "about to fail"}]
    missing = task(BASIC, "Basic", "nope")
    assert missing["outcome"] == "failed"
    assert "Task 'nope' not found on dag 'Basic'" in missing["reason"]
    bad_ctx = task(BASIC, "Basic", "first", "{oops")
    assert "ctx-json is not valid JSON" in bad_ctx["reason"]
    mapped = task(BASIC, "Basic", "first", '{"run_id": 3, "params": {"k": 1}}')
    assert mapped["outcome"] == "ok", mapped
    assert mapped["value"]["ctx"] == {"run_id": 3, "params": {"k": 1}}


@needs_uv
@pytest.mark.timeout(120)
def test_a_timeout_kills_python_below_uv_by_the_start_pid() -> None:
    hung = task(HANGS, "Hangs", "t", '{"run_id": 1}', "--timeout", "2")
    assert hung["outcome"] == "failed" and hung["reason"] == "timeout", hung
    assert hung["pid"] != hung["os_pid"]
    assert not procwatch.is_alive(hung["pid"], None)  # Python itself is gone, not only uv
    assert not procwatch.is_alive(hung["os_pid"], None)


@needs_uv
@pytest.mark.timeout(120)
def test_the_callback_runs_on_a_temp_copy_with_the_file_stem() -> None:
    base = ["done", "--gust", UV_GUST, "--status"]
    ok = host(*base, "ok", "--file", str(HELLO), "--fn-name", "done_my_run", "--run-id", "1")
    assert ok == {"outcome": "ok", "exit": 0}
    failing = ["--file", str(BASIC), "--fn-name", "finished_badly", "--run-id", "1"]
    assert host(*base, "error", *failing, expect=1) == {"outcome": "failed", "exit": 1}


@needs_uv
@pytest.mark.timeout(120)
def test_the_elixir_host_reads_a_parse_as_gust_does() -> None:
    example = FIXTURES / "spec_example.py"
    read = host("parse", "--gust", UV_GUST, "--file", str(example), expect=0)
    assert read == {
        "outcome": "ok",
        "mod": "MyDag",
        "file_path": str(example),
        "stages": [["hello"], ["prepare"]],
        "save": {"hello": True, "prepare": False},
        "schedule": "@daily",
        "on_finished_callback": "done_my_run",
    }
    cycle = host("parse", "--gust", UV_GUST, "--file", str(FIXTURES / "error_cycle.py"), expect=1)
    assert cycle["reason"] == "parsing error"  # in-band, never the crash Gust has on a cycle
    assert "extract -> transform -> extract" in cycle["description"]
    source = (FIXTURES / "error_cycle.py").read_text().splitlines()
    assert '@task(downstream="transform")' in source[cycle["line"] - 1]


def test_a_usage_error_exits_2_saying_why() -> None:
    proc = subprocess.run(
        ["elixir", str(HOST), "task", "--gust", "gust"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == "host.exs: missing --file"
