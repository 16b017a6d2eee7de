"""Runtime mode: play the host of each case against a runtime command and judge its frames.

Theory of operation: for one case the runner starts ``COMMAND + argv`` (default
``python -m gust``) with the case's DAG folder as working directory, as Gust does, in a session
of its own so a wrapper's children can be killed with it. A reader thread drains the child's
stdout into a queue and another collects stderr, so the child can never block on a full pipe
while the runner writes. The steps are then played in order: a ``c2h`` step reads the next
frame (through :class:`~gust.protocol.FrameDecoder`), validates it against the message schemas
and compares it with the example and its matchers; an ``h2c`` step writes the frame (or raw
bytes) to the child's stdin, whole or in the chunks a test asks for; ``eof`` closes stdin.
After the last step the child must close stdout with no further frame and exit with one of the
case's statuses, and its stderr must fit the case. The first difference ends the case: the
child is killed and the difference becomes the case's verdict.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from gust.conformance.cases import Case
from gust.conformance.matchers import brief, compare_frame
from gust.conformance.procwatch import descendants, pid_belongs_to
from gust.conformance.report import CaseResult
from gust.conformance.schema import SchemaSet
from gust.protocol import FrameDecoder, ProtocolError, encode_frame

__all__ = ["DEFAULT_RUNTIME", "Chunker", "check_stderr", "run_case"]

#: The runtime under test when none is given: this interpreter's ``gust``.
DEFAULT_RUNTIME = [sys.executable, "-m", "gust"]

#: Splits bytes written to the child into ``(chunk, pause_seconds_after)`` pieces.
Chunker = Callable[[bytes], Iterable[tuple[bytes, float]]]


class _Timeout(Exception):
    pass


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
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            start_new_session=True,
        )
        self._chunks: queue.Queue[bytes] = queue.Queue()
        #: The child and its descendants, as seen whenever output arrived: a wrapper's child
        #: that sent ``start`` may be gone (and reaped) by the time its frame is judged.
        self.family: set[int] = {self.proc.pid}
        self._stderr: list[bytes] = []
        self.decoder = FrameDecoder()
        self.stdout_closed = False
        self._threads = [
            threading.Thread(target=self._pump_stdout, daemon=True),
            threading.Thread(target=self._pump_stderr, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _pump_stdout(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            try:
                chunk = out.read1(1 << 16)
            except (OSError, ValueError):
                chunk = b""
            if chunk:
                self.family |= descendants(self.proc.pid)
                self.result.wire_stream("c2h", chunk)
            else:
                self.result.wire_stream_end("c2h")
            self._chunks.put(chunk)
            if not chunk:
                return

    def _pump_stderr(self) -> None:
        err = self.proc.stderr
        assert err is not None
        while True:
            try:
                chunk = err.read1(1 << 16)
            except (OSError, ValueError):
                return
            if not chunk:
                return
            self._stderr.append(chunk)

    def read_frame(self, deadline: float) -> dict[str, Any] | None:
        """The next frame, or ``None`` at a clean end of stdout.

        Raises:
            ProtocolError: the bytes are no frame (``truncated`` at EOF inside a frame).
            _Timeout: nothing complete arrived before ``deadline``.
        """
        while True:
            frame = self.decoder.next_frame()
            if frame is not None:
                return frame
            if self.stdout_closed:
                self.decoder.eof()
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout
            try:
                chunk = self._chunks.get(timeout=remaining)
            except queue.Empty:
                raise _Timeout from None
            if chunk:
                self.decoder.feed(chunk)
            else:
                self.stdout_closed = True

    def write(self, data: bytes, chunker: Chunker | None) -> None:
        """Write ``data`` to the child's stdin (raises ``BrokenPipeError`` if it is closed)."""
        stdin = self.proc.stdin
        assert stdin is not None
        pieces = chunker(data) if chunker is not None else [(data, 0.0)]
        for piece, pause in pieces:
            if piece:
                stdin.write(piece)
                stdin.flush()
            if pause > 0:
                time.sleep(pause)
        self.result.wire_entry("h2c", data)

    def close_stdin(self) -> None:
        stdin = self.proc.stdin
        if stdin is not None and not stdin.closed:
            # BrokenPipeError: the child closed its end first, nothing is left to flush.
            with contextlib.suppress(BrokenPipeError):
                stdin.close()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.kill()

    def wait(self, deadline: float) -> int | None:
        try:
            return self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return None

    def finish(self) -> str:
        """Reap the child and return its stderr text."""
        self.close_stdin()
        self.kill()
        self.proc.wait()
        for t in self._threads:
            t.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            _close(stream)
        return b"".join(self._stderr).decode("utf-8", "replace")


def _close(stream: IO[bytes] | None) -> None:
    if stream is not None:
        stream.close()


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
    root = child.proc.pid
    try:

        def ours(pid: int) -> bool:
            return pid in child.family or pid_belongs_to(pid, root)

        _play(case, schemas, child, result, deadline, chunker, ours)
    finally:
        result.stderr = child.finish()
        result.exit = child.proc.returncode if result.exit is None else result.exit
        result.duration = time.monotonic() - result.started
    if result.passed:
        problem = check_stderr(case.stderr, result.stderr)
        result.check("stderr", problem is None, problem or "")
    return result


def _play(
    case: Case,
    schemas: SchemaSet,
    child: _Child,
    result: CaseResult,
    deadline: float,
    chunker: Chunker | None,
    pid: Callable[[int], bool],
) -> None:
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
                    return
                data = encode_frame(step.frame)
            else:
                assert step.raw is not None
                data = step.raw
            try:
                child.write(data, chunker)
            except (BrokenPipeError, ValueError):
                result.check(label, False, "the child closed its stdin before the host wrote")
                return
            result.check(label, True, f"wrote {len(data)} bytes")
            continue
        try:
            frame = child.read_frame(deadline)
        except _Timeout:
            result.check(
                label, False, f"no frame within the case's time limit (waited for {label})"
            )
            return
        except ProtocolError as exc:
            result.check(label, False, f"the child's stream broke: {exc.code}: {exc}")
            return
        if frame is None:
            code = child.wait(min(deadline, time.monotonic() + 2))
            result.exit = code
            result.check(
                label,
                False,
                f"the child closed stdout after {frames_in} frames (exit {code}); "
                f"expected {brief(step.frame)}",
            )
            return
        frames_in += 1
        problems = schemas.check_c2h(frame)
        if not result.check(f"{label} schema", not problems, "; ".join(problems[:3])):
            return
        assert step.frame is not None
        diff = compare_frame(step.frame, frame, step.matchers, pid)
        if not result.check(label, diff is None, f"{diff}" if diff else ""):
            return
    _finish(case, child, result, deadline)


def _finish(case: Case, child: _Child, result: CaseResult, deadline: float) -> None:
    try:
        extra = child.read_frame(deadline)
    except _Timeout:
        result.check("end of output", False, "the child did not close stdout after the last step")
        return
    except ProtocolError as exc:
        result.check("end of output", False, f"the child's stream broke: {exc.code}: {exc}")
        return
    if extra is not None:
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
