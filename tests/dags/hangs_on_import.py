"""Fixture: a DAG file whose import never finishes."""

import time

from gust import Dag, task

time.sleep(120)


class Hangs(Dag):
    @task
    def t(self, ctx):
        return 1
