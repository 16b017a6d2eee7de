"""A run that fails: ``extract`` raises, so ``publish`` (downstream) is ``upstream_failed`` and
never starts, while the independent ``audit`` -> ``summarize`` chain still runs to the end.
The callback then gets status ``error``, and the harness exits 1.
"""

import json

from gust import Dag, get_secret_by_name, log, task


class Failing(Dag):
    def __init__(self):
        super().__init__(on_finished_callback="report")

    @task(downstream="publish")
    def extract(self, ctx):
        conn = get_secret_by_name("WAREHOUSE")["value"]
        if isinstance(conn, str):  # a "json" secret may also arrive as JSON text
            conn = json.loads(conn)
        log(f"connecting to {conn['host']}")
        raise ValueError("the source table is empty")

    @task
    def publish(self, ctx):
        log("publishing")
        return {"published": True}

    @task(downstream="summarize", save=True)
    def audit(self, ctx):
        log("auditing yesterday's load", level="warning")
        return {"rows_checked": 120}

    @task
    def summarize(self, ctx):
        return {"summary": "audit done"}

    def report(self, status, run):
        log(f"run {run['run_id']} ended with status {status}")
