"""Fetch exchange rates, convert today's orders to USD, report.

`fetch` returns Decimal rates and a date; Gust stores their JSON forms ("1.0834", "2024-05-01"),
which is what `convert` gets back from `get_task_by_name_run`.
"""

from datetime import date
from decimal import Decimal

from orders import ORDERS, fetch_rates

from gust import Dag, get_secret_by_name, get_task_by_name_run, log, task


class ExchangeRates(Dag):
    def __init__(self):
        super().__init__(schedule="@daily", on_finished_callback="finished")

    @task(downstream="convert", save=True)
    def fetch(self, ctx):
        api = get_secret_by_name("RATES_API")  # a JSON secret: {"url": ..., "key": ...}
        if api is None:
            raise RuntimeError("the secret RATES_API is missing")
        log(f"fetching rates with key {api['value']['key']}")  # the key is masked: ***
        rates = fetch_rates(api["value"]["url"], api["value"]["key"])
        return {"rates": rates, "as_of": date(2024, 5, 1)}

    @task(downstream="report", save=True)
    def convert(self, ctx):
        fetched = get_task_by_name_run("fetch", ctx["run_id"])["result"]
        rates = {currency: Decimal(rate) for currency, rate in fetched["rates"].items()}
        usd = sum(amount * rates[currency] for currency, amount in ORDERS)
        return {"usd": usd, "as_of": fetched["as_of"]}

    @task
    def report(self, ctx):
        converted = get_task_by_name_run("convert", ctx["run_id"])["result"]
        log(f"orders worth {converted['usd']} USD on {converted['as_of']}")
        return converted["usd"]

    def finished(self, status, run):
        log(f"run {run['run_id']} finished: {status}")
