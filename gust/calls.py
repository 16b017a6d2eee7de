"""The runtime API a task uses: ``log``, ``get_secret_by_name``, ``get_task_by_name_run``.

These functions talk to the host through the active :class:`Session`, which ``gust task run``
and ``gust run done`` set up. A session owns the channel, the secret masker, the call lock and
the child's turn rules (:class:`gust.protocol.ChildState`): calls from several threads are
serialised (one call in flight, its reply matched to it), while logs only take the channel's
write lock, so logging never waits behind a slow call.

Replies carry no call id, so they are matched by order, and a call whose caller gave up (a
``GUST_CALL_TIMEOUT``, or an exception raised by a signal handler while it waited) still has
its reply coming: that late reply is recognised and skipped, never handed to the next call.
Before each call the session takes in whatever the host has already sent: a reply beyond the
calls made (one when no call was waiting, or a second reply to one call) is a protocol error.
That call raises :class:`~gust.errors.HostProtocolError`, and so does every later call of the
process, since no reply can be trusted any more; logs still go out.

A process forked from the task (``multiprocessing``) detaches its copy of the session: its logs
go to stderr as text and its calls raise, so it cannot write into the parent's frame stream.
Outside a session (for example when a DAG author calls a task method in a unit test), ``log``
writes a plain line to stderr and the calls raise :class:`~gust.errors.NotInTaskError`.
``send_frame`` and ``_read_frame`` are kept for code written against earlier releases; without a
session they use the process's own stdout and stdin as those releases did.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

from gust import protocol
from gust._channel import Channel, FdChannel, StderrChannel
from gust.errors import (
    CallError,
    CallTimeoutError,
    GustError,
    HostGoneError,
    HostProtocolError,
    LogLevelError,
    NotInTaskError,
)
from gust.masking import SecretMasker

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

#: Host errors that mean "nothing by that name": the call returns ``None`` (defined in
#: :mod:`gust.protocol`; kept here for code that imported it from this module).
NOT_FOUND_ERRORS = protocol.NOT_FOUND_ERRORS

_LEVELS = frozenset(protocol.LOG_LEVELS)
_MAX_TEXT = protocol.MAX_TEXT
_encode_frame = protocol.encode_frame
_log_frame = protocol.log_frame


class Session:
    """The child's side of one conversation with a host.

    Args:
        channel: where frames go and replies come from.
        calls_allowed: ``False`` inside ``run done``, where no host answers.
        call_timeout: seconds to wait for each reply, or ``None`` for no limit.
        sends_start: the conversation opens with a ``start`` frame (``gust task run``): no
            other frame may come before :meth:`send_start`.
    """

    def __init__(
        self,
        channel: Channel,
        *,
        calls_allowed: bool = True,
        call_timeout: float | None = None,
        sends_start: bool = False,
    ) -> None:
        self.channel = channel
        self.call_timeout = call_timeout
        self.masker = SecretMasker()
        self.state = protocol.ChildState(started=not sends_start)
        #: Why calls raise at once, or ``None`` when a host answers them.
        self.no_calls: str | None = (
            None if calls_allowed else "no host answers calls inside `gust run done`"
        )
        #: Set once the host broke the reply order: every later call raises it.
        self.broken: str | None = None
        #: Inside ``run done`` a refused call still goes out as a frame, unanswered (Gust
        #: ignores the callback's stdout; the harness notes the call where the author looks).
        self.announce_refused_calls = not calls_allowed
        self._call_lock = threading.Lock()

    @property
    def calls_allowed(self) -> bool:
        """Whether a host answers calls in this session."""
        return self.no_calls is None

    def clean(self, text: str) -> str:
        """``text`` with secrets masked and cut to :data:`gust.protocol.MAX_TEXT` characters."""
        masker = self.masker
        if len(text) > protocol.MAX_TEXT:
            size = len(text)
            # Mask a head that holds every secret starting before the cut, then drop its last
            # `longest` characters: a secret sliced in two by the head's end sits there unmasked
            # (masking may have shrunk the head below the cut, so cap_text would keep it).
            longest = masker.longest
            head = masker.mask(text[: protocol.MAX_TEXT + longest])[: -longest or None]
            return protocol.cap_text(head, size=size)
        pattern = masker.pattern
        return text if pattern is None else pattern.sub("***", text)

    def log(self, msg: str, level: str = "info") -> None:
        """Send one log line, secrets masked, cut to :data:`gust.protocol.MAX_TEXT`.

        After the final frame, lines are dropped: the outcome is settled.
        """
        if self.masker.pattern is not None or len(msg) > _MAX_TEXT:
            msg = self.clean(msg)
        try:
            self.channel.write_bytes(_encode_frame(_log_frame(msg, level)))
        except HostGoneError:
            if self.state.finished:
                return  # a thread the task left, logging after the result: nowhere to go
            raise

    def send_start(self, pid: int) -> None:
        """Send the ``start`` frame (first of all)."""
        self.state.send(protocol.START)
        self.channel.write_frame(protocol.start_frame(pid))

    def write_final(self, frames: list[tuple[str, bytes]]) -> None:
        """Write the last frames (an optional ``error``, then the ``result``), each given as
        ``(type, encoded bytes)``, under the turn rules; nothing can be written after them.

        Raises:
            LocalProtocolError: the frames break the turn rules.
            HostGoneError: as for :meth:`gust._channel.Channel.write_final`.
        """
        for kind, _ in frames:
            self.state.send(kind)
        self.channel.write_final([data for _, data in frames])

    def call(self, frame: dict[str, Any], what: str) -> Any:
        """Send a ``call`` frame and return the reply's ``data`` (see the module docstring).

        Raises:
            NotInTaskError, HostGoneError, CallTimeoutError, HostProtocolError, CallError.
        """
        if self.no_calls is not None:
            if self.announce_refused_calls:
                with contextlib.suppress(GustError):  # stdout gone: the error says it all
                    self.channel.write_frame(frame)
            raise NotInTaskError(
                f"{what} cannot be answered here: {self.no_calls}", op=frame.get("op")
            )
        data = protocol.encode_frame(frame)
        op = str(frame.get("op"))
        with self._call_lock:
            if self.broken is not None:
                raise HostProtocolError(f"{what} cannot be made: {self.broken}", op=op)
            channel = self.channel
            self._take_replies(None, what, op, waiting=False)  # what came unasked
            channel.enter()
            try:
                self.state.send(protocol.CALL)
                channel.write_bytes(data)
            finally:
                channel.leave()
            reply = self._take_replies(self.call_timeout, what, op, waiting=True)
        if reply.get("ok") is True:
            return reply.get("data")
        error = reply.get("error")
        if error in protocol.NOT_FOUND_ERRORS:
            return None
        raise CallError.refused(op, error)

    def _take_replies(
        self, timeout: float | None, call: str, op: str, *, waiting: bool
    ) -> dict[str, Any]:
        """Take in frames until the reply to the call just sent; skip late replies.

        With ``waiting`` false (before a call is sent), take in only what has already arrived
        and return ``{}``: a reply beyond the calls made is then found out.
        """
        channel = self.channel
        state = self.state
        what = f"the reply to {call}"
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            answer = None
            channel.enter()
            try:
                frame = channel.next_buffered()
                if frame is not None and "ok" in frame:  # a reply, whatever its type
                    try:
                        if state.receive_reply() and waiting:
                            answer = frame
                    except protocol.RemoteProtocolError as exc:
                        self.broken = f"the host broke the protocol: {exc}"
                        raise HostProtocolError(
                            f"{call} cannot be made: {self.broken}", op=op
                        ) from None
            finally:
                channel.leave()
            if answer is not None:
                return answer
            if frame is not None:
                continue  # not a reply (ignored), or the late reply of a call given up on
            if not waiting:
                try:
                    if not channel.fill(0, what):
                        return {}
                except HostGoneError:
                    return {}  # the call goes out, and its wait says the host is gone
                continue
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not channel.fill(remaining, what):
                raise CallTimeoutError(
                    f"no answer within {timeout:g} s (GUST_CALL_TIMEOUT) while waiting for {what}",
                    op=op,
                )

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
        self.announce_refused_calls = False


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
        level: ``debug``, ``info``, ``warning``, ``error`` or ``critical``, in any case.

    Raises:
        LogLevelError: ``level`` is none of those (a ``ValueError``).
    """
    if type(level) is not str or level not in _LEVELS:  # an unhashable level is refused too
        level = _check_level(level)
    text = msg if isinstance(msg, str) else str(msg)
    session = _session
    if session is None:
        sys.stderr.write(f"[gust {level}] {text}\n")
        return
    session.log(text, level)


def _check_level(level: Any) -> str:
    name = level.lower() if isinstance(level, str) else None
    if name not in _LEVELS:
        raise LogLevelError(
            f"log level must be one of {', '.join(protocol.LOG_LEVELS)}, not {level!r}"
        )
    return name


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
    _check_name(name, "get_secret_by_name")
    session = _require_session("get_secret_by_name")
    data = session.call(protocol.call_get_secret(name), f"get_secret_by_name({name!r})")
    if isinstance(data, dict) and "value" in data:
        # Every string of the value, and of JSON text inside it (see gust.masking).
        session.masker.register(data["value"])
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
    _check_name(name, "get_task_by_name_run")
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


def _check_name(name: Any, op: str) -> None:
    if not isinstance(name, str):
        raise CallError(f"{op}() takes the name as a str, not {type(name).__name__}", op=op)
    if len(name) > protocol.MAX_TEXT:
        raise CallError(
            f"{op}() name of {len(name)} characters is over the limit of {protocol.MAX_TEXT}",
            op=op,
        )


def _require_session(op: str) -> Session:
    session = _session
    if session is None:
        raise NotInTaskError(
            f"{op} needs a host to answer it: run the task with `gust task run` "
            f"(or `python -m gust.harness`), not by calling it directly",
            op=op,
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
