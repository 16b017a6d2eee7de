"""Every form of ``@task`` the authoring API accepts, and methods that are not tasks."""

import functools

from gust import Dag, task


def traced(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


class Forms(Dag):
    @task
    def bare(self, ctx): ...

    @task()
    def called(self, ctx): ...

    @task(downstream="one_name")
    def string(self, ctx): ...

    @task(downstream=["listed_a", "listed_b"], save=False)
    def listed(self, ctx): ...

    @task(save=True, downstream=("tupled",))
    def one_name(self, ctx):
        return {}

    @task(downstream=[])
    def listed_a(self, ctx): ...

    @task(downstream=())
    def listed_b(self, ctx): ...

    @traced
    @task(save=True)
    def tupled(self, ctx):
        return {}

    @task
    async def awaited(self, ctx): ...

    @traced
    def helper(self): ...

    @staticmethod
    def plain(): ...
