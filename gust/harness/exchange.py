"""The host's judgement of one child's frames: a pure state machine, no I/O.

Theory of operation (in the sans-IO style of h11): a host feeds :class:`Exchange` every frame it
decodes from a child (:meth:`Exchange.receive`) and every codec error
(:meth:`Exchange.receive_error`), and gets back events: :class:`Started`, :class:`Log`,
:class:`Call`, :class:`Trace`, :class:`Finished`, :class:`Note` (a rule broken in a way the host
survives, or a place where Gust would behave differently) and :class:`Violation` (the stream can
no longer be trusted: the host must end the child). The host answers each :class:`Call` through
:meth:`Exchange.reply`, which enforces one reply per call, in call order, and returns the bytes
to send. When the child has exited, :meth:`Exchange.conclude` turns what was seen, the exit
status and what the host did (a timeout, a cancel) into the one :class:`Verdict`. Hosts never
re-decide any of this: the harness's :class:`~gust.harness.host.TaskProcess` and the conformance
runner both drive this machine.

The rules (the protocol of :mod:`gust.protocol`, and Gust's adapter):

- ``start`` comes first and carries an integer pid (else :data:`START_NOT_FIRST` /
  :data:`BAD_START`); a callback (``run done``) sends none.
- ``log`` frames carry string ``msg`` and ``level`` (:data:`BAD_LOG`: Gust's logger breaks);
  Gust stores every line as info, which the first line at another level notes
  (:data:`GUST_LEVEL`);
  ``call`` frames are answered in order; a call where no host answers is :data:`NO_HOST`.
- an ``error`` frame's ``trace`` is a string (:data:`BAD_ERROR`); a ``result`` has ``ok`` true or
  false (:data:`BAD_RESULT`); ``ok:false`` without an ``error`` frame first is lost under Gust
  (:data:`RESULT_WITHOUT_ERROR`); a second result replaces the first
  (:data:`SECOND_RESULT`); anything else after the result is :data:`AFTER_RESULT`; an unknown
  ``type`` is :data:`UNKNOWN_TYPE` (ignored, as every receiver ignores it).
- a well-framed payload that does not decode (``bad_utf8``, ``bad_json``, ``not_object``) is
  dropped as Gust drops it (:data:`DROPPED_FRAME`); ``truncated`` and ``oversize`` leave the
  stream out of step: a :class:`Violation`, after which nothing more is read.
- the verdict follows Gust: exit status 0 **and** a result is that result; anything else is a
  failure that says why (exit status, protocol error, stderr tail).

Logs are kept in a bounded :class:`LogBook`: a task printing gigabytes costs the host a fixed
amount of memory, and the report says how much was left out.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

from gust import protocol
from gust._process import describe_exit

__all__ = [
    "AFTER_RESULT",
    "BAD_ERROR",
    "BAD_LOG",
    "BAD_RESULT",
    "BAD_START",
    "DROPPED_FRAME",
    "GUST_LEVEL",
    "HOST_NOTE",
    "NOTE_CODES",
    "NO_EXIT",
    "NO_HOST",
    "RESULT_WITHOUT_ERROR",
    "SECOND_RESULT",
    "START_NOT_FIRST",
    "TRACE_ONLY",
    "UNKNOWN_TYPE",
    "Call",
    "Event",
    "Exchange",
    "Finished",
    "Log",
    "LogBook",
    "Note",
    "Started",
    "Trace",
    "Verdict",
    "Violation",
]

START_NOT_FIRST: Final = "start_not_first"
BAD_START: Final = "bad_start"
BAD_LOG: Final = "bad_log"
NO_HOST: Final = "no_host"
BAD_ERROR: Final = "bad_error"
BAD_RESULT: Final = "bad_result"
RESULT_WITHOUT_ERROR: Final = "result_without_error"
SECOND_RESULT: Final = "second_result"
AFTER_RESULT: Final = "after_result"
UNKNOWN_TYPE: Final = "unknown_type"
DROPPED_FRAME: Final = "dropped_frame"
NO_EXIT: Final = "no_exit"
TRACE_ONLY: Final = "trace_only"
HOST_NOTE: Final = "host"
GUST_LEVEL: Final = "gust_level"
#: Every code a :class:`Note` may carry (the child broke a rule the host survives).
NOTE_CODES: Final = (
    START_NOT_FIRST,
    BAD_START,
    BAD_LOG,
    NO_HOST,
    BAD_ERROR,
    BAD_RESULT,
    RESULT_WITHOUT_ERROR,
    SECOND_RESULT,
    AFTER_RESULT,
    UNKNOWN_TYPE,
    DROPPED_FRAME,
    NO_EXIT,
    TRACE_ONLY,
    HOST_NOTE,
    GUST_LEVEL,
)
#: Codec errors after which the stream is out of step (a :class:`Violation`).
FATAL_CODES: Final = frozenset({"truncated", "oversize"})

_MAX_NOTES: Final = 100


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Started:
    """The child's ``start`` frame: ``pid`` is the process the host kills to cancel it."""

    pid: int


@dataclass(frozen=True, slots=True)
class Log:
    """A log line; ``t`` is the host's time of arrival (seconds since its origin)."""

    level: str
    msg: str
    t: float

    def entry(self) -> dict[str, Any]:
        """The report's form: ``{"t", "level", "msg"}``."""
        return {"t": self.t, "level": self.level, "msg": self.msg}


@dataclass(frozen=True, slots=True)
class Call:
    """A call the host must answer with :meth:`Exchange.reply` (``seq`` counts calls from 0)."""

    frame: dict[str, Any]
    seq: int

    @property
    def op(self) -> Any:
        """The call's ``op``, as sent."""
        return self.frame.get("op")


@dataclass(frozen=True, slots=True)
class Trace:
    """The ``error`` frame: what Gust's dashboard shows for the failure."""

    trace: str


@dataclass(frozen=True, slots=True)
class Finished:
    """A final ``result`` frame arrived (the verdict still waits for the exit status)."""

    ok: bool
    frame: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Note:
    """A rule the child broke that the host survives, or a place Gust would differ."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Violation:
    """The stream is out of step (``truncated``, ``oversize``): end the child now."""

    code: str
    message: str


Event = Started | Log | Call | Trace | Finished | Note | Violation


@dataclass
class Verdict:
    """How one child ended, all things considered.

    Attributes:
        status: ``ok``, ``error``, ``timeout`` or ``interrupted``.
        value: the task's value when ``ok`` (and when a timed-out task had sent it).
        error: ``None`` when ``ok``; else an object with at least ``message``.
        pid: the pid from ``start``, if any.
        notes: every :class:`Note` message, in order (capped at 100).
        protocol_error: ``{"code", "message"}`` of a fatal codec error, if any.
    """

    status: str
    value: Any = None
    error: dict[str, Any] | None = None
    pid: int | None = None
    notes: list[str] = field(default_factory=list)
    protocol_error: dict[str, str] | None = None


# -- bounded logs -----------------------------------------------------------------------------


class LogBook:
    """The logs a host keeps of one child, bounded in memory.

    The first lines are kept until half the budget (``max_lines`` lines or ``max_chars``
    characters) is spent, then a window of the last lines fills the other half; each message is
    cut to ``max_msg`` characters. :meth:`entries` puts a note where lines were left out.
    """

    def __init__(
        self, max_lines: int = 10_000, max_chars: int = 8 << 20, max_msg: int = 64 * 1024
    ) -> None:
        self.head: list[dict[str, Any]] = []
        self.tail: deque[dict[str, Any]] = deque()
        self._half_lines = max(1, max_lines // 2)
        self._half_chars = max(1, max_chars // 2)
        self._max_msg = max_msg
        self._head_chars = 0
        self._tail_chars = 0
        self._head_full = False
        self.dropped = 0
        self.dropped_chars = 0

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Keep ``entry`` (its ``msg`` cut if too long); return what is kept."""
        msg = entry["msg"]
        if len(msg) > self._max_msg:
            entry = {
                **entry,
                "msg": f"{msg[: self._max_msg]}… [{len(msg) - self._max_msg} more characters "
                "not kept by the host]",
            }
        size = len(entry["msg"])
        if not self._head_full:
            if len(self.head) < self._half_lines and self._head_chars + size <= self._half_chars:
                self.head.append(entry)
                self._head_chars += size
                return entry
            self._head_full = True
        self.tail.append(entry)
        self._tail_chars += size
        while self.tail and (
            len(self.tail) > self._half_lines or self._tail_chars > self._half_chars
        ):
            gone = self.tail.popleft()
            self._tail_chars -= len(gone["msg"])
            self.dropped += 1
            self.dropped_chars += len(gone["msg"])
        return entry

    def entries(self) -> list[dict[str, Any]]:
        """Every kept entry in order, with a note where entries were left out."""
        out = list(self.head)
        if self.dropped:
            t = self.tail[0]["t"] if self.tail else (out[-1]["t"] if out else 0.0)
            out.append(
                {
                    "t": t,
                    "level": "warning",
                    "msg": f"[gust harness] {self.dropped} log lines ({self.dropped_chars} "
                    "characters) left out here: the host keeps the first and the last lines",
                }
            )
        out += self.tail
        return out

    def __len__(self) -> int:
        return len(self.head) + len(self.tail)


# -- the machine ------------------------------------------------------------------------------


class Exchange:
    """The host side of one child's exchange (see the module docstring).

    Args:
        expect_result: ``True`` for ``task run`` (start, then a final result); ``False`` for
            ``run done``, judged by its exit status alone.
        answers_calls: whether this host answers calls (Gust answers none in ``run done``).
    """

    def __init__(self, *, expect_result: bool = True, answers_calls: bool = True) -> None:
        self.expect_result = expect_result
        self.answers_calls = answers_calls
        self.frames = 0
        self.pid: int | None = None
        self.trace: str | None = None
        self.result: dict[str, Any] | None = None
        self.after_result = 0
        self.violation: Violation | None = None
        self.notes: list[str] = []
        #: The code of every note, in order (not capped).
        self.note_codes: list[str] = []
        self._pending: deque[Call] = deque()
        self._calls = 0
        self._level_noted = False

    # -- input --

    def receive(self, frame: dict[str, Any], t: float = 0.0) -> list[Event]:
        """Judge one decoded frame; ``t`` is its time of arrival for logs.

        The shape of each message is :func:`gust.protocol.check_message`'s to decide; this
        machine decides what a host does with a frame that breaks it.
        """
        if self.violation is not None:
            return []
        self.frames += 1
        kind = frame.get("type")
        bad = protocol.check_message(frame)
        events: list[Event] = []
        if self.result is not None and kind != protocol.RESULT:
            self.after_result += 1
        if kind == protocol.START:
            if self.frames != 1:
                self._note(
                    events,
                    START_NOT_FIRST,
                    "the start frame is not the first frame: Gust cannot cancel the task before "
                    "it arrives",
                )
            if bad is None:
                self.pid = frame["pid"]
                events.append(Started(frame["pid"]))
            else:
                self._note(events, BAD_START, f"{bad}, got {frame.get('pid')!r}")
            return events
        if self.frames == 1 and self.expect_result:
            self._note(
                events,
                START_NOT_FIRST,
                f"the first frame is {kind!r}, not 'start': Gust cannot cancel the task until a "
                "start frame arrives",
            )
        if kind == protocol.LOG:
            events.append(self._log(frame, t, bad, events))
        elif kind == protocol.CALL:
            self._call(frame, events)
        elif kind == protocol.ERROR:
            trace = frame.get("trace")
            if bad is not None:
                self._note(events, BAD_ERROR, f"{bad}: it breaks Gust's worker")
            if not isinstance(trace, str):
                trace = json.dumps(trace)
            self.trace = trace
            events.append(Trace(trace))
        elif kind == protocol.RESULT:
            self._result(frame, bad, events)
        else:
            self._note(
                events,
                UNKNOWN_TYPE,
                f"frame of unknown type {kind!r} ignored (Gust logs it as unknown)",
            )
        return events

    def receive_error(self, error: protocol.RemoteProtocolError) -> list[Event]:
        """Judge a codec error: a dropped frame, or a :class:`Violation` that ends the reading."""
        if self.violation is not None:
            return []
        if error.code in FATAL_CODES:
            self.violation = Violation(error.code, str(error))
            return [self.violation]
        events: list[Event] = []
        self._note(
            events,
            DROPPED_FRAME,
            f"frame dropped, protocol error {error.code}: {error} (Gust drops it with a "
            "warning too)",
        )
        return events

    def note(self, message: str, code: str = HOST_NOTE) -> None:
        """Record a note of the host's own (an answer Gust would not give, a leftover process)."""
        self._note([], code, message)

    # -- output --

    def reply(self, call: Call, reply: dict[str, Any]) -> bytes:
        """The bytes answering ``call``: exactly one reply per call, in the order of the calls.

        Raises:
            LocalProtocolError: ``call`` is not the oldest unanswered call, or ``reply`` cannot
                be sent (not an object with a boolean ``ok``, or not strict JSON).
        """
        if not self._pending or self._pending[0] is not call:
            waiting = f"call {self._pending[0].seq}" if self._pending else "no call"
            raise protocol.LocalProtocolError(
                "reply_out_of_order", f"a reply to call {call.seq} while {waiting} waits for one"
            )
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise protocol.LocalProtocolError(
                "bad_reply", f"a reply must be an object with ok true or false, not {reply!r}"
            )
        data = protocol.encode_frame(reply)
        self._pending.popleft()
        return data

    @property
    def waiting_calls(self) -> list[Call]:
        """Calls not answered yet, oldest first."""
        return list(self._pending)

    # -- the verdict --

    def conclude(
        self,
        exit_code: int | None,
        *,
        stderr_tail: str = "",
        timed_out: float | None = None,
        how: str = "SIGTERM",
        cancelled: bool = False,
        interrupted: bool = False,
    ) -> Verdict:
        """The verdict once the child has exited (and its stdout ended or was abandoned).

        Args:
            exit_code: its exit status (negative: killed by that signal).
            stderr_tail: the end of its stderr, quoted in failures the host explains.
            timed_out: the timeout in seconds when the host ended it for taking too long.
            how: what the timeout sent (``"SIGTERM"`` or ``"SIGTERM, then SIGKILL"``).
            cancelled: the host killed it on request.
            interrupted: the host ended it (``how``) because the run was interrupted.
        """
        if self.after_result:
            self._note([], AFTER_RESULT, f"{self.after_result} frame(s) after the result frame")
        pe = None
        if self.violation is not None:
            pe = {"code": self.violation.code, "message": self.violation.message}
        out = Verdict(status="error", pid=self.pid, notes=self.notes, protocol_error=pe)

        def failure(message: str) -> dict[str, Any]:
            return {
                "message": message,
                "exit_code": exit_code,
                "protocol_error": pe,
                "stderr_tail": stderr_tail,
            }

        result = self.result
        if interrupted:
            out.status = "interrupted"
            out.error = failure(f"interrupted: its process group got {how}")
            if result is not None and result.get("ok") is False:
                out.error["task_error"] = result.get("error")
            return out
        if timed_out is not None:
            out.status = "timeout"
            out.error = failure(f"timed out after {timed_out:g} s; its process group got {how}")
            if result is not None and result.get("ok") is False:
                out.error["task_error"] = result.get("error")
            elif result is not None:
                out.value = _value_of(result)
                self._note(
                    [],
                    NO_EXIT,
                    "the task sent its result but did not exit: under Gust, which records an "
                    "outcome only when the process exits, this task would hang",
                )
            return out
        if cancelled:
            out.error = failure("cancelled: its process group was killed")
            return out
        if pe is not None:
            out.error = failure(
                f"protocol error {pe['code']}: {pe['message']}; {describe_exit(exit_code)}"
            )
            return out
        if exit_code != 0 and not self.expect_result:
            out.error = failure(f"{describe_exit(exit_code)}; its stderr says why")
            return out
        if exit_code != 0:
            said = "after its result frame" if result is not None else "without a result"
            out.error = failure(
                f"{describe_exit(exit_code)} {said} (Gust records port_exit: died with: "
                f"{exit_code})"
            )
            return out
        if not self.expect_result:
            out.status = "ok"
            return out
        if result is None:
            if self.trace is not None:
                self._note(
                    [], TRACE_ONLY, "no result frame, only an error frame (an older runtime?)"
                )
                out.error = {"message": self.trace.split("\n", 1)[0], "trace": self.trace}
                return out
            out.error = failure("exited with status 0 without a result frame")
            return out
        if result["ok"] is True:
            out.status = "ok"
            out.value = _value_of(result)
            return out
        error = result.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            out.error = dict(error)
        else:  # noted as the frame came (check_message)
            out.error = {"message": str(error)}
        if self.trace is not None:
            out.error.setdefault("trace", self.trace)
        return out

    # -- helpers --

    def _log(self, frame: dict[str, Any], t: float, bad: str | None, events: list[Event]) -> Log:
        msg, level = frame.get("msg"), frame.get("level", protocol.LOG_LEVELS[1])
        if bad is not None:
            harm = ": it breaks Gust's logger" if not isinstance(msg, str) else ""
            self._note(events, BAD_LOG, f"{bad} (msg {msg!r}, level {level!r}){harm}")
        if not isinstance(msg, str):
            msg = json.dumps(msg)
        if not isinstance(level, str):
            level = str(level)
        if level != "info" and not self._level_noted:
            self._level_noted = True
            self._note(
                events,
                GUST_LEVEL,
                f"a log line at level {level!r}: Gust stores every log line as info (it ignores "
                "the level)",
            )
        return Log(level, msg, t)

    def _call(self, frame: dict[str, Any], events: list[Event]) -> None:
        if not self.answers_calls:
            self._note(
                events,
                NO_HOST,
                f"a call of {frame.get('op')!r} where no host answers calls (Gust answers none "
                "in `run done`; the call raised NotInTaskError); no reply sent",
            )
            return
        # A malformed call is still the host's to answer (bad_call, unknown_op): see answers.
        call = Call(frame, self._calls)
        self._calls += 1
        self._pending.append(call)
        events.append(call)

    def _result(self, frame: dict[str, Any], bad: str | None, events: list[Event]) -> None:
        ok = frame.get("ok")
        if ok is not True and ok is not False:
            self._note(events, BAD_RESULT, f"{bad}, got {ok!r}: the frame is ignored")
            return
        if bad is not None:
            self._note(events, BAD_RESULT, f"{bad}; taken as far as it goes")
        if self.result is not None:
            self._note(events, SECOND_RESULT, "more than one result frame: the last one counts")
        if ok is False and self.trace is None:
            self._note(
                events,
                RESULT_WITHOUT_ERROR,
                "result ok:false without an error frame before it: Gust does not read it and "
                "records port_exit: died with: 0, losing the failure",
            )
        self.result = frame
        events.append(Finished(ok, frame))

    def _note(self, events: list[Event], code: str, message: str) -> None:
        self.note_codes.append(code)
        if len(self.notes) < _MAX_NOTES:
            self.notes.append(message)
        elif len(self.notes) == _MAX_NOTES:
            self.notes.append("more warnings dropped")
        events.append(Note(code, message))


def _value_of(result: dict[str, Any]) -> Any:
    data = result.get("data")
    return data.get("value") if isinstance(data, dict) else None
