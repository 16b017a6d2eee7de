"""The test host: runs the real ``gust`` CLI as a subprocess, as Gust does, and answers its calls.

One host for every test that drives a child through the frame protocol. Deliberately small
and independent of ``gust.harness``, so runtime tests do not depend on the harness being right:
it decodes stdout with :class:`gust.protocol.FrameDecoder` (a torn frame fails the test),
answers calls from a table or a function, can act on any frame (signal the child, close a
pipe) and gives up after a deadline, so no test can hang. The in-memory pair (a runtime session
and the host's end of a :class:`~gust._channel.MemoryChannel`) and the process helpers the
tests share (is a pid alive, run the harness) live here too.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gust import protocol
from gust._channel import MemoryChannel
from gust.calls import Session
from gust.protocol import FrameDecoder, encode_frame, reply_error

REPO = Path(__file__).resolve().parents[1]
#: The test DAGs of ``gust task run`` and ``gust run done``.
DAGS = REPO / "tests" / "dags"
#: The sandbox's DAGs: what a task may do, and hostile tasks.
SANDBOX_DAGS = REPO / "tests" / "sandbox_dags"
#: The shipped example DAGs and store of the harness.
HARNESS_DAGS = REPO / "harness" / "dags"
STORE = REPO / "harness" / "store.json"

#: The ``write_dag`` fixture of ``conftest.py``: ``write_dag(name, source, folder=tmp_path)``.
DagWriter = Callable[..., Path]

NO_REPLY = object()  #: never answer this call
CLOSE_STDIN = object()  #: close the child's stdin instead of answering


@dataclass
class Later:
    """A reply held back until ``ready(host)`` is true (replies still leave in call order)."""

    reply: dict[str, Any]
    ready: Callable[[Host], bool]


@dataclass
class Host:
    """Runs one ``gust`` child, answers its calls, records its frames; never waits past a deadline.

    Args:
        argv: the arguments after ``python -m gust``.
        answers: call name -> a reply frame, :data:`NO_REPLY`, :data:`CLOSE_STDIN` or
            :class:`Later`; or a function of the call frame returning one of those (``None``
            counts as :data:`CLOSE_STDIN`). Names missing from a table get ``secret_not_found``
            / ``task_not_found``.
        env: added to the environment, which is this process's without ``GUST_*`` settings and
            ``PYTHONUNBUFFERED`` (as Gust starts us, so buffering is real).
        cwd: the child's working directory.
        on_frame: called with the host and each frame as it arrives, to act on it.
        preload: replies written to stdin as soon as ``start`` arrives, before any call: they
            answer the first calls, and would be stolen by a task reading its stdin.
        timeout: seconds until the child must have exited; past it the test fails.
    """

    argv: list[str]
    answers: dict[str, Any] | Callable[[dict[str, Any]], Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | str = REPO
    on_frame: Callable[[Host, dict[str, Any]], None] | None = None
    preload: list[dict[str, Any]] = field(default_factory=list)
    timeout: float = 20.0

    frames: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)
    returncode: int | None = None
    stderr_bytes: bytes = b""
    pid: int = 0
    exited_at: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    calls: int = 0

    def run(self) -> Host:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("GUST_") and k != "PYTHONUNBUFFERED"
        }
        env.update(self.env)
        self.proc = subprocess.Popen(
            gust_argv(*self.argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.cwd,
            env=env,
        )
        self.pid = self.proc.pid
        err: list[bytes] = []
        err_reader = threading.Thread(target=lambda: err.append(self.proc.stderr.read()))
        err_reader.start()
        self._pending: deque[Any] = deque()
        self._prepaid = len(self.preload)
        self._stdout_open = True
        deadline = time.monotonic() + self.timeout
        try:
            self._read_until_eof(deadline)
            self.returncode = self.proc.wait(max(0.1, deadline - time.monotonic()))
            self.exited_at = time.monotonic()
        except subprocess.TimeoutExpired:
            pass
        finally:
            timed_out = self.returncode is None
            self.proc.kill()
            self.proc.wait()
            err_reader.join(2)  # a process the task left running may hold stderr open
            self.stderr_bytes = b"".join(err)
        assert not timed_out, (
            f"gust {self.argv} still running after {self.timeout} s; frames: {self.frames}; "
            f"stderr: {self.stderr}"
        )
        return self

    def _read_until_eof(self, deadline: float) -> None:
        decoder = FrameDecoder()
        fd = self.proc.stdout.fileno()
        while self._stdout_open:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                decoder.eof()  # raises if the stream ended inside a frame
                return
            self.raw += chunk
            decoder.feed(chunk)
            for frame in decoder.frames():
                self.frames.append(frame)
                self.times.append(time.monotonic())
                self._on(frame)
                if not self._stdout_open:
                    return

    def _on(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "start" and self.preload:
            for reply in self.preload:
                self.proc.stdin.write(encode_frame(reply))
            self.proc.stdin.flush()
        if kind == "call":
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self._prepaid:
                self._prepaid -= 1
                self.in_flight -= 1
            else:
                self._pending.append(self._answer_for(frame))
        if self.on_frame is not None:
            self.on_frame(self, frame)
        self._send_ready_replies()

    def _answer_for(self, frame: dict[str, Any]) -> Any:
        if callable(self.answers):
            answer = self.answers(frame)
            return CLOSE_STDIN if answer is None else answer
        if frame.get("name") in self.answers:
            return self.answers[frame["name"]]
        if frame.get("op") == "get_secret_by_name":
            return reply_error("secret_not_found")
        return reply_error("task_not_found")

    def _send_ready_replies(self) -> None:
        while self._pending and not self.proc.stdin.closed:
            answer = self._pending[0]
            if answer is NO_REPLY:
                return
            if isinstance(answer, Later):
                if not answer.ready(self):
                    return
                answer = answer.reply
            self._pending.popleft()
            if answer is CLOSE_STDIN:
                self.proc.stdin.close()
                return
            self.in_flight -= 1
            self.replies.append(answer)
            try:
                self.proc.stdin.write(encode_frame(answer))
                self.proc.stdin.flush()
            except BrokenPipeError:
                return

    # -- actions for on_frame --
    def signal(self, signum: int) -> None:
        self.signalled_at = time.monotonic()
        os.kill(self.pid, signum)

    def close_stdout(self) -> None:
        """Stop reading: close our end of the child's stdout, as a crashed host would."""
        self.proc.stdout.close()
        self._stdout_open = False

    # -- reading the outcome --
    @property
    def stderr(self) -> str:
        return self.stderr_bytes.decode("utf-8", "replace")

    def types(self) -> list[str]:
        return [f["type"] for f in self.frames]

    def logs(self) -> list[tuple[str, str]]:
        return [(f["level"], f["msg"]) for f in self.frames if f["type"] == "log"]

    def messages(self) -> list[str]:
        return [msg for _, msg in self.logs()]

    @property
    def result(self) -> dict[str, Any]:
        """The final frame, after checking it is the one and only ``result``."""
        assert self.frames and self.frames[-1]["type"] == "result", (self.types(), self.stderr)
        assert self.types().count("result") == 1
        return self.frames[-1]

    @property
    def value(self) -> Any:
        assert self.result["ok"] is True, self.result
        return self.result["data"]["value"]

    def failure(self) -> dict[str, Any]:
        """The failed result's ``error``, after checking the protocol's shape of a failure."""
        assert self.returncode == 0, self.stderr
        assert self.types()[0] == "start"
        assert self.types()[-2:] == ["error", "result"], self.types()
        assert self.result["ok"] is False
        error = self.result["error"]
        assert isinstance(self.frames[-2]["trace"], str)
        assert error["message"] in self.frames[-2]["trace"]
        return error

    @property
    def trace(self) -> str:
        return self.frames[-2]["trace"]


@dataclass
class ChannelPair:
    """A runtime :class:`~gust.calls.Session` over a :class:`~gust._channel.MemoryChannel`, and
    the host's end of it: what the runtime sent, and replies pushed to it."""

    channel: MemoryChannel = field(default_factory=MemoryChannel)
    session: Session = field(init=False)

    def __post_init__(self) -> None:
        self.session = Session(self.channel)

    def reply(self, frame: dict[str, Any]) -> None:
        """Send ``frame`` to the runtime."""
        self.channel.push(protocol.encode_frame(frame))

    def push(self, data: bytes) -> None:
        """Send raw bytes to the runtime (``b""``: end of input)."""
        self.channel.push(data)

    def close(self) -> None:
        """End the runtime's input, as a host going away does."""
        self.channel.push(b"")

    def sent(self) -> list[dict[str, Any]]:
        """Every frame the runtime wrote, checking the bytes hold whole frames and nothing
        else (the format's 4 GiB limit, not a host's)."""
        decoder = protocol.FrameDecoder(max_frame_size=protocol.MAX_FRAME_FORMAT)
        decoder.feed(bytes(self.channel.sent))
        frames = decoder.frames()
        decoder.eof()
        return frames


def gust_argv(*args: str) -> list[str]:
    """How the tests start the ``gust`` command line: this interpreter, ``-m gust``."""
    return [sys.executable, "-m", "gust", *args]


def task_argv(
    file: Path | str, dag: str, task: str, ctx: str | None = '{"run_id": 1}'
) -> list[str]:
    """The arguments of ``gust task run`` as Gust passes them (``ctx=None``: no --ctx-json)."""
    args = ["task", "run", "--file", str(file), "--dag", dag, "--task", task]
    return args if ctx is None else [*args, "--ctx-json", ctx]


def run_gust(*args: str, answer: Any = None, **kw: Any) -> Host:
    """Run ``gust ARGS`` under a :class:`Host`; ``answer`` is its ``answers``."""
    return Host(list(args), answers=answer or {}, **kw).run()


def task_run(
    dag_file: Path | str, dag: str, task: str, ctx: str | None = '{"run_id": 1}', **kw: Any
) -> Host:
    """Run one task under a :class:`Host` (keywords as for :func:`run_gust`)."""
    return run_gust(*task_argv(dag_file, dag, task, ctx), **kw)


# -- processes --------------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie or a dead one is not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def gone(pids: int | Iterable[int], seconds: float = 3.0) -> bool:
    """Wait up to ``seconds`` for every pid to die; whether they all did."""
    wanted = [pids] if isinstance(pids, int) else list(pids)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in wanted):
        time.sleep(0.02)
    return not any(alive(p) for p in wanted)


def harness(
    *args: str, cwd: Path | str = REPO, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m gust.harness ARGS`` to its end (``env`` adds to this environment)."""
    return subprocess.run(
        [sys.executable, "-m", "gust.harness", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def harness_json(*args: str, **kw: Any) -> tuple[int, dict[str, Any]]:
    """Run the harness with ``--json``; return its exit status and the report."""
    proc = harness(*args, "--json", **kw)
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout)
