"""Import style: the defining module, ``gust.dag``, imported two ways."""

import gust.dag as gd
from gust.dag import task


class Shape(gd.Dag):
    def __init__(self):
        gd.Dag.__init__(self, "@hourly", "finished")

    @task(downstream=["left", "right"])
    def start(self, ctx): ...

    @gd.task(downstream="end", save=True)
    def left(self, ctx):
        return {"side": "left"}

    @task(downstream=("end",))
    def right(self, ctx): ...

    @gd.task
    async def end(self, ctx): ...

    def finished(self, status, run): ...
