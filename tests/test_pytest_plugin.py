"""The pytest plugin as a DAG author meets it: loaded by the pytest11 entry point in a separate
pytest session, in a folder that knows nothing of gust."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

DAG = """\
from gust import Dag, task, log, get_secret_by_name, get_task_by_name_run


class Shop(Dag):
    def __init__(self):
        super().__init__(schedule="@daily", on_finished_callback="finished")

    @task(downstream="total", save=True)
    def prices(self, ctx):
        token = get_secret_by_name("SHOP_TOKEN")
        log(f"using {token['value']}")
        return {"apple": 3, "pear": 4}

    @task
    def total(self, ctx):
        prices = get_task_by_name_run("prices", ctx["run_id"])["result"]
        return sum(prices.values())

    def finished(self, status, run):
        log(f"run {run['run_id']} {status}")
"""


def pytest_session(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def project(tmp_path: Path, tests: str) -> Path:
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "shop.py").write_text(DAG)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_shop.py").write_text(textwrap.dedent(tests))
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --strict-markers\n")
    return tmp_path


@pytest.mark.timeout(120)
def test_the_fixtures_work_in_a_separate_project(tmp_path: Path) -> None:
    folder = project(
        tmp_path,
        """\
        import importlib.util
        from pathlib import Path

        import pytest

        DAG_FILE = Path(__file__).parents[1] / "dags" / "shop.py"
        spec = importlib.util.spec_from_file_location("shop", DAG_FILE)
        shop = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(shop)


        @pytest.mark.gust_host(secrets={"SHOP_TOKEN": "tok-123456"}, run_id=4)
        def test_prices_with_the_marker(gust_host):
            assert gust_host.run(shop.Shop, "prices") == {"apple": 3, "pear": 4}
            assert [r.msg for r in gust_host.logs] == ["using ***"]
            assert gust_host.run(shop.Shop().total) == 7


        def test_total_with_a_result_added(gust_host):
            gust_host.add_result("prices", {"kiwi": 10})
            assert shop.Shop().total({"run_id": 1}) == 10


        def test_each_test_has_a_fresh_host(gust_host):
            assert gust_host.logs == [] and gust_host.calls == []
            assert gust_host.store.secrets == {}


        def test_the_whole_dag(gust_run):
            report = gust_run("dags/shop.py", secrets={"SHOP_TOKEN": "tok-123456"}, run_id=8,
                              max_parallel=2, timeout=30)
            assert report.status == "ok"
            assert {n: t.value for n, t in report.tasks.items()} == {
                "prices": {"apple": 3, "pear": 4}, "total": 7}
            assert report.tasks["prices"].logs[0]["msg"] == "using ***"
            assert report.callback.status == "ok"
            assert report.callback.logs[0]["msg"] == "run 8 ok"


        def test_one_task_with_its_upstream_from_the_store(gust_run):
            report = gust_run("dags/shop.py", task="total", runs={1: {"prices": {"fig": 5}}})
            assert report.tasks["total"].value == 5 and report.callback is None
        """,
    )
    proc = pytest_session(folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 passed" in proc.stdout


@pytest.mark.timeout(120)
def test_a_failed_run_says_why(tmp_path: Path) -> None:
    folder = project(
        tmp_path,
        """\
        from gust.testing import assert_run_ok


        def test_without_the_secret(gust_run):
            report = gust_run("dags/shop.py")
            assert report.tasks["prices"].status == "error"
            assert report.tasks["total"].status == "upstream_failed"
            assert report.callback.run_status == "error"
            assert_run_ok(report)
        """,
    )
    proc = pytest_session(folder)
    assert proc.returncode == 1
    out = proc.stdout
    assert "AssertionError: run 1 of shop (Shop) ended error" in out
    assert "task 'prices': error" in out
    assert "Task execution failed: TypeError: 'NoneType' object is not subscriptable" in out
    assert "task 'total': upstream_failed" in out


def test_a_bad_marker_is_a_usage_error(tmp_path: Path) -> None:
    folder = project(
        tmp_path,
        """\
        import pytest

        @pytest.mark.gust_host({"A": "b"})
        def test_positional(gust_host):
            pass
        """,
    )
    proc = pytest_session(folder)
    assert proc.returncode != 0
    assert "@pytest.mark.gust_host takes keyword arguments only" in proc.stdout + proc.stderr


def test_an_unused_plugin_imports_nothing_of_gust(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(
        textwrap.dedent(
            """\
            import sys

            def test_nothing_loaded():
                assert "gust.pytest_plugin" in sys.modules  # autoloaded by the entry point
                heavy = {"click", "gust.harness", "gust.testing", "gust.calls", "gust.runtime",
                         "gust.protocol", "gust.parser"}
                assert sorted(heavy & set(sys.modules)) == []
            """
        )
    )
    proc = pytest_session(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
