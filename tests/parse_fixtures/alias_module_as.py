"""Import style: ``import gust as g``."""

import gust as g


class Shape(g.Dag):
    def __init__(self):
        super().__init__(schedule="@hourly", on_finished_callback="finished")

    @g.task(downstream=["left", "right"])
    def start(self, ctx): ...

    @g.task(downstream="end", save=True)
    def left(self, ctx):
        return {"side": "left"}

    @g.task(downstream=("end",))
    def right(self, ctx): ...

    @g.task()
    def end(self, ctx): ...

    def finished(self, status, run): ...
