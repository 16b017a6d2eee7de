"""Runtime mode: play the host of each case against a runtime command and judge its frames.

Theory of operation: for one case the runner starts ``COMMAND + argv`` (default
``python -m gust``) through the project's process helper (:mod:`gust._process`: a session of its
own, so a wrapper's children go with it; a thread writes to its stdin, so a child that stops
reading never blocks the runner; another drains its stderr), with the case's DAG folder as
working directory, as Gust does. The steps are then played in order: a ``c2h`` step reads the
next frame (:class:`gust._process.FrameReader`), validates it against the message schemas and
compares it with the example and its matchers; an ``h2c`` step sends the frame (or raw bytes),
whole or in the chunks a test asks for; ``eof`` closes stdin. Every frame also goes through the
host-side exchange machine (:class:`gust.harness.exchange.Exchange`), the same rules the
harness applies: it pairs replies with calls, and once the child has exited its verdict must be
the case's ``outcome``. After the last step the child must close stdout with no further frame
and exit with one of the case's statuses, and its stderr must fit the case. The first
difference ends the case: the child's whole session is killed and the difference becomes the
case's verdict.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from gust import _process
from gust.conformance.cases import Case
from gust.conformance.matchers import brief, compare_frame
from gust.conformance.report import CaseResult
from gust.conformance.schema import SchemaSet
from gust.harness.exchange import Exchange
from gust.protocol import RemoteProtocolError, encode_frame

__all__ = ["DEFAULT_RUNTIME", "Chunker", "check_stderr", "run_case"]

#: The runtime under test when none is given: this interpreter's ``gust``.
DEFAULT_RUNTIME = [sys.executable, "-m", "gust"]

#: Splits bytes written to the child into ``(chunk, pause_seconds_after)`` pieces.
Chunker = Callable[[bytes], Iterable[tuple[bytes, float]]]

_STDERR_KEEP: Final = 4 << 20
_JOIN: Final = 5.0


def check_stderr(rule: dict[str, Any], text: str) -> str | None:
    """Why ``text`` breaks the case's stderr rule, or ``None``."""
    if rule.get("any"):
        return None
    if rule.get("empty"):
        return None if not text.strip() else f"expected no stderr, got {brief(text[-400:])}"
    pattern = rule["regex"]
    if re.search(pattern, text) is None:
        return f"expected stderr matching /{pattern}/, got {brief(text[-400:])}"
    return None


class _Child:
    """A running runtime: frames out of its stdout, bytes into its stdin."""

    def __init__(self, argv: list[str], cwd: Path, result: CaseResult) -> None:
        self.result = result
        self.child = _process.spawn(argv, cwd=cwd)
        #: The child and its descendants, as seen whenever output arrived: a wrapper's child
        #: that sent ``start`` may be gone (and reaped) by the time its frame is judged.
        self.family: set[int] = {self.child.pid}
        self.writer = _process.StdinWriter(self.child.take_fd("stdin"))
        self.stderr = _process.StderrCollector(self.child.take_fd("stderr"), keep=_STDERR_KEEP)
        self.reader = _process.FrameReader(self.child.take_fd("stdout"), on_bytes=self._seen)
        self._stdin_open = True
        self.writer.start()
        self.stderr.start()

    def _seen(self, chunk: bytes) -> None:
        self.family.update(_process.descendants(self.child.pid))
        self.result.wire_stream("c2h", chunk)

    def ours(self, pid: int) -> bool:
        """Whether ``pid`` is the child or one of its descendants (now, or when it wrote)."""
        return pid in self.family or pid in _process.descendants(self.child.pid)

    def read_frame(self, deadline: float) -> dict[str, Any] | None:
        """The next frame, or ``None`` at a clean end of stdout.

        Raises:
            RemoteProtocolError: the bytes are no frame (``truncated`` at EOF inside a frame).
            FrameTimeout: nothing complete arrived before ``deadline``.
        """
        was_closed = self.reader.closed
        try:
            return self.reader.next_frame(deadline)
        finally:
            if self.reader.closed and not was_closed:
                self.result.wire_stream_end("c2h")

    def write(self, data: bytes, chunker: Chunker | None) -> None:
        """Send ``data`` to the child's stdin, in the pieces ``chunker`` cuts."""
        pieces = chunker(data) if chunker is not None else [(data, 0.0)]
        for piece, pause in pieces:
            if piece:
                self.writer.send(piece)
            if pause > 0:
                time.sleep(pause)
        self.result.wire_entry("h2c", data)

    def close_stdin(self) -> None:
        if self._stdin_open:
            self._stdin_open = False
            self.writer.close_input()

    def wait(self, deadline: float) -> int | None:
        return self.child.wait(max(0.0, deadline - time.monotonic()))

    def finish(self) -> str:
        """End the child's whole session, reap it, and return its stderr text."""
        self.close_stdin()
        self.child.kill()
        self.child.wait()
        self.writer.join(_JOIN)
        self.stderr.join(_JOIN)
        os.close(self.reader.fd)
        self.child.kill_leftovers(settle=0.2)
        self.child.close()
        return self.stderr.kept_text()


def run_case(
    case: Case,
    schemas: SchemaSet,
    command: list[str] | None = None,
    *,
    timeout: float = 30.0,
    chunker: Chunker | None = None,
    dag_file: Path | None = None,
) -> CaseResult:
    """Play the host of ``case`` against ``command`` and return the verdict.

    Args:
        command: the runtime (default :data:`DEFAULT_RUNTIME`); the case's argv is appended.
        timeout: seconds the whole exchange may take, unless the case sets its own.
        chunker: how to cut each host frame into writes (default: one write per frame).
        dag_file: run this DAG file instead of the case's (a port of it for another runtime).
    """
    target = dag_file or case.dag_file
    argv = [*(command or DEFAULT_RUNTIME), *case.argv_for(target)]
    result = CaseResult(case=case.name, mode="runtime", command=argv)
    deadline = time.monotonic() + (case.timeout or timeout)
    try:
        child = _Child(argv, target.parent, result)
    except OSError as exc:
        result.check("start the runtime", False, f"cannot run {argv[0]!r}: {exc}")
        result.duration = time.monotonic() - result.started
        return result
    task = case.subcommand == "task run"
    exchange = Exchange(expect_result=task, answers_calls=task)
    try:
        if _play(case, schemas, child, exchange, result, deadline, chunker):
            _finish(case, child, exchange, result, deadline)
    finally:
        result.stderr = child.finish()
        result.exit = child.child.returncode if result.exit is None else result.exit
        result.notes += exchange.notes
        result.duration = time.monotonic() - result.started
    if result.passed:
        verdict = exchange.conclude(result.exit, stderr_tail=result.stderr[-2000:])
        got = "ok" if verdict.status == "ok" else "failed"
        why = f": {verdict.error['message']}" if verdict.error else ""
        result.check(
            "outcome",
            got == case.outcome,
            f"under the host's rules (exit 0 and a success result) the task is {got}{why}; "
            f"expected {case.outcome}",
        )
        problem = check_stderr(case.stderr, result.stderr)
        result.check("stderr", problem is None, problem or "")
    return result


def _play(
    case: Case,
    schemas: SchemaSet,
    child: _Child,
    exchange: Exchange,
    result: CaseResult,
    deadline: float,
    chunker: Chunker | None,
) -> bool:
    """Play every step; ``False`` at the first difference (recorded in ``result``)."""
    frames_in = 0
    for step in case.steps:
        label = step.describe()
        if step.dir == "h2c":
            if step.eof:
                child.close_stdin()
                result.check(label, True, "closed the child's stdin")
                continue
            if step.frame is not None:
                problems = schemas.check_h2c(step.frame, step.answers)
                if not result.check(f"{label} schema", not problems, "; ".join(problems)):
                    return False
                waiting = exchange.waiting_calls
                # The machine pairs the reply with its call, exactly one per call, in order.
                data = (
                    exchange.reply(waiting[0], step.frame) if waiting else encode_frame(step.frame)
                )
            else:
                assert step.raw is not None
                data = step.raw
            child.write(data, chunker)
            result.check(label, True, f"wrote {len(data)} bytes")
            continue
        try:
            frame = child.read_frame(deadline)
        except _process.FrameTimeout:
            return result.check(
                label, False, f"no frame within the case's time limit (waited for {label})"
            )
        except RemoteProtocolError as exc:
            exchange.receive_error(exc)
            return result.check(label, False, f"the child's stream broke: {exc.code}: {exc}")
        if frame is None:
            code = child.wait(min(deadline, time.monotonic() + 2))
            result.exit = code
            return result.check(
                label,
                False,
                f"the child closed stdout after {frames_in} frames (exit {code}); "
                f"expected {brief(step.frame)}",
            )
        frames_in += 1
        exchange.receive(frame)
        problems = schemas.check_c2h(frame)
        if not result.check(f"{label} schema", not problems, "; ".join(problems[:3])):
            return False
        assert step.frame is not None
        diff = compare_frame(step.frame, frame, step.matchers, child.ours)
        if not result.check(label, diff is None, f"{diff}" if diff else ""):
            return False
    return True


def _finish(
    case: Case, child: _Child, exchange: Exchange, result: CaseResult, deadline: float
) -> None:
    try:
        extra = child.read_frame(deadline)
    except _process.FrameTimeout:
        result.check("end of output", False, "the child did not close stdout after the last step")
        return
    except RemoteProtocolError as exc:
        exchange.receive_error(exc)
        result.check("end of output", False, f"the child's stream broke: {exc.code}: {exc}")
        return
    if extra is not None:
        exchange.receive(extra)
        result.check(
            "end of output", False, f"an unexpected frame after the last step: {brief(extra)}"
        )
        return
    result.check("end of output", True, "stdout closed after the last step")
    child.close_stdin()
    code = child.wait(deadline)
    result.exit = code
    if code is None:
        result.check("exit", False, "the child did not exit within the case's time limit")
        return
    if case.exit is not None:
        result.check(
            "exit",
            code in case.exit,
            f"exit status {code}, expected {' or '.join(map(str, case.exit))}",
        )
