"""Import style: ``import gust`` with ``gust.Dag`` and ``gust.task``."""

import gust


class Shape(gust.Dag):
    def __init__(self):
        super().__init__(schedule="@hourly", on_finished_callback="finished")

    @gust.task(downstream=["left", "right"])
    def start(self, ctx): ...

    @gust.task(downstream="end", save=True)
    def left(self, ctx):
        return {"side": "left"}

    @gust.task(downstream=("end",))
    def right(self, ctx): ...

    @gust.task
    def end(self, ctx): ...

    def finished(self, status, run): ...
