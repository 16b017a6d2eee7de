"""The human view of a run: what happens as it happens, then a summary table.

One line when a task starts and one when it ends (status, duration, and why it failed), its log
lines prefixed with the task name, its stderr dimmed, the warnings where Gust would behave
differently, then the callback and a table of every task. On a terminal, levels and statuses
are coloured and the last line lists the tasks still running, redrawn in place; elsewhere (a
pipe, a file, ``NO_COLOR`` set) the output is plain lines without escapes. Failures show the
message (and the exception's type and details); a child's stderr was already shown line by line,
so the report JSON, not the view, repeats its tail.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final, TextIO

from gust import protocol
from gust.harness.dagfile import DagPlan
from gust.harness.host import TaskOutcome
from gust.harness.report import CallbackReport, RunReport, TaskReport
from gust.harness.run import RunObserver

__all__ = ["HumanView", "format_summary"]

_RESET: Final = "\x1b[0m"
_STYLES: Final = {
    "dim": "\x1b[2m",
    "bold": "\x1b[1m",
    "red": "\x1b[31m",
    "green": "\x1b[32m",
    "yellow": "\x1b[33m",
    "magenta": "\x1b[35m",
    "cyan": "\x1b[36m",
}
_LEVEL_STYLE: Final = {
    "debug": "dim",
    "warning": "yellow",
    "error": "red",
    "critical": "red",
}
_STATUS_STYLE: Final = {
    "ok": "green",
    "error": "red",
    "timeout": "magenta",
    "upstream_failed": "yellow",
    "interrupted": "magenta",
    "callback_failed": "red",
}
_MARKS: Final = {
    "ok": "✓",
    "error": "✗",
    "timeout": "⏱",
    "upstream_failed": "↷",
    "interrupted": "■",
    "start": "▶",
}
_ASCII_MARKS: Final = {
    "ok": "+",
    "error": "x",
    "timeout": "T",
    "upstream_failed": "~",
    "interrupted": "#",
    "start": ">",
}
#: How the summary line words a run's status.
_RUN_STATUS_TEXT: Final = {"callback_failed": "ok, callback failed"}
_CELL: Final = 60


def _one_line(text: str, width: int = _CELL) -> str:
    first = text.strip().split("\n", 1)[0]
    return first if len(first) <= width else first[: width - 1] + "…"


def _value_text(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError):
        return repr(value)


def _duration(seconds: float) -> str:
    return f"{seconds:.2f}s"


def _result_cell(task: TaskReport) -> str:
    if task.status == "ok":
        return _one_line(_value_text(task.value))
    error = task.error or {}
    kind, details = error.get("type"), error.get("details")
    if isinstance(kind, str) and isinstance(details, str):
        return _one_line(f"{kind}: {details}")
    return _one_line(str(error.get("message", "")))


def _where_text(where: Any) -> str:
    """``dags/etl.py:22 in extract`` (relative to the working directory when inside it)."""
    if not isinstance(where, dict) or not isinstance(where.get("file"), str):
        return ""
    file = where["file"]
    with contextlib.suppress(ValueError):
        rel = os.path.relpath(file)
        if not rel.startswith(".."):
            file = rel
    return f"{file}:{where.get('line')} in {where.get('function')}"


def format_summary(report: RunReport) -> list[str]:
    """The summary table of a run as plain lines (no colour)."""
    rows = [("TASK", "STATUS", "ATTEMPTS", "DURATION", "RESULT")]
    for task in report.tasks.values():
        rows.append(
            (
                task.name,
                task.status,
                str(task.attempts),
                _duration(task.duration_s) if task.attempts else "-",
                _result_cell(task),
            )
        )
    cb = report.callback
    if cb is not None:
        cell = f"{cb.fn}({cb.run_status})"
        if cb.error is not None:
            cell += ": " + _one_line(str(cb.error.get("message", "")), _CELL - len(cell) - 2)
        rows.append(("(callback)", cb.status, "1", _duration(cb.duration_s), cell))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    ]
    lines = [line.rstrip() for line in lines]
    status = _RUN_STATUS_TEXT.get(report.status, report.status)
    lines.append(f"run {report.run_id} of {report.dag}: {status} in {_duration(report.duration_s)}")
    return lines


class HumanView(RunObserver):
    """Prints a run for people.

    Args:
        stream: where to write (default stdout).
        color: colour the output (default: when ``stream`` is a terminal and ``NO_COLOR`` is
            unset).
        live: keep a redrawn line of running tasks at the bottom (default: on a terminal).
    """

    def __init__(
        self, stream: TextIO | None = None, *, color: bool | None = None, live: bool | None = None
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        plain_env = "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb"
        self.color = (tty and not plain_env) if color is None else color
        self.live = tty if live is None else live
        encoding = (getattr(self.stream, "encoding", None) or "ascii").lower().replace("-", "")
        self.marks = _MARKS if encoding in ("utf8", "utf_8") else _ASCII_MARKS
        #: Whether the stream was found closed; the view then writes nothing more.
        self.broken = False
        self._lock = threading.RLock()
        self._running: dict[str, float] = {}
        self._status_shown = False
        self._width = 12
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # -- output --

    def _paint(self, text: str, style: str | None) -> str:
        if not self.color or not style:
            return text
        return _STYLES[style] + text + _RESET

    def _emit(self, *lines: str) -> None:
        with self._lock:
            text = "\r\x1b[K" if self._status_shown else ""
            self._status_shown = False
            text += "".join(line + "\n" for line in lines) + self._status_text()
            self._write(text)

    def _status_text(self) -> str:
        if not self.live or not self._running:
            return ""
        now = time.monotonic()
        items = ", ".join(f"{n} {now - t:.1f}s" for n, t in self._running.items())
        self._status_shown = True
        width = max(20, shutil.get_terminal_size((100, 24)).columns - 1)
        return self._paint(_one_line(f"running: {items}", width), "cyan")

    def _tick(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                text = "\r\x1b[K" if self._status_shown else ""
                self._status_shown = False
                self._write(text + self._status_text())

    def _write(self, text: str) -> None:
        # Called with the lock held. Text the stream cannot encode (a lone surrogate a task
        # sent as a JSON escape) is replaced; a closed stream (``| head``) silences the view
        # and the run goes on.
        if self.broken or not text:
            return
        encoding = getattr(self.stream, "encoding", None) or "utf-8"
        try:
            text.encode(encoding)
        except UnicodeEncodeError:
            text = protocol.scrub_surrogates(text)
            text = text.encode(encoding, "replace").decode(encoding)
        except LookupError:
            text = text.encode("ascii", "replace").decode("ascii")
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            self.broken = True

    def _name(self, name: str) -> str:
        return name.ljust(self._width)

    def _status(self, status: str) -> str:
        mark = self.marks.get(status, "?")
        return self._paint(f"{mark} {status}", _STATUS_STYLE.get(status))

    # -- the observer hooks --

    def run_started(self, plan: DagPlan, run_id: int, stages: Sequence[Sequence[str]]) -> None:
        names = [n for stage in stages for n in stage]
        self._width = max([len(n) for n in names] + [len("(callback)"), 8])
        count = f"{len(names)} task{'s' if len(names) != 1 else ''}"
        header = (
            f"{self.marks['start']} run {run_id} of {plan.name} ({plan.mod}) from {plan.file}: "
            f"{count} in {len(stages)} stage{'s' if len(stages) != 1 else ''}"
        )
        lines = [self._paint(header, "bold")]
        lines += [self._paint(f"  {m}", "yellow") for m in plan.messages]
        lines += [
            self._paint(f"  stage {i}: {', '.join(stage)}", "dim")
            for i, stage in enumerate(stages, 1)
        ]
        self._emit(*lines)
        if self.live and self._ticker is None:
            self._ticker = threading.Thread(
                target=self._tick, name="gust-harness-view", daemon=True
            )
            self._ticker.start()

    def task_started(self, name: str, attempt: int) -> None:
        with self._lock:
            self._running[name] = time.monotonic()
        again = f" (attempt {attempt})" if attempt > 1 else ""
        self._emit(f"{self._name(name)} started{again}")

    def _log_line(self, name: str, entry: Mapping[str, Any]) -> str:
        level = str(entry.get("level", "info"))
        msg = str(entry.get("msg", ""))
        label = "" if level == "info" else f"{level.upper()} "
        return f"{self._name(name)} | " + self._paint(label + msg, _LEVEL_STYLE.get(level))

    def task_log(self, name: str, entry: Mapping[str, Any]) -> None:
        self._emit(self._log_line(name, entry))

    def task_stderr(self, name: str, line: str) -> None:
        self._emit(self._paint(f"{self._name(name)} ! {line}", "dim"))

    def task_retrying(self, name: str, attempt: int, outcome: TaskOutcome, delay: float) -> None:
        with self._lock:
            self._running.pop(name, None)
        error = outcome.error or {}
        why = _one_line(str(error.get("message", "")))
        kind, details = error.get("type"), error.get("details")
        if isinstance(kind, str) and isinstance(details, str):
            why += f": {_one_line(f'{kind}: {details}', 120)}"
        where = _where_text(error.get("where"))
        self._emit(
            self._paint(
                f"{self._name(name)} attempt {attempt} ended {outcome.status} ({why})"
                + (f" at {where}" if where else "")
                + f"; retrying in {delay:g}s",
                "yellow",
            )
        )

    def task_finished(self, report: TaskReport) -> None:
        with self._lock:
            self._running.pop(report.name, None)
        line = f"{self._name(report.name)} {self._status(report.status)}"
        if report.attempts:
            line += f" in {_duration(report.duration_s)}"
            if report.attempts > 1:
                line += f" after {report.attempts} attempts"
        lines = [line]
        if report.status == "ok":
            lines[0] += self._paint(f"  -> {_one_line(_value_text(report.value))}", "dim")
        elif report.error is not None:
            lines += self._error_lines(report.error)
        lines += [
            self._paint(f"{self._name(report.name)} warning: {w}", "yellow")
            for w in report.warnings
        ]
        self._emit(*lines)

    def _error_lines(self, error: Mapping[str, Any]) -> list[str]:
        pad = " " * (self._width + 1)
        lines = [self._paint(f"{pad}{error.get('message', '')}", "red")]
        kind, details = error.get("type"), error.get("details")
        if isinstance(kind, str) and isinstance(details, str):
            lines.append(self._paint(f"{pad}{kind}: {_one_line(details, 200)}", "red"))
        where = _where_text(error.get("where"))
        if where:
            lines.append(self._paint(f"{pad}at {where}", "red"))
        # No stderr tail here: every stderr line was shown as it came ("name ! line").
        return lines

    def run_interrupted(self, hard: bool, grace: float) -> None:
        if hard:
            text = "interrupted again: killing every running task now"
        else:
            text = (
                f"interrupted: stopping the running tasks (SIGTERM, then SIGKILL after "
                f"{grace:g}s); interrupt again to kill them at once"
            )
        self._emit(self._paint(text, "magenta"))

    def callback_started(self, fn: str, status: str) -> None:
        with self._lock:
            self._running["(callback)"] = time.monotonic()
        self._emit(f"{self._name('(callback)')} started: {fn}({status!r}) via gust run done")

    def callback_log(self, fn: str, entry: Mapping[str, Any]) -> None:
        self._emit(self._log_line("(callback)", entry))

    def callback_stderr(self, fn: str, line: str) -> None:
        self._emit(self._paint(f"{self._name('(callback)')} ! {line}", "dim"))

    def callback_finished(self, report: CallbackReport) -> None:
        with self._lock:
            self._running.pop("(callback)", None)
        lines = [
            f"{self._name('(callback)')} {self._status(report.status)} in "
            f"{_duration(report.duration_s)}"
        ]
        if report.error is not None:
            lines += self._error_lines(report.error)
        lines += [
            self._paint(f"{self._name('(callback)')} warning: {w}", "yellow")
            for w in report.warnings
        ]
        self._emit(*lines)

    def run_finished(self, report: RunReport) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._running.clear()
        table = format_summary(report)
        header, rows, total = table[0], table[1:-1], table[-1]
        painted = [self._paint(header, "bold")]
        statuses = [t.status for t in report.tasks.values()]
        if report.callback is not None:
            statuses.append(report.callback.status)
        painted += [
            self._paint(row, _STATUS_STYLE.get(s)) for row, s in zip(rows, statuses, strict=True)
        ]
        painted.append(self._paint(total, "bold"))
        self._emit("", *painted)
