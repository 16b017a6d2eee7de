"""The page's text sections: each task's details, the callback's, and the table of tasks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gust.harness.html._format import (
    CELL_CHARS,
    LEVELS,
    LOG_HEAD,
    LOG_TAIL,
    badge,
    block,
    cut,
    esc,
    json_text,
    plural,
    reason,
    secs,
)


class Details:
    """The per-task details and the table of a :class:`~gust.harness.html._page.Page` (a mixin)."""

    def details(self) -> str:
        parts = [self._task_detail(name) for name in self.order]
        if self.callback is not None:
            parts.append(self._callback_detail(self.callback))
        return "".join(parts)

    def _task_detail(self, name: str) -> str:
        ref = self.ids[name]
        status = self.status(name)
        task = self.tasks.get(name)
        up, down = self.upstream.get(name, []), self.graph.get(name, [])
        head = (
            f'<section class="detail" id="{ref}" data-task="{esc(name)}">'
            f"<h2>{badge(status)} {esc(name)}</h2>"
        )
        links = (
            f'<p class="facts">upstream: {self.links(up)} · downstream: '
            f"{self.links(d for d in down if d in self.ids)}</p>"
        )
        if task is None:
            return head + links + '<p class="dim">not run in this run.</p></section>'
        attempts = task.get("attempts", 0)
        facts = [plural(attempts, "attempt") if isinstance(attempts, int) else "? attempts"]
        if attempts:
            facts.append(secs(task.get("duration_s")))
        if task.get("exit_code") is not None:
            facts.append(f"exit status {esc(task['exit_code'])}")
        body = [head, f'<p class="facts">{" · ".join(facts)}</p>', links]
        if task.get("error") is not None:
            body.append(self._error(task["error"]))
        if status == "ok":
            body.append(f'<h3>Value</h3><pre class="value">{block(json_text(task["value"]))}</pre>')
        body.append(self._spans(task.get("spans") or []))
        body.append(self._logs(task.get("logs") or [], attempts=True))
        stderr = task.get("stderr_tail") or (task.get("error") or {}).get("stderr_tail") or ""
        if isinstance(stderr, str) and stderr:
            body.append(f'<h3>stderr (last lines)</h3><pre class="stderr">{block(stderr)}</pre>')
        body.append(self._warnings(task.get("warnings") or []))
        body.append("</section>")
        return "".join(body)

    def _callback_detail(self, cb: Mapping[str, Any]) -> str:
        facts = [secs(cb.get("duration_s"))]
        if cb.get("exit_code") is not None:
            facts.append(f"exit status {esc(cb['exit_code'])}")
        body = [
            '<section class="detail" id="callback" data-task="(callback)">'
            f"<h2>{badge(str(cb['status']))} callback {esc(cb['fn'])}"
            f"({esc(repr(cb['run_status']))})</h2>",
            f'<p class="facts">run through <code>gust run done</code> · {" · ".join(facts)}</p>',
        ]
        if cb.get("error") is not None:
            body.append(self._error(cb["error"], stderr=True))
        body.append(self._logs(cb.get("logs") or [], attempts=False))
        body.append(self._warnings(cb.get("warnings") or []))
        body.append("</section>")
        return "".join(body)

    def _error(self, error: Any, *, stderr: bool = False, nested: bool = False) -> str:
        if not isinstance(error, Mapping):
            return f'<div class="error"><p class="message">{block(str(error))}</p></div>'
        out = ['<div class="error">', f'<p class="message">{block(str(error.get("message")))}</p>']
        kind, details = error.get("type"), error.get("details")
        if isinstance(kind, str) and isinstance(details, str):
            out.append(f'<p class="exception"><b>{esc(kind)}</b>: {block(details)}</p>')
        shown = {"message", "type", "details", "traceback", "trace", "stderr_tail"}
        where = error.get("where")
        if isinstance(where, Mapping) and where.get("file") is not None:
            shown.add("where")
            out.append(
                f'<p class="where">in your code: <code>{esc(where["file"])}:'
                f"{esc(where.get('line'))}</code>, in <code>{esc(where.get('function'))}</code></p>"
            )
        trace = error.get("traceback") if isinstance(error.get("traceback"), str) else None
        if trace is None and isinstance(error.get("trace"), str):
            trace = error["trace"]
        if trace:
            out.append(f'<h3>Traceback</h3><pre class="trace">{block(trace)}</pre>')
        inner = error.get("task_error")
        if isinstance(inner, Mapping) and not nested:
            shown.add("task_error")  # shown below as an error of its own
        extra = [(k, v) for k, v in error.items() if k not in shown and v is not None]
        if extra:
            rows = "".join(
                f"<div><dt>{esc(k)}</dt><dd><code>{block(json_text(v, None))}</code></dd></div>"
                for k, v in extra
            )
            out.append(f'<dl class="more">{rows}</dl>')
        if "task_error" in shown:
            # A timeout or an interrupt: the harness's account, then the task's own error.
            out.append(f"<h3>The task's own error</h3>{self._error(inner, nested=True)}")
        tail = error.get("stderr_tail")
        if stderr and isinstance(tail, str) and tail:
            out.append(f'<h3>stderr (last lines)</h3><pre class="stderr">{block(tail)}</pre>')
        out.append("</div>")
        return "".join(out)

    @staticmethod
    def _spans(spans: Sequence[Any]) -> str:
        if len(spans) < 2:
            return ""
        rows = []
        for span in spans:
            if not isinstance(span, Mapping):
                continue
            start, end = span.get("start_s"), span.get("end_s")
            took = (
                end - start
                if isinstance(start, (int, float)) and isinstance(end, (int, float))
                else None
            )
            rows.append(
                f"<tr><td>{esc(span.get('attempt'))}</td><td>{badge(str(span.get('status')))}</td>"
                f"<td>+{secs(start)}</td><td>{secs(took)}</td>"
                f"<td>{esc(span.get('exit_code'))}</td></tr>"
            )
        return (
            '<h3>Attempts</h3><table class="spans"><tr><th>#</th><th>status</th><th>start</th>'
            f"<th>took</th><th>exit</th></tr>{''.join(rows)}</table>"
        )

    @staticmethod
    def _logs(logs: Sequence[Any], *, attempts: bool) -> str:
        if not logs:
            return '<h3>Logs</h3><p class="dim">no log lines</p>'
        shown: list[Any] = list(logs)
        gap = 0
        if len(shown) > LOG_HEAD + LOG_TAIL:
            gap = len(shown) - LOG_HEAD - LOG_TAIL
            shown = [*shown[:LOG_HEAD], None, *shown[-LOG_TAIL:]]
        rows = []
        for entry in shown:
            if entry is None:
                rows.append(
                    f'<tr class="gap"><td colspan="4">… {gap:,} log lines not shown: all are in '
                    "the report JSON embedded in this page (script#gust-report)</td></tr>"
                )
                continue
            if not isinstance(entry, Mapping):
                entry = {"msg": str(entry)}
            level = str(entry.get("level", "info"))
            css = f"lv-{level}" if level in LEVELS else "lv-other"
            attempt = f'<td class="a">{esc(entry.get("attempt", ""))}</td>' if attempts else ""
            rows.append(
                f'<tr class="{css}"><td class="t">+{secs(entry.get("t"))}</td>{attempt}'
                f'<td class="lv">{esc(level)}</td>'
                f'<td class="msg">{block(str(entry.get("msg", "")))}</td></tr>'
            )
        head = "<th>attempt</th>" if attempts else ""
        return (
            f'<h3>Logs ({len(logs):,})</h3><table class="logs"><tr><th>time</th>{head}'
            f"<th>level</th><th>message</th></tr>{''.join(rows)}</table>"
        )

    @staticmethod
    def _warnings(warnings: Sequence[Any]) -> str:
        if not warnings:
            return ""
        items = "".join(f"<li>{block(str(w))}</li>" for w in warnings)
        return f'<h3>Warnings ({len(warnings)})</h3><ul class="warnings">{items}</ul>'

    # -- the table of every task --

    def table(self) -> str:
        rows = []
        for s, stage in enumerate(self.layout.stages, 1):
            for name in stage:
                task = self.tasks.get(name)
                status = self.status(name)
                if task is None:
                    cells = "<td></td><td></td><td></td>"
                else:
                    if status == "ok":
                        result = cut(json_text(task.get("value"), None), CELL_CHARS)
                    else:
                        result = reason(task.get("error"))
                    attempts = task.get("attempts", 0)
                    took = secs(task.get("duration_s")) if attempts else "-"
                    cells = f"<td>{esc(attempts)}</td><td>{took}</td><td>{esc(result)}</td>"
                rows.append(
                    f"<tr><td>{s}</td><td>{self.link(name)}</td><td>{badge(status)}</td>{cells}"
                    "</tr>"
                )
        return (
            '<section id="all"><h2>Every task</h2><table class="tasks"><tr><th>stage</th>'
            "<th>task</th><th>status</th><th>attempts</th><th>duration</th><th>result or reason"
            f"</th></tr>{''.join(rows)}</table></section>"
        )
