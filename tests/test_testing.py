"""gust.testing: the fake host answers in the test's process exactly as the harness does.

The parity tests run one DAG twice, through the real harness (subprocesses speaking frames) and
task by task under ``fake_host``, and compare what each task saw, logged and returned.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import importlib.util
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gust
from gust import Dag, get_secret_by_name, get_task_by_name_run, log, task
from gust.harness import StoreError, run_dag
from gust.testing import Call, LogRecord, ResultError, fake_host, stored_value

PARITY_DAG = """\
import datetime
import decimal
import json

from gust import Dag, task, log, get_secret_by_name, get_task_by_name_run


class Parity(Dag):
    @task(downstream=["rates", "audit"], save=True)
    def extract(self, ctx):
        token = get_secret_by_name("API_TOKEN")
        log(f"token={token['value']} id={token['id']} type={token['value_type']}")
        db = get_secret_by_name("WAREHOUSE")
        log(f"db={db['value']['password']} at {db['value']['host']}", level="debug")
        log(f"missing={get_secret_by_name('NOPE')}", level="warning")
        return {"rate": decimal.Decimal("1.0834"), "day": datetime.date(2024, 5, 1),
                "pair": (1, 2), "bad": float("nan")}

    @task(downstream="report")
    def rates(self, ctx):
        up = get_task_by_name_run("extract", ctx["run_id"])
        log(f"upstream {json.dumps(up, sort_keys=True)}")
        old = get_task_by_name_run("extract", 1)
        log(f"run 1 {json.dumps(old, sort_keys=True)}")
        log(f"ghost {get_task_by_name_run('ghost', ctx['run_id'])}")
        return [up["result"]["rate"], old["result"]]

    @task
    def audit(self, ctx):
        raise RuntimeError("audit broke")

    @task(save=True)
    def report(self, ctx):
        return {"rates": get_task_by_name_run("rates", ctx["run_id"])}
"""

PARITY_STORE = {
    "secrets": {
        "API_TOKEN": "hunter2-token",
        "WAREHOUSE": {
            "value": {"host": "db.internal", "password": "pa55w0rd!"},
            "value_type": "json",
            "id": "wh-7",
        },
    },
    "runs": {"1": {"extract": {"rate": "0.99"}}},
}


def load_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"parity_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(120)
def test_a_dag_sees_the_same_under_fake_host_as_under_the_harness(tmp_path: Path) -> None:
    dag_file = tmp_path / "parity.py"
    dag_file.write_text(PARITY_DAG)
    store_file = tmp_path / "store.json"
    store_file.write_text(json.dumps(PARITY_STORE))
    report = run_dag(str(dag_file), store=str(store_file), run_id=5, max_parallel=1, environ={})

    module = load_file(dag_file)
    seen: dict[str, dict[str, Any]] = {}
    with fake_host(store=store_file, run_id=5) as host:
        for stage in report.stages:
            for name in stage:
                before = len(host.logs)
                try:
                    value, status = host.run(module.Parity, name), "ok"
                except RuntimeError:
                    value, status = None, "error"
                logs = [(r.level, r.msg) for r in host.logs[before:]]
                seen[name] = {"status": status, "value": value, "logs": logs}

    for name, harness_task in report.tasks.items():
        assert seen[name]["status"] == harness_task.status, name
        assert seen[name]["value"] == harness_task.value, name
        assert seen[name]["logs"] == [(e["level"], e["msg"]) for e in harness_task.logs], name
    # The conversion, the masking of string and JSON secrets, and the missing-task warning.
    assert seen["extract"]["value"] == {
        "rate": "1.0834",
        "day": "2024-05-01",
        "pair": [1, 2],
        "bad": None,
    }
    assert seen["extract"]["logs"][:3] == [
        ("info", "token=*** id=1 type=string"),
        ("debug", "db=*** at ***"),  # every leaf of a JSON secret
        ("warning", "missing=None"),
    ]
    assert seen["report"]["value"] == {
        "rates": {"id": 3, "result": {}}  # rates saves nothing: {} as Gust answers
    }
    assert any("ghost" in w for w in report.tasks["rates"].warnings)
    assert [w for w in host.warnings if "ghost" in w] == [
        w for w in report.tasks["rates"].warnings if "ghost" in w
    ]


class Hello(Dag):
    @task(downstream="prepare", save=True)
    def hello(self, ctx: dict) -> dict:
        token = get_secret_by_name("API_TOKEN")
        log(f"token found: {token is not None}")
        return {"greeting": "hello", "run_id": ctx["run_id"]}

    @task
    def prepare(self, ctx: dict) -> dict:
        hello = get_task_by_name_run("hello", ctx["run_id"])
        return {"upstream": hello["result"] if hello else None}


def test_calls_work_inside_and_raise_outside() -> None:
    with fake_host(secrets={"API_TOKEN": "hunter2"}) as host:
        assert Hello().hello({"run_id": 1}) == {"greeting": "hello", "run_id": 1}
        assert get_secret_by_name("API_TOKEN")["value"] == "hunter2"
    assert host.logs == [LogRecord("info", "token found: True")]
    assert host.calls[0] == Call(
        "get_secret_by_name",
        "API_TOKEN",
        None,
        {
            "type": "reply",
            "ok": True,
            "data": {"id": 1, "name": "API_TOKEN", "value_type": "string", "value": "hunter2"},
        },
    )
    with pytest.raises(gust.NotInTaskError):
        get_secret_by_name("API_TOKEN")


def test_nothing_leaks_between_blocks() -> None:
    with fake_host(secrets={"API_TOKEN": "hunter2"}) as first:
        get_secret_by_name("API_TOKEN")
        log("hunter2")
        first.add_result("hello", {"x": 1})
    with fake_host() as second:
        log("hunter2")  # not asked for in this block: not a secret here
        assert get_secret_by_name("API_TOKEN") is None
        assert get_task_by_name_run("hello", 1) is None
    assert [r.msg for r in first.logs] == ["***"]
    assert [r.msg for r in second.logs] == ["hunter2"]
    assert [c.name for c in second.calls] == ["API_TOKEN", "hello"]


def test_blocks_nest_and_restore_the_outer_host() -> None:
    with fake_host(secrets={"K": "outer"}) as outer:
        with fake_host(secrets={"K": "inner"}) as inner:
            assert get_secret_by_name("K")["value"] == "inner"
        assert get_secret_by_name("K")["value"] == "outer"
    assert len(outer.calls) == len(inner.calls) == 1


def test_the_block_ends_cleanly_when_the_test_fails() -> None:
    with pytest.raises(AssertionError), fake_host():
        raise AssertionError("a failing test")
    with pytest.raises(gust.NotInTaskError):
        get_task_by_name_run("t", 1)


def test_threads_started_by_the_task_see_the_same_host() -> None:
    class Threaded(Dag):
        @task
        def fan_out(self, ctx: dict) -> list:
            results: list[Any] = [None] * 8

            def work(i: int) -> None:
                results[i] = get_secret_by_name(f"S{i % 2}")["value"]
                log(f"worker {i} got {results[i]}")

            threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return results

    with fake_host(secrets={"S0": "zero-secret", "S1": "one-secret"}) as host:
        value = host.run(Threaded().fan_out)
    assert value == ["zero-secret", "one-secret"] * 4  # results are data: never masked
    assert sorted(r.msg for r in host.logs) == [f"worker {i} got ***" for i in range(8)]
    assert len(host.calls) == 8


def test_run_gives_downstream_what_gust_stores_and_records_it() -> None:
    class Money(Dag):
        @task(downstream="spend", save=True)
        def rate(self, ctx: dict) -> dict:
            return {"eur_usd": decimal.Decimal("1.0834"), "on": datetime.date(2024, 5, 1)}

        @task
        def spend(self, ctx: dict) -> float:
            rate = get_task_by_name_run("rate", ctx["run_id"])["result"]["eur_usd"]
            return 100 * float(rate)  # a direct call would get a Decimal and pass here too

    dag = Money()
    assert dag.rate({"run_id": 1})["eur_usd"] == decimal.Decimal("1.0834")  # the direct call
    with fake_host(run_id=9) as host:
        assert host.run(dag.rate) == {"eur_usd": "1.0834", "on": "2024-05-01"}
        assert host.run(Money, "spend") == pytest.approx(108.34)
        assert host.calls[0].run_id == 9


def test_run_ctx_goes_through_json_and_async_tasks_run() -> None:
    class Mapped(Dag):
        @task
        async def each(self, ctx: dict) -> dict:
            await asyncio.sleep(0)
            return {"ctx": ctx}

    with fake_host(run_id=3) as host:
        value = host.run(Mapped(), "each", ctx={"params": {"ids": (1, 2)}})
    assert value == {"ctx": {"run_id": 3, "params": {"ids": [1, 2]}}}


def test_a_failing_task_raises_its_own_exception_and_saves_nothing() -> None:
    class Fails(Dag):
        @task(save=True)
        def boom(self, ctx: dict) -> dict:
            raise KeyError("no such column")

    with fake_host() as host:
        with pytest.raises(KeyError, match="no such column"):
            host.run(Fails, "boom")
        assert get_task_by_name_run("boom", 1) == {"id": 1, "result": {}}


def test_run_refuses_what_the_runtime_refuses() -> None:
    class Bad(Dag):
        @task(save=True)
        def listing(self, ctx: dict) -> list:
            return [1, 2]

        @task
        def obj(self, ctx: dict) -> dict:
            return {"rows": [1, object()]}

    with fake_host() as host:
        with pytest.raises(ResultError, match=r"Task 'listing' has save=True, so it must return"):
            host.run(Bad, "listing")
        with pytest.raises(ResultError, match=r"type 'object' at \$\.rows\[1\]"):
            host.run(Bad().obj)
        with pytest.raises(gust.GustError, match="Task 'nope' not found on dag 'Bad'"):
            host.run(Bad, "nope")


def test_add_secret_and_add_result() -> None:
    with fake_host(run_id=2) as host:
        host.add_secret("PLAIN", "s3cret-value")
        host.add_secret("CONF", {"user": "admin", "password": "letmein-now"}, id=42)
        assert host.add_result("up", {"d": datetime.date(2024, 1, 1)}) == {"d": "2024-01-01"}
        host.add_result("old", {"n": 1}, run_id=1)
        host.add_result("unsaved", {"n": 2}, save=False)
        conf = get_secret_by_name("CONF")
        assert conf == {
            "id": 42,
            "name": "CONF",
            "value_type": "json",
            "value": {"user": "admin", "password": "letmein-now"},
        }
        log(f"{get_secret_by_name('PLAIN')['value']} / {conf['value']['password']}")
        assert get_task_by_name_run("up", 2)["result"] == {"d": "2024-01-01"}
        assert get_task_by_name_run("old", "1")["result"] == {"n": 1}
        assert get_task_by_name_run("unsaved", 2)["result"] == {}
        with pytest.raises(ResultError):
            host.add_result("x", [1])
        with pytest.raises(StoreError, match='a "string" secret needs a string value'):
            host.add_secret("BAD", 5, value_type="string")
    assert host.logs[-1].msg == "*** / ***"


def test_environment_secrets_only_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUST_SECRET_FROM_ENV", "env-value")
    with fake_host():
        assert get_secret_by_name("FROM_ENV") is None
    import os

    with fake_host(environ=os.environ):
        assert get_secret_by_name("FROM_ENV")["value"] == "env-value"


def test_store_files_and_bad_data_are_checked_as_the_harness_does(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    path.write_text('{"secrets": {"A": "from-file"}, "runs": {"1": {"t": {"n": 1}}}}')
    with fake_host(store=path, runs={"1": {"u": {"n": 2}}}, secrets={"B": "b"}):
        assert get_secret_by_name("A")["value"] == "from-file"
        assert get_task_by_name_run("t", 1) == {"id": 1, "result": {"n": 1}}
        assert get_task_by_name_run("u", 1) == {"id": 2, "result": {"n": 2}}
    with (
        pytest.raises(
            StoreError, match=r'fake_host\(secrets=, runs=\) at \["runs"\]\["1"\]\["t"\]'
        ),
        fake_host(runs={1: {"t": [1]}}),
    ):
        pass
    with (
        pytest.raises(ValueError, match="run_id 'x' is not a run id"),
        fake_host(run_id="x"),  # type: ignore[arg-type]
    ):
        pass


def test_unknown_ops_and_legacy_frames_get_the_harness_answers() -> None:
    with fake_host() as host:
        gust.send_frame({"type": "call", "op": "drop_tables", "name": "x"})
        assert gust._read_frame() == {"type": "reply", "ok": False, "error": "unknown_op"}
        gust.send_frame({"type": "telemetry"})
        with pytest.raises(gust.HostGoneError, match="no call is waiting"):
            gust._read_frame()
        assert get_secret_by_name("still-works") is None  # the channel is not broken
    assert "unknown op 'drop_tables'" in host.warnings[0]
    assert "frame of unknown type 'telemetry'" in host.warnings[1]


TRICKY = {
    "dec": decimal.Decimal("-0.000100"),
    "when": datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.timezone.utc),
    "set": {3, 1, 2},
    "nan": float("inf"),
    "lone": "a\ud800b",
    "nested": [(1, "x"), {"k": None}],
}


def test_stored_value_matches_what_the_real_runtime_sends(tmp_path: Path) -> None:
    dag = tmp_path / "tricky.py"
    dag.write_text(
        textwrap.dedent(
            """\
            import datetime
            from decimal import Decimal
            from gust import Dag, task

            inf = float("inf")

            class Tricky(Dag):
                @task
                def values(self, ctx):
                    return VALUE

                @task(save=True)
                def saved_list(self, ctx):
                    return [1]

                @task
                def unsendable(self, ctx):
                    return {"rows": [1, 2, 3, object()]}
            """
        ).replace("VALUE", repr(TRICKY))
    )
    from gust.harness import run_task

    real = run_task(str(dag), "Tricky", "values")
    assert real.status == "ok", real.error
    warnings_seen: list[str] = []
    assert stored_value(TRICKY, warn=warnings_seen.append) == real.value
    assert [(e["level"], e["msg"]) for e in real.logs] == [("warning", w) for w in warnings_seen]

    for name, value, save in (
        ("saved_list", [1], True),
        ("unsendable", {"rows": [1, 2, 3, object()]}, False),
    ):
        outcome = run_task(str(dag), "Tricky", name)
        with pytest.raises(ResultError) as info:
            stored_value(value, save=save, task=name)
        assert outcome.error is not None and info.value.message == outcome.error["message"]


def test_stored_value_warns_by_default() -> None:
    with pytest.warns(RuntimeWarning, match=r"result value nan at \$\.x is not valid JSON"):
        assert stored_value({"x": float("nan")}) == {"x": None}


def test_importing_gust_testing_leaves_the_task_path_alone() -> None:
    code = "import sys, gust.testing; print('click' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.decimals()
    | st.dates()
    | st.datetimes()
)
_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(value=_values)
def test_stored_values_are_plain_json_and_stable(value: Any) -> None:
    seen: list[str] = []
    stored = stored_value(value, warn=seen.append)
    assert json.loads(json.dumps(stored, allow_nan=False)) == stored  # strict JSON, as stored
    assert stored_value(stored, warn=seen.append) == stored  # storing again changes nothing


def test_a_frame_over_the_hosts_limit_ends_the_task_as_the_harness_would() -> None:
    with fake_host(max_frame_size=200) as host:
        log("fits")
        with pytest.raises(gust.HostGoneError, match="over the host's limit of 200 bytes"):
            log("x" * 300)
    assert [r.msg for r in host.logs] == ["fits"]
