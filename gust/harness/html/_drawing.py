"""The page's two drawings, as inline SVG: the DAG graph and the timeline of every attempt."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from gust.harness.html._format import LABEL_CHARS, NAME_CHARS, cut, esc, reason, secs, status_parts
from gust.harness.html._layout import NODE_H, NODE_W


class Drawings:
    """The graph and the timeline of a :class:`~gust.harness.html._page.Page` (a mixin)."""

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
            f"<title>{esc(source)} → {esc(target)}</title></path>"
        )

    def _meta(self, name: str) -> str:
        status = self.status(name)
        label = status_parts(status)[2]
        task = self.tasks.get(name)
        if task is None or not task.get("attempts"):
            return label if status != "upstream_failed" else "upstream failed · skipped"
        attempts = task.get("attempts", 0)
        text = f"{label} · {secs(task.get('duration_s'))}"
        if attempts != 1:
            text += f" · {attempts} attempts"
        return text

    def _node(self, name: str) -> str:
        x, y = self.layout.boxes[name]
        ref = self.ids[name]
        status = self.status(name)
        css, symbol, _ = status_parts(status)
        meta = self._meta(name)
        tip = f"{name}: {meta}"
        task = self.tasks.get(name)
        if task is not None and status != "ok":
            tip += f"\n{reason(task.get('error'))}"
        return (
            f'<a class="node {css}" href="#{ref}" data-ref="{ref}" data-task="{esc(name)}" '
            f'data-status="{esc(status)}" transform="translate({x},{y})" '
            f'aria-label="{esc(name)}: {esc(meta)}"><title>{esc(tip)}</title>'
            f'<rect width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<g clip-path="url(#node-clip)" transform="translate(8,0)">'
            f'<text class="name" x="0" y="18"><tspan class="sym">{symbol}</tspan> '
            f"{esc(cut(name, NAME_CHARS))}</text>"
            f'<text class="meta" x="0" y="35">{esc(meta)}</text></g></a>'
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
                f'<a href="#{ref}" data-ref="{ref}" class="row"><title>{esc(name)}</title>'
                f'<text class="label" x="{label_w - 8}" y="{y + 14}">'
                f"{esc(cut(name, LABEL_CHARS))}</text></a>"
            )
            if not spans:
                status = self.status(name)
                css, symbol, label = status_parts(status)
                text = "skipped: upstream failed" if status == "upstream_failed" else label
                parts.append(
                    f'<text class="none {css}" x="{label_w + 4}" y="{y + 14}">{symbol} '
                    f"{esc(text)}</text>"
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
        css, _, label = status_parts(status)
        attempt = span.get("attempt")
        tip = (
            f"{name} · attempt {attempt} · {label} · {secs(start)} → {secs(end)} "
            f"({secs(end - start)})"
        )
        retried = len(self.tasks.get(name, {}).get("spans") or ()) > 1
        number = (
            f'<text class="n" x="{x + 3:.1f}" y="{y + 14}">{esc(attempt)}</text>'
            if retried and w >= 14
            else ""
        )
        return (
            f'<a href="#{ref}" data-ref="{ref}" class="bar {css}" data-task="{esc(name)}" '
            f'data-attempt="{esc(attempt)}"><title>{esc(tip)}</title>'
            f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="14" rx="2"/>{number}</a>'
        )

    # -- details --


def _tick_step(total: float) -> float:
    raw = total / 6
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power
