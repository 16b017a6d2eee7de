"""gust.harness: a local orchestrator for dry runs, and the host side of the protocol in Python.

``python -m gust.harness DAG_FILE`` runs a whole DAG on a laptop the way Gust's Elixir adapter
does: ``gust parse`` to read it, a temp copy named like Gust's, every task through
``gust task run`` with Gust's reply shapes, stage by stage with the tasks of a stage in
parallel, then ``gust run done``. No Elixir, no PostgreSQL: secrets and earlier results come
from a JSON store (:mod:`gust.harness.store`).

The same pieces are a library for orchestrator implementers and tests:

* :class:`TaskProcess` / :func:`run_task` / :func:`run_callback` drive one child;
* :func:`run_dag` / :func:`run_plan` run a DAG and return a :class:`RunReport`;
* :class:`CallAnswerer` answers calls as Gust does; :class:`RunObserver` hears a run as it goes.

Modules, one job each: ``host`` (one child), ``answers`` (replies), ``store``, ``dagfile``
(parse output, stages, temp copy), ``run`` (a whole run), ``report``, ``view`` (the human view),
``html`` (the HTML page of ``--html``), ``recording`` (``--record``), ``cli``; ``exchange`` (the
host's judgement of a child's frames) and :mod:`gust._process` are what they drive.

The names below are loaded on first use (PEP 562), so importing one module of the harness (the
exchange machine, say) does not load them all.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from gust.harness.answers import Answer, CallAnswerer, RunTasks
    from gust.harness.dagfile import DagPlan, TaskSpec, compute_stages, parse_dag_file, temp_copy
    from gust.harness.errors import DagFileError, HarnessError, StoreError, UsageError
    from gust.harness.host import (
        DEFAULT_GRACE,
        TaskOutcome,
        TaskProcess,
        default_gust_cmd,
        run_callback,
        run_task,
        split_gust_cmd,
    )
    from gust.harness.html import HtmlReportFile, render_html
    from gust.harness.report import CallbackReport, RunReport, TaskReport
    from gust.harness.run import RunObserver, run_dag, run_plan
    from gust.harness.store import Secret, Store, load_store
    from gust.harness.view import HumanView

__all__ = [
    "DEFAULT_GRACE",
    "Answer",
    "CallAnswerer",
    "CallbackReport",
    "DagFileError",
    "DagPlan",
    "HarnessError",
    "HtmlReportFile",
    "HumanView",
    "RunObserver",
    "RunReport",
    "RunTasks",
    "Secret",
    "Store",
    "StoreError",
    "TaskOutcome",
    "TaskProcess",
    "TaskReport",
    "TaskSpec",
    "UsageError",
    "compute_stages",
    "default_gust_cmd",
    "load_store",
    "parse_dag_file",
    "render_html",
    "run_callback",
    "run_dag",
    "run_plan",
    "run_task",
    "split_gust_cmd",
    "temp_copy",
]

# Each public name and the module that defines it, imported when first asked for.
_LAZY = {
    "Answer": "gust.harness.answers",
    "CallAnswerer": "gust.harness.answers",
    "CallbackReport": "gust.harness.report",
    "DEFAULT_GRACE": "gust.harness.host",
    "DagFileError": "gust.harness.errors",
    "DagPlan": "gust.harness.dagfile",
    "HarnessError": "gust.harness.errors",
    "HtmlReportFile": "gust.harness.html",
    "HumanView": "gust.harness.view",
    "RunObserver": "gust.harness.run",
    "RunReport": "gust.harness.report",
    "RunTasks": "gust.harness.answers",
    "Secret": "gust.harness.store",
    "Store": "gust.harness.store",
    "StoreError": "gust.harness.errors",
    "TaskOutcome": "gust.harness.host",
    "TaskProcess": "gust.harness.host",
    "TaskReport": "gust.harness.report",
    "TaskSpec": "gust.harness.dagfile",
    "UsageError": "gust.harness.errors",
    "compute_stages": "gust.harness.dagfile",
    "default_gust_cmd": "gust.harness.host",
    "load_store": "gust.harness.store",
    "parse_dag_file": "gust.harness.dagfile",
    "render_html": "gust.harness.html",
    "run_callback": "gust.harness.host",
    "run_dag": "gust.harness.run",
    "run_plan": "gust.harness.run",
    "run_task": "gust.harness.host",
    "split_gust_cmd": "gust.harness.host",
    "temp_copy": "gust.harness.dagfile",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gust.harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups find it directly
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
