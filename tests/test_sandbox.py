"""The sandbox's parts in-process (gust.sandbox), over the in-memory channel pair: captured
stdout, the logging bridge, the masked stderr stream, with what a subprocess cannot show
deterministically (thread interleavings)."""

from __future__ import annotations

import io
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from _host import ChannelPair
from hypothesis import given, settings
from hypothesis import strategies as st

from gust import sandbox
from gust._channel import MemoryChannel
from gust.masking import MASK, SecretMasker
from gust.sandbox import (
    LogFrameHandler,
    LogWriter,
    MaskedStream,
    TaskInterrupted,
    TaskSignals,
    capture_output,
    log_level_from_env,
)

# -- stdout -----------------------------------------------------------------------------------


def test_each_thread_has_its_own_unfinished_line(channel_pair: ChannelPair) -> None:
    # print() writes the text and the newline in two calls; a thread switch in between must not
    # glue another thread's line onto it.
    writer = LogWriter(channel_pair.session)
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
    assert [f["msg"] for f in channel_pair.sent()] == ["from b", "from a"]
    writer.flush_partial()
    assert [f["msg"] for f in channel_pair.sent()][-1] == "left unfinished"


def test_a_log_writer_sends_its_lines_at_its_own_level(channel_pair: ChannelPair) -> None:
    writer = LogWriter(channel_pair.session, "warning")
    writer.write("one\ntwo\nthree")
    writer.flush_partial()
    LogWriter(channel_pair.session).write("printed\n")
    assert [(f["level"], f["msg"]) for f in channel_pair.sent()] == [
        ("warning", "one"),
        ("warning", "two"),
        ("warning", "three"),
        ("info", "printed"),
    ]


def test_log_writer_refuses_bytes_like_a_text_stream(channel_pair: ChannelPair) -> None:
    writer = LogWriter(channel_pair.session)
    with pytest.raises(TypeError, match="must be str, not bytes"):
        writer.write(b"raw")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes-like"):
        writer.buffer.write("text")
    with pytest.raises(TypeError, match="unexpected arguments: colour"):
        writer.reconfigure(colour="red")


def test_captured_stdout_refuses_the_wrong_type_with_pythons_own_messages(
    channel_pair: ChannelPair,
) -> None:
    writer = LogWriter(channel_pair.session)
    with pytest.raises(TypeError) as raised:
        writer.buffer.write("text")
    assert str(raised.value) == "a bytes-like object is required, not 'str'"
    with pytest.raises(TypeError) as raised:
        writer.reconfigure(size=3, colour="red", encoding="latin-1")
    assert str(raised.value) == "reconfigure() got unexpected arguments: colour, size"


def test_captured_stdout_looks_like_a_writable_pipe_on_fd_1(channel_pair: ChannelPair) -> None:
    """What libraries probe before writing (colours, progress bars, C code): no terminal."""
    writer = LogWriter(channel_pair.session)
    assert writer.writable() is True
    assert writer.isatty() is False
    assert writer.buffer.writable() is True
    assert writer.buffer.fileno() == 1  # fd 1 points at stderr while a task runs


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=12), max_size=8))
def test_bytes_on_stdout_buffer_are_logged_as_their_utf8_lines(chunks: list[bytes]) -> None:
    """Invalid or cut-off UTF-8 becomes U+FFFD, wherever the writes split the bytes."""
    pair = ChannelPair()
    writer = LogWriter(pair.session)
    for chunk in chunks:
        assert writer.buffer.write(chunk) == len(chunk)
    writer.flush_partial()
    lines = b"".join(chunks).decode("utf-8", "replace").split("\n")
    if not lines[-1]:
        lines.pop()
    assert [f["msg"] for f in pair.sent()] == lines


def test_a_character_cut_off_at_the_end_is_logged_as_a_replacement(
    channel_pair: ChannelPair,
) -> None:
    writer = LogWriter(channel_pair.session)
    writer.buffer.write(b"done \xe2\x82")  # the first two bytes of a three-byte character
    assert channel_pair.sent() == []
    writer.flush_partial()
    assert [f["msg"] for f in channel_pair.sent()] == ["done \ufffd"]


def test_bytes_split_inside_a_character_are_joined(channel_pair: ChannelPair) -> None:
    writer = LogWriter(channel_pair.session)
    encoded = "é\n".encode()
    writer.buffer.write(encoded[:1])
    writer.buffer.write(encoded[1:])
    assert [f["msg"] for f in channel_pair.sent()] == ["é"]


def test_capture_output_restores_stdout_and_the_root_logger(channel_pair: ChannelPair) -> None:
    root = logging.getLogger()
    before = (sys.stdout, list(root.handlers), root.level)
    with capture_output(channel_pair.session, logging.INFO):
        print("inside")
        logging.info("logged inside")
    print("outside")  # to pytest's capture, not to the channel
    logging.warning("logged outside")
    assert (sys.stdout, list(root.handlers), root.level) == before
    assert [f["msg"] for f in channel_pair.sent()] == ["inside", "logged inside"]


def test_the_logging_bridge_drops_records_once_the_host_is_gone(
    capsys: pytest.CaptureFixture[str], channel_pair: ChannelPair
) -> None:
    channel_pair.channel.write_final([])  # the channel is over: later writes raise HostGoneError
    handler = LogFrameHandler(channel_pair.session, logging.INFO)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "lost", None, None)
    handler.handle(record)  # no exception, no "Logging error" report
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("setting", "level"),
    [
        ("", logging.INFO),
        ("  ", logging.INFO),
        ("debug", logging.DEBUG),
        (" Warning ", logging.WARNING),
        ("ERROR", logging.ERROR),
        ("15", 15),
    ],
)
def test_gust_log_level_takes_a_level_name_in_any_case_or_a_number(
    setting: str, level: int
) -> None:
    assert log_level_from_env({"GUST_LOG_LEVEL": setting}) == level


def test_gust_log_level_defaults_to_info_and_refuses_other_words() -> None:
    assert log_level_from_env({}) == logging.INFO
    with pytest.raises(ValueError) as raised:
        log_level_from_env({"GUST_LOG_LEVEL": " loud "})
    assert str(raised.value) == (
        "GUST_LOG_LEVEL must be a logging level (DEBUG, INFO, WARNING, ERROR, CRITICAL "
        "or a number), not 'loud'"
    )


def test_a_missing_module_attribute_is_reported_the_usual_way() -> None:
    with pytest.raises(AttributeError) as raised:
        _ = sandbox.NoSuchThing  # type: ignore[attr-defined]
    assert str(raised.value) == "module 'gust.sandbox' has no attribute 'NoSuchThing'"


# -- stderr -----------------------------------------------------------------------------------


def test_a_masked_stream_holds_text_until_its_line_is_complete() -> None:
    out = io.StringIO()
    masker = SecretMasker()
    stream = MaskedStream(out, masker)
    stream.write("before any secret\n")
    assert out.getvalue() == "before any secret\n"  # no secret yet: straight through
    masker.register("s3cr3t-value")
    stream.write("split s3cr3t")
    stream.write("-value here")
    assert out.getvalue() == "before any secret\n"  # held: the line is not complete
    stream.write(" and done\nrest")
    stream.finish()
    assert out.getvalue() == "before any secret\nsplit *** here and done\nrest"
    stream.buffer.write(b"bytes s3cr3t-value\n")
    assert out.getvalue().endswith("bytes ***\n")


def test_before_any_secret_a_masked_stream_passes_unfinished_lines_straight_through() -> None:
    """Prompts and ``\\r`` progress lines show at once until there is something to mask."""
    out = io.StringIO()
    stream = MaskedStream(out, SecretMasker())
    stream.write("50% done\r")
    assert out.getvalue() == "50% done\r"


def test_a_masked_stream_holds_up_to_64_kib_of_one_line() -> None:
    out = io.StringIO()
    stream = MaskedStream(out, SecretMasker(["s3cr3t-value"]))
    stream.write("x" * (1 << 16))
    assert out.getvalue() == ""  # 64 KiB: still one line waiting for its end
    stream.write("x")
    assert out.getvalue() == "x" * ((1 << 16) + 1 - len("s3cr3t-value"))


def test_a_masked_stream_refuses_the_wrong_type_with_pythons_own_messages() -> None:
    stream = MaskedStream(io.StringIO(), SecretMasker())
    with pytest.raises(TypeError) as raised:
        stream.write(b"raw")  # type: ignore[arg-type]
    assert str(raised.value) == "write() argument must be str, not bytes"
    with pytest.raises(TypeError) as raised:
        stream.buffer.write("text")
    assert str(raised.value) == "a bytes-like object is required, not 'str'"


def test_bytes_on_a_masked_streams_buffer_are_decoded_with_replacement() -> None:
    out = io.StringIO()
    stream = MaskedStream(out, SecretMasker(["s3cr3t-value"]))
    data = b"bad \xff byte, s3cr3t-value\n"
    assert stream.buffer.write(data) == len(data)
    assert out.getvalue() == "bad \ufffd byte, ***\n"


def test_a_masked_stream_answers_terminal_and_fd_questions_for_the_real_stderr(
    tmp_path: Path,
) -> None:
    """A task's colour logger or ``faulthandler.enable()`` sees the stream stderr really is."""
    leader, follower = os.openpty()
    with (
        open(leader, "rb") as _,
        open(follower, "w", encoding="utf-8") as tty,
        open(tmp_path / "err.txt", "w", encoding="utf-8") as file,
    ):
        on_tty, on_file = MaskedStream(tty, SecretMasker()), MaskedStream(file, SecretMasker())
        assert (on_tty.isatty(), on_file.isatty()) == (True, False)
        assert (on_tty.fileno(), on_file.fileno()) == (follower, file.fileno())
        assert on_file.writable() is True
        assert on_file.buffer.writable() is True


def test_a_masked_stream_still_works_after_finish() -> None:
    """Threads and handlers holding the stream write through it once the task is over."""
    out = io.StringIO()
    stream = MaskedStream(out, SecretMasker(["s3cr3t-value"]))
    stream.write("unfinished")
    stream.finish()
    stream.write("late s3cr3t-value\n")
    assert out.getvalue() == "unfinishedlate ***\n"


def test_a_masked_stream_writes_very_long_lines_in_parts_without_leaking() -> None:
    out = io.StringIO()
    masker = SecretMasker(["s3cr3t-value"])
    stream = MaskedStream(out, masker)
    chunk = "x" * 1000 + "s3cr3t-"
    for _ in range(100):  # 100 kB with no newline, a secret cut at every write
        stream.write(chunk)
        stream.write("value")
    assert 0 < len(out.getvalue()) < 100 * 1012  # written in parts, not held for ever
    stream.finish()
    assert "s3cr3t" not in out.getvalue()
    assert out.getvalue().count(MASK) == 100


# -- signals ----------------------------------------------------------------------------------


@pytest.fixture
def task_signals() -> Iterator[TaskSignals]:
    """A :class:`TaskSignals` installed in this process over a memory channel; the signal
    handlers of the test process are put back afterwards."""
    wanted = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
    before = {signum: signal.getsignal(signum) for signum in wanted}
    signals = TaskSignals(MemoryChannel(), on_timeout=lambda exc: None)
    signals.install()
    try:
        yield signals
    finally:
        signals.disarm()
        for signum, handler in before.items():
            signal.signal(signum, handler)


def test_a_task_handler_gets_the_signal_number_and_the_frame_it_interrupted(
    task_signals: TaskSignals,
) -> None:
    seen: list[tuple[int, FrameType | None]] = []
    signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append((signum, frame)))
    signal.raise_signal(signal.SIGUSR1)
    [(signum, frame)] = seen  # at once: the main thread was writing no frame
    assert signum == signal.SIGUSR1
    assert frame is not None and frame.f_code.co_name == (
        "test_a_task_handler_gets_the_signal_number_and_the_frame_it_interrupted"
    )


def test_replacing_a_task_handler_gives_back_the_tasks_own_function(
    task_signals: TaskSignals,
) -> None:
    def first(signum: int, frame: FrameType | None) -> None:
        pass

    def second(signum: int, frame: FrameType | None) -> None:
        pass

    signal.signal(signal.SIGUSR1, first)
    assert signal.signal(signal.SIGUSR1, second) is first
    assert signal.getsignal(signal.SIGUSR1) is second


def test_a_task_handler_landing_inside_a_frame_runs_once_the_frame_is_whole(
    task_signals: TaskSignals,
) -> None:
    seen: list[tuple[int, FrameType | None]] = []
    signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append((signum, frame)))
    channel = task_signals.channel
    channel.enter()  # as the main thread does while it writes a frame
    signal.raise_signal(signal.SIGUSR1)
    assert seen == []
    channel.leave()
    [(signum, frame)] = seen
    assert signum == signal.SIGUSR1
    assert frame is not None and frame.f_code.co_name == (
        "test_a_task_handler_landing_inside_a_frame_runs_once_the_frame_is_whole"
    )


def test_task_interrupted_names_its_signal_and_why_gust_ended_the_task() -> None:
    plain = TaskInterrupted(signal.SIGTERM)
    assert (plain.signum, plain.signame) == (signal.SIGTERM, "SIGTERM")
    assert str(plain) == "received SIGTERM (signal 15)"
    ignored = TaskInterrupted(signal.SIGINT, ignored_for=2.0)
    assert (ignored.signum, ignored.signame) == (signal.SIGINT, "SIGINT")
    assert str(ignored) == (
        "received SIGINT (signal 2); the task did not stop within 2 s, so gust ended it"
    )


def test_a_task_handler_deferred_past_the_end_of_the_task_never_runs(
    task_signals: TaskSignals,
) -> None:
    seen: list[int] = []
    signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    channel = task_signals.channel
    channel.enter()  # the signal lands inside a frame: deferred
    signal.raise_signal(signal.SIGUSR1)
    task_signals.disarm()  # the task's code is over before the frame is whole
    channel.leave()
    assert seen == []


def test_after_disarm_handlers_installed_later_are_plain_python_handlers(
    task_signals: TaskSignals,
) -> None:
    """Code that runs after the task (its atexit hooks) installs handlers the usual way."""
    task_signals.disarm()
    seen: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    signal.signal(signal.SIGUSR1, handler)
    assert signal.getsignal(signal.SIGUSR1) is handler
    signal.raise_signal(signal.SIGUSR1)
    assert seen == [signal.SIGUSR1]


def test_the_logging_handler_is_loaded_on_first_use_and_other_names_are_refused() -> None:
    from gust._loghandler import LogFrameHandler as loaded

    assert sandbox.LogFrameHandler is loaded
    with pytest.raises(AttributeError, match=r"module 'gust\.sandbox' has no attribute 'Nope'"):
        sandbox.Nope  # noqa: B018
