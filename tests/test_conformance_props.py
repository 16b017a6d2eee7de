"""Hypothesis properties of the codec over every stream the conformance suite holds.

The streams are the byte vectors of ``conformance/vectors/framing.json`` and the byte streams
of every transcript (each direction: frames encoded by our codec, raw steps as written). The
reader is :class:`gust.protocol.FrameDecoder`, the one codec every part of gust uses.
"""

from __future__ import annotations

import json
import random
import struct
from dataclasses import dataclass
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gust.conformance.cases import Suite, load_cases
from gust.conformance.matchers import json_equal
from gust.conformance.schema import SchemaSet
from gust.protocol import (
    DEFAULT_MAX_FRAME_SIZE,
    ERROR_CODES,
    HEADER_SIZE,
    FrameDecoder,
    ProtocolError,
    encode_frame,
)

SUITE = Suite(Path(__file__).resolve().parents[1] / "conformance")
VECTORS = json.loads(SUITE.vectors_file.read_text(encoding="utf-8"))


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


STREAMS = _vector_streams() + _transcript_streams()
WHOLE = [s for s in STREAMS if s.boundaries is not None and len(s.boundaries) > 1]


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
        assert exc.code in ERROR_CODES, exc.code
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
    names = {s.name.split(":")[0] for s in STREAMS}
    assert "vector" in names and "y_huge_log_line" in names and "n_child_garbage" in names
    assert len(WHOLE) > 40


@settings(max_examples=150, deadline=None)
@given(
    stream=st.sampled_from(STREAMS),
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


@settings(max_examples=150, deadline=None)
@given(stream=st.sampled_from(WHOLE), data=st.data())
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
@given(stream=st.sampled_from(WHOLE), data=st.data())
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
        assert error is None or error in ERROR_CODES
