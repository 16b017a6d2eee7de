"""Hostile and unusual store files (issue 10), and a previous run's report used as the store.

Every refusal goes through the real command line: exit status 2, nothing run, and exactly one
line on stderr naming the file and the problem.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from _host import HARNESS_DAGS, harness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gust.harness import StoreError
from gust.harness.store import (
    MAX_RUN_ID,
    MAX_STORE_DEPTH,
    load_store,
    parse_run_id,
    store_from_data,
)

HELLO = HARNESS_DAGS / "hello_world.py"


def refused(tmp_path: Path, text: str) -> str:
    """Run hello_world with ``text`` as the store; assert exit 2 and one line; return it."""
    store = tmp_path / "bad.json"
    store.write_text(text)
    proc = harness(str(HELLO), "--store", str(store))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""  # nothing ran
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"Error: store {store}")  # the harness CLI's usage-error form
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_a_store_nested_100000_deep_is_refused_in_one_line(tmp_path: Path) -> None:
    line = refused(tmp_path, '{"runs": {"1": {"t": ' + "[" * 100_000 + "]" * 100_000 + "}}}")
    column = 1 + len('{"runs": {"1": {"t": ') + (MAX_STORE_DEPTH - 3)
    assert f"at line 1 column {column}: nested more than {MAX_STORE_DEPTH} levels deep" in line


def test_nesting_just_past_the_limit_is_refused_and_at_the_limit_is_kept(tmp_path: Path) -> None:
    def nested(levels: int) -> str:  # a saved result of `levels` nested containers
        return '{"runs": {"1": {"t": ' + '{"a": ' * (levels - 1) + "{}" + "}" * (levels - 1) + "}}}"

    line = refused(tmp_path, nested(201))
    assert f"nested more than {MAX_STORE_DEPTH} levels deep" in line
    ok = tmp_path / "ok.json"
    ok.write_text(nested(200))
    assert load_store(ok).task(1, "t") is not None


def test_a_5000_digit_run_id_is_refused_in_one_line(tmp_path: Path) -> None:
    line = refused(tmp_path, '{"runs": {"' + "7" * 5000 + '": {}}}')
    assert '(5000 characters)]: a run id must be an integer such as "1"' in line
    assert len(line) < 400  # the key is shortened, not echoed whole


def test_a_5000_digit_number_is_refused_with_its_place(tmp_path: Path) -> None:
    line = refused(tmp_path, '{"secrets": {"A": {"value": "x", "id":\n ' + "9" * 5000 + "}}}")
    assert "at line 2 column 2: a number with 5000 digits, more than the 4300" in line


def test_an_infinite_number_is_refused_with_its_place(tmp_path: Path) -> None:
    line = refused(tmp_path, '{"runs": {"1": {"t": {"x": "1e999", "y": 1e999}}}}')
    assert "at line 1 column 42: not valid JSON: the number 1e999 is out of range" in line


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"secrets": {"A": "x", "A": "y"}}', 'at ["secrets"]: key "A"'),
        ('{"runs": {}, "runs": {}}', ': key "runs"'),
        (
            '{"runs": {"1": {"t": {"rows": [{"k": 1, "k": 2}]}}}}',
            'at ["runs"]["1"]["t"]["rows"][0]',
        ),
    ],
)
def test_duplicate_keys_are_refused_naming_where(tmp_path: Path, text: str, where: str) -> None:
    line = refused(tmp_path, text)
    assert where in line
    assert "is given twice in one object" in line


@pytest.mark.parametrize("raw", ["-9223372036854775809", "9223372036854775808", "1" * 20, "--5"])
def test_run_ids_past_64_bits_or_malformed_are_not_run_ids(raw: str) -> None:
    assert parse_run_id(raw) is None


def test_run_ids_within_64_bits() -> None:
    assert parse_run_id(str(MAX_RUN_ID)) == MAX_RUN_ID
    assert parse_run_id(f" -{MAX_RUN_ID + 1} ") == -MAX_RUN_ID - 1
    assert parse_run_id(MAX_RUN_ID + 1) is None
    assert parse_run_id(True) is None


def test_data_in_the_store_format_is_checked_as_a_file_is() -> None:
    store = store_from_data({"secrets": {"K": "v4lue"}, "runs": {1: {"up": {"n": (1, 2)}}}})
    assert store.task(1, "up").result == {"n": [1, 2]}
    with pytest.raises(StoreError, match=r"store <data> at \[\"runs\"\]\[\"x\"\]: a run id"):
        store_from_data({"runs": {"x": {}}})
    with pytest.raises(StoreError, match="store <data>: has no JSON form"):
        store_from_data({"secrets": {"K": object()}})
    with pytest.raises(StoreError, match='key "1" is given twice'):
        store_from_data({"runs": {1: {}, "1": {}}})


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(max_size=300)
    | st.text(alphabet='{}[]":,0123456789eE.-+ \\ntrufalsNI', max_size=200)
)
def test_any_file_is_a_store_or_one_store_error(tmp_path: Path, data: bytes | str) -> None:
    path = tmp_path / "fuzz.json"
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    try:
        load_store(path)
    except StoreError as exc:
        assert "\n" not in str(exc)


# -- a previous run's report as the store -------------------------------------------------------


def write_dag(tmp_path: Path) -> Path:
    dag = tmp_path / "pipeline.py"
    dag.write_text(
        textwrap.dedent(
            """\
            from gust import Dag, task, get_task_by_name_run


            class Pipeline(Dag):
                @task(downstream=["report"], save=True)
                def extract(self, ctx):
                    return {"rows": 3}

                @task(downstream=["report"])
                def scratch(self, ctx):
                    return {"not": "saved"}

                @task(downstream=["report"], save=True)
                def broken(self, ctx):
                    raise ValueError("no")

                @task
                def report(self, ctx):
                    seen = {}
                    for up in ("extract", "scratch", "broken", "missing"):
                        found = get_task_by_name_run(up, ctx["run_id"])
                        seen[up] = None if found is None else found["result"]
                    return seen
            """
        )
    )
    return dag


def test_a_report_is_the_store_of_a_task_run(tmp_path: Path) -> None:
    dag = write_dag(tmp_path)
    report = tmp_path / "run7.json"
    first = harness(str(dag), "--run-id", "7", "--report", str(report), "--no-color")
    assert first.returncode == 1  # broken failed, report is upstream_failed
    assert json.loads(report.read_text())["tasks"]["report"]["status"] == "upstream_failed"

    proc = harness(str(dag), "--store", str(report), "--run-id", "7", "--task", "report", "--json")
    assert proc.returncode == 0, proc.stderr
    value = json.loads(proc.stdout)["tasks"]["report"]["value"]
    # As Gust answers: a saved result, {} for a task that does not save or did not succeed,
    # and no task at all for one that never started.
    assert value == {"extract": {"rows": 3}, "scratch": {}, "broken": {}, "missing": None}

    store = load_store(report)
    assert set(store.runs) == {7}
    assert "report" not in store.runs[7]  # upstream_failed: never started


def test_a_report_whose_dag_file_is_gone_is_refused_naming_it(tmp_path: Path) -> None:
    dag = write_dag(tmp_path)
    report = tmp_path / "run.json"
    harness(str(dag), "--report", str(report), "--no-color")
    os.unlink(dag)
    with pytest.raises(StoreError) as info:
        load_store(report)
    assert str(info.value).startswith(f'store {report} at ["file"]: this is a harness report')
    assert f"its DAG file {dag} cannot tell which tasks save their results" in str(info.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"run_id": "7"}, 'at ["run_id"]: expected the run id as an integer, got a string'),
        ({"file": "pipeline.py"}, 'at ["file"]: expected the DAG file\'s absolute path'),
        ({"tasks": {"a": {"status": "fine"}}}, 'at ["tasks"]["a"]: expected an object with'),
        ({"tasks": []}, 'at ["tasks"]: expected an object mapping task names, got a list'),
    ],
)
def test_malformed_reports_are_refused(tmp_path: Path, change: dict, expected: str) -> None:
    base = {"dag": "p", "mod": "Pipeline", "file": str(write_dag(tmp_path)), "run_id": 7}
    path = tmp_path / "report.json"
    path.write_text(json.dumps({**base, "tasks": {}, **change}))
    with pytest.raises(StoreError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        load_store(path)


def test_tasks_a_report_never_started_are_not_in_the_store(tmp_path: Path) -> None:
    report = {
        "dag": "pipeline",
        "mod": "Pipeline",
        "file": str(write_dag(tmp_path)),
        "run_id": 4,
        "tasks": {
            "extract": {"status": "ok", "attempts": 1, "value": {"rows": 1}},
            "scratch": {"status": "interrupted", "attempts": 1, "value": None},
            "broken": {"status": "interrupted", "attempts": 0, "value": None},
            "report": {"status": "upstream_failed", "attempts": 0, "value": None},
        },
    }
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    store = load_store(path)
    assert {name: t.result for name, t in store.runs[4].items()} == {
        "extract": {"rows": 1},
        "scratch": {},  # it ran, and was interrupted: a task without a saved result
    }
