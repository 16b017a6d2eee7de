"""The authoring API: the ``Dag`` base class and the ``@task`` decorator.

Nothing here runs at parse time: ``gust parse`` reads DAG files statically. At run time the
decorator only attaches a :class:`TaskOptions` to the function, so a decorated method stays an
ordinary method that a DAG author can call from a unit test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

__all__ = ["TASK_ATTR", "Dag", "TaskOptions", "task"]

F = TypeVar("F", bound=Callable[..., Any])

#: Name of the attribute ``@task`` sets on the function it decorates.
TASK_ATTR = "__gust_task__"


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """What ``@task`` says about a task: its downstream task names and whether Gust saves it."""

    downstream: tuple[str, ...] = ()
    save: bool = False


class Dag:
    """Base class of a Gust DAG; its ``@task`` methods are the tasks.

    Args:
        schedule: a cron expression or alias such as ``"@daily"``, or ``None``.
        on_finished_callback: name of a method called as ``fn(status, run)`` when a run ends.
        **more: further options, kept in :attr:`options` for forward compatibility.
    """

    def __init__(
        self,
        schedule: str | None = None,
        on_finished_callback: str | None = None,
        **more: Any,
    ) -> None:
        self.schedule = schedule
        self.on_finished_callback = on_finished_callback
        self.options: dict[str, Any] = {
            "schedule": schedule,
            "on_finished_callback": on_finished_callback,
            **more,
        }


def _normalise_downstream(downstream: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(downstream, str):
        return (downstream,)
    if isinstance(downstream, (list, tuple)) and all(isinstance(d, str) for d in downstream):
        return tuple(downstream)
    raise TypeError(
        f"@task(downstream=...) takes a task name or a list/tuple of task names, not {downstream!r}"
    )


@overload
def task(fn: F, /) -> F: ...
@overload
def task(*, downstream: str | Sequence[str] = (), save: bool = False) -> Callable[[F], F]: ...


def task(
    fn: F | None = None, /, *, downstream: str | Sequence[str] = (), save: bool = False
) -> F | Callable[[F], F]:
    """Mark a method of a :class:`Dag` as a task; usable as ``@task`` or ``@task(...)``.

    Args:
        downstream: the task(s) that run after this one.
        save: whether Gust stores the task's result (which must then be a dict).
    """
    if not isinstance(save, bool):
        raise TypeError(f"@task(save=...) takes True or False, not {save!r}")
    options = TaskOptions(_normalise_downstream(downstream), save)

    def mark(f: F) -> F:
        if not callable(f):
            raise TypeError(f"@task decorates a function, not {f!r}")
        setattr(f, TASK_ATTR, options)
        return f

    if fn is not None:
        return mark(fn)
    return mark
