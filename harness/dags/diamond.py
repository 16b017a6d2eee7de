"""A diamond: one source, four tasks in parallel, one sink that joins their saved results.

Each middle task sleeps one second, so the middle stage takes about one second when the four
run at once (``--max-parallel 4``) and four with ``--max-parallel 1``. The sink's value is
``{"total": 36, "parts": {"north": 3, "east": 7, "south": 11, "west": 15}}``.
"""

import time

from gust import Dag, get_task_by_name_run, log, task

QUARTERS = ("north", "east", "south", "west")


class Diamond(Dag):
    @task(downstream=QUARTERS, save=True)
    def source(self, ctx):
        return {"numbers": [1, 2, 3, 4, 5, 6, 7, 8]}

    def _quarter(self, ctx, index):
        numbers = get_task_by_name_run("source", ctx["run_id"])["result"]["numbers"]
        mine = numbers[2 * index : 2 * index + 2]
        time.sleep(1)
        log(f"summed {mine}")
        return {"sum": sum(mine)}

    @task(downstream="sink", save=True)
    def north(self, ctx):
        return self._quarter(ctx, 0)

    @task(downstream="sink", save=True)
    def east(self, ctx):
        return self._quarter(ctx, 1)

    @task(downstream="sink", save=True)
    def south(self, ctx):
        return self._quarter(ctx, 2)

    @task(downstream="sink", save=True)
    def west(self, ctx):
        return self._quarter(ctx, 3)

    @task(save=True)
    def sink(self, ctx):
        parts = {q: get_task_by_name_run(q, ctx["run_id"])["result"]["sum"] for q in QUARTERS}
        return {"total": sum(parts.values()), "parts": parts}
