"""The frame codec: bytes to JSON objects and back, and its errors (see :mod:`gust.protocol`)."""

from __future__ import annotations

import json
import struct

from gust.errors import GustError

TYPE_CHECKING = False  # typing is not imported at run time: every task start pays for imports
if TYPE_CHECKING:
    from typing import Any, Final

HEADER_SIZE: Final = 4
#: The largest payload a 4-byte length can describe (4 GiB - 1).
MAX_FRAME_FORMAT: Final = 0xFFFF_FFFF
#: The default limit a reader puts on one payload (64 MiB); configurable per decoder.
DEFAULT_MAX_FRAME_SIZE: Final = 64 * 1024 * 1024

#: Names of the codec errors, as used by ``ProtocolError.code`` and the conformance vectors.
ERROR_CODES: Final = ("truncated", "oversize", "bad_utf8", "bad_json", "not_object")

_HEADER = struct.Struct(">I")


class ProtocolError(GustError):
    """A frame could not be encoded or decoded, or a message came out of turn.

    Attributes:
        code: one of :data:`ERROR_CODES` or :data:`STATE_ERROR_CODES`, or ``"unencodable"``
            for a value JSON cannot carry.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class LocalProtocolError(ProtocolError):
    """We were asked to send something the protocol cannot carry."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that break the protocol."""


# -- encoding ---------------------------------------------------------------------------------

_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def scrub_surrogates(text: str) -> str:
    """``text`` as valid Unicode, the one scrub of the whole package.

    A surrogate pair written as two code points (``"\\ud83d\\ude00"`` in JSON or Python source)
    is joined into the one character it stands for; a lone surrogate, which UTF-8 cannot carry,
    becomes U+FFFD.
    """
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def dumps_strict(obj: Any) -> bytes:
    """Serialise ``obj`` to strict JSON in UTF-8.

    Raises:
        LocalProtocolError: ``obj`` holds NaN/Infinity or a type JSON has no form for.
    """
    try:
        text = _encoder.encode(obj)
    except ValueError as exc:  # allow_nan=False, or a circular reference
        raise LocalProtocolError("unencodable", f"cannot encode frame: {exc}") from None
    except TypeError as exc:
        raise LocalProtocolError("unencodable", f"cannot encode frame: {exc}") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return scrub_surrogates(text).encode("utf-8")


def encode_frame(obj: dict[str, Any]) -> bytes:
    """Return the bytes of one frame (header and payload) carrying ``obj``.

    Args:
        obj: a JSON object; keys must be strings.

    Raises:
        LocalProtocolError: ``obj`` is not a dict (``not_object``), cannot be strict JSON
            (``unencodable``) or is longer than a 4-byte length can say (``oversize``).
    """
    if not isinstance(obj, dict):
        raise LocalProtocolError(
            "not_object", f"a frame must hold a JSON object, not {type(obj).__name__}"
        )
    payload = dumps_strict(obj)
    size = len(payload)
    if size > MAX_FRAME_FORMAT:
        raise LocalProtocolError(
            "oversize",
            f"frame of {size} bytes is over the protocol limit of {MAX_FRAME_FORMAT} bytes",
        )
    return _HEADER.pack(size) + payload


# -- decoding ---------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)


def decode_payload(payload: bytes) -> dict[str, Any]:
    """Decode one frame payload into a JSON object.

    Raises:
        RemoteProtocolError: with code ``bad_utf8``, ``bad_json`` or ``not_object``.
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError("bad_utf8", f"frame payload is not valid UTF-8: {exc}") from None
    try:
        obj = _decoder.decode(text)
    except ValueError as exc:  # JSONDecodeError and rejected constants
        raise RemoteProtocolError("bad_json", f"frame payload is not valid JSON: {exc}") from None
    except RecursionError:
        raise RemoteProtocolError("bad_json", "frame payload is nested too deeply") from None
    if not isinstance(obj, dict):
        raise RemoteProtocolError(
            "not_object", f"frame payload must be a JSON object, got {type(obj).__name__}"
        )
    return obj


class FrameDecoder:
    """Incremental frame reader: feed it bytes, take frames out.

    Args:
        max_frame_size: the largest payload accepted; a header announcing more raises
            ``oversize`` at once, before any of that payload is buffered.
    """

    __slots__ = ("_buf", "_eof", "_failed", "_pending", "max_frame_size")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if not 0 <= max_frame_size <= MAX_FRAME_FORMAT:
            raise ValueError(f"max_frame_size must be within 0..{MAX_FRAME_FORMAT}")
        self.max_frame_size = max_frame_size
        self._buf = bytearray()
        self._eof = False
        self._failed: RemoteProtocolError | None = None
        # An error met by frames() after good frames: raised by the next call instead.
        self._pending: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """How many bytes are held that do not yet form a whole frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        """Append received bytes; ``b""`` is ignored (use :meth:`eof` for end of input)."""
        if self._eof and data:
            raise RuntimeError("feed() after eof()")
        self._buf += data

    def eof(self) -> None:
        """Note that the input has ended.

        Raises:
            RemoteProtocolError: an error :meth:`frames` has not raised yet, or ``truncated``
                when a partial frame is left in the buffer.
        """
        self._eof = True
        pending, self._pending = self._pending, None
        if pending is not None:
            raise pending
        if self._buf and self._failed is None:
            self._fail("truncated", self._truncation_message())
        if self._failed is not None:
            raise self._failed

    def next_frame(self) -> dict[str, Any] | None:
        """Return the next whole frame, or ``None`` when more bytes are needed.

        Raises:
            RemoteProtocolError: the next frame is malformed (see the module docstring for which
                errors leave the decoder usable), or :meth:`frames` kept an error for this call.
        """
        pending = self._pending
        if pending is not None:
            self._pending = None
            raise pending
        if self._failed is not None:
            raise self._failed
        buf = self._buf
        if len(buf) < HEADER_SIZE:
            return None
        (size,) = _HEADER.unpack_from(buf)
        if size > self.max_frame_size:
            self._fail(
                "oversize",
                f"frame header announces {size} bytes, over the limit of "
                f"{self.max_frame_size} bytes",
            )
        end = HEADER_SIZE + size
        if len(buf) < end:
            return None
        payload = bytes(buf[HEADER_SIZE:end])
        del buf[:end]
        return decode_payload(payload)

    def drain(self) -> tuple[list[dict[str, Any]], RemoteProtocolError | None]:
        """Decode every whole frame now buffered, up to the first bad one.

        Returns:
            The good frames in order, and the error that stopped decoding (``None`` when all
            buffered whole frames were good). A recoverable error (``bad_json``...) has
            consumed its frame: call again to go on with the frames after it.
        """
        out: list[dict[str, Any]] = []
        while True:
            try:
                frame = self.next_frame()
            except RemoteProtocolError as exc:
                return out, exc
            if frame is None:
                return out, None
            out.append(frame)

    def frames(self) -> list[dict[str, Any]]:
        """Drain every whole frame now buffered; a bad frame never costs the good ones before it.

        Raises:
            RemoteProtocolError: at once when the first frame is bad; when good frames came
                first, they are returned and the error is raised by the next call of
                :meth:`frames`, :meth:`next_frame` or :meth:`eof`.
        """
        out, error = self.drain()
        if error is not None:
            if not out:
                raise error
            self._pending = error
        return out

    def _truncation_message(self) -> str:
        if len(self._buf) < HEADER_SIZE:
            return f"input ended inside a frame header ({len(self._buf)} of 4 bytes)"
        (size,) = _HEADER.unpack_from(self._buf)
        got = len(self._buf) - HEADER_SIZE
        return f"input ended inside a frame: got {got} of {size} payload bytes"

    def _fail(self, code: str, message: str) -> None:
        self._failed = RemoteProtocolError(code, message)
        raise self._failed
