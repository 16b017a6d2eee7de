"""Several classes: only Dag classes are entries, in source order."""

from gust import Dag, task


class Helper:
    @task
    def not_a_dag_task(self, ctx): ...


class Second(Dag):
    @task
    def only(self, ctx): ...


class First(Helper, Dag):
    @task(downstream="not_a_dag_task")
    def begin(self, ctx): ...
