"""The task graph and its checks: downstream links, unknown names, cycles and stages.

Stages are Kahn's layers of the downstream graph, each in source order: a task sits one stage
after the last of its upstream tasks. Tasks Kahn's algorithm cannot place lie on or behind a
cycle; one cycle among them is named, read in the direction of the links, so the whole check is
linear in the number of tasks and links.
"""

from __future__ import annotations

from gust.parser._problems import did_you_mean

TYPE_CHECKING = False  # typing is only for the type checker: `gust parse` starts on every edit
if TYPE_CHECKING:
    from typing import Final

    from gust.parser._classes import Class, Member, Task
    from gust.parser._problems import Problems

#: How many unknown downstream names of one DAG get a "did you mean" (each compares the name
#: with every task of the DAG).
MAX_SUGGESTIONS: Final = 20


def stages(
    dag: Class,
    tasks: list[Task],
    effective: dict[str, Task | Member],
    problems: Problems,
) -> list[list[str]]:
    """Kahn's layers of the downstream graph, each in source order; reports bad links."""
    count = len(tasks)
    index = {t.name: i for i, t in enumerate(tasks)}
    downstream: list[list[int]] = [[] for _ in range(count)]
    waiting = [0] * count
    suggestions = MAX_SUGGESTIONS
    for i, task in enumerate(tasks):
        for name in task.downstream:
            j = index.get(name)
            if j is None:
                member = effective.get(name)
                if member is not None:
                    where = f"line {member.line}"
                    if not member.module.is_root:
                        where = f"{member.module.display} {where}"
                    hint = f" ({where} defines it without @task)"
                elif suggestions > 0:
                    suggestions -= 1
                    hint = did_you_mean(name, index)
                else:
                    hint = ""
                problems.error(
                    *_place(
                        dag,
                        task,
                        f"task '{task.name}' names downstream {name!r}, which is not a task of "
                        f"{dag.name}{hint}",
                    )
                )
                continue
            downstream[i].append(j)
            waiting[j] += 1
    level = [0] * count
    ready = [i for i in range(count) if waiting[i] == 0]
    cursor = 0
    while cursor < len(ready):
        i = ready[cursor]
        cursor += 1
        for j in downstream[i]:
            if level[j] <= level[i]:
                level[j] = level[i] + 1
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    layers: list[list[str]] = [[] for _ in range(max((level[i] for i in ready), default=-1) + 1)]
    for i in range(count):
        if waiting[i] == 0:
            layers[level[i]].append(tasks[i].name)
    if len(ready) < count:
        cycle = _find_cycle(downstream, waiting)
        names = [tasks[i].name for i in cycle]
        problems.error(
            *_place(
                dag,
                tasks[cycle[0]],
                f"the downstream links of {dag.name} form a cycle: "
                + " -> ".join([*names, names[0]]),
            )
        )
    return layers


def _place(dag: Class, task: Task, text: str) -> tuple[int, str]:
    """Where an error about ``task``'s links points: where they are written, or, for a task
    of another file, the DAG class's line with the file and line in the text."""
    module = task.module
    if module.is_root:
        return task.ref_line, text
    return dag.node.lineno, f"{module.display} line {task.ref_line}: {text}"


def _find_cycle(downstream: list[list[int]], waiting: list[int]) -> list[int]:
    """One cycle among the tasks Kahn's algorithm could not place, first task in source order.

    Every such task still waits for an upstream that is itself unplaced, so walking upstream
    from any of them must come back to a task already visited.
    """
    upstream: list[list[int]] = [[] for _ in downstream]
    for i, targets in enumerate(downstream):
        for j in targets:
            upstream[j].append(i)
    current = next(i for i, w in enumerate(waiting) if w > 0)
    seen: dict[int, int] = {}
    path: list[int] = []
    while current not in seen:
        seen[current] = len(path)
        path.append(current)
        current = next(u for u in upstream[current] if waiting[u] > 0)
    cycle = path[seen[current] :]
    cycle.reverse()  # walked upstream; read it downstream
    start = cycle.index(min(cycle))
    return cycle[start:] + cycle[:start]
