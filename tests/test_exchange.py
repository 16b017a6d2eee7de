"""The host-side exchange machine, in memory: no processes, no pipes (issue 11 item 1)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gust import protocol
from gust.harness import exchange as ex
from gust.harness.exchange import Exchange, LogBook

START = {"type": "start", "pid": 41}
OK = {"type": "result", "ok": True, "data": {"value": {"n": 1}}}
TRACE = {"type": "error", "ok": False, "trace": "Task execution failed: boom"}
FAILED = {"type": "result", "ok": False, "error": {"message": "Task execution failed"}}


def feed(machine: Exchange, *frames: dict[str, Any]) -> list[ex.Event]:
    events: list[ex.Event] = []
    for i, frame in enumerate(frames):
        events += machine.receive(frame, t=float(i))
    return events


def codes(events: list[ex.Event]) -> list[str]:
    return [e.code for e in events if isinstance(e, ex.Note)]


def test_a_clean_success():
    m = Exchange()
    events = feed(m, START, {"type": "log", "level": "info", "msg": "hi"}, OK)
    assert [type(e) for e in events] == [ex.Started, ex.Log, ex.Finished]
    verdict = m.conclude(0)
    assert (verdict.status, verdict.value, verdict.error, verdict.pid) == ("ok", {"n": 1}, None, 41)
    assert verdict.notes == []


def test_a_clean_failure_carries_the_trace():
    m = Exchange()
    feed(m, START, TRACE, FAILED)
    verdict = m.conclude(0)
    assert verdict.status == "error"
    assert verdict.error == {"message": "Task execution failed", "trace": TRACE["trace"]}
    assert verdict.notes == []


CASES = [
    # (frames, exit code, status, note codes, message fragment)
    ([OK], 0, "ok", [ex.START_NOT_FIRST], None),
    ([START, {"type": "start", "pid": 2}, OK], 0, "ok", [ex.START_NOT_FIRST], None),
    ([{"type": "start", "pid": "x"}, OK], 0, "ok", [ex.BAD_START], None),
    ([{"type": "start", "pid": True}, OK], 0, "ok", [ex.BAD_START], None),
    ([START, {"type": "log", "msg": 3}, OK], 0, "ok", [ex.BAD_LOG], None),
    (
        [START, {"type": "log", "msg": "m", "level": 1}, OK],
        0,
        "ok",
        [ex.BAD_LOG, ex.GUST_LEVEL],
        None,
    ),
    ([START, {"type": "log", "msg": "m", "level": "debug"}, OK], 0, "ok", [ex.GUST_LEVEL], None),
    ([START, {"type": "surprise"}, OK], 0, "ok", [ex.UNKNOWN_TYPE], None),
    ([START, {"type": "error", "trace": 5}, FAILED], 0, "error", [ex.BAD_ERROR], "Task execution"),
    ([START, {"type": "result", "ok": "yes"}], 0, "error", [ex.BAD_RESULT], "without a result"),
    ([START, FAILED], 0, "error", [ex.RESULT_WITHOUT_ERROR], "Task execution failed"),
    ([START, OK, OK], 0, "ok", [ex.SECOND_RESULT], None),
    (
        [START, OK, {"type": "log", "level": "info", "msg": "late"}],
        0,
        "ok",
        [ex.AFTER_RESULT],
        None,
    ),
    ([START, TRACE], 0, "error", [ex.TRACE_ONLY], "Task execution failed: boom"),
    ([START], 0, "error", [], "exited with status 0 without a result frame"),
    ([START], 3, "error", [], "exited with status 3 without a result"),
    ([START, OK], 1, "error", [], "exited with status 1 after its result frame"),
    ([START, OK], -9, "error", [], "killed by SIGKILL after its result frame"),
    ([START, {"type": "result", "ok": True}], 0, "ok", [ex.BAD_RESULT], None),
    ([START, {"type": "result", "ok": False, "error": "x"}], 0, "error", None, "x"),
]


@pytest.mark.parametrize(("frames", "code", "status", "notes", "message"), CASES)
def test_the_rules_table(frames, code, status, notes, message):
    m = Exchange()
    feed(m, *frames)
    verdict = m.conclude(code)
    assert verdict.status == status
    if notes is not None:
        assert sorted(set(m.note_codes)) == sorted(set(notes)), m.notes
    if message is not None:
        assert message in verdict.error["message"]
    else:
        assert verdict.error is None


def test_calls_are_answered_once_each_in_order():
    m = Exchange()
    events = feed(
        m,
        START,
        {"type": "call", "op": "get_secret_by_name", "name": "A"},
        {"type": "call", "op": "get_secret_by_name", "name": "B"},
    )
    first, second = [e for e in events if isinstance(e, ex.Call)]
    assert (first.seq, second.seq) == (0, 1)
    with pytest.raises(protocol.LocalProtocolError, match="while call 0 waits"):
        m.reply(second, protocol.reply_ok(2))
    data = m.reply(first, protocol.reply_ok(1))
    assert data == protocol.encode_frame(protocol.reply_ok(1))
    with pytest.raises(protocol.LocalProtocolError, match="while call 1 waits"):
        m.reply(first, protocol.reply_ok(1))  # a second reply to the same call
    m.reply(second, protocol.reply_error("secret_not_found"))
    assert m.waiting_calls == []
    with pytest.raises(protocol.LocalProtocolError, match="while no call waits"):
        m.reply(second, protocol.reply_ok(3))


def test_a_reply_must_have_a_boolean_ok():
    m = Exchange()
    (call,) = [e for e in feed(m, START, {"type": "call", "op": "x"}) if isinstance(e, ex.Call)]
    with pytest.raises(protocol.LocalProtocolError, match="ok true or false"):
        m.reply(call, {"type": "reply", "ok": 1})
    assert m.waiting_calls == [call]  # still owed


def test_a_callback_gets_no_replies_and_needs_no_start():
    m = Exchange(expect_result=False, answers_calls=False)
    events = feed(
        m,
        {"type": "log", "level": "info", "msg": "done"},
        {"type": "call", "op": "get_secret_by_name"},
    )
    assert codes(events) == [ex.NO_HOST]
    assert m.conclude(0).status == "ok"
    assert "its stderr says why" in Exchange(expect_result=False).conclude(1).error["message"]


@pytest.mark.parametrize("code", ["truncated", "oversize"])
def test_a_fatal_codec_error_is_a_violation_and_ends_the_reading(code):
    m = Exchange()
    feed(m, START)
    (event,) = m.receive_error(protocol.RemoteProtocolError(code, "broken"))
    assert isinstance(event, ex.Violation)
    assert feed(m, OK) == []  # nothing more is read
    verdict = m.conclude(-9)
    assert verdict.status == "error"
    assert verdict.protocol_error == {"code": code, "message": "broken"}
    assert verdict.error["message"] == f"protocol error {code}: broken; killed by SIGKILL"


@pytest.mark.parametrize("code", ["bad_utf8", "bad_json", "not_object"])
def test_an_undecodable_frame_is_dropped_as_gust_drops_it(code):
    m = Exchange()
    feed(m, START)
    assert codes(m.receive_error(protocol.RemoteProtocolError(code, "x"))) == [ex.DROPPED_FRAME]
    feed(m, OK)
    assert m.conclude(0).status == "ok"


def test_a_timeout_after_the_result_keeps_the_value():
    m = Exchange()
    feed(m, START, OK)
    verdict = m.conclude(-9, timed_out=2.0, how="SIGTERM, then SIGKILL")
    assert verdict.status == "timeout"
    assert verdict.value == {"n": 1}
    assert "SIGTERM, then SIGKILL" in verdict.error["message"]
    assert any("did not exit" in n for n in verdict.notes)


def test_a_timeout_after_a_failure_keeps_the_task_error():
    m = Exchange()
    feed(m, START, TRACE, FAILED)
    verdict = m.conclude(-15, timed_out=1.0)
    assert verdict.error["task_error"] == FAILED["error"]


def test_notes_are_capped():
    m = Exchange()
    feed(m, START, *({"type": "odd"} for _ in range(150)))
    assert len(m.notes) == 101 and m.notes[-1] == "more warnings dropped"


def test_the_log_book_keeps_the_first_and_last_lines_and_says_how_many_it_left_out():
    book = LogBook(max_lines=6, max_msg=10)
    for i in range(10):
        book.add({"t": float(i), "level": "info", "msg": f"line {i}"})
    book.add({"t": 10.0, "level": "info", "msg": "x" * 25})
    kept = [e["msg"] for e in book.entries()]
    assert kept[:3] == ["line 0", "line 1", "line 2"]
    assert "5 log lines (30 characters) left out" in kept[3]
    assert kept[4:6] == ["line 8", "line 9"]
    assert kept[6].startswith("x" * 10) and "15 more characters" in kept[6]
    assert len(book) == 6


def test_the_log_book_is_bounded_in_characters_too():
    book = LogBook(max_lines=1000, max_chars=100, max_msg=30)
    for i in range(50):
        book.add({"t": float(i), "level": "info", "msg": f"{i:02d}" + "y" * 18})
    entries = book.entries()
    assert sum(len(e["msg"]) for e in entries if e["level"] == "info") <= 100
    assert entries[0]["msg"].startswith("00") and entries[-1]["msg"].startswith("49")
    assert book.dropped == 50 - len(book)


@given(st.lists(st.text(max_size=40), max_size=200), st.integers(1, 20), st.integers(1, 200))
def test_the_log_book_keeps_order_and_accounts_for_every_line(msgs, lines, chars):
    book = LogBook(max_lines=lines, max_chars=chars, max_msg=50)
    for i, m in enumerate(msgs):
        book.add({"t": float(i), "level": "info", "msg": m})
    kept = [e for e in book.entries() if not e["msg"].startswith("[gust harness]")]
    assert len(kept) + book.dropped == len(msgs)
    times = [e["t"] for e in kept]
    assert times == sorted(times)
    assert len(book) <= max(lines, 2) + 1


# -- any sequence ends in exactly one outcome --------------------------------------------------

frames_st = st.one_of(
    st.just(START),
    st.just(OK),
    st.just(TRACE),
    st.just(FAILED),
    st.builds(lambda m: {"type": "log", "level": "info", "msg": m}, st.text(max_size=5)),
    st.builds(lambda op: {"type": "call", "op": op, "name": "A"}, st.sampled_from(["a", "b"])),
    st.dictionaries(st.text(max_size=4), st.none() | st.integers() | st.text(max_size=3)),
    st.sampled_from(["truncated", "oversize", "bad_utf8", "bad_json", "not_object"]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(frames_st, max_size=12),
    st.integers(-15, 3),
    st.sampled_from([None, 1.5]),
    st.booleans(),
)
def test_any_frame_sequence_ends_in_exactly_one_verdict(items, code, timed_out, cancelled):
    m = Exchange()
    violations = 0
    for item in items:
        if isinstance(item, str):
            events = m.receive_error(protocol.RemoteProtocolError(item, "x"))
        else:
            events = m.receive(item)
            for e in events:
                if isinstance(e, ex.Call):
                    m.reply(e, protocol.reply_ok(None))
        violations += sum(isinstance(e, ex.Violation) for e in events)
    assert violations <= 1
    verdict = m.conclude(code, timed_out=timed_out, cancelled=cancelled)
    assert verdict.status in ("ok", "error", "timeout")
    assert (verdict.status == "ok") == (verdict.error is None)
    if verdict.status == "ok":
        assert code == 0 and timed_out is None and not cancelled and violations == 0
        assert m.result is not None and m.result["ok"] is True
    if violations:
        assert verdict.protocol_error is not None and verdict.status != "ok"
    assert isinstance(verdict.error, (dict, type(None)))
    if verdict.error is not None:
        assert isinstance(verdict.error["message"], str)
