"""Downstream links that form a cycle: Gust itself would crash on it."""

from gust import Dag, task


class Cyclic(Dag):
    @task(downstream="extract")
    def start(self, ctx): ...

    @task(downstream="transform")
    def extract(self, ctx): ...

    @task(downstream=["load", "extract"])
    def transform(self, ctx): ...

    @task
    def load(self, ctx): ...
