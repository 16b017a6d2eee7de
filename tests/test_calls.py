"""The task's session (gust.calls) in memory: calls matched to replies by order, late replies
skipped, a host breaking the order found out, masking of what the session sends."""

from __future__ import annotations

import re
import threading
import time

import pytest
from _host import ChannelPair

from gust import calls, protocol
from gust.errors import CallTimeoutError, HostGoneError, HostProtocolError, LogLevelError
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
