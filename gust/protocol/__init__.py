"""The gust wire protocol: a pure codec, no I/O.

Theory of operation: a frame is a 4-byte unsigned big-endian length ``N`` followed by ``N`` bytes
holding one JSON object in UTF-8. :func:`encode_frame` turns an object into those bytes, always
as strict RFC 8259 JSON (no ``NaN``/``Infinity``, valid UTF-8 even when a ``str`` holds a lone
surrogate). :class:`FrameDecoder` is incremental: :meth:`FrameDecoder.feed` only appends bytes,
:meth:`FrameDecoder.next_frame` returns one decoded object or ``None`` when it needs more, and
:meth:`FrameDecoder.eof` says the input ended (an unfinished frame is then an error). Pipes,
file descriptors and subprocesses live outside, in the child runtime (``gust._channel``) and in
the host (``gust.harness``); both use this module and nothing else to read and write frames.

Errors form a small tree: :class:`ProtocolError` (a :class:`~gust.errors.GustError`), split
into :class:`LocalProtocolError` (we were asked to send something the protocol cannot carry, or
to send it out of turn) and :class:`RemoteProtocolError` (the peer sent something malformed or
out of turn). Every codec error has a ``code`` from :data:`ERROR_CODES`; those names are part of
the conformance contract. ``bad_utf8``, ``bad_json`` and ``not_object`` consume the offending
frame, so a lenient reader may log them and go on; ``truncated`` and ``oversize`` leave the
stream unsynchronised and the decoder refuses further use. A decoder never loses a good frame
to a later bad one: :meth:`FrameDecoder.frames` returns the good frames and keeps the error for
the next call (:meth:`FrameDecoder.drain` returns both at once).

Messages: this module is also the vocabulary of the protocol. The message types (``START``,
``LOG``, ``CALL``, ``REPLY``, ``ERROR``, ``RESULT``), the call ops, the reply error codes
(``secret_not_found``, ``task_not_found``, ``bad_call``, ``unknown_op``) and a constructor per
message live here; :func:`check_message` says whether a decoded frame is a valid message of its
type and why not. Every frame built here that carries user text holds at most
:data:`MAX_TEXT` characters per text field (longer text is cut with a note saying how much), so
a frame the runtime writes stays far under the hosts' 64 MiB limit.

Who speaks when (:class:`ChildState` enforces the child's side): the child writes ``start``,
then any number of ``log`` and ``call`` frames, then on failure one ``error`` frame, and always
exactly one final ``result`` frame, after which nothing. The host answers each ``call`` with
exactly one ``reply``, in order, and never speaks unasked: a reply beyond the calls sent is a
protocol error (``unexpected_reply``), never taken as the answer to a later call. Receivers
ignore unknown message types and unknown keys.
"""

from __future__ import annotations

from gust.protocol._codec import (
    DEFAULT_MAX_FRAME_SIZE,
    ERROR_CODES,
    HEADER_SIZE,
    MAX_FRAME_FORMAT,
    FrameDecoder,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    decode_payload,
    dumps_strict,
    encode_frame,
    scrub_surrogates,
)
from gust.protocol._messages import (
    BAD_CALL,
    CALL,
    CALL_OPS,
    CHILD_MESSAGES,
    ERROR,
    HOST_MESSAGES,
    LOG,
    LOG_LEVELS,
    MAX_TEXT,
    NOT_FOUND_ERRORS,
    OP_GET_SECRET,
    OP_GET_TASK,
    REPLY,
    REPLY_ERRORS,
    RESULT,
    SECRET_NOT_FOUND,
    START,
    TASK_NOT_FOUND,
    UNKNOWN_OP,
    call_get_secret,
    call_get_task,
    cap_text,
    check_message,
    error_frame,
    log_frame,
    reply_error,
    reply_ok,
    result_failure,
    result_success,
    start_frame,
)
from gust.protocol._state import STATE_ERROR_CODES, ChildState

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

__all__ = [
    "BAD_CALL",
    "CALL",
    "CALL_OPS",
    "CHILD_MESSAGES",
    "DEFAULT_MAX_FRAME_SIZE",
    "ERROR",
    "ERROR_CODES",
    "HEADER_SIZE",
    "HOST_MESSAGES",
    "LOG",
    "LOG_LEVELS",
    "MAX_FRAME_FORMAT",
    "MAX_TEXT",
    "NOT_FOUND_ERRORS",
    "OP_GET_SECRET",
    "OP_GET_TASK",
    "PROTOCOL_VERSION",
    "REPLY",
    "REPLY_ERRORS",
    "RESULT",
    "SECRET_NOT_FOUND",
    "START",
    "STATE_ERROR_CODES",
    "TASK_NOT_FOUND",
    "UNKNOWN_OP",
    "ChildState",
    "FrameDecoder",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "call_get_secret",
    "call_get_task",
    "cap_text",
    "check_message",
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

# The classes are this package's public API: name them as such (exception type names reach the
# host in failure frames).
for _cls in (ProtocolError, LocalProtocolError, RemoteProtocolError, FrameDecoder, ChildState):
    _cls.__module__ = __name__
del _cls
