"""Fixture DAG for tests/test_task_run.py and tests/test_run_done.py."""

import json
import sys
import time

from helper_beside_dag import HELPER_VALUE

from gust import Dag, get_secret_by_name, get_task_by_name_run, log, task


class Basic(Dag):
    def __init__(self):
        super().__init__(schedule="@hourly", on_finished_callback="finished")

    @task(downstream=["second"], save=True)
    def first(self, ctx):
        log("first runs", level="debug")
        return {"ctx": ctx, "helper": HELPER_VALUE}

    @task
    def second(self, ctx):
        up = get_task_by_name_run("first", ctx["run_id"])
        missing = get_task_by_name_run("nope", ctx["run_id"])
        secret = get_secret_by_name("TOKEN")
        no_secret = get_secret_by_name("MISSING")
        return {"up": up, "missing": missing, "secret_id": secret["id"], "no_secret": no_secret}

    @task
    def fails(self, ctx):
        log("about to fail")
        raise ValueError("the thing broke")

    @task
    def host_error(self, ctx):
        return get_secret_by_name("BROKEN")

    @task
    def returns_none(self, ctx):
        return None

    def plain_method(self, ctx):
        return "not a task but callable"

    not_callable = 42

    def finished(self, status, run):
        log(f"callback {status} {json.dumps(run)}")
        print(f"printed {status}", file=sys.stderr)

    def finished_badly(self, status, run):
        raise RuntimeError(f"callback failed for {status}")

    def callback_calls(self, status, run):
        get_secret_by_name("TOKEN")

    def slow(self, ctx):
        time.sleep(30)


class Second(Dag):
    @task
    def only(self, ctx):
        return "second dag"


class Plain:
    """Not a Dag subclass: earlier releases ran these too."""

    def run(self, ctx):
        return {"plain": True}


class Broken(Dag):
    def __init__(self):
        raise RuntimeError("cannot build this dag")
