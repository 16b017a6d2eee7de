"""The gust wire protocol: a pure codec, no I/O.

Theory of operation: a frame is a 4-byte unsigned big-endian length ``N`` followed by ``N`` bytes
holding one JSON object in UTF-8. :func:`encode_frame` turns an object into those bytes, always
as strict RFC 8259 JSON (no ``NaN``/``Infinity``, valid UTF-8 even when a ``str`` holds a lone
surrogate). :class:`FrameDecoder` is incremental: :meth:`FrameDecoder.feed` only appends bytes,
:meth:`FrameDecoder.next_frame` returns one decoded object or ``None`` when it needs more, and
:meth:`FrameDecoder.eof` says the input ended (an unfinished frame is then an error). Pipes,
file descriptors and subprocesses live outside, in the child runtime (``gust._channel``) and in
the host (``gust.harness``); both use this module and nothing else to read and write frames.

Errors form a small tree: :class:`ProtocolError`, split into :class:`LocalProtocolError` (we
were asked to send something the protocol cannot carry) and :class:`RemoteProtocolError` (the
peer sent something malformed). Every error has a ``code`` from :data:`ERROR_CODES`; those names
are part of the conformance contract. ``bad_utf8``, ``bad_json`` and ``not_object`` consume the
offending frame, so a lenient reader may log them and go on; ``truncated`` and ``oversize`` leave
the stream unsynchronised and the decoder refuses further use.

Who speaks when: the child writes ``start``, then any number of ``log`` and ``call`` frames,
then on failure an ``error`` frame, and always exactly one final ``result`` frame. The host
answers each ``call`` with exactly one ``reply`` and never speaks unasked. Receivers ignore
unknown message types and unknown keys.
"""

from __future__ import annotations

import json
import struct

TYPE_CHECKING = False  # typing is not imported at run time: every task start pays for imports
if TYPE_CHECKING:
    from typing import Any, Final

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "ERROR_CODES",
    "HEADER_SIZE",
    "LOG_LEVELS",
    "MAX_FRAME_FORMAT",
    "PROTOCOL_VERSION",
    "FrameDecoder",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "call_get_secret",
    "call_get_task",
    "decode_payload",
    "dumps_strict",
    "encode_frame",
    "error_frame",
    "log_frame",
    "reply_error",
    "reply_ok",
    "result_failure",
    "result_success",
    "scrub_surrogates",
    "start_frame",
]

#: Version of the wire protocol described here; independent of the package version.
PROTOCOL_VERSION: Final = "1"

HEADER_SIZE: Final = 4
#: The largest payload a 4-byte length can describe (4 GiB - 1).
MAX_FRAME_FORMAT: Final = 0xFFFF_FFFF
#: The default limit a reader puts on one payload (64 MiB); configurable per decoder.
DEFAULT_MAX_FRAME_SIZE: Final = 64 * 1024 * 1024

#: Log levels ``gust`` itself produces; any string is legal on the wire.
LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")

#: Names of the protocol errors, as used by ``ProtocolError.code`` and the conformance vectors.
ERROR_CODES: Final = ("truncated", "oversize", "bad_utf8", "bad_json", "not_object")

_HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    """A frame could not be encoded or decoded.

    Attributes:
        code: one of :data:`ERROR_CODES`, or ``"unencodable"`` for a value JSON cannot carry.
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

    __slots__ = ("_buf", "_eof", "_failed", "max_frame_size")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if not 0 <= max_frame_size <= MAX_FRAME_FORMAT:
            raise ValueError(f"max_frame_size must be within 0..{MAX_FRAME_FORMAT}")
        self.max_frame_size = max_frame_size
        self._buf = bytearray()
        self._eof = False
        self._failed: RemoteProtocolError | None = None

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
            RemoteProtocolError: ``truncated`` when a partial frame is left in the buffer.
        """
        self._eof = True
        if self._buf and self._failed is None:
            self._fail("truncated", self._truncation_message())
        if self._failed is not None:
            raise self._failed

    def next_frame(self) -> dict[str, Any] | None:
        """Return the next whole frame, or ``None`` when more bytes are needed.

        Raises:
            RemoteProtocolError: the next frame is malformed (see the module docstring for which
                errors leave the decoder usable).
        """
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

    def frames(self) -> list[dict[str, Any]]:
        """Drain every whole frame now buffered."""
        out = []
        while (frame := self.next_frame()) is not None:
            out.append(frame)
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


# -- messages ---------------------------------------------------------------------------------
# Plain dict constructors: the one place that spells each message of the protocol.


def start_frame(pid: int) -> dict[str, Any]:
    """The first child frame: the pid the host may kill."""
    return {"type": "start", "pid": pid}


def log_frame(msg: str, level: str = "info") -> dict[str, Any]:
    """A log line of the task."""
    return {"type": "log", "level": level, "msg": msg}


def call_get_secret(name: str) -> dict[str, Any]:
    """Ask the host for a secret by name."""
    return {"type": "call", "op": "get_secret_by_name", "name": name}


def call_get_task(name: str, run_id: Any) -> dict[str, Any]:
    """Ask the host for a task of a run (its id and saved result)."""
    return {"type": "call", "op": "get_task_by_name_run", "run_id": run_id, "name": name}


def reply_ok(data: Any) -> dict[str, Any]:
    """A successful answer to a call."""
    return {"type": "reply", "ok": True, "data": data}


def reply_error(error: str) -> dict[str, Any]:
    """A failed answer to a call; ``error`` is a short code such as ``secret_not_found``."""
    return {"type": "reply", "ok": False, "error": error}


def result_success(value: Any) -> dict[str, Any]:
    """The final frame of a task that succeeded."""
    return {"type": "result", "ok": True, "data": {"value": value}}


def result_failure(message: str, **details: Any) -> dict[str, Any]:
    """The final frame of a task that failed; ``details`` adds ``type``, ``details``, etc."""
    return {"type": "result", "ok": False, "error": {"message": message, **details}}


def error_frame(trace: str) -> dict[str, Any]:
    """The failure report Gust's adapter understands; sent just before a failed ``result``."""
    return {"type": "error", "ok": False, "trace": trace}
