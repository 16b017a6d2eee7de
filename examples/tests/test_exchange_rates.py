"""Tests of dags/exchange_rates.py with the fixtures gust-py's pytest plugin provides.

`gust_host` answers get_secret_by_name and get_task_by_name_run in the test's own process, as
the harness (and Gust) answer them; `gust_run` runs the whole DAG as Gust would.
"""

from decimal import Decimal

import pytest
from exchange_rates import ExchangeRates

from gust.testing import assert_run_ok

RATES_API = {"value": {"url": "https://rates.example", "key": "k-12345"}, "value_type": "json"}


@pytest.mark.gust_host(secrets={"RATES_API": RATES_API})
def test_fetch_returns_what_gust_stores(gust_host):
    # A direct call returns Decimal and date objects...
    assert ExchangeRates().fetch({"run_id": 1})["rates"]["EUR"] == Decimal("1.0834")
    # ...but Gust stores, and downstream tasks get, their JSON forms.
    assert gust_host.run(ExchangeRates, "fetch") == {
        "rates": {"EUR": "1.0834", "GBP": "1.2650"},
        "as_of": "2024-05-01",
    }
    assert [(r.level, r.msg) for r in gust_host.logs][-1] == ("info", "fetching rates with key ***")


def test_fetch_fails_clearly_without_its_secret(gust_host):
    with pytest.raises(RuntimeError, match="the secret RATES_API is missing"):
        gust_host.run(ExchangeRates, "fetch")
    assert gust_host.calls[0].reply == {"type": "reply", "ok": False, "error": "secret_not_found"}


def test_convert_reads_fetch_as_gust_hands_it_over(gust_host):
    gust_host.add_result(
        "fetch", {"rates": {"EUR": Decimal("1.1"), "GBP": Decimal("1.3")}, "as_of": "2024-05-02"}
    )
    assert gust_host.run(ExchangeRates().convert) == {"usd": "136.0", "as_of": "2024-05-02"}


def test_the_whole_dag_as_gust_runs_it(gust_run):
    report = gust_run("dags/exchange_rates.py", secrets={"RATES_API": RATES_API}, run_id=7)
    assert_run_ok(report)
    assert {name: task.status for name, task in report.tasks.items()} == {
        "fetch": "ok",
        "convert": "ok",
        "report": "ok",
    }
    assert report.tasks["report"].value == "133.6400"
    assert report.tasks["report"].logs[0]["msg"] == "orders worth 133.6400 USD on 2024-05-01"
    assert report.callback.logs[0]["msg"] == "run 7 finished: ok"


def test_one_task_with_its_upstream_from_a_previous_run(gust_run, tmp_path):
    first = gust_run("dags/exchange_rates.py", secrets={"RATES_API": RATES_API}, run_id=3)
    report_file = tmp_path / "run3.json"
    report_file.write_text(first.to_text())
    again = gust_run("dags/exchange_rates.py", store=report_file, run_id=3, task="report")
    assert again.tasks["report"].value == first.tasks["report"].value


def test_without_the_secret_the_run_fails_and_says_why(gust_run):
    report = gust_run("dags/exchange_rates.py")
    with pytest.raises(AssertionError, match="the secret RATES_API is missing"):
        assert_run_ok(report)
    assert report.tasks["convert"].status == "upstream_failed"
    assert report.callback.run_status == "error"
