"""Dag classes deriving from Dag classes of the same file inherit tasks and options."""

from gust import Dag, task


class Base(Dag):
    def __init__(self):
        super().__init__(schedule="@daily", on_finished_callback="done")

    @task(downstream="transform")
    def extract(self, ctx): ...

    @task(downstream="load")
    def transform(self, ctx): ...

    @task
    def load(self, ctx): ...

    def done(self, status, run): ...


class Child(Base):
    @task(downstream=["report"], save=True)
    def load(self, ctx):
        return {}

    @task
    def report(self, ctx): ...


class GrandChild(Child):
    def __init__(self):
        super().__init__()
        self.extra = 1


class Retimed(Child):
    def __init__(self):
        super(Child, self).__init__(schedule="@hourly")


class NotATaskAnyMore(Base):
    def transform(self, ctx): ...
