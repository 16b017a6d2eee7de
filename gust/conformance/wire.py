"""Bytes on the wire as an implementer reads them: cut into frames, each told for what it is.

Theory of operation: the runner judges a stream with :class:`gust.protocol.FrameDecoder`; this
module only describes bytes for cases and reports, without judging. :func:`decode_one_frame`
says what a run of bytes is when it is exactly one frame; :class:`FrameSplitter` cuts a stream
into whole frames as chunks arrive (after a header over the limit everything that follows is
one ``oversize`` run); :func:`describe_wire` puts the last frames of a log in one line.
"""

from __future__ import annotations

from typing import Any

from gust.protocol import DEFAULT_MAX_FRAME_SIZE, HEADER_SIZE, ProtocolError, decode_payload

__all__ = ["FrameSplitter", "decode_one_frame", "describe_frames"]

Decoded = tuple[dict[str, Any] | None, str | None]


def decode_one_frame(raw: bytes) -> Decoded:
    """What ``raw`` is when it is exactly one whole frame: ``(object, None)`` or ``(None, code)``.

    ``code`` is ``bad_utf8``, ``bad_json`` or ``not_object``. Bytes that are not exactly one
    frame (text, a cut frame, several frames) give ``(None, None)``.
    """
    if len(raw) < HEADER_SIZE or int.from_bytes(raw[:HEADER_SIZE], "big") != len(raw) - HEADER_SIZE:
        return None, None
    try:
        return decode_payload(raw[HEADER_SIZE:]), None
    except ProtocolError as exc:
        return None, exc.code


class FrameSplitter:
    """Cuts one direction's bytes into whole frames (no I/O, no judgement).

    :meth:`feed` returns the frames a chunk completes, as bytes; :meth:`rest` returns what is
    left when the stream ends, with ``truncated`` or ``oversize``.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.max_frame_size = max_frame_size
        self._buf = bytearray()
        self._oversize = False

    def feed(self, data: bytes) -> list[bytes]:
        """Append ``data``; return each whole frame it completes (header and payload)."""
        self._buf += data
        out = []
        while not self._oversize and len(self._buf) >= HEADER_SIZE:
            size = int.from_bytes(self._buf[:HEADER_SIZE], "big")
            if size > self.max_frame_size:
                self._oversize = True
                break
            end = HEADER_SIZE + size
            if len(self._buf) < end:
                break
            out.append(bytes(self._buf[:end]))
            del self._buf[:end]
        return out

    def rest(self) -> tuple[bytes, str] | None:
        """The bytes no whole frame holds and why (``oversize``/``truncated``); ``None`` if none."""
        if not self._buf:
            return None
        data = bytes(self._buf)
        self._buf.clear()
        return data, "oversize" if self._oversize else "truncated"


def describe_frames(entries: list[tuple[str, dict[str, Any] | None, int, str | None]]) -> str:
    """``c2h start {...}, h2c reply {...}`` for ``(dir, frame, size, error)`` entries."""
    from gust.conformance.matchers import brief

    parts = []
    for direction, frame, size, error in entries:
        if frame is not None:
            parts.append(f"{direction} {brief(frame, 100)}")
        else:
            parts.append(f"{direction} {size} bytes that are no frame ({error or 'raw'})")
    return ", ".join(parts) if parts else "nothing"
