"""Frame channels (gust._channel): every frame written whole under the one write lock.

The lock is tested where it matters: several threads writing frames of hundreds of KB to a
slow reader through a real pipe, which writes small frames atomically anyway, so only large
ones show whether each frame goes out whole. The in-memory behaviour of a channel (nothing
after the final frames) is in ``test_calls.py``, through the session that uses it; here are
reading frames with a deadline (through a subclass written against the earlier ``_read_some``
API, as ``gust.testing`` is) and the stderr channel of a forked child.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from gust import protocol
from gust._channel import Channel, FdChannel, MemoryChannel, StderrChannel
from gust.errors import CallTimeoutError, HostGoneError, HostProtocolError

BIG_FRAMES = """\
import threading
from gust import Dag, log, task

class Big(Dag):
    @task
    def threads(self, ctx):
        def worker(n):
            for i in range(8):
                # hundreds of KB per frame: far more than a pipe writes atomically
                log(f"t{n}-{i}:" + chr(ord("a") + n) * (300_000 + 1000 * i))
        workers = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return "done"
"""


@pytest.mark.timeout(120)
def test_large_frames_from_many_threads_reach_a_slow_reader_whole(tmp_path: Path):
    dag = tmp_path / "big.py"
    dag.write_text(BIG_FRAMES)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gust", "task", "run", "--file", str(dag), "--dag", "Big",
         "--task", "threads", "--ctx-json", '{"run_id": 1}'],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    assert proc.stdout is not None
    decoder = protocol.FrameDecoder()
    frames: list[dict[str, Any]] = []
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + 100
    while time.monotonic() < deadline:
        chunk = os.read(fd, 4096)  # a small, slow reader: writers block mid-frame
        if not chunk:
            break
        decoder.feed(chunk)
        frames += decoder.frames()
        time.sleep(0.0005)
    decoder.eof()
    proc.wait(30)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    logs = [f["msg"] for f in frames if f["type"] == "log"]
    assert len(logs) == 48
    seen = set()
    for msg in logs:
        head, body = msg.split(":", 1)
        n, i = (int(x) for x in head[1:].split("-"))
        assert body == chr(ord("a") + n) * (300_000 + 1000 * i), f"frame {head} is torn"
        seen.add((n, i))
    assert seen == {(n, i) for n in range(6) for i in range(8)}
    assert frames[-1] == {"type": "result", "ok": True, "data": {"value": "done"}}


class LegacyChannel(Channel):
    """A channel written against the earlier one-call API: only ``_read_some``, which plays
    a script (bytes, ``b""`` for end of input, ``None`` for a wait that ran out) and records
    the timeout of each wait."""

    def __init__(self, *script: bytes | None) -> None:
        super().__init__()
        self.script = deque(script)
        self.waits: list[float | None] = []

    def _read_some(self, timeout: float | None) -> bytes | None:
        self.waits.append(timeout)
        return self.script.popleft()


def test_read_frame_returns_each_frame_of_the_input_in_order() -> None:
    first, second = protocol.reply_ok(1), {"type": "note", "n": 2}
    both = protocol.encode_frame(first) + protocol.encode_frame(second)
    channel = LegacyChannel(both[:3], both[3:], b"")
    assert channel.read_frame() == first
    assert channel.read_frame() == second
    assert channel.waits == [None, None]  # no timeout: every wait is unbounded
    with pytest.raises(HostGoneError) as info:
        channel.read_frame(what="the reply to get_secret_by_name('x')")
    assert str(info.value) == (
        "the host closed the channel while we waited for the reply to get_secret_by_name('x')"
    )


def test_read_frame_waits_no_longer_than_the_timeout_and_then_names_the_wait() -> None:
    channel = LegacyChannel(None)
    with pytest.raises(CallTimeoutError) as info:
        channel.read_frame(timeout=0.5)
    assert str(info.value) == "no answer within 0.5 s while waiting for a frame"
    [wait] = channel.waits
    assert wait is not None and wait <= 0.5
    frame = protocol.reply_ok("late but in time")
    channel = LegacyChannel(protocol.encode_frame(frame)[:5], protocol.encode_frame(frame)[5:])
    assert channel.read_frame(timeout=30) == frame
    first, second = channel.waits
    assert first is not None and second is not None and 0 < second <= first <= 30


def test_a_memory_channel_decodes_what_was_written_to_it() -> None:
    channel = MemoryChannel()
    channel.write_frame(protocol.log_frame("one"))
    channel.write_frame(protocol.reply_ok([1, 2]))
    assert channel.sent_frames() == [protocol.log_frame("one"), protocol.reply_ok([1, 2])]


def test_the_stderr_channel_writes_frames_as_text_lines_and_has_no_input(
    capfd: pytest.CaptureFixture[str],
) -> None:
    channel = StderrChannel()
    channel.write_frame(protocol.log_frame("from the child \u00e9", "warning"))
    channel.write_frame({"type": "progress", "done": 3})
    out, err = capfd.readouterr()
    assert out == ""
    assert err == ('[gust warning] from the child \u00e9\n[gust] {"type":"progress","done":3}\n')
    with pytest.raises(HostGoneError, match="the host closed the channel while we waited"):
        channel.read_frame(timeout=5)


def test_input_ending_inside_a_frame_names_the_wait_and_what_was_missing() -> None:
    channel = MemoryChannel()
    channel.push(protocol.encode_frame(protocol.reply_ok("cut"))[:-3])
    channel.push(b"")
    with pytest.raises(HostGoneError) as info:
        channel.read_frame(what="the reply to get_secret_by_name('x')")
    assert str(info.value) == (
        "the host closed the channel inside a frame while we waited for the reply to "
        "get_secret_by_name('x'): input ended inside a frame: got 36 of 39 payload bytes"
    )


def test_a_malformed_frame_from_the_host_is_a_protocol_error_saying_so() -> None:
    channel = MemoryChannel()
    payload = b"{not json"
    channel.push(struct.pack(">I", len(payload)) + payload)
    with pytest.raises(HostProtocolError) as info:
        channel.read_frame(timeout=5)
    assert str(info.value).startswith("bad frame from the host: ")


def test_a_wait_not_named_by_the_caller_is_a_wait_for_a_frame() -> None:
    channel = MemoryChannel()
    channel.push(b"")
    with pytest.raises(HostGoneError) as info:
        channel.fill(5)
    assert str(info.value) == "the host closed the channel while we waited for a frame"


@pytest.mark.timeout(10)
def test_a_reply_wait_on_a_socket_times_out_instead_of_blocking_in_read() -> None:
    """A host may hand us a socket as stdin: it is always writable, so only a wait for
    readable input (not any readiness) keeps the timeout."""
    ours, host = socket.socketpair()
    try:
        channel = FdChannel(ours.fileno(), ours.fileno())
        with pytest.raises(CallTimeoutError):
            channel.read_frame(timeout=0.2)
        host.sendall(protocol.encode_frame(protocol.reply_ok("late")))
        assert channel.read_frame(timeout=5) == protocol.reply_ok("late")
    finally:
        ours.close()
        host.close()


def test_sections_nest_and_deferred_handlers_run_at_the_outermost_end() -> None:
    channel = MemoryChannel()
    ran: list[str] = []
    channel.enter()
    channel.enter()
    channel.deferred.append(lambda: ran.append("handler"))
    channel.leave()
    assert ran == [], "a handler ran inside the outer section"
    channel.leave()
    assert ran == ["handler"]
    assert channel.main_busy == 0
    # A frame written inside a section is a section of its own, nested: the handler waits.
    channel.enter()
    channel.deferred.append(lambda: ran.append("after the frame"))
    channel.write_frame(protocol.log_frame("inside"))
    assert ran == ["handler"], "a handler ran inside the outer section"
    channel.leave()
    assert ran == ["handler", "after the frame"]
    assert channel.main_busy == 0


def test_a_forked_child_writing_through_the_parents_channel_is_refused_naming_both_pids() -> None:
    channel = MemoryChannel()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what the write raised, then leave at once
        try:
            try:
                channel.write_frame(protocol.log_frame("from the child"))
                outcome = "written"
            except HostGoneError as exc:
                outcome = f"HostGoneError: {exc}"
            os.write(write_end, outcome.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        outcome = reader.read().decode()
    os.waitpid(pid, 0)
    assert outcome == (
        f"HostGoneError: this process (pid {pid}) was forked from the task (pid {os.getpid()}): "
        "only the task's own process writes frames"
    )
    assert channel.sent_frames() == []


def test_handlers_left_queued_run_in_the_main_thread_not_in_a_logging_thread() -> None:
    """A deferred handler that raises leaves the rest queued; a frame another thread writes
    meanwhile must not run them there (a TaskInterrupted belongs to the main thread)."""
    channel = MemoryChannel()
    ran_in: list[str] = []

    def interrupted() -> None:
        raise KeyboardInterrupt

    channel.enter()
    channel.deferred += [interrupted, lambda: ran_in.append(threading.current_thread().name)]
    with pytest.raises(KeyboardInterrupt):
        channel.leave()
    worker = threading.Thread(
        target=channel.write_frame, args=(protocol.log_frame("from a thread"),), name="logger"
    )
    worker.start()
    worker.join()
    assert ran_in == []
    channel.write_frame(protocol.log_frame("from the main thread"))
    assert ran_in == ["MainThread"]


def test_the_final_frames_close_the_output_saying_why_and_leave_no_section_open() -> None:
    channel = MemoryChannel()
    channel.write_final([protocol.encode_frame(protocol.result_success(1))])
    assert channel.main_busy == 0 and channel.output_closed
    for late in (channel.write_final, lambda frames: channel.write_bytes(frames[0])):
        with pytest.raises(HostGoneError) as info:
            late([protocol.encode_frame(protocol.result_success(2))])
        assert str(info.value) == "the task already sent its final frame; nothing more can be sent"
    assert channel.sent_frames() == [protocol.result_success(1)]


@pytest.mark.parametrize("write", ["a frame", "the final frames"])
def test_a_broken_pipe_closes_the_output_for_good_saying_so(write: str) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        channel = FdChannel(write_end, None)
        frame = protocol.encode_frame(protocol.result_success(1))
        for _ in range(2):
            with pytest.raises(HostGoneError) as info:
                if write == "a frame":
                    channel.write_bytes(frame)
                else:
                    channel.write_final([frame])
            assert str(info.value) == "the host stopped reading frames (broken pipe)"
            assert channel.output_closed and channel.main_busy == 0
    finally:
        os.close(write_end)


@pytest.mark.parametrize("input_fd", ["none", "unreadable"])
def test_input_that_is_absent_or_cannot_be_read_counts_as_ended(
    tmp_path: Path, input_fd: str
) -> None:
    """No input at all, or a read error on the host's pipe (here a directory, which every read
    refuses), is the end of the conversation, not bytes to decode."""
    unreadable = os.open(tmp_path, os.O_RDONLY)
    read_end, write_end = os.pipe()
    try:
        channel = FdChannel(write_end, None if input_fd == "none" else unreadable)
        with pytest.raises(HostGoneError) as info:
            channel.read_frame(timeout=5)
        assert str(info.value) == "the host closed the channel while we waited for a frame"
    finally:
        for fd in (unreadable, read_end, write_end):
            os.close(fd)
