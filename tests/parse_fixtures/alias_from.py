"""Import style: ``from gust import Dag, task``."""

from gust import Dag, task


class Shape(Dag):
    def __init__(self):
        super().__init__(schedule="@hourly", on_finished_callback="finished")

    @task(downstream=["left", "right"])
    def start(self, ctx): ...

    @task(downstream="end", save=True)
    def left(self, ctx):
        return {"side": "left"}

    @task(downstream=("end",))
    def right(self, ctx): ...

    @task
    def end(self, ctx): ...

    def finished(self, status, run): ...
