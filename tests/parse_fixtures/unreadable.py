"""Values that cannot be read without running the file: left at defaults, with messages."""

import os

from gust import Dag, task

WHEN = os.environ.get("WHEN", "@daily")
NAMES = [n for n in ("b",)]
if os.environ.get("FLAG"):  # noqa: SIM108
    MAYBE = "b"
else:
    MAYBE = "a"


def pick():
    return "b"


class Unreadable(Dag):
    SCHEDULE = "@weekly"

    def __init__(self, callback="done"):
        super().__init__(schedule=SCHEDULE, on_finished_callback=callback)  # noqa: F821

    @task(downstream=pick())
    def a(self, ctx): ...

    @task(downstream=NAMES, save=bool(os.environ.get("SAVE")))
    def b(self, ctx): ...

    @task(downstream=MAYBE)
    def c(self, ctx): ...

    def done(self, status, run): ...


class FromEnvironment(Dag):
    def __init__(self):
        super().__init__(schedule=WHEN)
