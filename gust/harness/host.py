"""The host side of one child: spawn it, read its frames, answer its calls, end it.

Theory of operation: :class:`TaskProcess` is thin glue between the host's process helpers
(:mod:`gust._process`: a child in a session of its own, a reader with deadlines, a thread that
writes replies so a child that stops reading can never block the host, a thread that drains
stderr into a bounded tail) and the pure judgement of the exchange
(:class:`gust.harness.exchange.Exchange`: which frame may come when, what is a protocol
violation, and the verdict). The calling thread reads stdout and enforces the per-attempt
deadline: at the deadline the whole group gets SIGTERM, and SIGKILL ``grace`` seconds later. A
fatal protocol error (``truncated``, ``oversize``) stops the reading at once and SIGKILLs the
group; an undecodable but well-framed payload is dropped with a warning, as Gust drops it. If
the child exits while something it left behind still holds its pipes open, or leaves processes
running at all (in its group, or escaped with ``setsid``), they are killed and the outcome says
so; what cannot be killed is reported as a warning.

The outcome follows Gust's adapter: exit status 0 and a recorded result is that
result; anything else is an error that carries the exit status, the protocol error and the tail
of stderr. Every text the host keeps or shows (log lines, stderr, errors, warnings) goes through
``mask`` (the run's secret masker), so a secret the task leaks on any stream stays hidden.
Logs are kept in a bounded :class:`~gust.harness.exchange.LogBook`. With ``record=True`` the
exchange is kept as an event list in wire order, the input of the conformance recorder.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from gust import _process, protocol
from gust.harness import exchange as ex
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
_TAIL_LINES: Final = 20
_RECORD_STDERR_BYTES: Final = 1 << 20
_RECORD_RAW_BYTES: Final = 1 << 20

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
    """The command line Gust runs for one task."""
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
    """The command line Gust runs for ``on_finished_callback``."""
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
        status: ``ok``, ``error``, ``timeout`` or ``interrupted``.
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
        mask: hides secrets in every text the host keeps or shows (default: nothing hidden).
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
        mask: Callable[[str], str] | None = None,
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
        self.mask: Callable[[str], str] = mask if mask is not None else _unmasked
        self._cancel = threading.Event()
        self._stop = threading.Event()
        self._child: _process.Child | None = None
        self._lock = threading.RLock()

    # -- control from other threads --

    def cancel(self) -> None:
        """Kill the child's process group now (from any thread); the outcome is an error."""
        self._cancel.set()
        with self._lock:
            if self._child is not None:
                self._child.kill()

    def stop(self) -> None:
        """End the child as a timeout does (SIGTERM now, SIGKILL after ``grace``); from any
        thread. The outcome is ``interrupted``."""
        self._stop.set()

    # -- running --

    def run(self) -> TaskOutcome:
        """Start the child, serve it to the end, and say how it went. Never raises for a bad
        child; raises only if ``answer`` or a callback raises (after killing the child)."""
        run = _Attempt(self)
        return run.execute()


def _unmasked(text: str) -> str:
    return text


class _Attempt:
    """The state of one :meth:`TaskProcess.run`: the child, its exchange, what was kept."""

    def __init__(self, owner: TaskProcess) -> None:
        self.owner = owner
        self.exchange = ex.Exchange(
            expect_result=owner.expect_result, answers_calls=owner.answer is not None
        )
        self.book = ex.LogBook()
        self.events: list[dict[str, Any]] | None = [] if owner.record else None
        self.mirror: bytearray | None = bytearray() if owner.record else None
        self.started = time.monotonic()
        self.t0 = self.started if owner.t0 is None else owner.t0
        self.timed_out = False
        self.stopped = False
        self.hard_killed = False
        self.cancelled = False

    def execute(self) -> TaskOutcome:
        owner = self.owner
        with owner._lock:
            if owner._stop.is_set() and not owner._cancel.is_set():
                return self._fail_to_start(
                    "the run was interrupted before this task started", "interrupted"
                )
            if owner._cancel.is_set():
                return self._fail_to_start("cancelled before it started")
            try:
                child = _process.spawn(owner.argv, cwd=owner.cwd, env=owner.env)
            except OSError as exc:
                return self._fail_to_start(f"cannot start {owner.argv[0]!r}: {exc}")
            owner._child = child
        drain = _process.StderrCollector(
            child.take_fd("stderr"),
            owner.on_stderr,
            mask=owner.mask,
            keep=_RECORD_STDERR_BYTES if owner.record else 0,
        )
        writer = _process.StdinWriter(child.take_fd("stdin"))
        reader = _process.FrameReader(
            child.take_fd("stdout"), owner.max_frame_size, on_bytes=self._mirror
        )
        drain.start()
        writer.start()
        try:
            self._serve(child, reader, writer)
        finally:
            if (
                child.poll() is None
                or self.timed_out
                or self.stopped
                or self.cancelled
                or self.exchange.violation
            ):
                child.kill()  # whatever is left of a group we gave up on goes
            child.wait()
            with owner._lock:
                owner._child = None  # reaped: cancel() must not signal a group id reused later
            writer.close_input()
            if self.events is not None:
                self.events.append({"dir": "h2c", "eof": True})
            drain.join(_DRAIN)
            if drain.is_alive():
                self.exchange.note(
                    "processes left behind by the child kept its stderr open; killed them"
                )
                child.kill()
                drain.join(_DRAIN)
            writer.join(_DRAIN)
            os.close(reader.fd)
            self._leftovers(child)
            child.close()
            _process.reap_orphans()
        return self._outcome(child, drain)

    def _mirror(self, chunk: bytes) -> None:
        if self.mirror is not None:
            self.mirror += chunk

    def _fail_to_start(self, message: str, status: str = "error") -> TaskOutcome:
        return TaskOutcome(
            status=status,
            error={"message": message},
            duration_s=time.monotonic() - self.started,
            events=self.events,
            stderr="" if self.owner.record else None,
        )

    def _leftovers(self, child: _process.Child) -> None:
        killed, survivors = child.kill_leftovers()
        if child.escaped:
            self.exchange.note(
                f"{len(child.escaped)} process(es) it started had left its process group "
                f"(setsid, a daemon) and were killed with it: {'; '.join(child.escaped[:5])}",
                "escaped",
            )
        survivors += [s for s in child.unkillable if s not in survivors]
        if killed:
            self.exchange.note(
                f"{len(killed)} process(es) it started were still running after it ended and "
                f"were killed: {'; '.join(killed[:5])} (under Gust they would keep running)",
                "leftovers",
            )
        if survivors:
            self.exchange.note(
                f"{len(survivors)} process(es) it started escaped and could not be killed: "
                f"{'; '.join(survivors[:5])}",
                "escaped",
            )

    def _serve(
        self, child: _process.Child, reader: _process.FrameReader, writer: _process.StdinWriter
    ) -> None:
        owner = self.owner
        deadline = None if owner.timeout is None else time.monotonic() + owner.timeout
        kill_at: float | None = None
        exited_at: float | None = None
        reading = True
        while True:
            now = time.monotonic()
            if owner._cancel.is_set() and not self.cancelled:
                self.cancelled = True
                self.hard_killed = self.stopped  # a stop escalated: SIGTERM, then SIGKILL
                child.kill()
            ending = None if kill_at is not None else self._ending(now, deadline)
            if ending is not None:
                setattr(self, ending, True)
                child.signal_group(signal.SIGTERM)
                kill_at = now + owner.grace
            if kill_at is not None and now >= kill_at and not self.hard_killed:
                self.hard_killed = True
                child.kill()
            wait = _POLL
            for moment in (deadline if kill_at is None else None, kill_at):
                if moment is not None and not self.hard_killed:
                    wait = max(0.0, min(wait, moment - now))
            if not reading:
                if child.wait(wait) is not None:
                    return
                continue
            if reader.wait_readable(wait):
                if reader.read_chunk():
                    if not self._take(reader, writer):
                        child.kill()
                        reading = False
                    continue
                reading = False
                self._end_of_output(reader)
                continue
            if child.poll() is not None:
                if exited_at is None:
                    exited_at = now
                elif now - exited_at >= _DRAIN:
                    self.exchange.note(
                        "the child exited but processes it left behind kept its stdout open; "
                        "killed them"
                    )
                    child.kill()
                    reading = False
                    self._end_of_output(reader)

    def _ending(self, now: float, deadline: float | None) -> str | None:
        """Which graceful ending starts now: ``"stopped"``, ``"timed_out"`` or none."""
        if self.owner._stop.is_set():
            return "stopped"
        if deadline is not None and now >= deadline:
            return "timed_out"
        return None

    def _end_of_output(self, reader: _process.FrameReader) -> None:
        if self.exchange.violation is not None:
            return
        try:
            reader.decoder.eof()
        except protocol.RemoteProtocolError as exc:
            self.exchange.receive_error(exc)
            self._record_raw(len(self.mirror) if self.mirror is not None else 0)

    def _take(self, reader: _process.FrameReader, writer: _process.StdinWriter) -> bool:
        """Handle every whole frame buffered; ``False`` on a fatal protocol error."""
        decoder = reader.decoder
        while True:
            try:
                frame = decoder.next_frame()
            except protocol.RemoteProtocolError as exc:
                self.exchange.receive_error(exc)
                if self.exchange.violation is not None:
                    self._record_raw(len(self.mirror) if self.mirror is not None else 0)
                    return False
                self._record_raw(self._consumed(decoder))
                continue
            if frame is None:
                return True
            if self.mirror is not None:
                del self.mirror[: self._consumed(decoder)]
            if self.events is not None:
                self.events.append({"dir": "c2h", "frame": frame})
            t = round(time.monotonic() - self.t0, 3)
            for event in self.exchange.receive(frame, t):
                if isinstance(event, ex.Log):
                    self._log(event)
                elif isinstance(event, ex.Call):
                    self._call(event, writer)

    def _consumed(self, decoder: protocol.FrameDecoder) -> int:
        return 0 if self.mirror is None else len(self.mirror) - decoder.buffered

    def _record_raw(self, size: int) -> None:
        if self.mirror is None or self.events is None:
            return
        self.events.append(
            {"dir": "c2h", "raw": bytes(self.mirror[: min(size, _RECORD_RAW_BYTES)]).hex()}
        )
        del self.mirror[:size]

    def _log(self, event: ex.Log) -> None:
        entry = self.book.add(
            {"t": event.t, "level": event.level, "msg": self.owner.mask(event.msg)}
        )
        if self.owner.on_log is not None:
            self.owner.on_log(entry)

    def _call(self, call: ex.Call, writer: _process.StdinWriter) -> None:
        assert self.owner.answer is not None  # else the exchange does not hand out calls
        answer = self.owner.answer(call.frame)
        if isinstance(answer, Answer):
            reply, warning = answer.reply, answer.warning
        else:
            reply, warning = dict(answer), None
        if warning:
            self.exchange.note(warning)
        data = self.exchange.reply(call, reply)
        if self.events is not None:
            self.events.append({"dir": "h2c", "frame": reply})
        writer.send(data)

    def _outcome(self, child: _process.Child, drain: _process.StderrCollector) -> TaskOutcome:
        owner = self.owner
        tail = drain.tail_text(_TAIL_LINES)
        verdict = self.exchange.conclude(
            child.returncode,
            stderr_tail=tail,
            timed_out=owner.timeout if self.timed_out else None,
            how="SIGTERM, then SIGKILL" if self.hard_killed else "SIGTERM",
            cancelled=self.cancelled,
            interrupted=self.stopped,
        )
        return TaskOutcome(
            status=verdict.status,
            value=verdict.value,
            error=_mask_tree(verdict.error, owner.mask),
            logs=self.book.entries(),
            exit_code=child.returncode,
            duration_s=time.monotonic() - self.started,
            pid=verdict.pid,
            warnings=[owner.mask(n) for n in verdict.notes],
            stderr_tail=tail,
            protocol_error=verdict.protocol_error,
            events=self.events,
            stderr=drain.kept_text() if owner.record else None,
        )


def _mask_tree(value: Any, mask: Callable[[str], str]) -> Any:
    """``value`` with every string in it masked (an error object, a trace)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: _mask_tree(v, mask) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_tree(v, mask) for v in value]
    return value


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
