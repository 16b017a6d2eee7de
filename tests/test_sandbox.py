"""The sandbox's parts in-process (gust.sandbox), over the in-memory channel pair: captured
stdout, the logging bridge, the masked stderr stream, with what a subprocess cannot show
deterministically (thread interleavings)."""

from __future__ import annotations

import io
import logging
import sys
import threading

import pytest
from _host import ChannelPair

from gust.masking import MASK, SecretMasker
from gust.sandbox import LogFrameHandler, LogWriter, MaskedStream, capture_output

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


def test_log_writer_refuses_bytes_like_a_text_stream(channel_pair: ChannelPair) -> None:
    writer = LogWriter(channel_pair.session)
    with pytest.raises(TypeError, match="must be str, not bytes"):
        writer.write(b"raw")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes-like"):
        writer.buffer.write("text")
    with pytest.raises(TypeError, match="unexpected arguments: colour"):
        writer.reconfigure(colour="red")


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
