"""The page: the facts every part shares, the header, the story of the run, and the whole."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from typing import Any

from gust import protocol
from gust.harness.html._assets import SCRIPT, STYLE
from gust.harness.html._details import Details
from gust.harness.html._drawing import Drawings
from gust.harness.html._format import (
    STATUS,
    STORY_NAMES,
    TASK_STATUSES,
    badge,
    embedded_json,
    esc,
    reason,
    secs,
    status_parts,
)
from gust.harness.html._layout import layout_graph
from gust.harness.report import RunReport


class Page(Drawings, Details):
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
        return f'<a href="#{ref}" data-ref="{ref}">{esc(name)}</a>'

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
        tally = ", ".join(f"{n} {status_parts(s)[2]}" for s, n in counts.items())
        rows = [
            ("DAG", f"{esc(d['dag'])} <span class=dim>(class {esc(d['mod'])})</span>"),
            ("file", f"<code>{esc(d['file'])}</code>"),
            ("run id", esc(d["run_id"])),
            ("status", badge(str(d["status"]))),
            ("duration", secs(d["duration_s"])),
            ("tasks", f"{len(self.order)}" + (f" ({esc(tally)})" if tally else "")),
        ]
        cb = self.callback
        if cb is not None:
            rows.append(
                (
                    "callback",
                    f'<a href="#callback" data-ref="callback">{esc(cb["fn"])}'
                    f"({esc(repr(cb['run_status']))})</a> {badge(str(cb['status']))}",
                )
            )
        facts = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in rows)
        title = f"run {esc(d['run_id'])} of {esc(d['dag'])}"
        return (
            f'<header><h1>{badge(str(d["status"]))} {title}</h1><dl class="facts">{facts}</dl>'
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
            css, symbol, label = status_parts(self.status(name))
            skipped = [n for n in below[name] if self.status(n) == "upstream_failed"]
            lines.append(
                f'<li class="{css}"><span class="sym">{symbol}</span> <b>{self.link(name)}</b> '
                f"failed ({esc(label)}): <span class=reason>"
                f"{esc(reason(self.tasks[name].get('error')))}</span></li>"
            )
            if skipped:
                lines.append(
                    '<li class="st-upstream_failed sub"><span class="sym">↷</span> skipped '
                    f"because of it: {self.links(skipped, STORY_NAMES)}</li>"
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
                f"did not succeed): {self.links(orphans, STORY_NAMES)}</li>"
            )
        stopped = [n for n in self.order if self.status(n) == "interrupted"]
        if stopped:
            lines.append(
                '<li class="st-interrupted"><span class="sym">⊘</span> interrupted: '
                f"{self.links(stopped, STORY_NAMES)}</li>"
            )
        ok = [n for n in self.order if self.status(n) == "ok"]
        if failed or orphans or stopped:
            lines.append(
                f'<li class="st-ok"><span class="sym">✓</span> still ran and succeeded: '
                f"{self.links(ok, STORY_NAMES)}</li>"
            )
        elif ok:
            every = f"all {len(ok)} tasks" if len(ok) == len(self.order) else "these tasks"
            lines.append(
                f'<li class="st-ok"><span class="sym">✓</span> {every} succeeded: '
                f"{self.links(ok, STORY_NAMES)}</li>"
            )
        not_run = [n for n in self.order if n not in self.tasks]
        if not_run:
            lines.append(
                '<li class="st-not_run"><span class="sym">○</span> not run in this run: '
                f"{self.links(not_run, STORY_NAMES)}</li>"
            )
        others = [n for n in self.order if n in self.tasks and self.status(n) not in TASK_STATUSES]
        if others:
            lines.append(f"<li>other statuses: {self.links(others, STORY_NAMES)}</li>")
        cb = self.callback
        if cb is not None:
            css, symbol, label = status_parts(str(cb["status"]))
            why = "" if cb["status"] == "ok" else f": {esc(reason(cb.get('error')))}"
            lines.append(
                f'<li class="{css}"><span class="sym">{symbol}</span> callback '
                f'<a href="#callback" data-ref="callback">{esc(cb["fn"])}'
                f"({esc(repr(cb['run_status']))})</a> {esc(label)}{why}</li>"
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

    def initial(self) -> str:
        for wanted in (("error", "timeout"), ("interrupted",), ("upstream_failed",), None):
            for name in self.order:
                if wanted is None or self.status(name) in wanted:
                    return self.ids[name]
        return "callback" if self.callback is not None else ""

    def render(self) -> str:
        legend = "".join(
            f'<span class="badge st-{s}">{STATUS[s][0]} {STATUS[s][1]}</span>'
            for s in TASK_STATUSES
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
        script_hash = _csp_hash(SCRIPT)
        style_hash = _csp_hash(STYLE)
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
            f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
            f'<body data-initial="{self.initial()}">{body}'
            f'<script type="application/json" id="gust-report">{embedded_json(self.data)}'
            f"</script><script>{SCRIPT}</script></body></html>\n"
        )
        return protocol.scrub_surrogates(page)


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")
