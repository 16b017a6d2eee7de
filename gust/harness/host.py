"""The host side of one child: spawn it, read its frames, answer its calls, end it.

Theory of operation: :class:`TaskProcess` starts the child in a session of its own (so the child
and everything it spawns form one process group), with three pipes. One thread drains stderr
into a bounded tail (and, line by line, to an optional callback); one thread writes replies to
stdin from a queue, so a child that stops reading can never block the host; the calling thread
reads stdout through :class:`gust.protocol.FrameDecoder` with a select timeout, which is how the
per-task deadline is enforced. At the deadline the whole group gets SIGTERM, and SIGKILL after a
grace period. A fatal protocol error (``truncated``, ``oversize``) stops the reading at once and
SIGKILLs the group; an undecodable but well-framed payload is dropped with a warning, as Gust
drops it. If the child exits while something it left behind still holds its pipes open, the
leftovers are killed too, so the host never waits on a pipe that cannot close.

The outcome follows Gust's adapter (SPEC §1): exit status 0 and a recorded result is that
result (the final ``result`` frame is authoritative; a lone ``error`` frame from an older runtime
also counts); anything else is an error that carries the exit status, the protocol error and the
tail of stderr. Where Gust would lose or mangle information (a ``result ok:false`` without the
``error`` frame Gust reads, a frame Gust does not know, a log message that is not text) the
outcome gets a warning. With ``record=True`` the exchange is kept as an event list in wire
order, the input of the conformance recorder.
"""

from __future__ import annotations

import json
import os
import queue
import selectors
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from gust import protocol
from gust.harness.answers import Answer
from gust.harness.errors import UsageError

__all__ = [
    "DEFAULT_GRACE",
    "TaskOutcome",
    "TaskProcess",
    "callback_argv",
    "default_gust_cmd",
    "run_callback",
    "run_task",
    "split_gust_cmd",
    "task_argv",
]

#: Seconds between SIGTERM and SIGKILL when a task times out.
DEFAULT_GRACE: Final = 2.0
#: Seconds to wait for a child's pipes to close after it exited before killing its leftovers.
_DRAIN: Final = 0.5
_POLL: Final = 0.25
_READ_SIZE: Final = 1 << 16
_TAIL_BYTES: Final = 64 * 1024
_TAIL_LINES: Final = 20
_RECORD_STDERR_BYTES: Final = 1 << 20
_RECORD_RAW_BYTES: Final = 1 << 20
_MAX_WARNINGS: Final = 100

Answerer = Callable[[Mapping[str, Any]], "Answer | Mapping[str, Any]"]


def default_gust_cmd() -> list[str]:
    """How to start the runtime by default: this interpreter with ``-m gust``.

    With ``-P`` where Python has it (3.11+), so the working directory is never put ahead of
    the standard library (the runtime secures ``sys.path`` itself too: see
    :mod:`gust._importpath`).
    """
    safe = ["-P"] if sys.version_info >= (3, 11) else []
    return [sys.executable, *safe, "-m", "gust"]


def split_gust_cmd(text: str) -> list[str]:
    """Split a ``--gust-cmd`` value such as ``"uv run gust"`` the way a shell would.

    Raises:
        UsageError: the value is empty or its quoting is broken.
    """
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"--gust-cmd {text!r} cannot be split into words: {exc}") from None
    if not argv:
        raise UsageError("--gust-cmd must name a command, for example 'uv run gust'")
    return argv


def task_argv(
    gust_cmd: Sequence[str], file: str, dag: str, task: str, ctx: Mapping[str, Any]
) -> list[str]:
    """The command line Gust runs for one task (SPEC §1)."""
    ctx_json = protocol.dumps_strict(dict(ctx)).decode("utf-8")
    return [
        *gust_cmd,
        "task",
        "run",
        "--file",
        file,
        "--dag",
        dag,
        "--task",
        task,
        "--ctx-json",
        ctx_json,
    ]


def callback_argv(
    gust_cmd: Sequence[str], file: str, dag_name: str, fn_name: str, status: str, run_id: int
) -> list[str]:
    """The command line Gust runs for ``on_finished_callback`` (SPEC §1)."""
    return [
        *gust_cmd,
        "run",
        "done",
        "--file",
        file,
        "--dag",
        dag_name,
        "--fn-name",
        fn_name,
        "--status",
        status,
        "--run-id",
        str(run_id),
    ]


@dataclass
class TaskOutcome:
    """What happened to one child.

    Attributes:
        status: ``ok``, ``error`` or ``timeout``.
        value: the task's value when ``ok`` (``None`` otherwise, and for callbacks).
        error: ``None`` when ``ok``; else an object with at least ``message``: the child's own
            ``result`` error, or the harness's account (``exit_code``, ``protocol_error``,
            ``stderr_tail``).
        logs: ``{"t", "level", "msg"}`` per log frame, ``t`` in seconds since ``t0``.
        exit_code: the exit status; negative when a signal ended the child (``-9``: SIGKILL).
        warnings: where Gust would behave differently, or the child broke a rule.
        events: the exchange in wire order when recording, else ``None``.
        stderr: everything the child wrote to stderr when recording (capped at 1 MiB).
    """

    status: str
    value: Any = None
    error: dict[str, Any] | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None
    duration_s: float = 0.0
    pid: int | None = None
    warnings: list[str] = field(default_factory=list)
    stderr_tail: str = ""
    protocol_error: dict[str, str] | None = None
    events: list[dict[str, Any]] | None = None
    stderr: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the child succeeded."""
        return self.status == "ok"


class _StderrDrain(threading.Thread):
    """Reads a child's stderr to the end, keeping a bounded tail and calling back per line."""

    def __init__(self, fd: int, on_line: Callable[[str], None] | None, keep_all: bool) -> None:
        super().__init__(name="gust-harness-stderr", daemon=True)
        self.fd = fd
        self.on_line = on_line
        self.tail = bytearray()
        self.all: bytearray | None = bytearray() if keep_all else None
        self._partial = b""

    def run(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, _READ_SIZE)
            except OSError:
                chunk = b""
            if not chunk:
                break
            self.tail += chunk
            if len(self.tail) > _TAIL_BYTES:
                del self.tail[: len(self.tail) - _TAIL_BYTES]
            if self.all is not None and len(self.all) < _RECORD_STDERR_BYTES:
                self.all += chunk[: _RECORD_STDERR_BYTES - len(self.all)]
            if self.on_line is not None:
                *lines, self._partial = (self._partial + chunk).split(b"\n")
                for line in lines:
                    self.on_line(line.decode("utf-8", "replace"))
                if len(self._partial) > _TAIL_BYTES:
                    self.on_line(self._partial.decode("utf-8", "replace"))
                    self._partial = b""
        if self.on_line is not None and self._partial:
            self.on_line(self._partial.decode("utf-8", "replace"))

    def tail_text(self) -> str:
        text = bytes(self.tail).decode("utf-8", "replace")
        return "\n".join(text.rstrip("\n").split("\n")[-_TAIL_LINES:])


class _ReplyWriter(threading.Thread):
    """Writes queued bytes to the child's stdin; ``None`` closes it. Never blocks the reader."""

    def __init__(self, fd: int) -> None:
        super().__init__(name="gust-harness-stdin", daemon=True)
        self.fd = fd
        self.queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.broken = False

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
        try:
            os.close(self.fd)
        except OSError:
            self.broken = True


class TaskProcess:
    """One child speaking the gust protocol: ``gust task run`` or ``gust run done``.

    Args:
        argv: the full command line.
        cwd: the working directory (Gust uses the DAGs folder).
        env: the environment (default: this process's, plus ``UV_WORKING_DIR=cwd`` as Gust sets).
        answer: turns a ``call`` frame into an :class:`~gust.harness.answers.Answer` (or a
            plain reply dict); ``None`` means no host answers calls here (a callback).
        timeout: seconds before the process group gets SIGTERM (``None``: no limit).
        grace: seconds between SIGTERM and SIGKILL.
        max_frame_size: the largest frame accepted; a larger header is a fatal ``oversize``.
        expect_result: ``True`` for a task; ``False`` for a callback, judged by exit status.
        on_log: called with each log entry as it arrives (from the reading thread).
        on_stderr: called with each stderr line as it arrives (from another thread).
        record: keep the exchange as :attr:`TaskOutcome.events` and the full stderr.
        t0: the ``time.monotonic()`` origin of log times (default: when the child starts).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        answer: Answerer | None = None,
        timeout: float | None = None,
        grace: float = DEFAULT_GRACE,
        max_frame_size: int = protocol.DEFAULT_MAX_FRAME_SIZE,
        expect_result: bool = True,
        on_log: Callable[[dict[str, Any]], None] | None = None,
        on_stderr: Callable[[str], None] | None = None,
        record: bool = False,
        t0: float | None = None,
    ) -> None:
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if not grace >= 0:
            raise ValueError(f"grace must be zero or more seconds, not {grace!r}")
        self.argv = list(argv)
        self.cwd = cwd
        self.env = dict(os.environ if env is None else env)
        if env is None and cwd is not None:
            self.env["UV_WORKING_DIR"] = cwd
        self.answer = answer
        self.timeout = timeout
        self.grace = grace
        self.max_frame_size = max_frame_size
        self.expect_result = expect_result
        self.on_log = on_log
        self.on_stderr = on_stderr
        self.record = record
        self.t0 = t0
        self._cancel = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        # Per-run state, reset by run().
        self._warnings: list[str] = []
        self._logs: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] | None = None
        self._pid: int | None = None
        self._result: dict[str, Any] | None = None
        self._trace: str | None = None
        self._frames = 0
        self._frames_after_result = 0
        self._t0 = 0.0

    # -- control from other threads --

    def cancel(self) -> None:
        """Kill the child's process group now (from any thread); the outcome is an error."""
        self._cancel.set()
        with self._lock:
            if self._proc is not None:
                _killpg(self._proc.pid, signal.SIGKILL)

    # -- running --

    def run(self) -> TaskOutcome:
        """Start the child, serve it to the end, and say how it went. Never raises for a bad
        child; raises only if ``answer`` or a callback raises (after killing the child)."""
        self._warnings, self._logs, self._pid = [], [], None
        self._result, self._trace, self._frames, self._frames_after_result = None, None, 0, 0
        self._events = [] if self.record else None
        started = time.monotonic()
        self._t0 = started if self.t0 is None else self.t0
        try:
            with self._lock:
                if self._cancel.is_set():
                    return self._fail_to_start(started, "cancelled before it started")
                self._proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    cwd=self.cwd,
                    env=self.env,
                    start_new_session=True,
                    bufsize=0,
                )
        except OSError as exc:
            return self._fail_to_start(started, f"cannot start {self.argv[0]!r}: {exc}")
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        drain = _StderrDrain(proc.stderr.fileno(), self.on_stderr, self.record)
        writer = _ReplyWriter(os.dup(proc.stdin.fileno()))
        proc.stdin.close()
        drain.start()
        writer.start()
        state = _ReadState()
        try:
            self._serve(proc, writer, state)
        finally:
            if proc.poll() is None or state.timed_out or state.cancelled or state.protocol_error:
                # Whatever is left of a group we gave up on goes, grandchildren included.
                _killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            with self._lock:
                self._proc = None  # reaped: cancel() must not signal a group id reused later
            writer.queue.put(None)
            if self._events is not None:
                self._events.append({"dir": "h2c", "eof": True})
            drain.join(_DRAIN)
            if drain.is_alive():
                self._warn("processes left behind by the child kept its stderr open; killed them")
                _killpg(proc.pid, signal.SIGKILL)
                drain.join(_DRAIN)
            writer.join(_DRAIN)
            proc.stdout.close()
            if not drain.is_alive():
                proc.stderr.close()
        return self._outcome(proc, state, drain, time.monotonic() - started)

    def _fail_to_start(self, started: float, message: str) -> TaskOutcome:
        return TaskOutcome(
            status="error",
            error={"message": message},
            duration_s=time.monotonic() - started,
            events=self._events,
            stderr="" if self.record else None,
        )

    def _serve(self, proc: subprocess.Popen[bytes], writer: _ReplyWriter, st: _ReadState) -> None:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        decoder = protocol.FrameDecoder(self.max_frame_size)
        mirror = bytearray() if self.record else None
        selector = selectors.DefaultSelector()
        selector.register(fd, selectors.EVENT_READ)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        kill_at: float | None = None
        exited_at: float | None = None
        reading = True
        try:
            while True:
                now = time.monotonic()
                if self._cancel.is_set() and not st.cancelled:
                    st.cancelled = True
                    _killpg(proc.pid, signal.SIGKILL)
                if deadline is not None and now >= deadline and not st.timed_out:
                    st.timed_out = True
                    _killpg(proc.pid, signal.SIGTERM)
                    kill_at = now + self.grace
                if kill_at is not None and now >= kill_at and not st.hard_killed:
                    st.hard_killed = True
                    _killpg(proc.pid, signal.SIGKILL)
                wait = _POLL
                for moment in (deadline if not st.timed_out else None, kill_at):
                    if moment is not None and not st.hard_killed:
                        wait = max(0.0, min(wait, moment - now))
                if not reading:
                    try:
                        proc.wait(wait)
                        return
                    except subprocess.TimeoutExpired:
                        continue
                if selector.select(wait):
                    try:
                        chunk = os.read(fd, _READ_SIZE)
                    except OSError:
                        chunk = b""
                    if chunk:
                        if mirror is not None:
                            mirror += chunk
                        if not self._take(decoder, chunk, mirror, writer, st):
                            _killpg(proc.pid, signal.SIGKILL)
                            reading = False
                        continue
                    reading = False
                    self._end_of_output(decoder, mirror, st)
                    continue
                if proc.poll() is not None:
                    if exited_at is None:
                        exited_at = now
                    elif now - exited_at >= _DRAIN:
                        self._warn(
                            "the child exited but processes it left behind kept its stdout "
                            "open; killed them"
                        )
                        _killpg(proc.pid, signal.SIGKILL)
                        reading = False
                        self._end_of_output(decoder, mirror, st)
        finally:
            selector.close()

    def _end_of_output(
        self, decoder: protocol.FrameDecoder, mirror: bytearray | None, st: _ReadState
    ) -> None:
        if st.protocol_error is not None:
            return
        try:
            decoder.eof()
        except protocol.RemoteProtocolError as exc:
            st.protocol_error = {"code": exc.code, "message": str(exc)}
            self._record_raw(mirror, len(mirror) if mirror is not None else 0)

    def _take(
        self,
        decoder: protocol.FrameDecoder,
        chunk: bytes,
        mirror: bytearray | None,
        writer: _ReplyWriter,
        st: _ReadState,
    ) -> bool:
        """Feed bytes, handle every whole frame; ``False`` on a fatal protocol error."""
        decoder.feed(chunk)
        while True:
            try:
                frame = decoder.next_frame()
            except protocol.RemoteProtocolError as exc:
                if exc.code in ("truncated", "oversize"):
                    st.protocol_error = {"code": exc.code, "message": str(exc)}
                    self._record_raw(mirror, len(mirror) if mirror is not None else 0)
                    return False
                self._record_raw(mirror, _consumed(mirror, decoder))
                self._warn(
                    f"frame dropped, protocol error {exc.code}: {exc} (Gust drops it with a "
                    "warning too)"
                )
                continue
            if frame is None:
                return True
            if mirror is not None:
                del mirror[: _consumed(mirror, decoder)]
            if self._events is not None:
                self._events.append({"dir": "c2h", "frame": frame})
            self._handle(frame, writer)

    def _record_raw(self, mirror: bytearray | None, size: int) -> None:
        if mirror is None:
            return
        assert self._events is not None
        self._events.append(
            {"dir": "c2h", "raw": bytes(mirror[: min(size, _RECORD_RAW_BYTES)]).hex()}
        )
        del mirror[:size]

    # -- frames --

    def _handle(self, frame: dict[str, Any], writer: _ReplyWriter) -> None:
        kind = frame.get("type")
        self._frames += 1
        if self._result is not None and kind != "result":
            self._frames_after_result += 1
        if kind == "start":
            if self._frames != 1:
                self._warn(
                    "the start frame is not the first frame: Gust cannot cancel the task "
                    "before it arrives"
                )
            pid = frame.get("pid")
            if isinstance(pid, int) and not isinstance(pid, bool):
                self._pid = pid
            else:
                self._warn(f"start frame without an integer pid: {frame.get('pid')!r}")
            return
        if self._frames == 1 and self.expect_result:
            self._warn(
                f"the first frame is {kind!r}, not 'start': Gust cannot cancel the task "
                "until a start frame arrives"
            )
        if kind == "log":
            self._log(frame)
        elif kind == "call":
            self._call(frame, writer)
        elif kind == "error":
            trace = frame.get("trace")
            if not isinstance(trace, str):
                self._warn("error frame whose trace is not a string: it breaks Gust's worker")
                trace = json.dumps(trace)
            self._trace = trace
        elif kind == "result":
            self._take_result(frame)
        else:
            self._warn(f"frame of unknown type {kind!r} ignored (Gust logs it as unknown)")

    def _log(self, frame: dict[str, Any]) -> None:
        msg = frame.get("msg")
        if not isinstance(msg, str):
            self._warn(f"log frame whose msg is not a string ({msg!r}): it breaks Gust's logger")
            msg = json.dumps(msg)
        level = frame.get("level", "info")
        if not isinstance(level, str):
            self._warn(f"log frame whose level is not a string: {level!r}")
            level = str(level)
        entry = {"t": round(time.monotonic() - self._t0, 3), "level": level, "msg": msg}
        self._logs.append(entry)
        if self.on_log is not None:
            self.on_log(entry)

    def _call(self, frame: dict[str, Any], writer: _ReplyWriter) -> None:
        if self.answer is None:
            self._warn(f"call {frame.get('op')!r} where no host answers calls; no reply sent")
            return
        answer = self.answer(frame)
        if isinstance(answer, Answer):
            reply, warning = answer.reply, answer.warning
        else:
            reply, warning = dict(answer), None
        if warning:
            self._warn(warning)
        if self._events is not None:
            self._events.append({"dir": "h2c", "frame": reply})
        writer.queue.put(protocol.encode_frame(reply))

    def _take_result(self, frame: dict[str, Any]) -> None:
        ok = frame.get("ok")
        if ok is not True and ok is not False:
            self._warn(f"result frame whose ok is not true or false ({ok!r}) ignored")
            return
        if self._result is not None:
            self._warn("more than one result frame: the last one counts")
        if ok is False and self._trace is None:
            self._warn(
                "result ok:false without an error frame before it: Gust does not read "
                "it and records port_exit: died with: 0, losing the failure"
            )
        self._result = frame

    def _warn(self, message: str) -> None:
        if len(self._warnings) < _MAX_WARNINGS:
            self._warnings.append(message)
        elif len(self._warnings) == _MAX_WARNINGS:
            self._warnings.append("more warnings dropped")

    # -- outcome --

    def _outcome(
        self, proc: subprocess.Popen[bytes], st: _ReadState, drain: _StderrDrain, duration: float
    ) -> TaskOutcome:
        code = proc.returncode
        tail = drain.tail_text()
        if self._frames_after_result:
            self._warn(f"{self._frames_after_result} frame(s) after the result frame")
        out = TaskOutcome(
            status="error",
            logs=self._logs,
            exit_code=code,
            duration_s=duration,
            pid=self._pid,
            warnings=self._warnings,
            stderr_tail=tail,
            protocol_error=st.protocol_error,
            events=self._events,
            stderr=None if drain.all is None else bytes(drain.all).decode("utf-8", "replace"),
        )
        result = self._result
        if st.timed_out:
            how = "SIGTERM, then SIGKILL" if st.hard_killed else "SIGTERM"
            out.status = "timeout"
            out.error = self._harness_error(
                f"timed out after {self.timeout:g} s; its process group got {how}", out
            )
            if result is not None and result.get("ok") is False:
                out.error["task_error"] = result.get("error")
            return out
        if st.cancelled:
            out.error = self._harness_error("cancelled: its process group was killed", out)
            return out
        if st.protocol_error is not None:
            pe = st.protocol_error
            out.error = self._harness_error(
                f"protocol error {pe['code']}: {pe['message']}; {_ended(code)}", out
            )
            return out
        if code != 0 and not self.expect_result:
            out.error = self._harness_error(f"{_ended(code)}; its stderr says why", out)
            return out
        if code != 0:
            said = "after its result frame" if result is not None else "without a result"
            out.error = self._harness_error(
                f"{_ended(code)} {said} (Gust records port_exit: died with: {code})", out
            )
            return out
        if not self.expect_result:
            out.status = "ok"
            return out
        if result is None:
            if self._trace is not None:
                self._warn("no result frame, only an error frame (an older runtime?)")
                out.error = {"message": self._trace.split("\n", 1)[0], "trace": self._trace}
                return out
            out.error = self._harness_error("exited with status 0 without a result frame", out)
            return out
        if result["ok"] is True:
            data = result.get("data")
            if not isinstance(data, dict) or "value" not in data:
                self._warn('result ok:true without "data": {"value": ...}; the value is null')
            out.status = "ok"
            out.value = data.get("value") if isinstance(data, dict) else None
            return out
        error = result.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            out.error = dict(error)
        else:
            self._warn(f"result ok:false whose error is not an object with a message: {error!r}")
            out.error = {"message": str(error)}
        if self._trace is not None:
            out.error.setdefault("trace", self._trace)
        return out

    @staticmethod
    def _harness_error(message: str, out: TaskOutcome) -> dict[str, Any]:
        return {
            "message": message,
            "exit_code": out.exit_code,
            "protocol_error": out.protocol_error,
            "stderr_tail": out.stderr_tail,
        }


@dataclass
class _ReadState:
    timed_out: bool = False
    hard_killed: bool = False
    cancelled: bool = False
    protocol_error: dict[str, str] | None = None


def _consumed(mirror: bytearray | None, decoder: protocol.FrameDecoder) -> int:
    return 0 if mirror is None else len(mirror) - decoder.buffered


def _ended(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return  # the group is already gone


def run_task(
    file: str,
    dag: str,
    task: str,
    *,
    run_id: int = 1,
    ctx: Mapping[str, Any] | None = None,
    answer: Answerer | None = None,
    gust_cmd: Sequence[str] | None = None,
    cwd: str | None = None,
    **options: Any,
) -> TaskOutcome:
    """Run one task of ``file`` as Gust would, and return its outcome.

    Args:
        file: the DAG file to run (as given: unlike :func:`~gust.harness.run.run_dag`, no
            temp copy is made).
        dag: the DAG class name (parse output's ``mod``).
        ctx: the task context (default ``{"run_id": run_id}``).
        answer: answers calls (default: an empty store, so every lookup misses).
        gust_cmd: how to start the runtime (default :func:`default_gust_cmd`).
        cwd: working directory (default: the file's folder, as Gust uses the DAGs folder).
        options: passed to :class:`TaskProcess` (``timeout``, ``grace``, ``record``, ...).
    """
    if answer is None:
        from gust.harness.answers import CallAnswerer, RunTasks
        from gust.harness.store import Store

        answer = CallAnswerer(Store(), run_id, RunTasks())
    path = os.path.abspath(file)
    argv = task_argv(gust_cmd or default_gust_cmd(), path, dag, task, ctx or {"run_id": run_id})
    workdir = cwd if cwd is not None else os.path.dirname(path)
    return TaskProcess(argv, cwd=workdir, answer=answer, **options).run()


def run_callback(
    file: str,
    dag_name: str,
    fn_name: str,
    status: str,
    run_id: int,
    *,
    gust_cmd: Sequence[str] | None = None,
    cwd: str | None = None,
    **options: Any,
) -> TaskOutcome:
    """Run ``gust run done`` as Gust does after a run; ``ok`` means exit status 0.

    Args:
        dag_name: what Gust passes as ``--dag``: the original file's stem.
        options: passed to :class:`TaskProcess` (``timeout``, ``on_log``, ...).
    """
    path = os.path.abspath(file)
    argv = callback_argv(gust_cmd or default_gust_cmd(), path, dag_name, fn_name, status, run_id)
    workdir = cwd if cwd is not None else os.path.dirname(path)
    return TaskProcess(argv, cwd=workdir, answer=None, expect_result=False, **options).run()
