"""The protocol module (gust.protocol): the frame codec (round trips, any chunking, any prefix,
every named error, over generated streams and every stream of the conformance suite), the
message vocabulary and the child's turn rules, and the caps at their exact edges."""

from __future__ import annotations

import json
import math
import random
import struct
from dataclasses import dataclass

import pytest
from _host import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from gust import protocol
from gust.conformance.cases import Suite, load_cases
from gust.conformance.matchers import json_equal
from gust.conformance.schema import SchemaSet
from gust.protocol import (
    DEFAULT_MAX_FRAME_SIZE,
    HEADER_SIZE,
    FrameDecoder,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    decode_payload,
    encode_frame,
)

json_scalars = st.none() | st.booleans() | st.integers() | st.text()
json_scalars |= st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(), json_values, max_size=6)

SUITE = Suite(REPO / "conformance")
VECTORS = json.loads(SUITE.vectors_file.read_text(encoding="utf-8"))


def decode_all(data: bytes, chunks: list[int] | None = None) -> list[dict]:
    decoder = FrameDecoder()
    frames: list[dict] = []
    if chunks is None:
        decoder.feed(data)
        frames += decoder.frames()
    else:
        pos = 0
        for size in [*chunks, len(data)]:
            decoder.feed(data[pos : pos + size])
            pos += size
            frames += decoder.frames()
    decoder.eof()
    return frames


@settings(max_examples=80, deadline=None)
@given(json_objects)
def test_round_trip_of_any_json_object(obj: dict) -> None:
    data = encode_frame(obj)
    (size,) = struct.unpack(">I", data[:4])
    assert size == len(data) - 4
    assert decode_all(data) == [obj]


# -- any stream, any chunking: the codec's properties -------------------------------------------
#
# The streams: every byte vector of conformance/vectors/framing.json and both directions of every
# transcript of the suite (frames encoded by our codec, raw steps as written), streams of
# generated JSON objects, and arbitrary bytes (the h11 fuzz invariant: any input decodes or
# raises a named protocol error, never anything else, whatever the chunking).


@dataclass(frozen=True)
class Stream:
    name: str
    data: bytes
    limit: int
    #: Offsets where a frame ends, for streams made only of whole frames (else ``None``).
    boundaries: tuple[int, ...] | None


def _transcript_streams() -> list[Stream]:
    out = []
    for case in load_cases(SUITE, SchemaSet(SUITE.schema_dir)):
        for direction in ("c2h", "h2c"):
            data = b""
            ends: list[int] | None = [0]
            for step in case.steps:
                if step.dir != direction or step.eof:
                    continue
                if step.frame is not None:
                    data += encode_frame(step.frame)
                else:
                    assert step.raw is not None
                    data += step.raw
                    ends = None
                if ends is not None:
                    ends.append(len(data))
            bounds = tuple(ends) if ends is not None else None
            out.append(Stream(f"{case.name}:{direction}", data, DEFAULT_MAX_FRAME_SIZE, bounds))
    return out


def _vector_streams() -> list[Stream]:
    out = []
    for vector in VECTORS["valid"] + VECTORS["invalid"]:
        data = bytes.fromhex(vector["hex"])
        limit = vector.get("max_frame_size", VECTORS["default_max_frame_size"])
        bounds = None
        if "error" not in vector:
            ends, pos = [0], 0
            while pos < len(data):
                (size,) = struct.unpack_from(">I", data, pos)
                pos += HEADER_SIZE + size
                ends.append(pos)
            bounds = tuple(ends)
        out.append(Stream(f"vector:{vector['name']}", data, limit, bounds))
    return out


SUITE_STREAMS = _vector_streams() + _transcript_streams()


def _generated(objs: list[dict]) -> Stream:
    ends = [0]
    for obj in objs:
        ends.append(ends[-1] + len(encode_frame(obj)))
    data = b"".join(encode_frame(o) for o in objs)
    return Stream("generated", data, DEFAULT_MAX_FRAME_SIZE, tuple(ends))


generated_streams = st.lists(json_objects, min_size=1, max_size=5).map(_generated)
#: Streams made only of whole frames.
whole_streams = (
    st.sampled_from(
        [s for s in SUITE_STREAMS if s.boundaries is not None and len(s.boundaries) > 1]
    )
    | generated_streams
)
any_streams = (
    st.sampled_from(SUITE_STREAMS)
    | generated_streams
    | st.binary(max_size=64).map(lambda b: Stream("bytes", b, 1024, None))
    | st.lists(st.binary(max_size=40), max_size=6).map(
        lambda parts: Stream(
            "framed bytes", b"".join(struct.pack(">I", len(p)) + p for p in parts), 1024, None
        )
    )
)


def decode(chunks: list[bytes], limit: int) -> tuple[list[dict], str | None]:
    """Frames and the protocol error's code (``None``: clean end), feeding ``chunks`` in turn."""
    decoder = FrameDecoder(limit)
    frames: list[dict] = []
    try:
        for chunk in chunks:
            decoder.feed(chunk)
            while (frame := decoder.next_frame()) is not None:
                frames.append(frame)
        decoder.eof()
    except ProtocolError as exc:
        assert exc.code in protocol.ERROR_CODES, exc.code
        return frames, exc.code
    return frames, None


def split(data: bytes, rnd: random.Random, biggest: int) -> list[bytes]:
    # Large streams get larger chunks so one example stays cheap; every size down to 1 occurs.
    biggest = max(biggest, len(data) // 2000, 1)
    chunks, pos = [], 0
    while pos < len(data):
        size = rnd.randint(1, biggest)
        chunks.append(data[pos : pos + size])
        pos += size
    return chunks


def test_the_streams_cover_vectors_and_transcripts() -> None:
    names = {s.name.split(":")[0] for s in SUITE_STREAMS}
    assert "vector" in names and "y_huge_log_line" in names and "n_child_garbage" in names
    assert sum(s.boundaries is not None and len(s.boundaries) > 1 for s in SUITE_STREAMS) > 40


@settings(max_examples=120, deadline=None)
@given(
    stream=any_streams,
    rnd=st.randoms(use_true_random=False),
    biggest=st.sampled_from([1, 2, 3, 5, 8, 64, 4096]),
)
def test_any_chunking_decodes_like_one_read(
    stream: Stream, rnd: random.Random, biggest: int
) -> None:
    whole = decode([stream.data], stream.limit)
    frames, error = decode(split(stream.data, rnd, biggest), stream.limit)
    assert error == whole[1]
    assert json_equal(frames, whole[0])
    if stream.name == "generated":  # what was encoded comes back
        assert error is None and len(frames) == len(stream.boundaries) - 1


@settings(max_examples=150, deadline=None)
@given(stream=whole_streams, data=st.data())
def test_every_prefix_is_clean_or_truncated(stream: Stream, data: st.DataObject) -> None:
    assert stream.boundaries is not None
    full, error = decode([stream.data], stream.limit)
    assert error is None
    cut = data.draw(st.integers(0, len(stream.data)), label="cut")
    frames, error = decode([stream.data[:cut]], stream.limit)
    whole_frames = sum(1 for end in stream.boundaries[1:] if end <= cut)
    assert json_equal(frames, full[:whole_frames])
    assert error == (None if cut in stream.boundaries else "truncated")


def _frame_spans(stream: Stream) -> list[tuple[int, int]]:
    assert stream.boundaries is not None
    return list(zip(stream.boundaries[:-1], stream.boundaries[1:], strict=True))


def _replace_payload(stream: Stream, index: int, payload: bytes, error: str) -> tuple[bytes, str]:
    """The stream with frame ``index`` carrying ``payload``, and the error it must give."""
    start, end = _frame_spans(stream)[index]
    data = stream.data
    mutated = data[:start] + struct.pack(">I", len(payload)) + payload + data[end:]
    # The length is checked first: a payload grown past the reader's limit is oversize.
    return mutated, "oversize" if len(payload) > stream.limit else error


NOT_OBJECTS = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=5,
)


@settings(max_examples=200, deadline=None)
@given(stream=whole_streams, data=st.data())
def test_mutations_give_the_named_error_and_nothing_else(
    stream: Stream, data: st.DataObject
) -> None:
    spans = _frame_spans(stream)
    index = data.draw(st.integers(0, len(spans) - 1), label="frame")
    start, end = spans[index]
    payload = stream.data[start + HEADER_SIZE : end]
    full, _ = decode([stream.data], stream.limit)
    kind = data.draw(
        st.sampled_from(["oversize", "bad_utf8", "not_object", "bad_json", "flip", "overwrite"]),
        label="mutation",
    )
    if kind == "oversize":
        size = data.draw(st.integers(stream.limit + 1, 0xFFFF_FFFF), label="size")
        mutated = stream.data[:start] + struct.pack(">I", size) + payload
        expected: str | None = "oversize"
    elif kind == "bad_utf8":
        where = data.draw(st.integers(0, len(payload)), label="at")
        bad = data.draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80"]))
        changed = payload[:where] + bad + payload[where:]
        mutated, expected = _replace_payload(stream, index, changed, "bad_utf8")
    elif kind == "not_object":
        value = data.draw(NOT_OBJECTS, label="value")
        changed = json.dumps(value).encode()
        mutated, expected = _replace_payload(stream, index, changed, "not_object")
    elif kind == "bad_json":
        cut = payload[: payload.rindex(b"}")]  # the object loses its closing brace
        mutated, expected = _replace_payload(stream, index, cut, "bad_json")
    else:
        # A flipped header byte or any overwritten byte: whatever it becomes, only a named
        # protocol error (or a clean decode) may come out.
        pos = (
            data.draw(st.integers(start, start + HEADER_SIZE - 1), label="pos")
            if kind == "flip"
            else data.draw(st.integers(0, len(stream.data) - 1), label="pos")
        )
        mask = data.draw(st.integers(1, 255), label="mask")
        mutated = stream.data[:pos] + bytes([stream.data[pos] ^ mask]) + stream.data[pos + 1 :]
        expected = None
    rnd = data.draw(st.randoms(use_true_random=False), label="chunks")
    frames, error = decode(split(mutated, rnd, 64), stream.limit)
    if expected is not None:
        assert error == expected
        assert json_equal(frames, full[:index])
    else:
        assert error is None or error in protocol.ERROR_CODES


def header(size: int) -> bytes:
    return struct.pack(">I", size)


@pytest.mark.parametrize(
    ("stream", "code"),
    [
        (b"\x00\x00", "truncated"),
        (header(10) + b'{"a":', "truncated"),
        (header(2) + b"\xff\xfe", "bad_utf8"),
        (header(3) + b"{a}", "bad_json"),
        (header(3) + b"NaN", "bad_json"),
        (header(12) + b'{"x":Infinity}'[:12], "bad_json"),
        (header(2) + b"[]", "not_object"),
        (header(1) + b"1", "not_object"),
        (header(6) + b'"text"', "not_object"),
        (header(0), "bad_json"),
        (header(3) + b"\xef\xbb\xbf", "bad_json"),
    ],
)
def test_named_errors(stream: bytes, code: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_all(stream)
    assert info.value.code == code


def test_oversize_header_raises_before_buffering_payload() -> None:
    decoder = FrameDecoder(max_frame_size=100)
    decoder.feed(header(101))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    assert info.value.code == "oversize"
    assert "101" in str(info.value) and "100" in str(info.value)
    # The stream is now unsynchronised: the decoder refuses further use.
    with pytest.raises(RemoteProtocolError):
        decoder.next_frame()


def test_default_limit_is_64_mib() -> None:
    decoder = FrameDecoder()
    assert decoder.max_frame_size == 64 * 1024 * 1024
    decoder.feed(header(64 * 1024 * 1024 + 1))
    with pytest.raises(RemoteProtocolError, match=r"over the limit"):
        decoder.next_frame()


def test_bad_json_consumes_only_its_frame() -> None:
    decoder = FrameDecoder()
    decoder.feed(header(3) + b"{x}" + encode_frame({"type": "log"}))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    assert info.value.code == "bad_json"
    assert decoder.next_frame() == {"type": "log"}


def test_encode_is_strict_json() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(LocalProtocolError) as info:
            encode_frame({"v": bad})
        assert info.value.code == "unencodable"
    with pytest.raises(LocalProtocolError) as info:
        encode_frame({"v": object()})
    assert info.value.code == "unencodable"
    with pytest.raises(LocalProtocolError) as info:
        encode_frame([1, 2])  # type: ignore[arg-type]
    assert info.value.code == "not_object"


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF) | st.characters())
)
def test_lone_surrogates_give_valid_utf8(text: str) -> None:
    data = encode_frame({"msg": text})
    payload = data[4:].decode("utf-8")  # strict: would raise on invalid UTF-8
    msg = json.loads(payload)["msg"]
    assert len(msg) <= len(text)
    assert all(not 0xD800 <= ord(c) <= 0xDFFF for c in msg)


def test_surrogate_pair_written_as_two_code_points_is_joined() -> None:
    data = encode_frame({"msg": "\ud83d\ude00 and \udc80"})
    assert json.loads(data[4:].decode("utf-8"))["msg"] == "\U0001f600 and \ufffd"


def test_oversize_local_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol._codec, "MAX_FRAME_FORMAT", 10)
    with pytest.raises(LocalProtocolError) as info:
        encode_frame({"msg": "more than ten bytes"})
    assert info.value.code == "oversize"


def test_decode_payload_accepts_unknown_keys_and_types() -> None:
    assert decode_payload(b'{"type":"future","x":[1]}') == {"type": "future", "x": [1]}


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        (
            b"\xff",
            "bad_utf8",
            "frame payload is not valid UTF-8: 'utf-8' codec can't decode byte 0xff in "
            "position 0: invalid start byte",
        ),
        (b'{"x":NaN}', "bad_json", "frame payload is not valid JSON: NaN is not valid JSON"),
        (b"[]", "not_object", "frame payload must be a JSON object, got list"),
        (b"[" * 100_000 + b"]" * 100_000, "bad_json", "frame payload is nested too deeply"),
    ],
)
def test_decode_errors_say_what_is_wrong(payload: bytes, code: str, message: str) -> None:
    """The message of a decode error is what a host logs about a broken child."""
    with pytest.raises(RemoteProtocolError) as info:
        decode_payload(payload)
    assert (info.value.code, str(info.value)) == (code, message)


def test_encode_errors_say_what_cannot_be_sent() -> None:
    with pytest.raises(LocalProtocolError) as info:
        encode_frame([1, 2])  # type: ignore[arg-type]
    assert str(info.value) == "a frame must hold a JSON object, not list"
    with pytest.raises(LocalProtocolError) as info:
        encode_frame({"v": object()})
    assert str(info.value) == "cannot encode frame: Object of type object is not JSON serializable"
    with pytest.raises(LocalProtocolError) as info:
        encode_frame({"v": math.nan})
    assert str(info.value).startswith("cannot encode frame: Out of range float values")


def test_a_local_frame_exactly_at_the_format_limit_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = {"msg": "more than ten bytes"}
    size = len(encode_frame(frame)) - HEADER_SIZE
    monkeypatch.setattr(protocol._codec, "MAX_FRAME_FORMAT", size)
    assert encode_frame(frame)[:HEADER_SIZE] == header(size)
    monkeypatch.setattr(protocol._codec, "MAX_FRAME_FORMAT", size - 1)
    with pytest.raises(LocalProtocolError) as info:
        encode_frame(frame)
    assert str(info.value) == (
        f"frame of {size} bytes is over the protocol limit of {size - 1} bytes"
    )


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (b"\x00\x00", "input ended inside a frame header (2 of 4 bytes)"),
        (header(10), "input ended inside a frame: got 0 of 10 payload bytes"),
        (header(10) + b'{"a":', "input ended inside a frame: got 5 of 10 payload bytes"),
    ],
)
def test_truncation_says_how_much_of_the_frame_arrived(stream: bytes, message: str) -> None:
    decoder = FrameDecoder()
    decoder.feed(stream)
    assert decoder.next_frame() is None
    with pytest.raises(RemoteProtocolError) as info:
        decoder.eof()
    assert (info.value.code, str(info.value)) == ("truncated", message)
    with pytest.raises(RemoteProtocolError) as again:  # the stream is over: it stays failed
        decoder.next_frame()
    assert again.value is info.value


def test_feeding_after_eof_is_a_programming_error() -> None:
    decoder = FrameDecoder()
    decoder.eof()
    decoder.feed(b"")  # nothing: still fine
    with pytest.raises(RuntimeError, match=r"^feed\(\) after eof\(\)$"):
        decoder.feed(header(0))


@pytest.mark.parametrize("limit", [-1, protocol.MAX_FRAME_FORMAT + 1])
def test_a_decoder_limit_outside_the_header_range_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match=r"^max_frame_size must be within 0\.\.4294967295$"):
        FrameDecoder(max_frame_size=limit)


def test_decoder_limits_at_both_ends_of_the_header_range() -> None:
    widest = FrameDecoder(max_frame_size=protocol.MAX_FRAME_FORMAT)
    widest.feed(header(protocol.MAX_FRAME_FORMAT))
    assert widest.next_frame() is None  # any size a header can say is awaited, not refused
    narrowest = FrameDecoder(max_frame_size=0)  # only empty payloads (never a valid object)
    narrowest.feed(header(0))
    with pytest.raises(RemoteProtocolError) as info:
        narrowest.next_frame()
    assert info.value.code == "bad_json"
    narrowest.feed(header(1))
    with pytest.raises(RemoteProtocolError) as info:
        narrowest.next_frame()
    assert info.value.code == "oversize"


def test_message_constructors_match_the_spec() -> None:
    assert protocol.start_frame(7) == {"type": "start", "pid": 7}
    assert protocol.log_frame("m", "warning") == {"type": "log", "level": "warning", "msg": "m"}
    assert protocol.call_get_secret("S") == {
        "type": "call",
        "op": "get_secret_by_name",
        "name": "S",
    }
    assert protocol.call_get_task("t", 3) == {
        "type": "call",
        "op": "get_task_by_name_run",
        "run_id": 3,
        "name": "t",
    }
    assert protocol.reply_ok({"a": 1}) == {"type": "reply", "ok": True, "data": {"a": 1}}
    assert protocol.reply_error("secret_not_found") == {
        "type": "reply",
        "ok": False,
        "error": "secret_not_found",
    }
    assert protocol.result_success(1) == {"type": "result", "ok": True, "data": {"value": 1}}
    assert protocol.result_failure("m", type="T", details="d") == {
        "type": "result",
        "ok": False,
        "error": {"message": "m", "type": "T", "details": "d"},
    }
    assert protocol.error_frame("tb") == {"type": "error", "ok": False, "trace": "tb"}


def test_a_log_frame_is_at_info_level_unless_told() -> None:
    assert protocol.log_frame("m") == {"type": "log", "level": "info", "msg": "m"}


def test_a_failure_detail_that_is_not_text_is_carried_as_it_is() -> None:
    frame = protocol.result_failure("m", code=7, lines=[1, 2])
    assert frame["error"] == {"message": "m", "code": 7, "lines": [1, 2]}


# -- a bad frame never costs the good ones before it ---------------------------------------------

frame_pieces = st.one_of(
    json_objects.map(lambda obj: ("good", encode_frame(obj))),
    st.just(("bad", struct.pack(">I", 3) + b"{x}")),  # bad_json: consumed, decoding goes on
    st.just(("bad", struct.pack(">I", 2) + b"[]")),  # not_object: the same
    st.just(("bad", struct.pack(">I", 2) + b"\xff\xfe")),  # bad_utf8: the same
)


@settings(max_examples=200, deadline=None)
@given(st.lists(frame_pieces, max_size=8), st.lists(st.integers(1, 40), max_size=10))
def test_frames_delivers_every_good_frame_then_the_error(
    pieces: list[tuple[str, bytes]], chunks: list[int]
) -> None:
    data = b"".join(raw for _, raw in pieces)
    expected: list[object] = []
    for kind, raw in pieces:
        expected.append(decode_payload(raw[4:]) if kind == "good" else "error")
    decoder = FrameDecoder()
    got: list[object] = []
    pos = 0
    for size in [*chunks, len(data)]:
        decoder.feed(data[pos : pos + size])
        pos += size
        while True:  # a caller that keeps calling frames() sees everything, in order
            try:
                batch = decoder.frames()
            except RemoteProtocolError:
                got.append("error")
                continue
            got += batch
            if not batch:
                break
    decoder.eof()
    assert got == expected


def test_drain_returns_the_good_frames_and_the_error_together() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame({"a": 1}) + struct.pack(">I", 3) + b"{x}" + encode_frame({"b": 2}))
    good, error = decoder.drain()
    assert good == [{"a": 1}] and error is not None and error.code == "bad_json"
    assert decoder.drain() == ([{"b": 2}], None)


def test_an_error_kept_by_frames_is_raised_by_eof() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame({"a": 1}) + struct.pack(">I", 2) + b"[]")
    assert decoder.frames() == [{"a": 1}]
    with pytest.raises(RemoteProtocolError) as info:
        decoder.eof()
    assert info.value.code == "not_object"


def test_an_error_kept_by_frames_is_raised_once_then_decoding_goes_on() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame({"a": 1}) + struct.pack(">I", 2) + b"[]" + encode_frame({"b": 2}))
    assert decoder.frames() == [{"a": 1}]
    with pytest.raises(RemoteProtocolError) as info:
        decoder.frames()
    assert info.value.code == "not_object"
    assert decoder.next_frame() == {"b": 2}
    decoder.eof()


# -- the message vocabulary ----------------------------------------------------------------------


def test_message_type_names_and_tags_are_in_sync() -> None:
    for name in ("START", "LOG", "CALL", "REPLY", "ERROR", "RESULT"):
        assert getattr(protocol, name) == name.lower()
    assert set(protocol.CHILD_MESSAGES) | set(protocol.HOST_MESSAGES) == {
        "start", "log", "call", "reply", "error", "result",
    }  # fmt: skip
    built = [
        protocol.start_frame(1),
        protocol.log_frame("m"),
        protocol.call_get_secret("s"),
        protocol.call_get_task("t", 1),
        protocol.reply_ok(None),
        protocol.reply_error(protocol.SECRET_NOT_FOUND),
        protocol.error_frame("tb"),
        protocol.result_success(1),
        protocol.result_failure("m", type="T", details="d", traceback="tb"),
    ]
    for frame in built:
        assert protocol.check_message(frame) is None, frame
    assert protocol.CALL_OPS == ("get_secret_by_name", "get_task_by_name_run")
    assert protocol.REPLY_ERRORS == ("secret_not_found", "task_not_found", "bad_call", "unknown_op")
    assert {"secret_not_found", "task_not_found"} == protocol.NOT_FOUND_ERRORS


def test_the_reply_error_codes_harness_code_imports_still_work() -> None:
    from gust.calls import NOT_FOUND_ERRORS

    assert NOT_FOUND_ERRORS is protocol.NOT_FOUND_ERRORS


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        ({"type": 3}, '"type" must be a string'),
        ({"type": "start", "pid": "7"}, 'start: "pid" must be an integer'),
        ({"type": "start", "pid": True}, 'start: "pid" must be an integer'),
        ({"type": "log", "level": "info", "msg": 1}, 'log: "msg" must be a string'),
        ({"type": "log", "msg": "m"}, 'log: "level" must be a string'),
        ({"type": "call", "op": 5, "name": "x"}, 'call: "op" must be a string'),
        (
            {"type": "call", "op": "drop_table", "name": "x"},
            "call: unknown op 'drop_table' (known: get_secret_by_name, get_task_by_name_run)",
        ),
        ({"type": "call", "op": "get_secret_by_name"}, 'call: "name" must be a string'),
        (
            {"type": "call", "op": "get_task_by_name_run", "name": "t", "run_id": "1"},
            'call: "run_id" must be an integer',
        ),
        ({"type": "error", "ok": True, "trace": "t"}, 'error: "ok" must be false'),
        ({"type": "error", "ok": False, "trace": None}, 'error: "trace" must be a string'),
        (
            {"type": "result", "ok": True},
            'result: a successful result needs "data": {"value": ...}',
        ),
        (
            {"type": "result", "ok": False, "error": "x"},
            'result: a failed result needs an "error" object',
        ),
        ({"type": "result", "ok": False, "error": {}}, 'result: "error.message" must be a string'),
        (
            {"type": "result", "ok": False, "error": {"message": "m", "type": 1}},
            'result: "error.type" must be a string',
        ),
        (
            {"type": "result", "ok": False, "error": {"message": "m", "details": 3}},
            'result: "error.details" must be a string',
        ),
        (
            {"type": "result", "ok": False, "error": {"message": "m", "traceback": ["tb"]}},
            'result: "error.traceback" must be a string',
        ),
        ({"type": "result", "ok": "yes"}, 'result: "ok" must be true or false'),
        ({"type": "reply", "ok": False, "error": 5}, 'reply: "error" must be a string'),
        ({"type": "reply", "ok": True}, 'reply: a successful reply needs "data"'),
        ({"type": "reply", "ok": "yes", "data": 1}, 'reply: "ok" must be true or false'),
        ({"type": "reply", "error": "bad_call"}, 'reply: "ok" must be true or false'),
    ],
)
def test_check_message_says_why_a_shape_is_wrong(frame: dict, why: str) -> None:
    assert protocol.check_message(frame) == why


def test_unknown_types_and_keys_are_valid_messages() -> None:
    assert protocol.check_message({"type": "future", "anything": 1}) is None
    assert protocol.check_message({**protocol.log_frame("m"), "extra": [1]}) is None


def test_child_state_enforces_who_speaks_when() -> None:
    state = protocol.ChildState()
    with pytest.raises(LocalProtocolError, match="before start") as info:
        state.send("log")
    assert info.value.code == "out_of_order"
    state.send("start")
    with pytest.raises(LocalProtocolError, match="start was already sent"):
        state.send("start")
    state.send("log")
    state.send("call")  # call 1: its caller gives up (a timeout)
    state.send("call")  # call 2 waits
    assert state.replies_owed == 2
    assert state.receive_reply() is False  # the late reply to call 1: skipped
    assert state.receive_reply() is True  # the answer to call 2
    with pytest.raises(RemoteProtocolError, match="reply #3 but only 2") as remote:
        state.receive_reply()
    assert remote.value.code == "unexpected_reply"
    state.send("error")
    with pytest.raises(LocalProtocolError, match="already sent"):
        state.send("error")
    state.send("result")
    for kind in ("log", "call", "result", "error"):
        with pytest.raises(LocalProtocolError, match="cannot follow the final result"):
            state.send(kind)


@pytest.mark.parametrize(
    ("sent", "kind", "message"),
    [
        ([], "log", "a log frame cannot come before start"),
        (["start"], "start", "start was already sent"),
        (["start", "error"], "error", "an error frame was already sent"),
        (["start", "result"], "log", "a log frame cannot follow the final result"),
        (["start", "result"], "start", "a start frame cannot follow the final result"),
    ],
)
def test_a_frame_out_of_turn_is_refused_with_out_of_order(
    sent: list[str], kind: str, message: str
) -> None:
    state = protocol.ChildState()
    for earlier in sent:
        state.send(earlier)
    with pytest.raises(LocalProtocolError) as info:
        state.send(kind)
    assert (info.value.code, str(info.value)) == ("out_of_order", message)


def test_a_reply_beyond_the_calls_names_both_counts() -> None:
    """The message reaches the task in ``HostProtocolError`` (see the README)."""
    state = protocol.ChildState(started=True)
    state.send("call")
    assert state.receive_reply() is True
    with pytest.raises(RemoteProtocolError) as info:
        state.receive_reply()
    assert str(info.value) == (
        "the host sent reply #2 but only 1 call(s) were made "
        "(a reply when no call was waiting, or a second reply to one call)"
    )


def test_a_conversation_without_start_frame_begins_started() -> None:
    """``gust run done`` sends no ``start``: logs and calls go at once, a ``start`` is refused."""
    state = protocol.ChildState(started=True)
    state.send("log")
    state.send("call")
    with pytest.raises(LocalProtocolError, match="start was already sent"):
        state.send("start")


def test_waiting_names_the_call_whose_reply_is_awaited() -> None:
    state = protocol.ChildState(started=True)
    assert state.waiting == 0
    state.send("call")
    state.send("call")
    assert state.waiting == 2
    assert state.receive_reply() is False  # call 1's late reply: call 2 still waits
    assert state.waiting == 2
    assert state.receive_reply() is True
    assert state.waiting == 0 and state.replies_owed == 0


# -- text cut to the cap ---------------------------------------------------------------------------


@given(st.text(max_size=300), st.integers(120, 200))
def test_cap_text_bounds_the_length_and_says_how_much_was_cut(text: str, limit: int) -> None:
    capped = protocol.cap_text(text, limit)
    assert len(capped) <= max(limit, len(text) if len(text) <= limit else 0)
    if len(text) <= limit:
        assert capped == text
    else:
        assert capped.endswith(f"cut {len(text) - (limit - 100)} of {len(text)} characters; "
                               f"a frame carries at most {limit}]")  # fmt: skip
        assert protocol.cap_text(capped, limit) == capped  # cutting twice changes nothing


def test_cap_text_counts_from_the_original_size_of_a_part() -> None:
    """A masked head of a longer text is cut, and the note counts the whole original text."""
    assert protocol.cap_text("abc", limit=150, size=1000) == (
        "abc\n[gust: cut 950 of 1000 characters; a frame carries at most 150]"
    )
    assert protocol.cap_text("abc", limit=150, size=150) == "abc"


def test_cap_text_keeps_no_text_when_the_limit_leaves_room_only_for_the_note() -> None:
    assert protocol.cap_text("x" * 10, limit=5) == (
        "\n[gust: cut 10 of 10 characters; a frame carries at most 5]"
    )


def test_every_constructor_carrying_user_text_caps_it() -> None:
    huge = "x" * (protocol.MAX_TEXT * 3)
    assert len(protocol.log_frame(huge)["msg"]) <= protocol.MAX_TEXT
    assert len(protocol.error_frame(huge)["trace"]) <= protocol.MAX_TEXT
    error = protocol.result_failure(huge, type=huge, details=huge, traceback=huge)["error"]
    assert all(len(error[k]) <= protocol.MAX_TEXT for k in error)
    assert len(encode_frame(protocol.result_failure(huge, details=huge))) < 8 * protocol.MAX_TEXT


def test_protocol_errors_are_gust_errors() -> None:
    from gust.errors import GustError

    assert issubclass(protocol.ProtocolError, GustError)


# -- limits at their exact edges ---------------------------------------------------------------


@pytest.mark.parametrize("payload", [1, 100, 70_000])
def test_the_decoder_takes_a_payload_exactly_at_its_limit_and_refuses_one_byte_more(payload):
    frame = protocol.encode_frame({"p": "x" * payload})
    size = len(frame) - protocol.HEADER_SIZE
    at_limit = protocol.FrameDecoder(max_frame_size=size)
    at_limit.feed(frame)
    assert at_limit.next_frame() == {"p": "x" * payload}
    below = protocol.FrameDecoder(max_frame_size=size - 1)
    below.feed(frame[: protocol.HEADER_SIZE])  # the header alone is enough to refuse it
    with pytest.raises(protocol.RemoteProtocolError) as info:
        below.next_frame()
    assert info.value.code == "oversize"
    assert f"announces {size} bytes, over the limit of {size - 1}" in str(info.value)


def test_text_exactly_max_text_long_is_sent_whole_and_one_more_character_is_cut():
    exact = "y" * protocol.MAX_TEXT
    assert protocol.log_frame(exact)["msg"] == exact
    assert protocol.error_frame(exact)["trace"] == exact
    assert protocol.result_failure(exact, details=exact)["error"] == {
        "message": exact,
        "details": exact,
    }
    over = protocol.log_frame(exact + "z")["msg"]
    keep = protocol.MAX_TEXT - 100
    assert over == "y" * keep + (
        f"\n[gust: cut {protocol.MAX_TEXT + 1 - keep} of {protocol.MAX_TEXT + 1} characters; "
        f"a frame carries at most {protocol.MAX_TEXT}]"
    )
    assert len(over) <= protocol.MAX_TEXT
