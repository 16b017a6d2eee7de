"""The process table as the runner reads it: is a pid still the process we mean, and whose is it.

Theory of operation: a pid alone is not a process (pids are reused), so a process is named by
its pid and its start time (field 22 of ``/proc/<pid>/stat``, in clock ticks since boot). A
process is alive while that pair still names a process that is not a zombie. Host mode uses
this to time how fast a host kills the process that sent ``start``, and runtime mode to accept
a ``start`` pid that belongs to a wrapper's descendant (``uv run gust``). Where ``/proc`` does
not exist, liveness falls back to ``kill(pid, 0)`` (which sees zombies as alive) and ancestry
to equality.
"""

from __future__ import annotations

import contextlib
import os
import signal

__all__ = ["descendants", "is_alive", "kill", "parent_pid", "pid_belongs_to", "start_time"]


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, or ``None`` if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name sits in parentheses and may hold spaces: split after the last ')'.
    return stat[stat.rindex(b")") + 2 :].split()


def start_time(pid: int) -> str | None:
    """The start time of ``pid`` (an opaque token), or ``None`` when it cannot be read."""
    fields = _stat_fields(pid)
    return fields[19].decode() if fields is not None and len(fields) > 19 else None


def parent_pid(pid: int) -> int | None:
    """The parent of ``pid``, or ``None`` when it cannot be read."""
    fields = _stat_fields(pid)
    return int(fields[1]) if fields is not None else None


def is_alive(pid: int, started: str | None) -> bool:
    """Whether the process ``pid`` that started at ``started`` still runs (zombies do not)."""
    if os.path.isdir("/proc/self"):
        fields = _stat_fields(pid)
        if fields is None or fields[0] in (b"Z", b"X"):
            return False
        return started is None or fields[19].decode() == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill(pid: int, started: str | None) -> None:
    """SIGKILL the process ``pid`` if it is still the one that started at ``started``."""
    if is_alive(pid, started):
        with contextlib.suppress(ProcessLookupError, PermissionError):  # gone meanwhile
            os.kill(pid, signal.SIGKILL)


def descendants(root: int) -> set[int]:
    """``root`` and every process below it now, zombies included (Linux ``/proc``; else root)."""
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return {root}
    for name in names:
        if name.isdigit():
            parent = parent_pid(int(name))
            if parent is not None:
                children.setdefault(parent, []).append(int(name))
    family, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in family:
                family.add(child)
                todo.append(child)
    return family


def pid_belongs_to(pid: int, root: int) -> bool:
    """Whether ``pid`` is ``root`` or one of its descendants (Linux ``/proc``; else equality).

    A host may start the runtime through a wrapper (``uv run gust``): the ``start`` frame then
    carries the pid of the Python process below the wrapper, which is what Gust kills.
    """
    seen = 0
    while pid > 1 and seen < 64:
        if pid == root:
            return True
        parent = parent_pid(pid)
        if parent is None:
            return False
        pid = parent
        seen += 1
    return pid == root
