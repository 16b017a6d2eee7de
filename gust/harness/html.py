"""``--html FILE``: a run report as one self-contained HTML page, the DAG drawn and coloured.

Strategy: :func:`render_html` is a pure function from a :class:`~gust.harness.report.RunReport`
to the text of one page. Everything is drawn here, with no framework and nothing fetched: the
DAG as inline SVG laid out by stage (:func:`layout_graph`: stages left to right, a tall stage
split into columns, columns wrapped into bands so 200 tasks stay a bounded, readable picture),
a timeline of every attempt on the run's time axis, a details section per task (logs with level
and attempt, value, error and traceback, stderr tail, warnings), the callback, and a table of
every task. A few lines of inline script make a click on a task show its details; without
script every section stays visible and the links still jump to it.

Safety: every piece of text that came from a task, a DAG file or a path goes through
:func:`html.escape`, in element text, SVG text and attribute values alike; the report JSON
embedded for machines (``<script type="application/json" id="gust-report">``) has ``<``, ``>``
and ``&`` written as JSON escapes, so no value can end the block. A Content-Security-Policy
allows exactly the page's own script and style (by hash) and nothing else: no network, no other
script, even if a bug let markup through. The report already holds masked text (the runtime masks
secrets); nothing here un-masks anything. Long texts are cut for display (the embedded JSON keeps
them whole).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final

from gust import protocol
from gust.harness.errors import UsageError
from gust.harness.report import RunReport

__all__ = ["GraphLayout", "HtmlReportFile", "layout_graph", "render_html"]

#: Node box and spacing of the graph, in CSS pixels.
NODE_W: Final = 180
NODE_H: Final = 44
COL_GAP: Final = 56
ROW_GAP: Final = 12
BAND_GAP: Final = 28
MARGIN: Final = 12
#: Room above each band for the stage labels.
LABEL_H: Final = 20
#: A stage with more tasks than this is drawn as several columns.
MAX_ROWS: Final = 20
#: Columns per band; more columns continue in a new band below.
MAX_COLS: Final = 7

_NAME_CHARS: Final = 20
_LABEL_CHARS: Final = 22
_MAX_TEXT: Final = 20_000
_LOG_HEAD: Final = 100
_LOG_TAIL: Final = 900
_CELL_CHARS: Final = 100
_STORY_NAMES: Final = 24

#: status -> (symbol, label). The symbol and the label tell statuses apart without colour.
_STATUS: Final = {
    "ok": ("✓", "ok"),
    "error": ("✗", "error"),
    "timeout": ("◷", "timeout"),
    "upstream_failed": ("↷", "upstream failed"),
    "interrupted": ("⊘", "interrupted"),
    "not_run": ("○", "not run"),
    "callback_failed": ("✗", "callback failed"),  # a run's status, never a task's
}
#: The statuses a task's box can have, in the legend's order.
_TASK_STATUSES: Final = ("ok", "error", "timeout", "upstream_failed", "interrupted", "not_run")
_LEVELS: Final = ("debug", "info", "warning", "error", "critical")


# -- layout ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphLayout:
    """Where each task's box sits in the graph picture.

    Attributes:
        stages: the tasks in stages (each stage's tasks after the first ordered to cut crossings).
        boxes: task -> ``(x, y)`` of the top-left corner of its ``NODE_W`` x ``NODE_H`` box.
        labels: ``(x, y, stage number)`` of each stage's label, above its first column in a band.
        width: the picture's width; height: its height (margins included).
    """

    stages: tuple[tuple[str, ...], ...]
    boxes: Mapping[str, tuple[int, int]]
    labels: tuple[tuple[int, int, int], ...]
    width: int
    height: int


def _stages(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    # Gust's layering (a task goes in the first stage after all its upstream tasks), tolerant of
    # what a hand-built report may hold: unknown names are ignored and a cycle becomes one stage.
    upstream: dict[str, set[str]] = {name: set() for name in graph}
    for name, downs in graph.items():
        for down in downs:
            if down in upstream and down != name:
                upstream[down].add(name)
    stages: list[list[str]] = []
    done: set[str] = set()
    while len(done) < len(graph):
        ready = [n for n in graph if n not in done and upstream[n] <= done]
        if not ready:
            ready = [n for n in graph if n not in done]
        stages.append(ready)
        done.update(ready)
    return stages


def layout_graph(graph: Mapping[str, Sequence[str]]) -> GraphLayout:
    """Lay out ``graph`` (task -> its downstream tasks, in file order) by stage.

    Stages run left to right. A stage of more than ``MAX_ROWS`` tasks takes several columns of
    balanced height; after ``MAX_COLS`` columns the picture continues in a band below, so its
    width never exceeds ``MAX_COLS`` columns and no box overlaps another.
    """
    stages = _stages(graph)
    upstream: dict[str, list[str]] = {name: [] for name in graph}
    for name, downs in graph.items():
        for down in downs:
            if down in upstream:
                upstream[down].append(name)
    # Columns: each stage split into balanced columns of at most MAX_ROWS tasks. Tasks of a
    # stage are ordered by the mean row of their upstream tasks (one barycentre pass), which
    # removes most edge crossings of ordinary DAGs.
    columns: list[list[str]] = []
    column_stage: list[int] = []
    rank: dict[str, float] = {}
    ordered: list[tuple[str, ...]] = []
    for number, stage in enumerate(stages, 1):
        if columns:
            keyed = [
                (
                    sum(rank[u] for u in upstream[n] if u in rank)
                    / max(1, sum(1 for u in upstream[n] if u in rank))
                    if any(u in rank for u in upstream[n])
                    else math.inf,
                    i,
                    n,
                )
                for i, n in enumerate(stage)
            ]
            stage = [n for _, _, n in sorted(keyed)]
        ordered.append(tuple(stage))
        count = -(-len(stage) // MAX_ROWS)
        per = -(-len(stage) // count)
        for c in range(count):
            column = stage[c * per : (c + 1) * per]
            columns.append(column)
            column_stage.append(number)
            for row, name in enumerate(column):
                rank[name] = row - (len(column) - 1) / 2
    boxes: dict[str, tuple[int, int]] = {}
    labels: list[tuple[int, int, int]] = []
    y = MARGIN
    width = 2 * MARGIN
    for start in range(0, len(columns), MAX_COLS):
        band = columns[start : start + MAX_COLS]
        rows = max(len(column) for column in band)
        band_h = rows * NODE_H + (rows - 1) * ROW_GAP
        width = max(width, 2 * MARGIN + len(band) * NODE_W + (len(band) - 1) * COL_GAP)
        y += LABEL_H
        for c, column in enumerate(band):
            x = MARGIN + c * (NODE_W + COL_GAP)
            if c == 0 or column_stage[start + c] != column_stage[start + c - 1]:
                labels.append((x, y - 8, column_stage[start + c]))
            col_h = len(column) * NODE_H + (len(column) - 1) * ROW_GAP
            top = y + (band_h - col_h) // 2
            for row, name in enumerate(column):
                boxes[name] = (x, top + row * (NODE_H + ROW_GAP))
        y += band_h + BAND_GAP
    height = y - BAND_GAP + MARGIN if columns else 2 * MARGIN
    return GraphLayout(
        stages=tuple(ordered), boxes=boxes, labels=tuple(labels), width=width, height=height
    )


# -- small formatting helpers --------------------------------------------------------------------


def _e(text: object) -> str:
    """Escaped for element text and attribute values alike."""
    return html.escape(str(text), quote=True)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _block(text: str) -> str:
    """A long text for a ``<pre>``: cut at ``_MAX_TEXT`` characters, saying so."""
    if len(text) <= _MAX_TEXT:
        return _e(text)
    more = len(text) - _MAX_TEXT
    return (
        _e(text[:_MAX_TEXT])
        + f'<span class="cut">… {more:,} more characters: the whole text is in the report JSON '
        "embedded in this page (script#gust-report)</span>"
    )


def _secs(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "?"
    if value < 60:
        return f"{value:.2f}s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes}m{seconds:02d}s"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _json_text(value: Any, indent: int | None = 2) -> str:
    try:
        return json.dumps(value, indent=indent, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _status(status: str) -> tuple[str, str, str]:
    """(css class, symbol, label) of a status; an unknown one keeps its own name."""
    if status in _STATUS:
        symbol, label = _STATUS[status]
        return f"st-{status}", symbol, label
    return "st-unknown", "?", status


def _badge(status: str) -> str:
    css, symbol, label = _status(status)
    return f'<span class="badge {css}">{symbol} {_e(label)}</span>'


def _reason(error: Any) -> str:
    """One line saying why something failed."""
    if not isinstance(error, Mapping):
        return ""
    kind, details = error.get("type"), error.get("details")
    if isinstance(kind, str) and isinstance(details, str):
        return _cut(f"{kind}: {details}".strip().split("\n", 1)[0], 200)
    return _cut(str(error.get("message", "")).strip().split("\n", 1)[0], 200)


def _embedded_json(data: Any) -> str:
    """``data`` as JSON text that can sit inside ``<script>``: no ``<``, ``>`` or ``&``."""
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:  # NaN or infinity in a hand-built report: null, as the runtime does
        text = json.dumps(_finite(data), ensure_ascii=False, separators=(",", ":"))
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# -- the page ----------------------------------------------------------------------------------


class _Page:
    """Renders one report; holds the derived facts every part of the page shares."""

    def __init__(self, report: RunReport) -> None:
        self.data = report.to_json()
        tasks = self.data["tasks"]
        graph: dict[str, list[str]] = {}
        for name, downs in (self.data.get("graph") or {}).items():
            graph[str(name)] = [str(d) for d in downs] if isinstance(downs, list) else []
        for name in tasks:
            graph.setdefault(name, [])
        self.graph = graph
        self.layout = layout_graph(graph)
        self.order = [n for stage in self.layout.stages for n in stage]
        self.ids = {name: f"t{i}" for i, name in enumerate(graph)}
        self.upstream: dict[str, list[str]] = {name: [] for name in graph}
        for name, downs in graph.items():
            for down in downs:
                if down in self.upstream:
                    self.upstream[down].append(name)
        self.tasks: dict[str, dict[str, Any]] = tasks
        self.callback: dict[str, Any] | None = self.data.get("callback")

    def status(self, name: str) -> str:
        task = self.tasks.get(name)
        return str(task.get("status")) if task is not None else "not_run"

    def link(self, name: str) -> str:
        ref = self.ids[name]
        return f'<a href="#{ref}" data-ref="{ref}">{_e(name)}</a>'

    def links(self, names: Iterable[str], limit: int | None = None) -> str:
        """Links to ``names``; past ``limit`` names, a count of the rest (the table has them)."""
        names = list(names)
        shown = names if limit is None else names[:limit]
        text = ", ".join(self.link(n) for n in shown) or "none"
        if len(names) > len(shown):
            text += f' and <a href="#all">{len(names) - len(shown)} more</a>'
        return text

    # -- header and the story of the run --

    def header(self) -> str:
        d = self.data
        counts: dict[str, int] = {}
        for name in self.order:
            counts[self.status(name)] = counts.get(self.status(name), 0) + 1
        tally = ", ".join(f"{n} {_status(s)[2]}" for s, n in counts.items())
        rows = [
            ("DAG", f"{_e(d['dag'])} <span class=dim>(class {_e(d['mod'])})</span>"),
            ("file", f"<code>{_e(d['file'])}</code>"),
            ("run id", _e(d["run_id"])),
            ("status", _badge(str(d["status"]))),
            ("duration", _secs(d["duration_s"])),
            ("tasks", f"{len(self.order)}" + (f" ({_e(tally)})" if tally else "")),
        ]
        cb = self.callback
        if cb is not None:
            rows.append(
                (
                    "callback",
                    f'<a href="#callback" data-ref="callback">{_e(cb["fn"])}'
                    f"({_e(repr(cb['run_status']))})</a> {_badge(str(cb['status']))}",
                )
            )
        facts = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in rows)
        title = f"run {_e(d['run_id'])} of {_e(d['dag'])}"
        return (
            f'<header><h1>{_badge(str(d["status"]))} {title}</h1><dl class="facts">{facts}</dl>'
            "</header>"
        )

    def story(self) -> str:
        """What happened, in sentences: what failed and why, what it skipped, what still ran."""
        lines: list[str] = []
        if self.data["status"] == "interrupted":
            lines.append(
                '<li class="st-interrupted"><span class="sym">⊘</span> the run was interrupted: '
                "tasks still running were stopped, and no new task started</li>"
            )
        failed = [n for n in self.order if self.status(n) in ("error", "timeout")]
        below = {name: self._below(name) for name in failed}
        for name in failed:
            css, symbol, label = _status(self.status(name))
            skipped = [n for n in below[name] if self.status(n) == "upstream_failed"]
            lines.append(
                f'<li class="{css}"><span class="sym">{symbol}</span> <b>{self.link(name)}</b> '
                f"failed ({_e(label)}): <span class=reason>"
                f"{_e(_reason(self.tasks[name].get('error')))}</span></li>"
            )
            if skipped:
                lines.append(
                    '<li class="st-upstream_failed sub"><span class="sym">↷</span> skipped '
                    f"because of it: {self.links(skipped, _STORY_NAMES)}</li>"
                )
            else:
                lines.append('<li class="sub dim">no task was skipped because of it</li>')
        explained = {n for names in below.values() for n in names}
        orphans = [
            n for n in self.order if self.status(n) == "upstream_failed" and n not in explained
        ]
        if orphans:
            lines.append(
                '<li class="st-upstream_failed"><span class="sym">↷</span> skipped (upstream '
                f"did not succeed): {self.links(orphans, _STORY_NAMES)}</li>"
            )
        stopped = [n for n in self.order if self.status(n) == "interrupted"]
        if stopped:
            lines.append(
                '<li class="st-interrupted"><span class="sym">⊘</span> interrupted: '
                f"{self.links(stopped, _STORY_NAMES)}</li>"
            )
        ok = [n for n in self.order if self.status(n) == "ok"]
        if failed or orphans or stopped:
            lines.append(
                f'<li class="st-ok"><span class="sym">✓</span> still ran and succeeded: '
                f"{self.links(ok, _STORY_NAMES)}</li>"
            )
        elif ok:
            every = f"all {len(ok)} tasks" if len(ok) == len(self.order) else "these tasks"
            lines.append(
                f'<li class="st-ok"><span class="sym">✓</span> {every} succeeded: '
                f"{self.links(ok, _STORY_NAMES)}</li>"
            )
        not_run = [n for n in self.order if n not in self.tasks]
        if not_run:
            lines.append(
                '<li class="st-not_run"><span class="sym">○</span> not run in this run: '
                f"{self.links(not_run, _STORY_NAMES)}</li>"
            )
        others = [n for n in self.order if n in self.tasks and self.status(n) not in _TASK_STATUSES]
        if others:
            lines.append(f"<li>other statuses: {self.links(others, _STORY_NAMES)}</li>")
        cb = self.callback
        if cb is not None:
            css, symbol, label = _status(str(cb["status"]))
            why = "" if cb["status"] == "ok" else f": {_e(_reason(cb.get('error')))}"
            lines.append(
                f'<li class="{css}"><span class="sym">{symbol}</span> callback '
                f'<a href="#callback" data-ref="callback">{_e(cb["fn"])}'
                f"({_e(repr(cb['run_status']))})</a> {_e(label)}{why}</li>"
            )
        if not self.order:
            lines.append("<li>this DAG has no tasks</li>")
        return f'<section id="story"><h2>What happened</h2><ul>{"".join(lines)}</ul></section>'

    def _below(self, name: str) -> list[str]:
        """Every task downstream of ``name``, directly or not, in layout order."""
        seen: set[str] = set()
        todo = list(self.graph.get(name, ()))
        while todo:
            n = todo.pop()
            if n not in seen and n in self.graph:
                seen.add(n)
                todo.extend(self.graph[n])
        return [n for n in self.order if n in seen]

    # -- the graph --

    def graph_svg(self) -> str:
        lay = self.layout
        parts = [
            f'<svg id="graph" class="graph" xmlns="http://www.w3.org/2000/svg" '
            f'width="{lay.width}" height="{lay.height}" viewBox="0 0 {lay.width} {lay.height}" '
            'role="img" aria-label="the DAG, coloured by task status">',
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" '
            'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto">'
            '<path d="M0,0 L10,5 L0,10 z"/></marker>'
            f'<clipPath id="node-clip"><rect x="0" y="0" width="{NODE_W - 8}" '
            f'height="{NODE_H}"/></clipPath></defs>',
            '<g class="edges">',
        ]
        for name, downs in self.graph.items():
            for down in downs:
                if down in lay.boxes and down != name:
                    parts.append(self._edge(name, down))
        parts.append('</g><g class="stages">')
        for x, y, number in lay.labels:
            parts.append(f'<text class="stage" x="{x}" y="{y}">stage {number}</text>')
        parts.append('</g><g class="nodes">')
        for name in self.order:
            parts.append(self._node(name))
        parts.append("</g></svg>")
        return "".join(parts)

    def _edge(self, source: str, target: str) -> str:
        (x1, y1), (x2, y2) = self.layout.boxes[source], self.layout.boxes[target]
        x1, y1, y2 = x1 + NODE_W, y1 + NODE_H // 2, y2 + NODE_H // 2
        bend = max(28, (x2 - x1) // 2) if x2 > x1 else 60
        d = f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2 - 2},{y2}"
        return (
            f'<path class="edge" d="{d}" data-from="{self.ids[source]}" '
            f'data-to="{self.ids[target]}" marker-end="url(#arrow)">'
            f"<title>{_e(source)} → {_e(target)}</title></path>"
        )

    def _meta(self, name: str) -> str:
        status = self.status(name)
        label = _status(status)[2]
        task = self.tasks.get(name)
        if task is None or not task.get("attempts"):
            return label if status != "upstream_failed" else "upstream failed · skipped"
        attempts = task.get("attempts", 0)
        text = f"{label} · {_secs(task.get('duration_s'))}"
        if attempts != 1:
            text += f" · {attempts} attempts"
        return text

    def _node(self, name: str) -> str:
        x, y = self.layout.boxes[name]
        ref = self.ids[name]
        status = self.status(name)
        css, symbol, _ = _status(status)
        meta = self._meta(name)
        tip = f"{name}: {meta}"
        task = self.tasks.get(name)
        if task is not None and status != "ok":
            tip += f"\n{_reason(task.get('error'))}"
        return (
            f'<a class="node {css}" href="#{ref}" data-ref="{ref}" data-task="{_e(name)}" '
            f'data-status="{_e(status)}" transform="translate({x},{y})" '
            f'aria-label="{_e(name)}: {_e(meta)}"><title>{_e(tip)}</title>'
            f'<rect width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<g clip-path="url(#node-clip)" transform="translate(8,0)">'
            f'<text class="name" x="0" y="18"><tspan class="sym">{symbol}</tspan> '
            f"{_e(_cut(name, _NAME_CHARS))}</text>"
            f'<text class="meta" x="0" y="35">{_e(meta)}</text></g></a>'
        )

    # -- the timeline --

    def timeline_svg(self) -> str:
        label_w, plot_w, row_h, top = 190, 820, 20, 26
        rows: list[tuple[str, str, list[dict[str, Any]]]] = []
        for name in self.order:
            task = self.tasks.get(name)
            spans = task.get("spans", []) if task is not None else []
            rows.append((name, self.ids[name], [s for s in spans if isinstance(s, dict)]))
        cb = self.callback
        if cb is not None:
            span = {
                "attempt": 1,
                "start_s": cb.get("start_s", 0.0),
                "end_s": cb.get("end_s", 0.0),
                "status": cb["status"],
            }
            rows.append(("(callback)", "callback", [span]))
        ends = [self.data.get("duration_s") or 0.0]
        ends += [s.get("end_s", 0.0) for _, _, spans in rows for s in spans]
        total = max([e for e in ends if isinstance(e, (int, float)) and math.isfinite(e)] + [1e-3])
        step = _tick_step(total)
        height = top + len(rows) * row_h + 8
        width = label_w + plot_w + 16
        parts = [
            f'<svg id="timeline" class="timeline" xmlns="http://www.w3.org/2000/svg" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            'aria-label="every attempt on the run\'s time axis">'
        ]
        tick, i = 0.0, 0
        while tick <= total * 1.0001:
            x = label_w + tick / total * plot_w
            parts.append(
                f'<line class="tick" x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 8}"/>'
                f'<text class="tick" x="{x:.1f}" y="{top - 10}">{tick:g}s</text>'
            )
            i += 1
            tick = round(i * step, 10)
        for r, (name, ref, spans) in enumerate(rows):
            y = top + r * row_h
            parts.append(
                f'<a href="#{ref}" data-ref="{ref}" class="row"><title>{_e(name)}</title>'
                f'<text class="label" x="{label_w - 8}" y="{y + 14}">'
                f"{_e(_cut(name, _LABEL_CHARS))}</text></a>"
            )
            if not spans:
                status = self.status(name)
                css, symbol, label = _status(status)
                text = "skipped: upstream failed" if status == "upstream_failed" else label
                parts.append(
                    f'<text class="none {css}" x="{label_w + 4}" y="{y + 14}">{symbol} '
                    f"{_e(text)}</text>"
                )
            for span in spans:
                parts.append(self._bar(name, ref, span, total, label_w, plot_w, y))
        parts.append("</svg>")
        return "".join(parts)

    def _bar(
        self,
        name: str,
        ref: str,
        span: Mapping[str, Any],
        total: float,
        label_w: int,
        plot_w: int,
        y: int,
    ) -> str:
        start, end = span.get("start_s", 0.0), span.get("end_s", 0.0)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (start, end)):
            start = end = 0.0
        x = label_w + max(0.0, start) / total * plot_w
        w = max(2.0, (end - start) / total * plot_w)
        status = str(span.get("status"))
        css, _, label = _status(status)
        attempt = span.get("attempt")
        tip = (
            f"{name} · attempt {attempt} · {label} · {_secs(start)} → {_secs(end)} "
            f"({_secs(end - start)})"
        )
        retried = len(self.tasks.get(name, {}).get("spans") or ()) > 1
        number = (
            f'<text class="n" x="{x + 3:.1f}" y="{y + 14}">{_e(attempt)}</text>'
            if retried and w >= 14
            else ""
        )
        return (
            f'<a href="#{ref}" data-ref="{ref}" class="bar {css}" data-task="{_e(name)}" '
            f'data-attempt="{_e(attempt)}"><title>{_e(tip)}</title>'
            f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="14" rx="2"/>{number}</a>'
        )

    # -- details --

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
            f'<section class="detail" id="{ref}" data-task="{_e(name)}">'
            f"<h2>{_badge(status)} {_e(name)}</h2>"
        )
        links = (
            f'<p class="facts">upstream: {self.links(up)} · downstream: '
            f"{self.links(d for d in down if d in self.ids)}</p>"
        )
        if task is None:
            return head + links + '<p class="dim">not run in this run.</p></section>'
        attempts = task.get("attempts", 0)
        facts = [_plural(attempts, "attempt") if isinstance(attempts, int) else "? attempts"]
        if attempts:
            facts.append(_secs(task.get("duration_s")))
        if task.get("exit_code") is not None:
            facts.append(f"exit status {_e(task['exit_code'])}")
        body = [head, f'<p class="facts">{" · ".join(facts)}</p>', links]
        if task.get("error") is not None:
            body.append(self._error(task["error"]))
        if status == "ok":
            body.append(
                f'<h3>Value</h3><pre class="value">{_block(_json_text(task["value"]))}</pre>'
            )
        body.append(self._spans(task.get("spans") or []))
        body.append(self._logs(task.get("logs") or [], attempts=True))
        stderr = task.get("stderr_tail") or (task.get("error") or {}).get("stderr_tail") or ""
        if isinstance(stderr, str) and stderr:
            body.append(f'<h3>stderr (last lines)</h3><pre class="stderr">{_block(stderr)}</pre>')
        body.append(self._warnings(task.get("warnings") or []))
        body.append("</section>")
        return "".join(body)

    def _callback_detail(self, cb: Mapping[str, Any]) -> str:
        facts = [_secs(cb.get("duration_s"))]
        if cb.get("exit_code") is not None:
            facts.append(f"exit status {_e(cb['exit_code'])}")
        body = [
            '<section class="detail" id="callback" data-task="(callback)">'
            f"<h2>{_badge(str(cb['status']))} callback {_e(cb['fn'])}"
            f"({_e(repr(cb['run_status']))})</h2>",
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
            return f'<div class="error"><p class="message">{_block(str(error))}</p></div>'
        out = ['<div class="error">', f'<p class="message">{_block(str(error.get("message")))}</p>']
        kind, details = error.get("type"), error.get("details")
        if isinstance(kind, str) and isinstance(details, str):
            out.append(f'<p class="exception"><b>{_e(kind)}</b>: {_block(details)}</p>')
        shown = {"message", "type", "details", "traceback", "trace", "stderr_tail"}
        where = error.get("where")
        if isinstance(where, Mapping) and where.get("file") is not None:
            shown.add("where")
            out.append(
                f'<p class="where">in your code: <code>{_e(where["file"])}:'
                f"{_e(where.get('line'))}</code>, in <code>{_e(where.get('function'))}</code></p>"
            )
        trace = error.get("traceback") if isinstance(error.get("traceback"), str) else None
        if trace is None and isinstance(error.get("trace"), str):
            trace = error["trace"]
        if trace:
            out.append(f'<h3>Traceback</h3><pre class="trace">{_block(trace)}</pre>')
        inner = error.get("task_error")
        if isinstance(inner, Mapping) and not nested:
            shown.add("task_error")  # shown below as an error of its own
        extra = [(k, v) for k, v in error.items() if k not in shown and v is not None]
        if extra:
            rows = "".join(
                f"<div><dt>{_e(k)}</dt><dd><code>{_block(_json_text(v, None))}</code></dd></div>"
                for k, v in extra
            )
            out.append(f'<dl class="more">{rows}</dl>')
        if "task_error" in shown:
            # A timeout or an interrupt: the harness's account, then the task's own error.
            out.append(f"<h3>The task's own error</h3>{self._error(inner, nested=True)}")
        tail = error.get("stderr_tail")
        if stderr and isinstance(tail, str) and tail:
            out.append(f'<h3>stderr (last lines)</h3><pre class="stderr">{_block(tail)}</pre>')
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
                f"<tr><td>{_e(span.get('attempt'))}</td><td>{_badge(str(span.get('status')))}</td>"
                f"<td>+{_secs(start)}</td><td>{_secs(took)}</td>"
                f"<td>{_e(span.get('exit_code'))}</td></tr>"
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
        if len(shown) > _LOG_HEAD + _LOG_TAIL:
            gap = len(shown) - _LOG_HEAD - _LOG_TAIL
            shown = [*shown[:_LOG_HEAD], None, *shown[-_LOG_TAIL:]]
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
            css = f"lv-{level}" if level in _LEVELS else "lv-other"
            attempt = f'<td class="a">{_e(entry.get("attempt", ""))}</td>' if attempts else ""
            rows.append(
                f'<tr class="{css}"><td class="t">+{_secs(entry.get("t"))}</td>{attempt}'
                f'<td class="lv">{_e(level)}</td>'
                f'<td class="msg">{_block(str(entry.get("msg", "")))}</td></tr>'
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
        items = "".join(f"<li>{_block(str(w))}</li>" for w in warnings)
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
                        result = _cut(_json_text(task.get("value"), None), _CELL_CHARS)
                    else:
                        result = _reason(task.get("error"))
                    attempts = task.get("attempts", 0)
                    took = _secs(task.get("duration_s")) if attempts else "-"
                    cells = f"<td>{_e(attempts)}</td><td>{took}</td><td>{_e(result)}</td>"
                rows.append(
                    f"<tr><td>{s}</td><td>{self.link(name)}</td><td>{_badge(status)}</td>{cells}"
                    "</tr>"
                )
        return (
            '<section id="all"><h2>Every task</h2><table class="tasks"><tr><th>stage</th>'
            "<th>task</th><th>status</th><th>attempts</th><th>duration</th><th>result or reason"
            f"</th></tr>{''.join(rows)}</table></section>"
        )

    def initial(self) -> str:
        for wanted in (("error", "timeout"), ("interrupted",), ("upstream_failed",), None):
            for name in self.order:
                if wanted is None or self.status(name) in wanted:
                    return self.ids[name]
        return "callback" if self.callback is not None else ""

    def render(self) -> str:
        legend = "".join(
            f'<span class="badge st-{s}">{_STATUS[s][0]} {_STATUS[s][1]}</span>'
            for s in _TASK_STATUSES
        )
        body = (
            f"{self.header()}<main>{self.story()}"
            '<div class="split"><section id="graph-box"><h2>DAG</h2>'
            f'<p class="legend">{legend}</p><div class="scroll">{self.graph_svg()}</div>'
            '<p class="hint dim">Click a task to see its details.</p></section>'
            f'<aside id="details" aria-live="polite">{self.details()}</aside></div>'
            '<section id="timeline-box"><h2>Timeline</h2><p class="hint dim">Every attempt on the '
            "run's time axis; a gap between two attempts of a task is the retry backoff.</p>"
            f'<div class="scroll">{self.timeline_svg()}</div></section>'
            f"{self.table()}</main>"
        )
        title = f"{self.data['status']}: run {self.data['run_id']} of {self.data['dag']}"
        script_hash = _csp_hash(_SCRIPT)
        style_hash = _csp_hash(_STYLE)
        csp = (
            f"default-src 'none'; script-src '{script_hash}'; style-src '{style_hash}'; "
            "img-src 'none'; base-uri 'none'; form-action 'none'"
        )
        page = (
            "<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="gust.harness">'
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
            f'<body data-initial="{self.initial()}">{body}'
            f'<script type="application/json" id="gust-report">{_embedded_json(self.data)}'
            f"</script><script>{_SCRIPT}</script></body></html>\n"
        )
        return protocol.scrub_surrogates(page)


def _tick_step(total: float) -> float:
    raw = total / 6
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def render_html(report: RunReport) -> str:
    """The run report as the text of one self-contained HTML page.

    Pure: the same report always gives the same text; nothing is read or fetched. Every task of
    ``report.graph`` is drawn (a task the run did not run is ``not run``), plus any task of
    ``report.tasks`` the graph lacks.
    """
    return _Page(report).render()


class HtmlReportFile:
    """Where ``--html`` writes the page: checked before the run, written once the run is over.

    The file is opened (created if missing) at once, so a path that cannot be written fails
    before any task runs; an existing file keeps its content until the new page is complete.
    As a context manager it discards itself on the way out unless :meth:`write` was called.

    Args:
        path: the file to write.
        option: how the user named it, for messages (``--html``, or ``html=`` for run_dag).

    Raises:
        UsageError: ``path`` cannot be opened for writing.
    """

    def __init__(self, path: str | os.PathLike[str], *, option: str = "--html") -> None:
        self.path = os.fspath(path)
        self._created = not os.path.lexists(self.path)
        try:
            # Kept open from the check to the write, so no context manager: see discard().
            self._file: IO[str] | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"{option} {self.path}: cannot be written: {exc}") from None

    def write(self, report: RunReport) -> None:
        """Render ``report`` and replace the file's content with the page; closes the file."""
        page = render_html(report)
        handle = self._file
        if handle is None:
            raise ValueError(f"{self.path}: this HTML report file is already closed")
        self._file = None
        with handle:
            handle.truncate(0)
            handle.write(page)

    def discard(self) -> None:
        """Close without writing (the run did not finish); a file this object created goes."""
        handle, self._file = self._file, None
        if handle is None:
            return
        handle.close()
        if self._created:
            try:
                if os.path.getsize(self.path) == 0:
                    os.unlink(self.path)
            except OSError:
                return  # removed or replaced meanwhile: nothing of ours to clean up

    def __enter__(self) -> HtmlReportFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


_STYLE: Final = """
:root{--ink:#1b1f24;--dim:#5f6b76;--line:#d5dae0;--bg:#f5f6f8;--sel:#1565c0}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,"DejaVu Sans","Liberation Sans",sans-serif;
color:var(--ink);background:var(--bg)}
header{background:#fff;border-bottom:1px solid var(--line);padding:12px 20px}
h1{font-size:20px;margin:0 0 6px}h2{font-size:16px;margin:0 0 8px}
h3{font-size:13px;margin:14px 0 4px;text-transform:uppercase;letter-spacing:.04em;
color:var(--dim)}
main{padding:14px 20px;display:flex;flex-direction:column;gap:14px}
main>section,.split>section,aside{background:#fff;border:1px solid var(--line);
border-radius:8px;padding:12px 14px}
.split{display:grid;grid-template-columns:minmax(0,1fr) minmax(360px,40%);gap:14px;
align-items:start}
aside{position:sticky;top:8px;max-height:calc(100vh - 16px);overflow:auto}
.scroll{overflow:auto;max-height:70vh}
#timeline-box .scroll{max-height:60vh}
dl.facts{display:flex;flex-wrap:wrap;gap:4px 22px;margin:0}
dl.facts div{display:flex;gap:6px}dt{color:var(--dim)}dd{margin:0}
dl.more div{display:flex;gap:8px}
code,pre{font:12.5px/1.4 "DejaVu Sans Mono","Liberation Mono",monospace}
pre{background:#f3f4f6;border:1px solid var(--line);border-radius:6px;padding:8px;margin:0;
white-space:pre-wrap;overflow-wrap:anywhere;max-height:420px;overflow:auto}
a{color:var(--sel)}
.dim{color:var(--dim)}
.cut{display:block;color:var(--dim);font-style:italic}
.badge{display:inline-block;border:1px solid;border-radius:10px;padding:0 8px;
font-size:12.5px;font-weight:600;white-space:nowrap}
.legend .badge{margin-right:6px}
#story ul{list-style:none;margin:0;padding:0}
#story li{padding:2px 0}#story li.sub{padding-left:26px}
#story .sym{display:inline-block;width:18px;text-align:center;font-weight:700}
.reason{font-family:"DejaVu Sans Mono","Liberation Mono",monospace;font-size:13px}
table{border-collapse:collapse;width:100%}
th{text-align:left;color:var(--dim);font-weight:600;font-size:12.5px}
td,th{padding:3px 8px 3px 0;border-bottom:1px solid #eceef1;vertical-align:top}
table.logs td.msg{white-space:pre-wrap;overflow-wrap:anywhere;
font:12.5px/1.4 "DejaVu Sans Mono","Liberation Mono",monospace}
table.logs td.t,table.logs td.a,table.logs td.lv{white-space:nowrap;font-size:12.5px}
tr.lv-warning td.lv{color:#8a5300;font-weight:700}
tr.lv-error td.lv,tr.lv-critical td.lv{color:#b71c1c;font-weight:700}
tr.lv-debug td{color:var(--dim)}
tr.gap td{color:var(--dim);font-style:italic}
.error{border-left:4px solid #c62828;padding:2px 0 2px 10px;margin:8px 0}
.error .message{font-weight:700;margin:0 0 4px;white-space:pre-wrap}
.error .exception{margin:0 0 6px;white-space:pre-wrap;overflow-wrap:anywhere}
.error .where{margin:0 0 6px}
ul.warnings{margin:0;padding-left:20px;color:#8a5300}
.detail{padding-bottom:10px;border-bottom:1px dashed var(--line);margin-bottom:10px}
.js .detail{display:none}.js .detail.shown{display:block;border:0}
.detail h2{font-size:17px}
svg text{font-family:system-ui,"DejaVu Sans","Liberation Sans",sans-serif}
.node rect{stroke-width:1.5}
.node text.name{font-size:13px;font-weight:600;fill:var(--ink)}
.node text.meta{font-size:11px;fill:#3d4750}
.node{cursor:pointer}.node:focus{outline:none}
.node:hover rect,.node:focus rect{stroke-width:3}
.node.selected rect{stroke:var(--sel);stroke-width:3.5}
.edge{fill:none;stroke:#9aa4ae;stroke-width:1.3}
.edge.lit{stroke:var(--sel);stroke-width:2.4}
marker path{fill:#7d8791}
.st-ok{--fill:#e6f4ea;--stroke:#1e7e34}
.st-error{--fill:#fde8e8;--stroke:#c62828}
.st-timeout{--fill:#f3e5f5;--stroke:#7b1fa2}
.st-upstream_failed{--fill:#fff3dc;--stroke:#a35f00}
.st-not_run{--fill:#f1f3f5;--stroke:#7d8791}
.st-interrupted{--fill:#e8eef7;--stroke:#3f5f8a}
.st-callback_failed{--fill:#fde8e8;--stroke:#c62828}
.st-unknown{--fill:#eeeeee;--stroke:#444}
.badge{background:var(--fill);border-color:var(--stroke);color:var(--stroke)}
#story li[class^=st-] .sym{color:var(--stroke)}
.node rect{fill:var(--fill);stroke:var(--stroke)}
.node.st-upstream_failed rect{stroke-dasharray:6 3}
.node.st-not_run rect{stroke-dasharray:2 3}
.node.st-interrupted rect{stroke-dasharray:8 2 2 2}
.node .sym{fill:var(--stroke)}
.bar rect{fill:var(--stroke)}.bar text.n{fill:#fff;font-size:10px;font-weight:700}
.bar{cursor:pointer}.bar.selected rect{stroke:var(--sel);stroke-width:2}
.row text.label{text-anchor:end;font-size:12px;fill:var(--ink)}
.row.selected text.label{font-weight:700;fill:var(--sel)}
text.none{font-size:11.5px;fill:var(--stroke)}
line.tick{stroke:#e3e6ea}text.tick{font-size:10.5px;fill:var(--dim);text-anchor:middle}
.hint{margin:6px 0 0;font-size:12.5px}
text.stage{font-size:11px;fill:var(--dim);text-transform:uppercase;letter-spacing:.05em}
"""

_SCRIPT: Final = """
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  function select(ref) {
    var target = ref ? document.getElementById(ref) : null;
    if (!target || !target.classList.contains("detail")) return false;
    document.querySelectorAll(".detail.shown, .selected").forEach(function (el) {
      el.classList.remove("shown", "selected");
    });
    target.classList.add("shown");
    document.querySelectorAll("[data-ref]").forEach(function (el) {
      if (el.getAttribute("data-ref") === ref && !el.closest("#details")) {
        el.classList.add("selected");
      }
    });
    document.querySelectorAll(".edge").forEach(function (el) {
      var lit = el.getAttribute("data-from") === ref || el.getAttribute("data-to") === ref;
      el.classList.toggle("lit", lit);
    });
    document.getElementById("details").scrollTop = 0;
    return true;
  }
  document.addEventListener("click", function (event) {
    var el = event.target.closest ? event.target.closest("[data-ref]") : null;
    if (el && select(el.getAttribute("data-ref"))) event.preventDefault();
  });
  if (!select(location.hash.slice(1))) select(document.body.getAttribute("data-initial"));
})();
"""
