"""The task's session (gust.calls) in memory: calls matched to replies by order, late replies
skipped, a host breaking the order found out, masking of what the session sends."""

from __future__ import annotations

import os
import re
import threading
import time

import pytest
from _host import ChannelPair

from gust import calls, protocol
from gust._channel import FdChannel, MemoryChannel
from gust.calls import Session
from gust.errors import (
    CallError,
    CallTimeoutError,
    HostGoneError,
    HostProtocolError,
    LogLevelError,
    NotInTaskError,
)
from gust.masking import SecretMasker
from gust.protocol import reply_ok


def test_the_late_reply_of_a_timed_out_call_is_skipped(channel_pair: ChannelPair) -> None:
    session = channel_pair.session
    session.call_timeout = 0.05
    with pytest.raises(CallTimeoutError, match=r"0\.05 s \(GUST_CALL_TIMEOUT\).*'first'"):
        session.call(protocol.call_get_secret("first"), "get_secret_by_name('first')")
    channel_pair.reply(reply_ok("late answer to first"))
    channel_pair.reply({"type": "note", "unknown": True})  # not a reply: ignored

    def answer_once_asked() -> None:  # a host answers a call only once it has seen it
        deadline = time.monotonic() + 10
        while len(channel_pair.sent()) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        channel_pair.reply(reply_ok("answer to second"))

    host = threading.Thread(target=answer_once_asked)
    host.start()
    got = session.call(protocol.call_get_secret("second"), "get_secret_by_name('second')")
    host.join()
    assert got == "answer to second"


def test_a_reply_nobody_asked_for_is_a_protocol_error_for_every_later_call(
    channel_pair: ChannelPair,
) -> None:
    session = channel_pair.session
    channel_pair.reply(reply_ok("unasked"))
    call = protocol.call_get_secret("name")
    for _ in range(2):  # the order of replies cannot be trusted any more
        with pytest.raises(HostProtocolError, match=r"reply #1 but only 0 call\(s\) were made"):
            session.call(call, "get_secret_by_name('name')")
    assert channel_pair.sent() == []  # no call went out: its answer could not be told apart
    session.log("logs still go out")
    assert channel_pair.sent() == [protocol.log_frame("logs still go out")]


def test_end_of_input_during_a_call_raises_at_once_naming_it(channel_pair: ChannelPair) -> None:
    channel_pair.close()
    with pytest.raises(HostGoneError, match=r"get_task_by_name_run\('up', 3\)"):
        channel_pair.session.call(protocol.call_get_task("up", 3), "get_task_by_name_run('up', 3)")


def test_nothing_can_be_written_after_the_final_frames(channel_pair: ChannelPair) -> None:
    channel_pair.channel.write_final([protocol.encode_frame(protocol.result_success(1))])
    with pytest.raises(HostGoneError, match="final frame"):
        channel_pair.session.log("too late")
    assert channel_pair.sent() == [protocol.result_success(1)]


def test_secrets_are_masked_longest_first_and_short_ones_are_kept(
    channel_pair: ChannelPair,
) -> None:
    masker = SecretMasker()
    masker.register("abcd")
    masker.register({"inner": ["abcdef", 7, "xyz"], "n": None})
    assert masker.mask("abcdef abcd abc xyz a.c") == "*** *** abc xyz a.c"
    channel_pair.session.masker = masker
    channel_pair.session.log("token abcdef")
    assert channel_pair.sent()[0]["msg"] == "token ***"


@pytest.mark.parametrize("level", [5, None, b"info", ["info"]])
def test_a_level_that_is_not_a_string_is_refused_naming_it(
    channel_pair: ChannelPair, level: object
) -> None:
    with pytest.raises(LogLevelError, match=f"not {re.escape(repr(level))}$"):
        calls.log("hello", level=level)  # type: ignore[arg-type]
    assert channel_pair.sent() == []


def test_legacy_frames_go_through_the_active_session(channel_pair: ChannelPair) -> None:
    calls.send_frame({"type": "telemetry", "n": 1})
    assert channel_pair.sent() == [{"type": "telemetry", "n": 1}]
    channel_pair.reply(reply_ok("raw"))
    assert calls._read_frame() == reply_ok("raw")
    channel_pair.session.call_timeout = 0.05
    guard = threading.Timer(10, channel_pair.close)  # never wait past it, whatever happens
    guard.start()
    try:
        with pytest.raises(CallTimeoutError) as info:
            calls._read_frame()
    finally:
        guard.cancel()
    assert str(info.value) == "no answer within 0.05 s while waiting for a frame from the host"


def test_legacy_frames_without_a_session_use_stdout_and_stdin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As earlier releases did: frames out on the process's stdout, replies in on its stdin."""
    out_r, out_w = os.pipe()
    in_r, in_w = os.pipe()
    os.write(in_w, protocol.encode_frame(reply_ok("from stdin")))
    os.close(in_w)
    monkeypatch.setattr(calls, "_fallback", None)
    with open(out_w, "w") as stdout, open(in_r) as stdin, open(out_r, "rb") as frames:
        monkeypatch.setattr("sys.stdout", stdout)
        monkeypatch.setattr("sys.stdin", stdin)
        calls.send_frame({"type": "telemetry"})
        calls.send_frame({"type": "telemetry", "n": 2})
        assert calls._read_frame() == reply_ok("from stdin")
        with pytest.raises(HostGoneError) as info:
            calls._read_frame()
        assert str(info.value) == (
            "the host closed the channel while we waited for a frame from the host"
        )
        stdout.close()
        decoder = protocol.FrameDecoder()
        decoder.feed(frames.read())
        assert decoder.frames() == [{"type": "telemetry"}, {"type": "telemetry", "n": 2}]


def test_get_task_by_name_run_names_itself_in_every_refusal(channel_pair: ChannelPair) -> None:
    op = "get_task_by_name_run"
    with pytest.raises(CallError) as info:
        calls.get_task_by_name_run(7, 1)  # type: ignore[arg-type]
    assert (str(info.value), info.value.op) == (f"{op}() takes the name as a str, not int", op)
    long = "t" * (protocol.MAX_TEXT + 1)
    with pytest.raises(CallError) as info:
        calls.get_task_by_name_run(long, 1)
    assert str(info.value) == (
        f"{op}() name of {len(long)} characters is over the limit of {protocol.MAX_TEXT}"
    )
    assert info.value.op == op
    channel_pair.close()
    with pytest.raises(HostGoneError):  # a name of exactly the limit is asked for
        calls.get_task_by_name_run("t" * protocol.MAX_TEXT, 1)
    with pytest.raises(HostGoneError) as info:
        calls.get_task_by_name_run("up", 3)
    assert str(info.value) == (
        f"the host closed the channel while we waited for the reply to {op}('up', 3)"
    )
    calls.activate(None)
    with pytest.raises(NotInTaskError) as info:
        calls.get_task_by_name_run("up", 3)
    assert str(info.value).startswith(f"{op} needs a host to answer it: ")
    assert info.value.op == op


def test_a_secret_asked_for_is_returned_and_masked_in_every_later_log(
    channel_pair: ChannelPair,
) -> None:
    secret = {"id": 1, "name": "DB", "value_type": "string", "value": "pa55word!"}
    replies = [reply_ok(secret), protocol.reply_error("secret_not_found")]

    def answer_each_call() -> None:  # a host answers a call only once it has seen it
        deadline = time.monotonic() + 10
        for n, reply in enumerate(replies, start=1):
            while len(channel_pair.sent()) < 2 * n - 1 and time.monotonic() < deadline:
                time.sleep(0.005)
            channel_pair.reply(reply)

    host = threading.Thread(target=answer_each_call)
    host.start()
    assert calls.get_secret_by_name("DB") == secret
    calls.log("connecting with pa55word!")
    assert calls.get_secret_by_name("NOPE") is None
    host.join()
    assert channel_pair.sent() == [
        protocol.call_get_secret("DB"),
        protocol.log_frame("connecting with ***"),
        protocol.call_get_secret("NOPE"),
    ]
    op = "get_secret_by_name"
    with pytest.raises(CallError) as info:
        calls.get_secret_by_name(None)  # type: ignore[arg-type]
    assert (str(info.value), info.value.op) == (f"{op}() takes the name as a str, not NoneType", op)
    calls.activate(None)
    with pytest.raises(NotInTaskError) as info:
        calls.get_secret_by_name("DB")
    assert str(info.value).startswith(f"{op} needs a host to answer it: ")
    assert info.value.op == op


def test_a_forked_child_logs_to_stderr_refuses_calls_and_lets_go_of_the_pipes(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """What a process forked from the task (``multiprocessing``) gets: its session detached."""
    out_r, out_w = os.pipe()
    in_r, in_w = os.pipe()
    os.close(in_r)  # already closed in the child: detaching must not fail on it
    session = calls.Session(FdChannel(out_w, in_r))
    session.detach_after_fork()
    with pytest.raises(OSError):
        os.fstat(out_w)  # the host's pipe is no longer held open by the child
    os.close(in_w)
    assert os.read(out_r, 100) == b""  # end of file: the child held no writer
    os.close(out_r)
    session.log("child line", "warning")
    with pytest.raises(NotInTaskError) as info:
        session.call(protocol.call_get_secret("x"), "get_secret_by_name('x')")
    assert str(info.value) == (
        "get_secret_by_name('x') cannot be answered here: "
        "a process forked from the task has no host channel"
    )
    out, err = capfd.readouterr()
    assert (out, err) == ("", "[gust warning] child line\n")  # the refused call wrote nothing


def test_the_call_timeout_is_read_from_the_environment_or_refused_naming_the_setting() -> None:
    assert calls.call_timeout_from_env({}) is None
    assert calls.call_timeout_from_env({"GUST_CALL_TIMEOUT": "  "}) is None
    assert calls.call_timeout_from_env({"GUST_CALL_TIMEOUT": " 2.5 "}) == 2.5
    assert calls.call_timeout_from_env({"GUST_CALL_TIMEOUT": "1e-3"}) == 0.001
    for raw in ["0", "-1", "nan", "inf", "soon", "1s"]:
        with pytest.raises(ValueError) as info:
            calls.call_timeout_from_env({"GUST_CALL_TIMEOUT": f" {raw}"})
        assert str(info.value) == (
            f"GUST_CALL_TIMEOUT must be a positive number of seconds, not {raw!r}"
        )


def test_a_line_over_the_limit_is_masked_before_it_is_cut(channel_pair: ChannelPair) -> None:
    """Masking first shortens the line, so text past the raw limit can end up kept: nothing of
    a secret that straddles the limit shows, and the note counts the whole line."""
    secret = "hunter2-secret"
    assert channel_pair.session.clean("no secret yet") == "no secret yet"
    channel_pair.session.masker.register(secret)
    start = (secret + " ") * 10  # masked, 110 characters shorter
    line = start + "a" * (protocol.MAX_TEXT - 5 - len(start)) + secret + "b" * 1000
    channel_pair.session.log(line)
    [frame] = channel_pair.sent()
    body, note = frame["msg"].rsplit("\n", 1)
    assert len(frame["msg"]) <= protocol.MAX_TEXT
    assert body.startswith("*** " * 10 + "aaa") and body.endswith("aaa")
    assert set(body) == set("*a ")
    assert len(body) >= len(line) - 1000 - 14 - 110 - 14  # only the secret's length is dropped
    keep = protocol.MAX_TEXT - 100
    assert note == (
        f"[gust: cut {len(line) - keep} of {len(line)} characters; "
        f"a frame carries at most {protocol.MAX_TEXT}]"
    )


def test_a_long_line_full_of_secrets_shows_no_part_of_any_secret(
    channel_pair: ChannelPair,
) -> None:
    secret = "pw1234"
    channel_pair.session.masker.register(secret)
    for sep in (" ", "; "):  # one of the two periods leaves a secret cut at the head's end
        channel_pair.session.log((secret + sep) * (protocol.MAX_TEXT // 3))
    for frame in channel_pair.sent():
        body, note = frame["msg"].rsplit("\n", 1)
        assert note.startswith("[gust: cut ")
        assert body.translate(str.maketrans("", "", "*; ")) == "", body[-40:]  # masks only


def test_inside_run_done_a_call_goes_out_unanswered_and_raises_naming_why() -> None:
    """No host answers calls in ``run done``: the frame still goes out (the harness shows it
    where the author looks) and the call raises at once, naming its op."""
    channel = MemoryChannel()
    session = Session(channel, calls_allowed=False)
    assert session.calls_allowed is False
    frame = {"type": "call", "op": "get_secret_by_name", "name": "K"}
    with pytest.raises(NotInTaskError) as info:
        session.call(frame, "get_secret_by_name('K')")
    assert str(info.value) == (
        "get_secret_by_name('K') cannot be answered here: no host answers calls inside "
        "`gust run done`"
    )
    assert info.value.op == "get_secret_by_name"
    assert ChannelPair(channel).sent() == [frame]


def test_a_refused_call_raises_call_error_with_the_op_and_the_hosts_error(
    channel_pair: ChannelPair,
) -> None:
    def answer_once_asked() -> None:  # a host answers a call only once it has seen it
        deadline = time.monotonic() + 10
        while not channel_pair.sent() and time.monotonic() < deadline:
            time.sleep(0.005)
        channel_pair.reply(protocol.reply_error("forbidden"))

    host = threading.Thread(target=answer_once_asked)
    host.start()
    with pytest.raises(CallError) as info:
        channel_pair.session.call({"type": "call", "op": "get_secret_by_name", "name": "K"}, "x")
    host.join()
    assert str(info.value) == "get_secret_by_name failed: host answered 'forbidden'"
    assert (info.value.op, info.value.error) == ("get_secret_by_name", "forbidden")


def test_a_call_after_the_host_broke_the_order_names_its_op(channel_pair: ChannelPair) -> None:
    channel_pair.reply(reply_ok({}))  # a reply nobody asked for
    call = {"type": "call", "op": "get_task_by_name_run", "name": "t", "run_id": 1}
    with pytest.raises(HostProtocolError) as first:
        channel_pair.session.call(call, "get_task_by_name_run('t', 1)")
    with pytest.raises(HostProtocolError) as again:
        channel_pair.session.call(call, "get_task_by_name_run('t', 1)")
    assert first.value.op == again.value.op == "get_task_by_name_run"
    assert str(again.value).startswith("get_task_by_name_run('t', 1) cannot be made: the host")


def test_start_and_the_final_frames_go_out_in_order() -> None:
    channel = MemoryChannel()
    session = Session(channel, sends_start=True)
    session.send_start(4242)
    final = [protocol.error_frame("Traceback: boom"), protocol.result_failure("boom")]
    session.write_final([(f["type"], protocol.encode_frame(f)) for f in final])
    assert ChannelPair(channel).sent() == [{"type": "start", "pid": 4242}, *final]


def test_inside_run_done_a_call_with_stdout_gone_still_raises_naming_why() -> None:
    channel = MemoryChannel()
    channel.write_final([])  # nothing more can be written, as when the reader went away
    session = Session(channel, calls_allowed=False)
    with pytest.raises(NotInTaskError, match="no host answers calls inside `gust run done`"):
        session.call({"type": "call", "op": "get_secret_by_name", "name": "K"}, "x")


@pytest.mark.timeout(15)
def test_a_chatty_host_cannot_stretch_the_call_timeout(channel_pair: ChannelPair) -> None:
    """``GUST_CALL_TIMEOUT`` bounds the whole wait for the reply, not the wait for each frame:
    frames that are not replies keep arriving, and the call still times out, naming its op."""
    session = channel_pair.session
    session.call_timeout = 0.5
    stop = threading.Event()

    def chatter() -> None:
        while not stop.wait(0.05):
            channel_pair.reply({"type": "note", "not": "a reply"})

    host = threading.Thread(target=chatter)
    host.start()
    try:
        with pytest.raises(CallTimeoutError) as info:
            session.call(protocol.call_get_secret("K"), "get_secret_by_name('K')")
    finally:
        stop.set()
        host.join()
    assert info.value.op == "get_secret_by_name"
    assert str(info.value) == (
        "no answer within 0.5 s (GUST_CALL_TIMEOUT) while waiting for the reply to "
        "get_secret_by_name('K')"
    )


def test_log_sends_text_as_it_is_and_anything_else_as_its_str(
    channel_pair: ChannelPair, capsys: pytest.CaptureFixture[str]
) -> None:
    class Shouty(str):
        def __str__(self) -> str:
            return "NOT THE TEXT"

    calls.log(Shouty("a str subclass is text already"))
    calls.log(42, "WARNING")
    calls.log(ValueError("bad row 7"), "error")
    assert channel_pair.sent() == [
        protocol.log_frame("a str subclass is text already"),
        protocol.log_frame("42", "warning"),
        protocol.log_frame("bad row 7", "error"),
    ]
    calls.activate(None)  # outside a task: a plain line on stderr
    calls.log(3.5, "Debug")
    assert capsys.readouterr().err == "[gust debug] 3.5\n"


def test_after_the_sessions_final_frames_logs_are_dropped_and_no_frame_can_follow() -> None:
    """A thread the task left may log after the result: its lines go nowhere, quietly; but a
    second final frame is the runtime's own bug and is refused by the turn rules."""
    channel = MemoryChannel()
    session = Session(channel, sends_start=True)
    session.send_start(7)
    result = protocol.result_success("done")
    session.write_final([("result", protocol.encode_frame(result))])
    session.log("from a thread the task left")  # dropped, not raised
    with pytest.raises(protocol.LocalProtocolError, match="cannot follow the final result"):
        session.write_final([("result", protocol.encode_frame(result))])
    assert ChannelPair(channel).sent() == [protocol.start_frame(7), result]


def test_a_session_made_with_a_call_timeout_keeps_it() -> None:
    session = Session(MemoryChannel(), call_timeout=0.2)
    with pytest.raises(CallTimeoutError, match=r"no answer within 0\.2 s"):
        session.call(protocol.call_get_secret("K"), "get_secret_by_name('K')")
