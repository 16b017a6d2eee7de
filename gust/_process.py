"""The host side's processes: spawn a child in a session of its own, read it, end all of it.

Theory of operation: every host in the project (the harness running tasks, callbacks and
``gust parse``; the conformance runner in both modes) starts children through :func:`spawn`. A
child gets a session and process group of its own, so it and everything it starts can be
signalled at once, and a token in its environment (:data:`TOKEN_ENV`), which its descendants
inherit, so processes that left the group (``setsid`` daemons, double forks) can still be found
under :file:`/proc` and attributed to it. With :func:`become_subreaper` (Linux) orphaned
descendants are re-parented to the host instead of init, so nothing a child starts escapes the
host's view.

Ending a child is :meth:`Child.terminate`: SIGTERM to the group, ``grace`` seconds for it to go,
then SIGKILL to the group and to every escaped descendant carrying the token, and the leader is
reaped. :meth:`Child.leftovers` finds what is still alive afterwards.

The I/O helpers are thin and share the pure codec of :mod:`gust.protocol`: :class:`FrameReader`
reads frames from a descriptor before a deadline, :class:`StdinWriter` writes replies from a
queue on a thread of its own (a child that stops reading can never block the host), and
:class:`StderrCollector` drains stderr into a bounded tail, line by line, with masking.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import queue
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from gust import protocol

__all__ = [
    "TOKEN_ENV",
    "Child",
    "FrameReader",
    "FrameTimeout",
    "OutputTooLargeError",
    "StderrCollector",
    "StdinWriter",
    "become_subreaper",
    "descendants",
    "describe_exit",
    "kill_descendants",
    "reap_orphans",
    "run_to_end",
    "spawn",
]

#: The environment variable that marks a child and everything it starts.
TOKEN_ENV: Final = "GUST_PROCESS_TOKEN"
_READ_SIZE: Final = 1 << 16
#: How much of an unfinished stderr line waits for the rest before it is passed on.
_OVERLAP: Final = 4096
_PR_SET_CHILD_SUBREAPER: Final = 36


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


_popen_pids: set[int] = set()
_subreaper = False


def _reap_orphan(pid: int) -> None:
    # An orphan re-parented to us (subreaper) is ours to wait for; a child spawned through a
    # Popen is its Popen's to reap.
    if pid in _popen_pids:
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def reap_orphans() -> None:
    """Reap the orphans re-parented to this process that have exited (after
    :func:`become_subreaper`; without it there are none, and nothing is touched)."""
    if not _subreaper:
        return
    for pid in _children_of(os.getpid()):
        if pid not in _popen_pids and _is_zombie(pid):
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


class FrameTimeout(Exception):
    """No whole frame arrived before the deadline."""


class FrameReader:
    """Frames from a descriptor, through the shared :class:`~gust.protocol.FrameDecoder`.

    Args:
        fd: the descriptor to read (a child's stdout).
        max_frame_size: the largest payload accepted.
        on_bytes: called with every chunk read (to record the wire).
    """

    def __init__(
        self,
        fd: int,
        max_frame_size: int = protocol.DEFAULT_MAX_FRAME_SIZE,
        on_bytes: Callable[[bytes], None] | None = None,
    ) -> None:
        self.fd = fd
        self.decoder = protocol.FrameDecoder(max_frame_size)
        self.on_bytes = on_bytes
        self.closed = False

    def wait_readable(self, timeout: float | None) -> bool:
        """Whether bytes (or end of input) can be read within ``timeout`` seconds."""
        if self.closed:
            return True
        poller = select.poll()
        poller.register(self.fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        ms = None if timeout is None else max(0, int(timeout * 1000))
        return bool(poller.poll(ms))

    def read_chunk(self) -> bytes:
        """Read what is there into the decoder; ``b""`` marks end of input."""
        if self.closed:
            return b""
        try:
            chunk = os.read(self.fd, _READ_SIZE)
        except OSError:
            chunk = b""
        if chunk:
            if self.on_bytes is not None:
                self.on_bytes(chunk)
            self.decoder.feed(chunk)
        else:
            self.closed = True
        return chunk

    def next_frame(self, deadline: float | None) -> dict[str, Any] | None:
        """The next frame, or ``None`` at a clean end of input.

        Raises:
            FrameTimeout: nothing whole arrived before ``deadline`` (``time.monotonic()``).
            RemoteProtocolError: the bytes are not a frame (``truncated`` at end of input).
        """
        while True:
            frame = self.decoder.next_frame()
            if frame is not None:
                return frame
            if self.closed:
                self.decoder.eof()
                return None
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise FrameTimeout
            if self.wait_readable(remaining):
                self.read_chunk()


class StdinWriter(threading.Thread):
    """Writes queued bytes to a child's stdin on its own thread; ``None`` closes stdin.

    Attributes:
        broken: the child closed its stdin (or exited); later writes were dropped.
    """

    def __init__(self, fd: int, on_bytes: Callable[[bytes], None] | None = None) -> None:
        super().__init__(name="gust-host-stdin", daemon=True)
        self.fd = fd
        self.on_bytes = on_bytes
        self.queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.broken = False

    def send(self, data: bytes) -> None:
        """Queue ``data`` for the child."""
        self.queue.put(data)

    def close_input(self) -> None:
        """Close the child's stdin once everything queued before is written."""
        self.queue.put(None)

    def run(self) -> None:
        while True:
            data = self.queue.get()
            if data is None:
                break
            if self.broken:
                continue
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(self.fd, view) :]
            except OSError:
                self.broken = True  # the child is gone or closed stdin; later replies are moot
                continue
            if self.on_bytes is not None:
                self.on_bytes(data)
        try:
            os.close(self.fd)
        except OSError:
            self.broken = True


class StderrCollector(threading.Thread):
    """Reads a child's stderr to the end: a bounded tail, whole lines to a callback.

    Masking comes before any cut: a whole line is masked, then passed on in pieces of at most
    ``max_line`` characters; an unfinished line that grows past ``max_line`` is passed on up
    to a point no secret straddles (the last :data:`_OVERLAP` characters wait for more), so a
    secret of up to that length is never shown in halves. The tail is masked as a whole and
    starts at a line boundary.

    Args:
        fd: the child's stderr.
        on_line: called with each line (without its newline), masked, as it arrives.
        mask: applied to every line and to the tail (a secret masker), or ``None``.
        keep: also keep the first ``keep`` bytes of everything (for recording), or 0.
        tail_bytes: the size of the tail kept.
        max_line: a line longer than this is passed on in pieces of this size.
    """

    def __init__(
        self,
        fd: int,
        on_line: Callable[[str], None] | None = None,
        *,
        mask: Callable[[str], str] | None = None,
        keep: int = 0,
        tail_bytes: int = 64 * 1024,
        max_line: int = 64 * 1024,
    ) -> None:
        super().__init__(name="gust-host-stderr", daemon=True)
        self.fd = fd
        self.on_line = on_line
        self.mask: Callable[[str], str] = mask if mask is not None else _same
        self.tail = bytearray()
        self.kept = bytearray()
        self.keep = keep
        self.total = 0
        self._trimmed = False
        self._tail_bytes = tail_bytes
        self._max_line = max_line
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._partial = ""

    def run(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, _READ_SIZE)
            except OSError:
                chunk = b""
            if not chunk:
                break
            self.total += len(chunk)
            self.tail += chunk
            if len(self.tail) > self._tail_bytes:
                del self.tail[: len(self.tail) - self._tail_bytes]
                self._trimmed = True
            if len(self.kept) < self.keep:
                self.kept += chunk[: self.keep - len(self.kept)]
            if self.on_line is not None:
                self._feed(self._decoder.decode(chunk))
        if self.on_line is not None:
            self._feed(self._decoder.decode(b"", final=True))
            if self._partial:
                self._emit(self.mask(self._partial))
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def _feed(self, text: str) -> None:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._emit(self.mask(line))
        if len(self._partial) > self._max_line + _OVERLAP:
            self._flush_long()

    def _flush_long(self) -> None:
        # Pass on the unfinished line up to a cut no secret straddles: where masking the head
        # alone gives the start of the masked whole.
        text = self._partial
        whole = self.mask(text)
        cut = len(text) - _OVERLAP
        while cut < len(text):
            head = self.mask(text[:cut])
            if whole.startswith(head):
                self._emit(head)
                self._partial = text[cut:]
                return
            cut += 64
        self._emit(whole)
        self._partial = ""

    def _emit(self, text: str) -> None:
        assert self.on_line is not None
        for start in range(0, max(len(text), 1), self._max_line):
            self.on_line(text[start : start + self._max_line])

    def tail_text(self, lines: int) -> str:
        """The last ``lines`` lines of stderr, masked."""
        text = bytes(self.tail).decode("utf-8", "replace")
        if self._trimmed and "\n" in text:
            text = text.split("\n", 1)[1]  # the first line was cut: it may hold half a secret
        text = self.mask(text)
        return "\n".join(text.rstrip("\n").split("\n")[-lines:])

    def kept_text(self) -> str:
        """What was kept of the start of stderr (``keep`` bytes at most), masked."""
        return self.mask(bytes(self.kept).decode("utf-8", "replace"))


def _same(text: str) -> str:
    return text
