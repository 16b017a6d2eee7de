"""The README is a promise (issue 17): its samples and quoted messages are what the code does.

Each test takes a sample or a quoted text out of README.md and compares it with a real run, so
the next change that drifts from the README fails here. Durations and this checkout's path are
the only things normalised.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
HELLO = REPO / "harness" / "dags" / "hello_world.py"
STORE = REPO / "harness" / "store.json"


def block_after(marker: str) -> str:
    """The first fenced code block after ``marker`` in the README."""
    start = README.index(marker)
    fence = README.index("```", start)
    body_start = README.index("\n", fence) + 1
    return README[body_start : README.index("```", body_start)]


def paragraph_of(marker: str) -> str:
    start = README.index(marker)
    end = README.find("\n\n", start)
    return README[start:end]


def run(*args: str, cwd: Path = REPO, text: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=text, timeout=60, **kw
    )


def normalise(text: str) -> list[str]:
    text = re.sub(r"\d+\.\d\ds\b", "0.00s", text)
    # The samples were taken in /work/main; the run under test may be anywhere.
    text = text.replace(str(REPO), "<repo>").replace("/work/main", "<repo>")
    return [line.rstrip() for line in text.strip("\n").split("\n")]


def test_the_quickstart_commands_are_the_ones_described():
    quick = block_after("# gust").splitlines()
    assert quick[0].startswith(
        "uv sync --dev && uv run python -m gust.harness harness/dags/hello_world.py "
        "--store harness/store.json"
    )
    assert quick[1].startswith("uv run pytest -q ")


@pytest.mark.timeout(60)
def test_the_human_view_sample_is_the_real_view_of_hello_world():
    proc = run("-m", "gust.harness", str(HELLO.relative_to(REPO)), "--store",
               str(STORE.relative_to(REPO)), "--no-color")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    expected = normalise(block_after("**Human view**"))
    actual = normalise(proc.stdout)
    assert actual == expected


@pytest.mark.timeout(60)
def test_the_gust_parse_sample_is_the_real_output():
    marker = "$ uv run gust parse --file harness/dags/hello_world.py\n"
    start = README.index(marker) + len(marker)
    line = README[start : README.index("\n", start)]
    proc = run("-m", "gust", "parse", "--file", "harness/dags/hello_world.py")
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == json.loads(line.replace("/work/main", str(REPO)))


@pytest.mark.timeout(60)
def test_the_report_format_names_exactly_the_keys_of_a_real_report(tmp_path):
    proc = run("-m", "gust.harness", str(HELLO), "--store", str(STORE), "--json")
    report = json.loads(proc.stdout)
    paragraph = paragraph_of("**Report format**")
    named = set(re.findall(r'"([a-z_]+)"', paragraph))
    task = report["tasks"]["hello"]
    actual = set(report) | set(task) | set(report["callback"]) | set(task["logs"][0])
    actual |= set(task["spans"][0])
    assert actual - named == set(), "keys the README does not name"
    assert named - actual - {"ok", "error", "timeout", "upstream_failed", "interrupted"} == set()


def test_every_harness_option_in_the_readme_table_exists_and_the_reverse():
    help_text = run("-m", "gust.harness", "--help").stdout
    table = README[README.index("| `--dag NAME` |") : README.index("Exit status: 0 when the run")]
    in_table = set(re.findall(r"`(--[a-z-]+)", table))
    in_help = set(re.findall(r"(?m)^\s+(--[a-z-]+)", help_text)) - {"--help"}
    assert in_table == in_help


def test_the_quoted_unsupported_value_message_is_the_real_one(tmp_path):
    dag = tmp_path / "odd.py"
    dag.write_text(
        "from gust import Dag, task\n\nclass Odd(Dag):\n    @task\n    def rows(self, ctx):\n"
        "        return {'rows': [1, 2, 3, object()]}\n"
    )
    proc = run("-m", "gust.harness", str(dag), "--json", cwd=tmp_path)
    message = json.loads(proc.stdout)["tasks"]["rows"]["error"]["message"]
    quoted = re.search(r"for example `(Task result cannot be sent as JSON:[^`]+)`", README)
    assert quoted is not None
    assert message == " ".join(quoted.group(1).split())


FAILURES = """\
from gust import Dag, task

class Broken(Dag):
    not_callable = 3

    @task
    def raises(self, ctx):
        raise ValueError("x")

class CannotBeCreated(Dag):
    def __init__(self):
        raise RuntimeError("no")
"""


@pytest.mark.timeout(60)
def test_every_failure_message_the_readme_lists_is_one_a_run_gives(tmp_path):
    dag = tmp_path / "broken.py"
    dag.write_text(FAILURES)
    cases = {
        "ctx-json is not valid JSON": ("Broken", "raises", "{nope"),
        "ctx-json must be a JSON object": ("Broken", "raises", "[1]"),
        "ctx-json has the wrong shape": ("Broken", "raises", '{"run_id": "7"}'),
        "Failed to load module from <path>": None,
        "Dag '<D>' not found in module": ("Nope", "raises", '{"run_id": 1}'),
        "Dag '<D>' could not be created": ("CannotBeCreated", "x", '{"run_id": 1}'),
        "Task '<T>' not found on dag '<D>'": ("Broken", "nope", '{"run_id": 1}'),
        "Task '<T>' on dag '<D>' is not callable": ("Broken", "not_callable", '{"run_id": 1}'),
        "Task execution failed": ("Broken", "raises", '{"run_id": 1}'),
    }
    section = README[README.index("Errors before the task runs end the same way") :]
    section = " ".join(section[: section.index("The working directory")].split())
    for text, argv in cases.items():
        assert f"`{text}`" in section, f"the README no longer lists {text!r}"
        if argv is None:
            continue
        dag_name, task_name, ctx = argv
        result = final_result(dag, dag_name, task_name, ctx, tmp_path)
        expected = text.replace("<D>", dag_name).replace("<T>", task_name)
        assert result["error"]["message"] == expected, (text, result)
    missing = tmp_path / "missing.py"
    result = final_result(missing, "D", "t", '{"run_id": 1}', tmp_path)
    assert result["error"]["message"] == f"Failed to load module from {missing}"


def final_result(dag: Path, dag_name: str, task: str, ctx: str, cwd: Path) -> dict:
    from gust.protocol import FrameDecoder

    argv = ["-m", "gust", "task", "run", "--file", str(dag), "--dag", dag_name, "--task", task]
    proc = run(*argv, "--ctx-json", ctx, cwd=cwd, text=False, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    decoder = FrameDecoder()
    decoder.feed(proc.stdout)
    frames = decoder.frames()
    decoder.eof()
    assert frames[-1]["type"] == "result"
    return frames[-1]


def test_the_log_level_refusal_is_quoted_as_raised():
    from gust import LogLevelError, log

    with pytest.raises(LogLevelError) as info:
        log("x", level="verbose")
    assert f"`{info.value}`" in " ".join(README.split())


def test_the_run_id_refusal_is_quoted_as_printed():
    proc = run("-m", "gust", "run", "done", "--file", str(HELLO), "--dag", "hello_world",
               "--fn-name", "done_my_run", "--status", "ok", "--run-id", "run-abc")  # fmt: skip
    assert proc.returncode == 2
    printed = proc.stderr.strip().splitlines()[-1].removeprefix("Error: ")
    assert f"`{printed}`" in " ".join(README.split())


def test_no_text_refers_to_a_document_the_repository_does_not_have():
    offenders = []
    for path in REPO.rglob("*"):
        if any(part in {".venv", ".git", "node_modules", "mutants"} for part in path.parts):
            continue
        if path.is_file() and path.suffix in {".py", ".md", ".json", ".exs", ".toml"}:
            text = path.read_text(encoding="utf-8", errors="replace")
            if re.search(r"SPEC ?§|\.\./shared", text) and path.name != "test_readme.py":
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_the_conformance_readme_lists_every_failure_message_the_runtime_can_give():
    """Each TaskFailure/SetupError message of the runtime, its variable parts as ``<...>``."""
    import ast

    listed = " ".join((REPO / "conformance" / "README.md").read_text(encoding="utf-8").split())
    patterns = set()
    for module in ("runtime.py", "invoke.py"):
        tree = ast.parse((REPO / "gust" / module).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("TaskFailure", "SetupError")
                and node.args
            ):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                patterns.add(re.escape(first.value))
            elif isinstance(first, ast.JoinedStr):
                patterns.add(
                    "".join(
                        re.escape(part.value) if isinstance(part, ast.Constant) else "<[^>]+>"
                        for part in first.values
                    )
                )
    assert len(patterns) >= 10
    missing = sorted(p for p in patterns if not re.search(p, listed))
    assert missing == []
