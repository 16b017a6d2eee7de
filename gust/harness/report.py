"""What a run produced, as data: per-task reports, the callback's, and the run's, with JSON form.

The JSON form is the report of ``--report FILE`` and ``--json``::

    {"dag": "<file stem>", "mod": "<class>", "file": "<path>", "run_id": 1,
     "status": "ok" | "error" | "callback_failed" | "interrupted", "duration_s": 0.42,
     "tasks": {"<name>": {"status": "ok" | "error" | "timeout" | "upstream_failed"
                                    | "interrupted",
                          "attempts": 1, "duration_s": 0.2, "value": ..., "error": null | {...},
                          "logs": [{"t": 0.05, "level": "info", "msg": "...", "attempt": 1}],
                          "exit_code": 0, "warnings": [], "retry_delays": [],
                          "spans": [{"attempt": 1, "start_s": 0.01, "end_s": 0.21,
                                     "status": "ok", "exit_code": 0}],
                          "stderr_tail": ""}},
     "callback": null | {"fn": "...", "run_status": "ok", "status": "ok", ...,
                         "start_s": 0.3, "end_s": 0.42},
     "graph": {"<name>": ["<downstream name>", ...]}}

``error`` is ``null`` or an object with at least ``message``; ``t``, ``start_s`` and ``end_s``
count seconds from the start of the run (one time axis for the whole report); ``warnings`` says
where Gust would behave differently; ``retry_delays`` lists the seconds waited before each retry.
``spans`` holds one entry per attempt (empty for a task that never started), ``stderr_tail`` the
last lines the task's last attempt wrote to stderr (up to 20 lines), and ``graph`` every task of
the DAG, in file order, with its downstream tasks, including tasks this run did not run
(``--task``). The run's ``status`` is ``callback_failed`` when every task succeeded but the
callback failed, and ``interrupted`` when the run was stopped (its tasks that did not finish are
``interrupted`` too). Keys are only ever added.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from gust import protocol

__all__ = ["CallbackReport", "RunReport", "TaskReport", "author_location"]

_FRAME = re.compile(r'File "([^"\n]+)", line (\d+), in ([^\n]+)')


def author_location(error: dict[str, Any] | None, folder: str) -> dict[str, Any] | None:
    """The innermost frame of a failure's traceback in the author's own code.

    Args:
        error: a task's error object (its ``traceback`` or ``trace`` is searched).
        folder: the DAGs folder; frames of files under it are the author's.

    Returns:
        ``{"file", "line", "function"}``, or ``None`` when no frame is the author's.
    """
    if not error:
        return None
    text = error.get("traceback") or error.get("trace")
    if not isinstance(text, str):
        return None
    prefix = os.path.join(folder, "")
    found = None
    for match in _FRAME.finditer(text):
        if match.group(1).startswith(prefix):
            found = match
    if found is None:
        return None
    return {"file": found.group(1), "line": int(found.group(2)), "function": found.group(3)}


#: Task statuses in a report.
TASK_STATUSES = ("ok", "error", "timeout", "upstream_failed", "interrupted")
#: Run statuses in a report.
RUN_STATUSES = ("ok", "error", "callback_failed", "interrupted")


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
    #: Seconds waited before each retry, in order.
    retry_delays: list[float] = field(default_factory=list)
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
            "retry_delays": self.retry_delays,
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
        """The harness's exit status: 0 when the run and its callback succeeded, 130 when it
        was interrupted, else 1."""
        if self.status == "interrupted":
            return 130
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
