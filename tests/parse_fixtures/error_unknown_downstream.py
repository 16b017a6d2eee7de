"""A downstream naming no task of the DAG."""

from gust import Dag, task


class Unknown(Dag):
    @task(downstream="prepare")
    def hello(self, ctx): ...

    @task(downstream=["hello_world"])
    def prepare(self, ctx): ...
