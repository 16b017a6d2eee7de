"""The sandbox's parts in-process, over :class:`gust._channel.MemoryChannel`: what a subprocess
cannot show deterministically (thread interleavings, a 4 GiB frame, arbitrary result values)."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import logging
import math
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gust.protocol
from gust import calls
from gust._channel import MemoryChannel
from gust.calls import Session
from gust.errors import CallTimeoutError, HostGoneError, HostProtocolError
from gust.masking import SecretMasker
from gust.protocol import FrameDecoder, decode_payload, encode_frame, reply_ok
from gust.runtime import _TaskRun
from gust.sandbox import LogFrameHandler, LogWriter, TaskSignals, capture_output
from gust.values import MAX_DEPTH, UnsupportedValueError, to_json_value

SANDBOX = Path(__file__).resolve().parent / "sandbox_dags" / "sandbox.py"


def sent(channel: MemoryChannel) -> list[dict[str, Any]]:
    """Every frame written, checking the bytes hold whole frames and nothing else."""
    decoder = FrameDecoder(max_frame_size=gust.protocol.MAX_FRAME_FORMAT)
    decoder.feed(bytes(channel.sent))
    frames = decoder.frames()
    decoder.eof()
    return frames


# -- stdout -----------------------------------------------------------------------------------


def test_each_thread_has_its_own_unfinished_line() -> None:
    # print() writes the text and the newline in two calls; a thread switch in between must not
    # glue another thread's line onto it.
    channel = MemoryChannel()
    writer = LogWriter(Session(channel))
    a_wrote_text = threading.Event()
    b_done = threading.Event()

    def a() -> None:
        writer.write("from a")
        a_wrote_text.set()
        b_done.wait(5)
        writer.write("\n")

    def b() -> None:
        a_wrote_text.wait(5)
        writer.write("from b")
        writer.write("\n")
        b_done.set()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    writer.write("left unfinished")
    writer.flush()
    assert [f["msg"] for f in sent(channel)] == ["from b", "from a"]
    writer.flush_partial()
    assert [f["msg"] for f in sent(channel)][-1] == "left unfinished"


def test_log_writer_refuses_bytes_like_a_text_stream() -> None:
    writer = LogWriter(Session(MemoryChannel()))
    with pytest.raises(TypeError, match="must be str, not bytes"):
        writer.write(b"raw")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes-like"):
        writer.buffer.write("text")
    with pytest.raises(TypeError, match="unexpected arguments: colour"):
        writer.reconfigure(colour="red")


def test_bytes_split_inside_a_character_are_joined() -> None:
    channel = MemoryChannel()
    writer = LogWriter(Session(channel))
    encoded = "é\n".encode()
    writer.buffer.write(encoded[:1])
    writer.buffer.write(encoded[1:])
    assert [f["msg"] for f in sent(channel)] == ["é"]


def test_capture_output_restores_stdout_and_the_root_logger() -> None:
    root = logging.getLogger()
    before = (sys.stdout, list(root.handlers), root.level)
    channel = MemoryChannel()
    with capture_output(Session(channel), logging.INFO):
        print("inside")
        logging.info("logged inside")
    print("outside")  # to pytest's capture, not to the channel
    logging.warning("logged outside")
    assert (sys.stdout, list(root.handlers), root.level) == before
    assert [f["msg"] for f in sent(channel)] == ["inside", "logged inside"]


def test_the_logging_bridge_drops_records_once_the_host_is_gone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    channel = MemoryChannel()
    channel.write_final([])  # the channel is over: every later write raises HostGoneError
    handler = LogFrameHandler(Session(channel), logging.INFO)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "lost", None, None)
    handler.handle(record)  # no exception, no "Logging error" report
    assert capsys.readouterr().err == ""


# -- calls ------------------------------------------------------------------------------------


def test_the_late_reply_of_a_timed_out_call_is_skipped() -> None:
    channel = MemoryChannel()
    session = Session(channel, call_timeout=0.05)
    with pytest.raises(CallTimeoutError, match=r"0\.05 s \(GUST_CALL_TIMEOUT\).*'first'"):
        session.call(gust.protocol.call_get_secret("first"), "get_secret_by_name('first')")
    channel.push(encode_frame(reply_ok("late answer to first")))
    channel.push(encode_frame({"type": "note", "unknown": True}))  # not a reply: ignored

    def answer_once_asked() -> None:  # a host answers a call only once it has seen it
        deadline = time.monotonic() + 10
        while len(sent(channel)) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        channel.push(encode_frame(reply_ok("answer to second")))

    host = threading.Thread(target=answer_once_asked)
    host.start()
    got = session.call(gust.protocol.call_get_secret("second"), "get_secret_by_name('second')")
    host.join()
    assert got == "answer to second"


def test_a_reply_nobody_asked_for_is_a_protocol_error_for_every_later_call() -> None:
    channel = MemoryChannel()
    session = Session(channel)
    channel.push(encode_frame(reply_ok("unasked")))
    call = gust.protocol.call_get_secret("name")
    for _ in range(2):  # the order of replies cannot be trusted any more
        with pytest.raises(HostProtocolError, match=r"reply #1 but only 0 call\(s\) were made"):
            session.call(call, "get_secret_by_name('name')")
    assert sent(channel) == []  # no call went out: its answer could not be told apart
    session.log("logs still go out")
    assert sent(channel) == [gust.protocol.log_frame("logs still go out")]


def test_end_of_input_during_a_call_raises_at_once_naming_it() -> None:
    channel = MemoryChannel()
    channel.push(b"")
    session = Session(channel)
    with pytest.raises(HostGoneError, match=r"get_task_by_name_run\('up', 3\)"):
        session.call(gust.protocol.call_get_task("up", 3), "get_task_by_name_run('up', 3)")


def test_nothing_can_be_written_after_the_final_frames() -> None:
    channel = MemoryChannel()
    channel.write_final([encode_frame(gust.protocol.result_success(1))])
    with pytest.raises(HostGoneError, match="final frame"):
        Session(channel).log("too late")
    assert sent(channel) == [gust.protocol.result_success(1)]


def test_secrets_are_masked_longest_first_and_short_ones_are_kept() -> None:
    masker = SecretMasker()
    masker.register("abcd")
    masker.register({"inner": ["abcdef", 7, "xyz"], "n": None})
    assert masker.mask("abcdef abcd abc xyz a.c") == "*** *** abc xyz a.c"
    channel = MemoryChannel()
    session = Session(channel)
    session.masker = masker
    session.log("token abcdef")
    assert sent(channel)[0]["msg"] == "token ***"


# -- the 4 GiB - 1 format limit ---------------------------------------------------------------


@pytest.fixture
def small_format_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """Pretend a 4-byte length can say at most 100 kB, so the limit path runs in memory."""
    monkeypatch.setattr(gust.protocol, "MAX_FRAME_FORMAT", 100_000)
    monkeypatch.setattr(gust.protocol._codec, "MAX_FRAME_FORMAT", 100_000)  # encode_frame's
    return 100_000


def _run_in_memory(task: str) -> list[dict[str, Any]]:
    channel = MemoryChannel(max_frame_size=gust.protocol.MAX_FRAME_FORMAT)
    session = Session(channel)
    signals = TaskSignals(channel, on_timeout=lambda exc: None)  # never installed in pytest
    calls.activate(session)
    try:
        frames = _TaskRun(session, signals, str(SANDBOX), "Sandbox", task).execute('{"run_id": 1}')
        session.write_final(frames)
    finally:
        calls.activate(None)
    return sent(channel)


def test_a_result_over_the_format_limit_fails_the_task(small_format_limit: int) -> None:
    frames = _run_in_memory("big_value")
    assert [f["type"] for f in frames] == ["error", "result"]
    error = frames[-1]["error"]
    assert error["message"].startswith("Task result cannot be sent: frame of ")
    assert f"over the protocol limit of {small_format_limit} bytes" in error["message"]
    assert error["type"] == "gust.protocol.LocalProtocolError"
    assert error["message"] in frames[0]["trace"]


def test_a_log_over_the_format_limit_fails_the_task(small_format_limit: int) -> None:
    frames = _run_in_memory("big_log")
    assert [f["type"] for f in frames] == ["error", "result"]
    error = frames[-1]["error"]
    assert error["message"] == "Task execution failed"
    assert error["type"] == "gust.protocol.LocalProtocolError"
    assert f"over the protocol limit of {small_format_limit} bytes" in error["details"]


# -- result values ----------------------------------------------------------------------------


@dataclasses.dataclass
class Row:
    name: str
    score: float


def test_unsupported_values_name_their_type_and_path() -> None:
    cases: list[tuple[Any, str, str]] = [
        ({"rows": [1, 2, 3, object()]}, "$.rows[3]", "'object'"),
        ({"a b": {1: {2j}}}, "$['a b']['1'][0]", "'complex'"),
        ({"x": Row("n", 1.0), "y": [Row("m", b"bytes")]}, "$.y[0].score", "'bytes'"),
        ({(1, 2): "tuple key"}, "$[(1, 2)]", "'tuple'"),
        ({1: "int", "1": "str"}, "$['1']", "also sent as '1'"),
        ({"n": 10**5000}, "$.n", "digits"),
    ]
    for value, path, fragment in cases:
        with pytest.raises(UnsupportedValueError) as info:
            to_json_value(value)
        assert info.value.path == path
        assert path in str(info.value) and fragment in str(info.value)


def test_cycles_and_deep_nesting_are_refused_with_a_path() -> None:
    loop: list[Any] = [1]
    loop.append({"again": loop})
    with pytest.raises(UnsupportedValueError, match=r"\$\[1\]\.again.*contains itself"):
        to_json_value(loop)
    deep: Any = "bottom"
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(UnsupportedValueError, match="nested more than"):
        to_json_value(deep)
    fine: Any = "bottom"
    for _ in range(MAX_DEPTH - 1):
        fine = {"k": fine}
    encode_frame({"v": to_json_value(fine)})  # the deepest accepted value still encodes


any_text = st.text(st.characters(codec=None, exclude_categories=()))  # lone surrogates too
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    any_text,
    st.decimals(allow_nan=True, allow_infinity=True),
    st.datetimes(),
    st.dates(),
    st.builds(object),
    st.builds(Row, st.text(max_size=3), st.floats()),
)
hashable = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5))
json_key = st.one_of(any_text, st.integers(), st.floats(), st.booleans(), st.none())
json_ish = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.frozensets(hashable, max_size=4),
        st.dictionaries(json_key, inner, max_size=4),
    ),
    max_leaves=20,
)


def _finite_only(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite_only(v) for v in value)
    if isinstance(value, dict):
        return all(_finite_only(v) for v in value.values())
    return True


@settings(max_examples=200, deadline=None)
@given(json_ish)
def test_any_value_encodes_as_a_frame_or_fails_naming_where(value: Any) -> None:
    warnings: list[str] = []
    try:
        data = to_json_value(value, warn=warnings.append)
    except UnsupportedValueError as exc:
        assert exc.path.startswith("$")
        assert exc.path in str(exc) and exc.type_name in str(exc)
        return
    frame = encode_frame({"type": "result", "ok": True, "data": {"value": data}})
    decoded = decode_payload(frame[4:])["data"]["value"]
    assert _finite_only(decoded)
    assert json.loads(json.dumps(decoded, allow_nan=False)) == decoded
    assert all(" at $" in w and "null" in w for w in warnings)


@settings(max_examples=50, deadline=None)
@given(st.datetimes(timezones=st.timezones()), st.decimals(allow_nan=False, allow_infinity=False))
def test_dates_and_decimals_round_trip_through_their_strings(
    when: datetime.datetime, amount: decimal.Decimal
) -> None:
    data = to_json_value({"when": when, "amount": amount})
    parsed = datetime.datetime.fromisoformat(data["when"])
    # ISO 8601 carries the wall time and the UTC offset (an ambiguous wall time in a zone with
    # DST never compares equal across zones, PEP 495, so compare the parts).
    assert parsed.replace(tzinfo=None) == when.replace(tzinfo=None)
    assert parsed.utcoffset() == when.utcoffset()
    assert decimal.Decimal(data["amount"]) == amount
