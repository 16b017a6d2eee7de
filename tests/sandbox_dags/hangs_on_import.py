"""Fixture: a DAG file whose import hangs, to signal the runtime before any task code runs."""

import time

from gust import Dag, task

time.sleep(30)


class Hangs(Dag):
    @task
    def t(self, ctx):
        return "never"
