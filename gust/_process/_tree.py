"""Processes under ``/proc``: descendants, orphans, tokens, and killing what is left.

See :mod:`gust._process`. Linux only; elsewhere the lookups find nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Final

_PR_SET_CHILD_SUBREAPER: Final = 36

#: Pids of the children this process spawned (their Popen reaps them, never :func:`reap_orphans`).
_popen_pids: set[int] = set()
#: Held from a spawn's fork until its pid is in :data:`_popen_pids`, and while reaping: a
#: child that exits at once must not be taken for an orphan (``Popen.wait`` would then find
#: it gone and report status 0). Reentrant: :func:`reap_orphans` reaps each under it.
_spawn_lock = threading.RLock()
#: Whether :func:`become_subreaper` succeeded: orphans are then this process's to reap.
_subreaper = False


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); whether it worked.

    Without it a child that double-forks hands its grandchild to init, out of the host's reach.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        ok = libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
    global _subreaper
    _subreaper = _subreaper or ok
    return ok


def _children_of(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as handle:
                out += [int(p) for p in handle.read().split()]
        except (OSError, ValueError):
            continue
    return out


def _orphans() -> list[int]:
    """Children of this process's main thread that no ``Popen`` of ours started: orphans
    re-parented to it (after :func:`become_subreaper`)."""
    pid = os.getpid()
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as handle:
            children = [int(p) for p in handle.read().split()]
    except (OSError, ValueError):
        return []
    return [c for c in children if c not in _popen_pids]


def descendants(root: int | None = None) -> list[int]:
    """Every live descendant of ``root`` (default: this process), found through ``/proc``."""
    start = os.getpid() if root is None else root
    found: list[int] = []
    todo = _children_of(start)
    seen = {start}
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        found.append(pid)
        todo += _children_of(pid)
    return found


def _read_proc(pid: int, name: str) -> bytes:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _has_token(pid: int, marker: bytes) -> bool:
    environ = _read_proc(pid, "environ")
    # A process caught in the middle of exec shows no environment and no command line for a
    # moment; a process started with an empty environment (env -i) still has a command line.
    for _ in range(50):
        if environ or _read_proc(pid, "cmdline") or _is_zombie(pid):
            break
        time.sleep(0.002)
        environ = _read_proc(pid, "environ")
    return marker in environ.split(b"\0")


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").strip().decode("utf-8", "replace")[:120] or "?"


def _pgid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        return int(stat[stat.rindex(b")") + 2 :].split()[2])
    except (OSError, ValueError, IndexError):
        return None


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return True  # gone
    return stat[stat.rindex(b")") + 2 :][:1] in (b"Z", b"X")


def _signal_pid(pid: int, sig: int) -> bool:
    """Send ``sig``; ``False`` only when the process exists but may not be signalled."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return True


def _reap_orphan(pid: int) -> None:
    # An orphan re-parented to us (subreaper) is ours to wait for; a child spawned through a
    # Popen is its Popen's to reap.
    with _spawn_lock:
        if pid in _popen_pids:
            return
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def reap_orphans() -> None:
    """Reap the orphans re-parented to this process that have exited (after
    :func:`become_subreaper`; without it there are none, and nothing is touched)."""
    if not _subreaper:
        return
    with _spawn_lock:
        for pid in _children_of(os.getpid()):
            if _is_zombie(pid):
                _reap_orphan(pid)


def kill_descendants(settle: float = 1.0) -> list[str]:
    """SIGKILL every live descendant of this process and reap the orphans among them.

    For a host about to exit: whatever its children left behind (even with a cleared
    environment) goes with it.

    Returns:
        ``"<pid> <command>"`` of each process killed.
    """
    found = [(pid, _command(pid)) for pid in descendants() if not _is_zombie(pid)]
    _kill_and_settle([pid for pid, _ in found], settle)
    return [f"{pid} {cmd}" for pid, cmd in found]


def _kill_and_settle(pids: list[int], settle: float) -> tuple[set[int], set[int]]:
    """SIGKILL ``pids`` and reap the orphans among them as they die, ``settle`` seconds at most.

    Returns:
        ``(refused, alive)``: the pids that could not be signalled, and those still alive.
    """
    refused = {pid for pid in pids if not _signal_pid(pid, signal.SIGKILL)}
    deadline = time.monotonic() + settle
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            _reap_orphan(pid)
            if _is_zombie(pid):
                alive.discard(pid)
        if alive:
            time.sleep(0.02)
    return refused, alive
