"""Two tasks with the same name in one class."""

from gust import Dag, task


class Duplicate(Dag):
    @task(downstream="same")
    def first(self, ctx): ...

    @task
    def same(self, ctx): ...

    @task(save=True)
    def same(self, ctx):  # noqa: F811
        return {}
