"""The authoring API: the ``Dag`` base class and the ``@task`` decorator.

Nothing here runs at parse time: ``gust parse`` reads DAG files statically. At run time the
decorator only attaches a :class:`TaskOptions` to the function, so a decorated method stays an
ordinary method that a DAG author can call from a unit test.
"""

from __future__ import annotations

from gust.errors import TaskOptionError

TYPE_CHECKING = False  # typing is not imported at run time: `import gust` stays cheap
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, TypeVar, overload

    F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["TASK_ATTR", "Dag", "TaskOptions", "task"]

#: Name of the attribute ``@task`` sets on the function it decorates.
TASK_ATTR = "__gust_task__"


class TaskOptions:
    """What ``@task`` says about a task: its downstream task names and whether Gust saves it.

    An immutable value with the interface of a frozen, slotted dataclass (keyword or positional
    construction, equality, hashing, ``repr``, ``match``), written out by hand because importing
    :mod:`dataclasses` costs a DAG's every task run several milliseconds.
    """

    __slots__ = ("downstream", "save")
    __match_args__ = ("downstream", "save")

    downstream: tuple[str, ...]
    save: bool

    def __init__(self, downstream: tuple[str, ...] = (), save: bool = False) -> None:
        object.__setattr__(self, "downstream", downstream)
        object.__setattr__(self, "save", save)

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}(downstream={self.downstream!r}, save={self.save!r})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return (self.downstream, self.save) == (other.downstream, other.save)  # type: ignore[attr-defined]
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.downstream, self.save))

    def __setattr__(self, name: str, value: Any) -> None:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[type[TaskOptions], tuple[tuple[str, ...], bool]]:
        return (type(self), (self.downstream, self.save))


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
    raise TaskOptionError(
        f"@task(downstream=...) takes a task name or a list/tuple of task names, not {downstream!r}"
    )


if TYPE_CHECKING:  # the two call forms, for type checkers

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
        raise TaskOptionError(f"@task(save=...) takes True or False, not {save!r}")
    options = TaskOptions(_normalise_downstream(downstream), save)

    def mark(f: F) -> F:
        if not callable(f):
            raise TaskOptionError(f"@task decorates a function, not {f!r}")
        setattr(f, TASK_ATTR, options)
        return f

    if fn is not None:
        return mark(fn)
    return mark
