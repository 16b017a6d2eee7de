"""A child in a session of its own, with a token its descendants inherit (see gust._process)."""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import Final

from gust import protocol
from gust._process._tree import (
    _command,
    _has_token,
    _is_zombie,
    _kill_and_settle,
    _orphans,
    _pgid,
    _popen_pids,
    _signal_pid,
    _spawn_lock,
    descendants,
)

#: The environment variable that marks a child and everything it starts.
TOKEN_ENV: Final = "GUST_PROCESS_TOKEN"
_READ_SIZE: Final = 1 << 16


def describe_exit(code: int | None) -> str:
    """``exited with status 3`` or ``killed by SIGKILL`` for a ``returncode``."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class Child:
    """A spawned child: its ``Popen``, its process group and its token.

    Attributes:
        proc: the :class:`subprocess.Popen` (pipes unbuffered, as raw file objects).
        token: the value of :data:`TOKEN_ENV` given to it and inherited by its descendants.
    """

    def __init__(self, proc: subprocess.Popen[bytes], token: str) -> None:
        self.proc = proc
        self.token = token
        self._marker = f"{TOKEN_ENV}={token}".encode()
        #: ``"<pid> <command>"`` of descendants that had left the group and were killed.
        self.escaped: list[str] = []
        #: ``"<pid> <command>"`` of descendants that could not be signalled.
        self.unkillable: list[str] = []
        self._pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):  # Linux 5.3+ only
            self._pidfd = os.pidfd_open(proc.pid)
        # The pipes as raw descriptors owned here until a helper takes one (and closes it).
        self._fds: dict[str, int] = {}
        for name in ("stdin", "stdout", "stderr"):
            stream = getattr(proc, name)
            if stream is not None:
                self._fds[name] = os.dup(stream.fileno())  # non-inheritable, like the pipe
                stream.close()
                setattr(proc, name, None)

    def take_fd(self, name: str) -> int:
        """Hand over the host's end of pipe ``name`` (``stdin``, ``stdout``, ``stderr``); the
        taker closes it.

        Raises:
            KeyError: that stream was not piped, or was taken already.
        """
        return self._fds.pop(name)

    @property
    def pid(self) -> int:
        """The pid of the process spawned (also its process group and session id)."""
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once reaped; negative when a signal ended it."""
        return self.proc.returncode

    def poll(self) -> int | None:
        """Reap the leader if it has exited; its status or ``None``."""
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the leader to exit, at most ``timeout`` seconds; its status or ``None``.

        With a pidfd (Linux) the wait is woken by the exit itself; ``Popen.wait`` with a
        timeout polls with sleeps of up to 50 ms, which a host running hundreds of short
        tasks pays for every one of them.
        """
        if self.proc.returncode is not None:
            return self.proc.returncode
        if timeout is not None and self._pidfd is not None:
            poller = select.poll()
            poller.register(self._pidfd, select.POLLIN)
            if not poller.poll(max(0, int(timeout * 1000))):
                return self.proc.poll()
            return self.proc.wait()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the child's process group (nothing if the group is gone)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL the group and every escaped descendant, now.

        Escaped descendants (in another process group, found by the token) that were killed are
        added to :attr:`escaped`; those that could not be signalled to :attr:`unkillable`.
        """
        # Find them first: once the group is dead, its escaped children are orphans, out of
        # reach unless this process is a subreaper.
        marked = [(pid, _command(pid)) for pid in self._marked()]
        self.signal_group(signal.SIGKILL)
        for pid, command in marked:
            what = f"{pid} {command}"
            if not _signal_pid(pid, signal.SIGKILL):
                if what not in self.unkillable:
                    self.unkillable.append(what)
            elif _pgid(pid) != self.pid and what not in self.escaped:
                self.escaped.append(what)

    def terminate(self, grace: float) -> str:
        """End the child: SIGTERM to the group, ``grace`` seconds, then SIGKILL; reap the leader.

        Returns:
            How it ended: ``"SIGTERM"`` or ``"SIGTERM, then SIGKILL"``.
        """
        self.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while True:
            if self.poll() is not None and not self._marked():
                return "SIGTERM"
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        self.kill()
        self.wait()
        return "SIGTERM, then SIGKILL"

    def _marked(self) -> list[int]:
        # The child's descendants hang below it while it lives; once it is gone they are
        # orphans, re-parented to this process's main thread (a subreaper) or out of reach.
        roots = _orphans()
        if self.proc.returncode is None:
            roots.append(self.pid)
        found: list[int] = []
        for root in roots:
            found += [root, *descendants(root)] if root != self.pid else descendants(root)
        return [
            pid
            for pid in dict.fromkeys(found)
            if pid != self.pid and not _is_zombie(pid) and _has_token(pid, self._marker)
        ]

    def leftovers(self) -> list[tuple[int, str]]:
        """Descendants of the child still alive (in its group or escaped): ``(pid, command)``."""
        return [(pid, _command(pid)) for pid in self._marked()]

    def kill_leftovers(self, settle: float = 1.0) -> tuple[list[str], list[str]]:
        """SIGKILL every live descendant of the child and reap the orphans among them.

        Returns:
            ``(killed, survivors)``, each a list of ``"<pid> <command>"``; survivors are the
            processes that could not be signalled or were still alive after ``settle`` seconds.
        """
        found = self.leftovers()
        if not found:
            return [], []
        self.signal_group(signal.SIGKILL)
        refused, alive = _kill_and_settle([pid for pid, _ in found], settle)
        killed = [f"{pid} {cmd}" for pid, cmd in found if pid not in alive]
        survivors = [
            f"{pid} {cmd}" + (" (not ours to signal)" if pid in refused else "")
            for pid, cmd in found
            if pid in alive
        ]
        return killed, survivors

    def close(self) -> None:
        """Close the host's ends of the pipes no helper took; forget the child once reaped."""
        if self._pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self._pidfd)
            self._pidfd = None
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
        if self.proc.returncode is not None:
            _popen_pids.discard(self.pid)


def spawn(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bool = True,
    stdout: bool = True,
    stderr: bool = True,
) -> Child:
    """Start ``argv`` in a new session with a fresh token; pipes for the streams asked for.

    Streams not piped are ``/dev/null`` (stdin) or inherited (stdout, stderr).

    Raises:
        OSError: the program cannot be started.
    """
    token = secrets.token_hex(8)
    environ = dict(os.environ if env is None else env)
    environ[TOKEN_ENV] = token
    with _spawn_lock:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout else None,
            stderr=subprocess.PIPE if stderr else None,
            cwd=cwd,
            env=environ,
            start_new_session=True,
            bufsize=0,
        )
        _popen_pids.add(proc.pid)
    return Child(proc, token)


def run_to_end(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    max_output: int = protocol.DEFAULT_MAX_FRAME_SIZE,
) -> tuple[int, bytes, bytes]:
    """Run ``argv`` with no input and collect its output, like ``subprocess.run``, but in a
    session of its own that is killed whole on a timeout, an interrupt or any exception.

    Returns:
        ``(exit status, stdout, the last 64 KiB of stderr)``.

    Raises:
        OSError: the program cannot be started.
        TimeoutError: it did not finish within ``timeout`` seconds (it was killed).
        OutputTooLargeError: it wrote more than ``max_output`` bytes on stdout (it was killed).
    """
    child = spawn(argv, cwd=cwd, env=env, stdin=False)
    out_fd, err_fd = child.take_fd("stdout"), child.take_fd("stderr")
    out, err = bytearray(), bytearray()
    deadline = None if timeout is None else time.monotonic() + timeout
    poller = select.poll()
    for fd in (out_fd, err_fd):
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    open_fds = {out_fd, err_fd}
    try:
        while open_fds:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"did not finish within {timeout:g} s")
            for fd, _ in poller.poll(None if remaining is None else int(remaining * 1000) + 1):
                try:
                    chunk = os.read(fd, _READ_SIZE)
                except OSError:
                    chunk = b""
                if not chunk:
                    poller.unregister(fd)
                    open_fds.discard(fd)
                elif fd == out_fd:
                    out += chunk
                    if len(out) > max_output:
                        raise OutputTooLargeError(f"wrote more than {max_output} bytes")
                else:
                    err += chunk
                    del err[: max(0, len(err) - 64 * 1024)]
        code = child.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if code is None:
            raise TimeoutError(f"did not exit within {timeout:g} s")
    except BaseException:
        child.kill()
        child.wait()
        raise
    finally:
        for fd in (out_fd, err_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        child.kill_leftovers(settle=0.2)
        child.close()
    return code, bytes(out), bytes(err)


class OutputTooLargeError(Exception):
    """A child wrote more output than the host accepts."""
