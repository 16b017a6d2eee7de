"""Conformance DAG: tasks that ask the host for secrets and upstream results.

The host under test must hold the fixtures of conformance/dags/store.json: the secrets
CONF_TOKEN and CONF_PLAIN (strings; CONF_PLAIN written in the store's bare-string shorthand),
CONF_JSON (a json secret with the id 7) and, for run 7, the saved result of task "produce".
"""

import sys

from gust import Dag, get_secret_by_name, get_task_by_name_run, log, task


class HostCalls(Dag):
    @task(downstream=["upstream_found", "upstream_missing"], save=True)
    def produce(self, ctx):
        """Return {"rows": 3, "source": "store"} (the result the store keeps for run 7)."""
        return {"rows": 3, "source": "store"}

    @task
    def secret_found(self, ctx):
        """Ask for CONF_TOKEN, log "token is <value>" (masked as ***), return its name/size."""
        secret = get_secret_by_name("CONF_TOKEN")
        log(f"token is {secret['value']}")
        return {
            "name": secret["name"],
            "value_type": secret["value_type"],
            "length": len(secret["value"]),
        }

    @task
    def secret_forms(self, ctx):
        """Ask for CONF_PLAIN (a string secret) and CONF_JSON (a json one); return what came."""
        plain = get_secret_by_name("CONF_PLAIN")
        structured = get_secret_by_name("CONF_JSON")
        return {
            "plain": [plain["value_type"], len(plain["value"])],
            "json": [structured["value_type"], structured["value"]],
        }

    @task
    def secret_missing(self, ctx):
        """Ask for CONF_MISSING, which no host has: the call returns null."""
        return {"secret": get_secret_by_name("CONF_MISSING")}

    @task
    def secret_host_error(self, ctx):
        """Ask for CONF_BROKEN; a host error other than not-found fails the task."""
        return {"secret": get_secret_by_name("CONF_BROKEN")}

    @task
    def reads_stdin_then_calls(self, ctx):
        """Read stdin to its end (it must be empty, never the host's replies), then ask for
        CONF_TOKEN; return what stdin held and the secret's name."""
        held = sys.stdin.read()
        secret = get_secret_by_name("CONF_TOKEN")
        return {"stdin": held, "name": secret["name"]}

    @task
    def upstream_found(self, ctx):
        """Ask for task "produce" of this run; return its saved result."""
        upstream = get_task_by_name_run("produce", ctx["run_id"])
        return {"upstream": upstream["result"]}

    @task
    def upstream_missing(self, ctx):
        """Ask for task "never_ran" of this run: the call returns null."""
        return {"upstream": get_task_by_name_run("never_ran", ctx["run_id"])}
