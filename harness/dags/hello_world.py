"""The README's example ("Writing a DAG"): a secret, an upstream result and a run callback.

Dry run: ``uv run python -m gust.harness harness/dags/hello_world.py --store harness/store.json``
(``--task prepare`` runs ``prepare`` alone, reading ``hello``'s result from the store's run 1).
"""

from gust import Dag, get_secret_by_name, get_task_by_name_run, log, task


class HelloWorld(Dag):
    def __init__(self):
        super().__init__(schedule="@daily", on_finished_callback="done_my_run")

    @task(downstream=("prepare",), save=True)
    def hello(self, ctx):
        secret = get_secret_by_name("GREETING_TOKEN")
        log(f"token found: {secret is not None} ({secret['value'] if secret else '-'})")
        return {"greeting": "hello", "run_id": ctx["run_id"]}

    @task
    def prepare(self, ctx):
        upstream = get_task_by_name_run("hello", ctx["run_id"])
        greeting = upstream["result"]["greeting"] if upstream else "nobody"
        print(f"{greeting}, world")
        return {"said": f"{greeting}, world"}

    def done_my_run(self, status, run):
        log(f"run {run['run_id']} finished with status {status}")
