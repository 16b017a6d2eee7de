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
    assert len(book) <= max(lines, 2)


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


# -- what each note, failure and log line says -------------------------------------------------

LOG_INFO = {"type": "log", "level": "info", "msg": "hi"}

NOTE_MESSAGES = [
    # (frames, [(code, message), ...] in the order they are noted)
    (
        [OK],
        [
            (
                ex.START_NOT_FIRST,
                "the first frame is 'result', not 'start': Gust cannot cancel the task until a "
                "start frame arrives",
            )
        ],
    ),
    (
        [LOG_INFO, START, OK],
        [
            (
                ex.START_NOT_FIRST,
                "the first frame is 'log', not 'start': Gust cannot cancel the task until a "
                "start frame arrives",
            ),
            (
                ex.START_NOT_FIRST,
                "the start frame is not the first frame: Gust cannot cancel the task before it "
                "arrives",
            ),
        ],
    ),
    (
        [{"type": "start", "pid": "x"}, OK],
        [(ex.BAD_START, "start: \"pid\" must be an integer, got 'x'")],
    ),
    (
        [START, {"type": "log", "msg": 3}, OK],
        [
            (
                ex.BAD_LOG,
                "log: \"msg\" must be a string (msg 3, level 'info'): it breaks Gust's logger",
            )
        ],
    ),
    (
        [START, {"type": "log", "msg": "m", "level": 1}, OK],
        [
            (ex.BAD_LOG, "log: \"level\" must be a string (msg 'm', level 1)"),
            (
                ex.GUST_LEVEL,
                "a log line at level '1': Gust stores every log line as info (it ignores the "
                "level)",
            ),
        ],
    ),
    (
        [
            START,
            {"type": "log", "level": "debug", "msg": "a"},
            {"type": "log", "level": "warning", "msg": "b"},
            OK,
        ],
        [
            (
                ex.GUST_LEVEL,
                "a log line at level 'debug': Gust stores every log line as info (it ignores the "
                "level)",
            )
        ],
    ),
    (
        [START, {"type": "surprise"}, OK],
        [(ex.UNKNOWN_TYPE, "frame of unknown type 'surprise' ignored (Gust logs it as unknown)")],
    ),
    (
        [START, {"type": "error", "trace": 5}, FAILED],
        [(ex.BAD_ERROR, 'error: "ok" must be false: it breaks Gust\'s worker')],
    ),
    (
        [START, {"type": "result", "ok": "yes"}],
        [(ex.BAD_RESULT, "result: \"ok\" must be true or false, got 'yes': the frame is ignored")],
    ),
    (
        [START, {"type": "result", "ok": True}],
        [
            (
                ex.BAD_RESULT,
                'result: a successful result needs "data": {"value": ...}; taken as far as it goes',
            )
        ],
    ),
    (
        [START, FAILED],
        [
            (
                ex.RESULT_WITHOUT_ERROR,
                "result ok:false without an error frame before it: Gust does not read it and "
                "records port_exit: died with: 0, losing the failure",
            )
        ],
    ),
    (
        [START, OK, OK],
        [(ex.SECOND_RESULT, "more than one result frame: the last one counts")],
    ),
    (
        [START, OK, LOG_INFO, {"type": "surprise"}],
        [
            (ex.UNKNOWN_TYPE, "frame of unknown type 'surprise' ignored (Gust logs it as unknown)"),
            (ex.AFTER_RESULT, "2 frame(s) after the result frame"),
        ],
    ),
    (
        [START, TRACE],
        [(ex.TRACE_ONLY, "no result frame, only an error frame (an older runtime?)")],
    ),
]


@pytest.mark.parametrize(("frames", "notes"), NOTE_MESSAGES)
def test_each_broken_rule_is_noted_with_a_message_that_says_why(frames, notes):
    m = Exchange()
    events = feed(m, *frames)
    as_received = [(e.code, e.message) for e in events if isinstance(e, ex.Note)]
    verdict = m.conclude(0)
    assert list(zip(m.note_codes, verdict.notes, strict=True)) == notes
    assert as_received == notes[: len(as_received)]


def test_a_callback_is_told_no_host_answers_its_calls():
    m = Exchange(expect_result=False, answers_calls=False)
    events = feed(m, {"type": "call", "op": "get_secret_by_name", "name": "A"})
    assert events == [
        ex.Note(
            ex.NO_HOST,
            "a call of 'get_secret_by_name' where no host answers calls (Gust answers none in "
            "`run done`; the call raised NotInTaskError); no reply sent",
        )
    ]
    assert m.waiting_calls == []


def test_a_dropped_frame_is_noted_with_its_codec_error():
    m = Exchange()
    feed(m, START)
    events = m.receive_error(protocol.RemoteProtocolError("bad_json", "not JSON at byte 3"))
    message = (
        "frame dropped, protocol error bad_json: not JSON at byte 3 (Gust drops it with a "
        "warning too)"
    )
    assert events == [ex.Note(ex.DROPPED_FRAME, message)]
    assert m.violation is None
    feed(m, OK)
    assert m.conclude(0).notes == [message]


def test_after_a_violation_nothing_more_is_judged():
    m = Exchange()
    feed(m, START)
    (first,) = m.receive_error(protocol.RemoteProtocolError("oversize", "frame of 9 bytes"))
    assert first == ex.Violation("oversize", "frame of 9 bytes")
    assert m.receive_error(protocol.RemoteProtocolError("truncated", "later")) == []
    assert m.receive_error(protocol.RemoteProtocolError("bad_json", "later")) == []
    assert m.violation == first
    verdict = m.conclude(-9, stderr_tail="boom")
    assert verdict.notes == []
    assert verdict.error == {
        "message": "protocol error oversize: frame of 9 bytes; killed by SIGKILL",
        "exit_code": -9,
        "protocol_error": {"code": "oversize", "message": "frame of 9 bytes"},
        "stderr_tail": "boom",
    }


def test_the_events_carry_what_the_child_sent():
    m = Exchange()
    call_frame = {"type": "call", "op": "get_secret_by_name", "name": "A"}
    events = [
        *m.receive(START, t=0.5),
        *m.receive({"type": "log", "level": "info", "msg": "hi"}, t=1.25),
        *m.receive(call_frame),
        *m.receive(TRACE),
        *m.receive(FAILED),
    ]
    assert events == [
        ex.Started(41),
        ex.Log("info", "hi", 1.25),
        ex.Call(call_frame, 0),
        ex.Trace("Task execution failed: boom"),
        ex.Finished(False, FAILED),
    ]
    assert events[2].op == "get_secret_by_name"
    assert events[1].entry() == {"t": 1.25, "level": "info", "msg": "hi"}


def test_a_log_line_that_breaks_the_rules_is_still_shown():
    m = Exchange()
    feed(m, START)
    assert m.receive({"type": "log", "msg": {"a": [1]}, "level": 7}, t=2.0)[-1] == ex.Log(
        "7", '{"a": [1]}', 2.0
    )
    assert m.receive({"type": "log", "msg": None})[-1] == ex.Log("info", "null", 0.0)
    assert m.note_codes == [ex.BAD_LOG, ex.GUST_LEVEL, ex.BAD_LOG]
    assert m.notes[-1] == (
        "log: \"msg\" must be a string (msg None, level 'info'): it breaks Gust's logger"
    )


def test_an_error_frame_trace_that_is_not_text_is_shown_as_json():
    m = Exchange()
    events = feed(m, START, {"type": "error", "ok": False, "trace": ["a", 1]})
    assert events[-1] == ex.Trace('["a", 1]')
    verdict = m.conclude(0)
    assert verdict.error == {"message": '["a", 1]', "trace": '["a", 1]'}


def test_a_trace_only_failure_shows_the_first_line_of_the_trace():
    m = Exchange()
    feed(m, START, {"type": "error", "ok": False, "trace": "ValueError: bad\n  at line 3\n"})
    assert m.conclude(0).error == {
        "message": "ValueError: bad",
        "trace": "ValueError: bad\n  at line 3\n",
    }


def test_a_second_start_gives_the_pid_to_cancel():
    m = Exchange()
    feed(m, START, {"type": "start", "pid": 7}, OK)
    assert m.conclude(0).pid == 7
    m = Exchange()
    feed(m, START, {"type": "start", "pid": "x"}, OK)
    assert m.conclude(0).pid == 41  # a bad start does not replace a good one


def test_the_host_may_add_notes_of_its_own():
    m = Exchange()
    assert m.note("answered unknown_op where Gust sends nothing") is None
    m.note("left a process running", code=ex.NO_EXIT)
    assert m.note_codes == [ex.HOST_NOTE, ex.NO_EXIT]
    assert m.notes == ["answered unknown_op where Gust sends nothing", "left a process running"]


def test_past_the_cap_notes_are_still_counted_and_returned():
    m = Exchange()
    feed(m, START, *({"type": "odd"} for _ in range(149)))
    last = m.receive({"type": "odd"})
    assert last == [
        ex.Note(ex.UNKNOWN_TYPE, "frame of unknown type 'odd' ignored (Gust logs it as unknown)")
    ]
    assert len(m.note_codes) == 150
    assert m.notes[99].startswith("frame of unknown type") and len(m.notes) == 101


# -- the verdict of each way a child ends ---------------------------------------------------------


def test_an_interrupted_task_says_what_its_process_group_got():
    m = Exchange()
    feed(m, START, TRACE, FAILED)
    verdict = m.conclude(-15, stderr_tail="bye", interrupted=True, timed_out=3.0, cancelled=True)
    assert (verdict.status, verdict.value, verdict.pid) == ("interrupted", None, 41)
    assert verdict.error == {
        "message": "interrupted: its process group got SIGTERM",
        "exit_code": -15,
        "protocol_error": None,
        "stderr_tail": "bye",
        "task_error": FAILED["error"],
    }
    m = Exchange()
    feed(m, START, OK)
    verdict = m.conclude(-9, interrupted=True, how="SIGTERM, then SIGKILL")
    assert (verdict.status, verdict.value) == ("interrupted", None)
    assert verdict.error == {
        "message": "interrupted: its process group got SIGTERM, then SIGKILL",
        "exit_code": -9,
        "protocol_error": None,
        "stderr_tail": "",
    }
    assert verdict.notes == []


def test_a_timeout_says_how_long_and_what_was_sent():
    m = Exchange()
    feed(m, START)
    verdict = m.conclude(-15, stderr_tail="slow", timed_out=2.0, cancelled=True)
    assert (verdict.status, verdict.value) == ("timeout", None)
    assert verdict.error == {
        "message": "timed out after 2 s; its process group got SIGTERM",
        "exit_code": -15,
        "protocol_error": None,
        "stderr_tail": "slow",
    }
    assert verdict.notes == []


def test_a_timeout_after_the_result_notes_that_gust_would_hang():
    m = Exchange()
    feed(m, START, OK)
    verdict = m.conclude(-9, timed_out=0.25, how="SIGTERM, then SIGKILL")
    assert verdict.error["message"] == (
        "timed out after 0.25 s; its process group got SIGTERM, then SIGKILL"
    )
    assert "task_error" not in verdict.error
    assert m.note_codes == [ex.NO_EXIT]
    assert verdict.notes == [
        "the task sent its result but did not exit: under Gust, which records an outcome only "
        "when the process exits, this task would hang"
    ]


def test_a_timeout_after_a_failed_result_keeps_no_value_and_notes_nothing_more():
    m = Exchange()
    feed(m, START, TRACE, FAILED)
    verdict = m.conclude(-15, timed_out=1.0)
    assert verdict.value is None and verdict.notes == []


def test_a_cancelled_task_fails_whatever_it_sent():
    m = Exchange()
    feed(m, START, OK)
    verdict = m.conclude(-9, stderr_tail="t", cancelled=True)
    assert (verdict.status, verdict.value, verdict.pid) == ("error", None, 41)
    assert verdict.error == {
        "message": "cancelled: its process group was killed",
        "exit_code": -9,
        "protocol_error": None,
        "stderr_tail": "t",
    }


@pytest.mark.parametrize(
    ("frames", "code", "message"),
    [
        (
            [START],
            3,
            "exited with status 3 without a result (Gust records port_exit: died with: 3)",
        ),
        (
            [START, OK],
            -9,
            "killed by SIGKILL after its result frame (Gust records port_exit: died with: -9)",
        ),
        ([START, TRACE], 0, None),
        ([START], 0, "exited with status 0 without a result frame"),
    ],
)
def test_a_failed_exit_says_how_the_child_ended(frames, code, message):
    m = Exchange()
    feed(m, *frames)
    verdict = m.conclude(code, stderr_tail="last words")
    assert verdict.status == "error" and verdict.value is None and verdict.protocol_error is None
    if message is not None:
        assert verdict.error == {
            "message": message,
            "exit_code": code,
            "protocol_error": None,
            "stderr_tail": "last words",
        }


def test_a_callback_is_judged_by_its_exit_status_alone():
    m = Exchange(expect_result=False)
    feed(m, LOG_INFO)
    assert m.note_codes == []
    verdict = m.conclude(2, stderr_tail="Traceback")
    assert verdict.error == {
        "message": "exited with status 2; its stderr says why",
        "exit_code": 2,
        "protocol_error": None,
        "stderr_tail": "Traceback",
    }
    verdict = Exchange(expect_result=False).conclude(0)
    assert (verdict.status, verdict.error, verdict.value) == ("ok", None, None)


def test_a_failed_result_is_the_error_gust_shows():
    error = {"message": "Task execution failed", "type": "ValueError", "trace": "its own"}
    failed = {"type": "result", "ok": False, "error": error}
    m = Exchange()
    feed(m, START, TRACE, failed)
    verdict = m.conclude(0)
    assert verdict.error == error  # its own trace is kept
    m = Exchange()
    feed(m, START, TRACE, {"type": "result", "ok": False, "error": {"message": 5}})
    assert m.conclude(0).error == {"message": "{'message': 5}", "trace": TRACE["trace"]}
    m = Exchange()
    feed(m, START, {"type": "result", "ok": False})
    assert m.conclude(0).error == {"message": "None"}


def test_the_verdict_leaves_the_frames_the_host_recorded_as_they_came():
    failed = {"type": "result", "ok": False, "error": {"message": "Task execution failed"}}
    m = Exchange()
    feed(m, START, TRACE, failed)
    verdict = m.conclude(0)
    verdict.error["extra"] = 1
    assert failed == {"type": "result", "ok": False, "error": {"message": "Task execution failed"}}


@pytest.mark.parametrize(
    ("result", "value"),
    [
        ({"type": "result", "ok": True, "data": {"value": None}}, None),
        ({"type": "result", "ok": True, "data": {"value": [1, "a"]}}, [1, "a"]),
        ({"type": "result", "ok": True, "data": {"other": 1}}, None),
        ({"type": "result", "ok": True, "data": [1]}, None),
    ],
)
def test_a_successful_result_gives_its_value(result, value):
    m = Exchange()
    feed(m, START, result)
    verdict = m.conclude(0)
    assert (verdict.status, verdict.value, verdict.error) == ("ok", value, None)


def test_a_reply_that_cannot_be_sent_leaves_the_call_waiting():
    m = Exchange()
    (call,) = [e for e in feed(m, START, {"type": "call", "op": "x"}) if isinstance(e, ex.Call)]
    with pytest.raises(protocol.LocalProtocolError) as info:
        m.reply(call, ["ok"])  # type: ignore[arg-type]
    assert info.value.code == "bad_reply"
    assert str(info.value) == "a reply must be an object with ok true or false, not ['ok']"
    with pytest.raises(protocol.LocalProtocolError):
        m.reply(call, {"type": "reply", "ok": True, "data": float("nan")})
    assert m.waiting_calls == [call]
    other = ex.Call({"type": "call", "op": "x"}, 0)
    with pytest.raises(protocol.LocalProtocolError) as info:
        m.reply(other, protocol.reply_ok(1))
    assert info.value.code == "reply_out_of_order"
    assert str(info.value) == "a reply to call 0 while call 0 waits for one"
    assert m.reply(call, protocol.reply_ok(1)) == protocol.encode_frame(protocol.reply_ok(1))


# -- the log book's bounds ---------------------------------------------------------------------


def line(i: int, msg: str | None = None) -> dict[str, Any]:
    return {"t": float(i), "level": "info", "msg": f"line {i}" if msg is None else msg}


def test_the_log_book_cuts_a_line_at_64_kib_by_default():
    book = LogBook()
    whole = "a" * (64 * 1024)
    assert book.add(line(0, whole))["msg"] == whole
    entry = line(1, "b" * (64 * 1024 + 3))
    kept = book.add(entry)
    assert kept == {
        "t": 1.0,
        "level": "info",
        "msg": "b" * (64 * 1024) + "… [3 more characters not kept by the host]",
    }
    assert len(entry["msg"]) == 64 * 1024 + 3  # the caller's entry is left alone


def test_the_log_book_keeps_10000_lines_by_default():
    book = LogBook()
    for i in range(10_001):
        book.add(line(i))
    assert len(book) == 10_000 and (book.dropped, book.dropped_chars) == (1, len("line 5000"))
    entries = book.entries()
    assert [e["msg"] for e in entries[4999:5002]] == [
        "line 4999",
        "[gust harness] 1 log lines (9 characters) left out here: the host keeps the first and "
        "the last lines",
        "line 5001",
    ]
    assert entries[5000]["level"] == "warning" and entries[5000]["t"] == 5001.0


def test_the_log_book_keeps_8_mib_of_text_by_default():
    book = LogBook()
    chunk = "c" * (64 * 1024)
    for i in range(200):
        book.add(line(i, chunk))
    assert len(book.head) == 64 and len(book.tail) == 64  # 4 MiB each
    assert book.dropped == 200 - 128 and book.dropped_chars == 72 * 64 * 1024


def test_the_log_book_fills_each_half_up_to_its_budget_exactly():
    book = LogBook(max_lines=4, max_chars=10)
    book.add(line(0, "12345"))  # exactly half the characters
    book.add(line(1, "6"))
    assert ([e["msg"] for e in book.head], [e["msg"] for e in book.tail]) == (["12345"], ["6"])
    book.add(line(2, "7890"))  # the tail holds 5 characters too
    assert [e["msg"] for e in book.tail] == ["6", "7890"] and book.dropped == 0
    book.add(line(3, "x"))
    assert [e["msg"] for e in book.tail] == ["7890", "x"]
    assert (book.dropped, book.dropped_chars) == (1, 1)
    book = LogBook(max_lines=4)
    for i in range(4):
        book.add(line(i))
    assert (len(book.head), len(book.tail), book.dropped) == (2, 2, 0)
    book = LogBook(max_lines=1, max_chars=1)
    for i in range(3):
        book.add(line(i, "z"))
    assert (len(book.head), len(book.tail), book.dropped) == (1, 1, 1)


def test_the_log_book_once_past_its_head_keeps_lines_in_order():
    book = LogBook(max_lines=100, max_chars=10)
    for i, msg in enumerate(["1234", "123", "1"]):
        book.add(line(i, msg))
    assert [e["msg"] for e in book.entries()] == ["1234", "123", "1"]
    assert [e["msg"] for e in book.head] == ["1234"]


def test_the_left_out_note_has_a_time_even_when_the_tail_is_empty():
    book = LogBook(max_chars=10)
    book.add(line(3, "ab"))
    book.add(line(4, "x" * 20))  # more than the tail's half: left out at once
    assert len(book.tail) == 0
    note = book.entries()[-1]
    assert (note["t"], note["level"]) == (3.0, "warning")
    assert note["msg"].startswith("[gust harness] 1 log lines (20 characters) left out here")
    book = LogBook(max_chars=10)
    book.add(line(5, "x" * 20))
    assert [(e["t"], e["level"]) for e in book.entries()] == [(0.0, "warning")]
    assert LogBook().entries() == []


@pytest.mark.parametrize("budget", [1, 2, 3, 4, 5])
def test_a_small_log_book_keeps_equal_halves_within_its_budget(budget):
    """Two lines (or characters) at least: one first, one last."""
    book = LogBook(max_lines=budget)
    for i in range(10):
        book.add(line(i))
    assert len(book.head) == len(book.tail) and len(book) <= max(budget, 2)
    book = LogBook(max_chars=budget)
    for i in range(10):
        book.add(line(i, "c"))
    assert len(book.head) == len(book.tail) and len(book) <= max(budget, 2)


def test_calls_are_counted_in_the_order_they_came():
    m = Exchange()
    events = feed(
        m, START, *({"type": "call", "op": "get_secret_by_name", "name": n} for n in "ABC")
    )
    calls = [e for e in events if isinstance(e, ex.Call)]
    assert [(c.seq, c.frame["name"]) for c in calls] == [(0, "A"), (1, "B"), (2, "C")]
    assert m.waiting_calls == calls


def test_a_child_that_never_started_has_no_pid():
    m = Exchange(expect_result=False)
    feed(m, LOG_INFO)
    assert m.conclude(0).pid is None
    m = Exchange()
    feed(m, {"type": "start", "pid": "x"})
    assert m.conclude(1).pid is None
