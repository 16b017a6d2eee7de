"""A process named by its pid and start time: is it still the process we mean, end it if so.

Theory of operation: a pid alone is not a process (pids are reused), so host mode names the
process that sent ``start`` by its pid and its start time (field 22 of ``/proc/<pid>/stat``, in
clock ticks since boot). It is alive while that pair still names a process that is not a
zombie; that is how the runner times a host's kill. Where ``/proc`` does not exist, liveness
falls back to ``kill(pid, 0)``, which sees zombies as alive.
"""

from __future__ import annotations

import contextlib
import os
import signal

__all__ = ["is_alive", "kill", "start_time"]


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


def is_alive(pid: int, started: str | None) -> bool:
    """Whether the process ``pid`` that started at ``started`` still runs (zombies do not).

    ``started`` ``None`` accepts any process under that pid.
    """
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
