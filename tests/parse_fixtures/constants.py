"""Names bound to literals at module and class level are read; so are chains of them."""

from gust import Dag, task

SCHEDULE = "*/5 * * * *"
ALIAS = SCHEDULE
LAST = "last"
FIRST_DOWN = ["middle", LAST]
SAVE = True
PAIR_A, PAIR_B = "pair_a", "pair_b"
SHADOWED = "shadowed at module level"


class Constants(Dag):
    CALLBACK = "finish"
    NEXT = ("last",)
    SHADOWED = "middle"

    def __init__(self):
        super().__init__(schedule=ALIAS, on_finished_callback=self.CALLBACK)

    @task(downstream=FIRST_DOWN, save=SAVE)
    def first(self, ctx):
        return {}

    @task(downstream=NEXT)
    def middle(self, ctx): ...

    @task(downstream=[PAIR_A, PAIR_B])
    def last(self, ctx): ...

    @task
    def pair_a(self, ctx): ...

    @task
    def pair_b(self, ctx): ...

    def finish(self, status, run): ...


class ClassLevelFirst(Dag):
    SHADOWED = "target"

    @task(downstream=SHADOWED)
    def source(self, ctx): ...

    @task
    def target(self, ctx): ...
