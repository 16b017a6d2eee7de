"""What a run produced, as data: per-task reports, the callback's, and the run's, with JSON form.

The JSON form is the report of ``--report FILE`` and ``--json``::

    {"dag": "<file stem>", "mod": "<class>", "file": "<path>", "run_id": 1, "status": "ok",
     "duration_s": 0.42,
     "tasks": {"<name>": {"status": "ok" | "error" | "timeout" | "upstream_failed",
                          "attempts": 1, "duration_s": 0.2, "value": ..., "error": null | {...},
                          "logs": [{"t": 0.05, "level": "info", "msg": "...", "attempt": 1}],
                          "exit_code": 0, "warnings": [],
                          "spans": [{"attempt": 1, "start_s": 0.01, "end_s": 0.21,
                                     "status": "ok", "exit_code": 0}],
                          "stderr_tail": ""}},
     "callback": null | {"fn": "...", "run_status": "ok", "status": "ok", ...,
                         "start_s": 0.3, "end_s": 0.42},
     "graph": {"<name>": ["<downstream name>", ...]}}

``error`` is ``null`` or an object with at least ``message``; ``t``, ``start_s`` and ``end_s``
count seconds from the start of the run (one time axis for the whole report); ``warnings`` says
where Gust would behave differently. ``spans`` holds one entry per attempt (empty for a task that
never started), ``stderr_tail`` the last lines the task's last attempt wrote to stderr (up to 20
lines), and ``graph`` every task of the DAG, in file order, with its downstream tasks, including
tasks this run did not run (``--task``). Keys are only ever added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gust import protocol

__all__ = ["CallbackReport", "RunReport", "TaskReport"]

#: Task statuses in a report.
TASK_STATUSES = ("ok", "error", "timeout", "upstream_failed")


@dataclass
class TaskReport:
    """How one task of the run ended, over all its attempts."""

    name: str
    status: str
    attempts: int = 0
    duration_s: float = 0.0
    value: Any = None
    error: dict[str, Any] | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None
    warnings: list[str] = field(default_factory=list)
    spans: list[dict[str, Any]] = field(default_factory=list)
    stderr_tail: str = ""

    def to_json(self) -> dict[str, Any]:
        """The task's entry in the report JSON."""
        return {
            "status": self.status,
            "attempts": self.attempts,
            "duration_s": round(self.duration_s, 3),
            "value": self.value,
            "error": self.error,
            "logs": self.logs,
            "exit_code": self.exit_code,
            "warnings": self.warnings,
            "spans": self.spans,
            "stderr_tail": self.stderr_tail,
        }


@dataclass
class CallbackReport:
    """How ``on_finished_callback`` went: ``status`` is ``ok`` when ``gust run done`` exited 0."""

    fn: str
    run_status: str
    status: str
    duration_s: float = 0.0
    exit_code: int | None = None
    error: dict[str, Any] | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    start_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The ``callback`` entry of the report JSON."""
        return {
            "fn": self.fn,
            "run_status": self.run_status,
            "status": self.status,
            "duration_s": round(self.duration_s, 3),
            "exit_code": self.exit_code,
            "error": self.error,
            "logs": self.logs,
            "warnings": self.warnings,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.start_s + self.duration_s, 3),
        }


@dataclass
class RunReport:
    """The whole run. ``status`` is ``ok`` when every task that was asked for succeeded."""

    dag: str
    mod: str
    file: str
    run_id: int
    status: str = "ok"
    duration_s: float = 0.0
    tasks: dict[str, TaskReport] = field(default_factory=dict)
    callback: CallbackReport | None = None
    stages: list[list[str]] = field(default_factory=list)
    graph: dict[str, list[str]] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 when the run and its callback succeeded, else 1 (the harness's exit status)."""
        failed = self.status != "ok" or (self.callback is not None and self.callback.status != "ok")
        return 1 if failed else 0

    def to_json(self) -> dict[str, Any]:
        """The report JSON (see the module docstring)."""
        return {
            "dag": self.dag,
            "mod": self.mod,
            "file": self.file,
            "run_id": self.run_id,
            "status": self.status,
            "duration_s": round(self.duration_s, 3),
            "tasks": {name: task.to_json() for name, task in self.tasks.items()},
            "callback": None if self.callback is None else self.callback.to_json(),
            "graph": self.graph,
        }

    def to_text(self) -> str:
        """The report JSON as indented UTF-8-safe text (a lone surrogate a task sent as a JSON
        escape becomes U+FFFD, since UTF-8 cannot carry it)."""
        text = json.dumps(self.to_json(), indent=2, ensure_ascii=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = protocol.scrub_surrogates(text)
        return text
