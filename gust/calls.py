"""The runtime API a task uses: ``log``, ``get_secret_by_name``, ``get_task_by_name_run``.

These functions talk to the host through the active :class:`Session`, which ``gust task run``
and ``gust run done`` set up. A session owns the channel, the secret masker and the call lock:
calls from several threads are serialised (one call in flight, its reply matched to it), while
logs only take the channel's write lock, so logging never waits behind a slow call. With
``GUST_CALL_TIMEOUT`` set, a call that gets no reply in time raises; since the host answers
calls in order, its late reply is recognised and skipped, never handed to the next call. A
process forked from the task (``multiprocessing``) detaches its copy of the session: its logs
go to stderr as text and its calls raise, so it cannot write into the parent's frame stream.

Outside a session (for example when a DAG author calls a task method in a unit test), ``log``
writes a plain line to stderr and the calls raise :class:`~gust.errors.NotInTaskError`.
``send_frame`` and ``_read_frame`` are kept for code written against earlier releases; without a
session they use the process's own stdout and stdin as those releases did.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time

from gust import protocol
from gust._channel import Channel, FdChannel, StderrChannel
from gust.errors import CallError, CallTimeoutError, NotInTaskError
from gust.masking import MASK, SecretMasker

TYPE_CHECKING = False  # typing is not imported at run time: every task start pays for imports
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "NOT_FOUND_ERRORS",
    "Session",
    "_read_frame",
    "active_session",
    "get_secret_by_name",
    "get_task_by_name_run",
    "log",
    "send_frame",
]

#: Host errors that mean "nothing by that name": the call returns ``None``.
NOT_FOUND_ERRORS = frozenset({"secret_not_found", "task_not_found"})


class Session:
    """The child's side of one conversation with a host.

    Args:
        channel: where frames go and replies come from.
        calls_allowed: ``False`` inside ``run done``, where no host answers.
        call_timeout: seconds to wait for each reply, or ``None`` for no limit.
    """

    def __init__(
        self,
        channel: Channel,
        *,
        calls_allowed: bool = True,
        call_timeout: float | None = None,
    ) -> None:
        self.channel = channel
        self.call_timeout = call_timeout
        self.masker = SecretMasker()
        #: Why calls raise at once, or ``None`` when a host answers them.
        self.no_calls: str | None = (
            None if calls_allowed else "no host answers calls inside `gust run done`"
        )
        self._call_lock = threading.Lock()
        # Replies still owed to calls that timed out: the host answers every call in order, so
        # the next that many replies belong to them, not to the call now waiting.
        self._owed = 0

    @property
    def calls_allowed(self) -> bool:
        """Whether a host answers calls in this session."""
        return self.no_calls is None

    def log(self, msg: str, level: str = "info") -> None:
        """Send one log line, secrets masked."""
        pattern = self.masker.pattern
        if pattern is not None:
            msg = pattern.sub(MASK, msg)
        self.channel.write_frame({"type": "log", "level": level, "msg": msg})

    def call(self, frame: dict[str, Any], what: str) -> Any:
        """Send a ``call`` frame and return the reply's ``data`` (see the module docstring)."""
        if self.no_calls is not None:
            raise NotInTaskError(f"{what} cannot be answered here: {self.no_calls}")
        with self._call_lock:
            self.channel.write_frame(frame)
            reply = self._await_reply(f"the reply to {what}")
        if reply["ok"] is True:
            return reply.get("data")
        error = reply.get("error")
        if error in NOT_FOUND_ERRORS:
            return None
        raise CallError(str(frame.get("op")), error)

    def _await_reply(self, what: str) -> dict[str, Any]:
        timeout = self.call_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                reply = self.channel.read_frame(remaining, what)
            except CallTimeoutError:
                self._owed += 1
                raise CallTimeoutError(
                    f"no answer within {timeout:g} s (GUST_CALL_TIMEOUT) while waiting for {what}"
                ) from None
            if "ok" not in reply:
                continue  # not a reply: ignored, as receivers ignore what they do not know
            if self._owed:
                self._owed -= 1  # the late answer to a call that timed out
                continue
            return reply

    def detach_after_fork(self) -> None:
        """Make this session safe in a forked child: logs to stderr, calls raise at once."""
        channel = self.channel
        if isinstance(channel, FdChannel):
            for fd in (channel.out_fd, channel.in_fd):
                if fd is not None:
                    # The child must not hold the host's pipes open after the parent is gone.
                    with contextlib.suppress(OSError):
                        os.close(fd)
        self.channel = StderrChannel()
        self._call_lock = threading.Lock()
        self.masker.after_fork()
        self.no_calls = "a process forked from the task has no host channel"


_session: Session | None = None
_fallback: Session | None = None
_fallback_lock = threading.Lock()


def activate(session: Session | None) -> None:
    """Make ``session`` the one the runtime API talks through (``None`` to clear)."""
    global _session
    _session = session


def active_session() -> Session | None:
    """The session of the running task or callback, if any."""
    return _session


def _legacy_session() -> Session:
    # Earlier releases wrote frames straight to stdout and read replies from stdin.
    global _fallback
    with _fallback_lock:
        if _fallback is None:
            _fallback = Session(FdChannel(sys.stdout.fileno(), sys.stdin.fileno()))
        return _fallback


def log(msg: Any, level: str = "info") -> None:
    """Send ``msg`` as a log line of the running task.

    Args:
        msg: the text; anything else is turned into text with ``str()``.
        level: ``debug``, ``info``, ``warning``, ``error`` or ``critical`` (any string is sent).
    """
    text = msg if isinstance(msg, str) else str(msg)
    level = level if isinstance(level, str) else str(level)
    session = _session
    if session is None:
        sys.stderr.write(f"[gust {level}] {text}\n")
        return
    session.log(text, level)


def get_secret_by_name(name: str) -> dict[str, Any] | None:
    """Ask the host for a secret.

    Returns:
        ``{"id", "name", "value_type", "value"}`` as the host sends it, or ``None`` when no
        secret has that name. Its value is masked in every later log and error of the process.

    Raises:
        CallError: the host answered with another error.
        HostGoneError: the host closed the channel.
        CallTimeoutError: no reply within ``GUST_CALL_TIMEOUT`` seconds.
        NotInTaskError: called outside a task run.
    """
    session = _require_session("get_secret_by_name")
    data = session.call(protocol.call_get_secret(name), f"get_secret_by_name({name!r})")
    if isinstance(data, dict) and "value" in data:
        value = data["value"]
        session.masker.register(value)
        if data.get("value_type") == "json" and isinstance(value, str):
            # Not JSON text after all: the whole string is registered already.
            with contextlib.suppress(ValueError):
                session.masker.register(json.loads(value))
    return data


def get_task_by_name_run(name: str, run_id: Any) -> dict[str, Any] | None:
    """Ask the host for a task of a run.

    Returns:
        ``{"id", "result"}`` as the host sends it (``result`` is the saved result), or ``None``
        when the run has no such task.

    Raises:
        CallError, HostGoneError, CallTimeoutError, NotInTaskError: as for
        :func:`get_secret_by_name`.
    """
    session = _require_session("get_task_by_name_run")
    return session.call(
        protocol.call_get_task(name, run_id), f"get_task_by_name_run({name!r}, {run_id!r})"
    )


def send_frame(payload: dict[str, Any]) -> None:
    """Write one raw frame to the host (kept for code written against earlier releases)."""
    (_session or _legacy_session()).channel.write_frame(payload)


def _read_frame() -> dict[str, Any]:
    """Read one raw frame from the host (kept for code written against earlier releases)."""
    session = _session or _legacy_session()
    return session.channel.read_frame(session.call_timeout, "a frame from the host")


def _detach_after_fork() -> None:
    if _session is not None:
        _session.detach_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_detach_after_fork)


def _require_session(op: str) -> Session:
    session = _session
    if session is None:
        raise NotInTaskError(
            f"{op} needs a host to answer it: run the task with `gust task run` "
            f"(or `python -m gust.harness`), not by calling it directly"
        )
    return session


def call_timeout_from_env(environ: os._Environ[str] | dict[str, str] = os.environ) -> float | None:
    """Read ``GUST_CALL_TIMEOUT`` (seconds); unset or empty means no limit.

    Raises:
        ValueError: the variable is set to something that is not a positive number.
    """
    raw = environ.get("GUST_CALL_TIMEOUT", "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"GUST_CALL_TIMEOUT must be a positive number of seconds, not {raw!r}")
    return value
