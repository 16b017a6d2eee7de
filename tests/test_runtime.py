"""``task run``'s core (gust.runtime) in memory, over the channel pair: what a subprocess cannot
show cheaply, such as a frame past the 4 GiB - 1 a length header can say."""

from __future__ import annotations

from typing import Any

import pytest
from _host import SANDBOX_DAGS, ChannelPair

from gust import calls, protocol
from gust._channel import MemoryChannel
from gust.runtime import _TaskRun
from gust.sandbox import TaskSignals

SANDBOX = SANDBOX_DAGS / "sandbox.py"


@pytest.fixture
def small_format_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """Pretend a 4-byte length can say at most 100 kB, so the limit path runs in memory."""
    monkeypatch.setattr(protocol, "MAX_FRAME_FORMAT", 100_000)
    monkeypatch.setattr(protocol._codec, "MAX_FRAME_FORMAT", 100_000)  # encode_frame's
    return 100_000


def run_in_memory(task: str) -> list[dict[str, Any]]:
    # The pair is made after the limit shrank: a host may not accept more than the format says.
    pair = ChannelPair(MemoryChannel(max_frame_size=protocol.MAX_FRAME_FORMAT))
    signals = TaskSignals(pair.channel, on_timeout=lambda exc: None)  # never installed in pytest
    calls.activate(pair.session)
    try:
        task_run = _TaskRun(pair.session, signals, str(SANDBOX), "Sandbox", task)
        pair.session.write_final(task_run.execute('{"run_id": 1}'))
    finally:
        calls.activate(None)
    return pair.sent()


def test_a_result_over_the_format_limit_fails_the_task(small_format_limit: int) -> None:
    frames = run_in_memory("big_value")
    assert [f["type"] for f in frames] == ["error", "result"]
    error = frames[-1]["error"]
    assert error["message"].startswith("Task result cannot be sent: frame of ")
    assert f"over the protocol limit of {small_format_limit} bytes" in error["message"]
    assert error["type"] == "gust.protocol.LocalProtocolError"
    assert error["message"] in frames[0]["trace"]


def test_a_log_over_the_format_limit_fails_the_task(small_format_limit: int) -> None:
    frames = run_in_memory("big_log")
    assert [f["type"] for f in frames] == ["error", "result"]
    error = frames[-1]["error"]
    assert error["message"] == "Task execution failed"
    assert error["type"] == "gust.protocol.LocalProtocolError"
    assert f"over the protocol limit of {small_format_limit} bytes" in error["details"]
