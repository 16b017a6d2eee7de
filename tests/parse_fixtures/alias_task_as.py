"""Import style: ``from gust import task as t`` (and ``Dag`` under another name)."""

from gust import Dag as Base
from gust import task as t


class Shape(Base):
    def __init__(self):
        super().__init__(schedule="@hourly", on_finished_callback="finished")

    @t(downstream=["left", "right"])
    def start(self, ctx): ...

    @t(downstream="end", save=True)
    def left(self, ctx):
        return {"side": "left"}

    @t(downstream=("end",))
    def right(self, ctx): ...

    @t
    def end(self, ctx): ...

    def finished(self, status, run): ...
