"""The example DAG of the README's "Writing a DAG", as written there."""

from gust import Dag, task, get_task_by_name_run, get_secret_by_name, log  # noqa: F401, I001


class MyDag(Dag):
    def __init__(self):
        super().__init__(schedule="@daily", on_finished_callback="done_my_run")

    @task(downstream=("prepare",), save=True)
    def hello(self, ctx):
        ...
        return {"ok": True}

    @task
    def prepare(self, ctx): ...

    def done_my_run(self, status, run): ...
