"""An on_finished_callback naming no method of the class."""

from gust import Dag, task


class BadCallback(Dag):
    def __init__(self):
        super().__init__(
            schedule="@daily",
            on_finished_callback="on_done",
        )

    @task
    def only(self, ctx): ...

    def done(self, status, run): ...
