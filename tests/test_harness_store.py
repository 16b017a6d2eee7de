"""The harness store (gust.harness.store), the call answerer (gust.harness.answers) and the
stage computation (gust.harness.dagfile): pure library code, no subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _host import REPO

from gust.harness import CallAnswerer, RunTasks, Store, StoreError, TaskSpec, compute_stages
from gust.harness.errors import DagFileError
from gust.harness.store import load_store


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "store.json"
    path.write_text(text)
    return path


def test_the_shipped_store_loads() -> None:
    store = load_store(REPO / "harness" / "store.json")
    token = store.secret("GREETING_TOKEN", environ={})
    assert token is not None and token.reply_data() == {
        "id": 1,
        "name": "GREETING_TOKEN",
        "value_type": "string",
        "value": "hunter2",
    }
    warehouse = store.secret("WAREHOUSE", environ={})
    assert warehouse is not None and warehouse.value_type == "json"
    assert warehouse.value["host"] == "db.example.internal"
    assert store.task(1, "hello") is not None
    assert store.task(1, "hello").result == {"greeting": "bonjour", "run_id": 1}


def test_secret_forms_ids_and_environment_fallback(tmp_path: Path) -> None:
    store = load_store(
        write(
            tmp_path,
            json.dumps(
                {
                    "secrets": {
                        "A": "plain",
                        "B": {"value": [1, 2], "value_type": "json", "id": "b-7"},
                        "C": {"value": "text"},
                    }
                }
            ),
        )
    )
    assert store.secret("A", environ={}).reply_data()["id"] == 1
    assert store.secret("B", environ={}).reply_data() == {
        "id": "b-7",
        "name": "B",
        "value_type": "json",
        "value": [1, 2],
    }
    assert store.secret("C", environ={}).value_type == "string"
    env = {"GUST_SECRET_D": "from-env", "GUST_SECRET_A": "ignored"}
    assert store.secret("D", environ=env).reply_data() == {
        "id": 0,
        "name": "D",
        "value_type": "string",
        "value": "from-env",
    }
    assert store.secret("A", environ=env).value == "plain"  # the store wins
    assert store.secret("E", environ=env) is None


def test_no_store_is_an_empty_store() -> None:
    store = load_store(None)
    assert store.secrets == {} and store.runs == {} and store.max_task_id() == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[]", 'expected a JSON object with "secrets" and/or "runs", got a list'),
        ('{"secret": {}}', 'unknown top-level key "secret" (expected "secrets" or "runs")'),
        ('{"secrets": []}', 'at ["secrets"]: expected an object mapping secret names'),
        ('{"secrets": {"X": 5}}', 'at ["secrets"]["X"]: expected a string or an object'),
        ('{"secrets": {"X": {"valu": "a"}}}', 'at ["secrets"]["X"]: unknown key "valu"'),
        ('{"secrets": {"X": {"id": 1}}}', 'at ["secrets"]["X"]: missing "value"'),
        (
            '{"secrets": {"X": {"value": "a", "value_type": "text"}}}',
            'at ["secrets"]["X"]["value_type"]: expected "string" or "json", got "text"',
        ),
        (
            '{"secrets": {"X": {"value": 3}}}',
            'at ["secrets"]["X"]["value"]: a "string" secret needs a string value, got a number',
        ),
        (
            '{"secrets": {"X": {"value": "a", "id": true}}}',
            'at ["secrets"]["X"]["id"]: expected an integer or a string, got a boolean',
        ),
        ('{"runs": [1]}', 'at ["runs"]: expected an object mapping run ids to runs, got a list'),
        ('{"runs": {"one": {}}}', 'at ["runs"]["one"]: a run id must be an integer such as "1"'),
        ('{"runs": {"1": {}, "01": {}}}', 'at ["runs"]["01"]: run 1 is given twice'),
        ('{"runs": {"1": []}}', 'at ["runs"]["1"]: expected an object mapping task names'),
        (
            '{"runs": {"1": {"hello": [1]}}}',
            'at ["runs"]["1"]["hello"]: expected the task\'s saved result as a JSON object, '
            "got a list",
        ),
        ('{"secrets": {"X": NaN}}', "not valid JSON: NaN is not valid JSON"),
        ('{"secrets": ', "not valid JSON at line 1 column 13"),
    ],
)
def test_malformed_stores_are_refused_naming_the_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(StoreError) as info:
        load_store(path)
    message = str(info.value)
    assert message.startswith(f"store {path}")
    assert expected in message


def test_missing_store_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"nope\.json: no such file"):
        load_store(tmp_path / "nope.json")


def test_stored_tasks_get_ids_and_this_run_counts_on_from_there(tmp_path: Path) -> None:
    store = load_store(write(tmp_path, '{"runs": {"3": {"a": {}, "b": {"x": 1}}, "4": {"a": {}}}}'))
    assert [store.task(3, "a").id, store.task(3, "b").id, store.task(4, "a").id] == [1, 2, 3]
    run = RunTasks(first_id=store.max_task_id() + 1)
    assert run.start("t") == 4
    assert run.start("t") == 4  # a retry keeps its id
    assert run.start("u") == 5


def _answer(answerer: CallAnswerer, **frame):
    return answerer({"type": "call", **frame})


def test_get_task_by_name_run_prefers_this_run_then_the_store() -> None:
    store = load_store(None)
    store.runs[1] = {}
    from gust.harness.store import StoredTask

    store.runs[1]["up"] = StoredTask(id=9, result={"from": "store"})
    store.runs[2] = {"other": StoredTask(id=10, result={"old": True})}
    run = RunTasks(first_id=11)
    answer = CallAnswerer(store, 1, run, environ={})

    got = _answer(answer, op="get_task_by_name_run", name="up", run_id=1)
    assert got.reply == {
        "type": "reply",
        "ok": True,
        "data": {"id": 9, "result": {"from": "store"}},
    }
    assert got.warning is None

    run.start("up")
    got = _answer(answer, op="get_task_by_name_run", name="up", run_id=1)
    assert got.reply["data"] == {"id": 11, "result": {}}  # started, nothing saved yet
    run.finish("up", {"v": 1}, ok=True, save=True)
    assert _answer(answer, op="get_task_by_name_run", name="up", run_id="1").reply["data"] == {
        "id": 11,
        "result": {"v": 1},
    }
    run.start("nosave")
    run.finish("nosave", {"v": 2}, ok=True, save=False)
    assert (
        _answer(answer, op="get_task_by_name_run", name="nosave", run_id=1).reply["data"]["result"]
        == {}
    )
    run.start("failed")
    run.finish("failed", None, ok=False, save=True)
    assert (
        _answer(answer, op="get_task_by_name_run", name="failed", run_id=1).reply["data"]["result"]
        == {}
    )

    old = _answer(answer, op="get_task_by_name_run", name="other", run_id=2)
    assert old.reply["data"] == {"id": 10, "result": {"old": True}}

    missing = _answer(answer, op="get_task_by_name_run", name="ghost", run_id=1)
    assert missing.reply == {"type": "reply", "ok": False, "error": "task_not_found"}
    assert "crashes the worker" in missing.warning
    assert _answer(answer, op="get_task_by_name_run", name="up", run_id=True).reply["ok"] is False


def test_secret_calls_and_malformed_calls() -> None:
    store = Store()
    answer = CallAnswerer(store, 1, RunTasks(), environ={"GUST_SECRET_K": "v"})
    assert _answer(answer, op="get_secret_by_name", name="K").reply["data"]["value"] == "v"
    assert _answer(answer, op="get_secret_by_name", name="Z").reply == {
        "type": "reply",
        "ok": False,
        "error": "secret_not_found",
    }
    assert _answer(answer, op="get_secret_by_name", name=5).reply["error"] == "secret_not_found"
    bad = _answer(answer, op="get_secret_by_name")
    assert bad.reply == {"type": "reply", "ok": False, "error": "bad_call"}
    assert "Gust sends no reply" in bad.warning
    unknown = _answer(answer, op="drop_tables", name="x")
    assert unknown.reply == {"type": "reply", "ok": False, "error": "unknown_op"}
    assert "unknown op 'drop_tables'" in unknown.warning
    assert _answer(answer).reply["error"] == "unknown_op"


def spec(name: str, *down: str) -> TaskSpec:
    return TaskSpec(name=name, downstream=down, save=False)


def test_stages_follow_downstream_links_and_keep_file_order() -> None:
    tasks = {
        t.name: t
        for t in [spec("z", "m"), spec("a", "m"), spec("m", "end"), spec("lone"), spec("end")]
    }
    assert compute_stages(tasks) == (("z", "a", "lone"), ("m",), ("end",))


def test_stages_refuse_cycles_and_unknown_downstream() -> None:
    with pytest.raises(DagFileError, match="cycle through: a, b"):
        compute_stages({"a": spec("a", "b"), "b": spec("b", "a")})
    with pytest.raises(DagFileError, match="task 'a' has downstream 'ghost', which is no task"):
        compute_stages({"a": spec("a", "ghost")})


@pytest.mark.timeout(10)
def test_a_task_recorded_as_finished_without_a_start_gets_the_next_id() -> None:
    """``finish`` of a task that never started (it failed to spawn) gives it an id, once."""
    run = RunTasks(first_id=5)
    run.finish("never_started", {"v": 1}, ok=True, save=True)
    assert run.start("later") == 6
    assert run.lookup("never_started") == (5, {"v": 1})
