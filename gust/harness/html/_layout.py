"""The DAG's layout: stages left to right, tall stages in columns, columns in bands."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

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
