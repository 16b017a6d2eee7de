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

import json
import struct

from gust.errors import GustError

TYPE_CHECKING = False  # typing is not imported at run time: every task start pays for imports
if TYPE_CHECKING:
    from typing import Any, Final

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

HEADER_SIZE: Final = 4
#: The largest payload a 4-byte length can describe (4 GiB - 1).
MAX_FRAME_FORMAT: Final = 0xFFFF_FFFF
#: The default limit a reader puts on one payload (64 MiB); configurable per decoder.
DEFAULT_MAX_FRAME_SIZE: Final = 64 * 1024 * 1024

#: Log levels ``gust`` itself produces; any string is legal on the wire.
LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")

#: Names of the codec errors, as used by ``ProtocolError.code`` and the conformance vectors.
ERROR_CODES: Final = ("truncated", "oversize", "bad_utf8", "bad_json", "not_object")

#: Codes of the errors :class:`ChildState` raises for a message out of turn: ``out_of_order``
#: (we were about to send it: a local error) and ``unexpected_reply`` (the host sent it).
STATE_ERROR_CODES: Final = ("out_of_order", "unexpected_reply")

#: The most characters of user text one field of a frame carries (log ``msg``, ``error``
#: ``trace``, the failure's ``message``, ``type``, ``details`` and ``traceback``): 1 Mi
#: characters, at most 6 MiB once JSON-escaped, so even a failure's four fields stay far under
#: a host's 64 MiB frame limit. Longer text is cut by :func:`cap_text`, saying how much.
MAX_TEXT: Final = 1 << 20

# Message types: the ``type`` tag of each frame.
START: Final = "start"
LOG: Final = "log"
CALL: Final = "call"
REPLY: Final = "reply"
ERROR: Final = "error"
RESULT: Final = "result"
#: What a child sends, in the order they may first appear; what a host sends.
CHILD_MESSAGES: Final = (START, LOG, CALL, ERROR, RESULT)
HOST_MESSAGES: Final = (REPLY,)

# The calls a child may make (the ``op`` of a ``call`` frame).
OP_GET_SECRET: Final = "get_secret_by_name"
OP_GET_TASK: Final = "get_task_by_name_run"
CALL_OPS: Final = (OP_GET_SECRET, OP_GET_TASK)

# The error codes of ``ok: false`` replies. The first two are Gust's own and mean "nothing by
# that name" (the call returns ``None``); Gust sends no reply at all for the last two, which
# the harness answers so a task never waits for ever.
SECRET_NOT_FOUND: Final = "secret_not_found"
TASK_NOT_FOUND: Final = "task_not_found"
BAD_CALL: Final = "bad_call"
UNKNOWN_OP: Final = "unknown_op"
REPLY_ERRORS: Final = (SECRET_NOT_FOUND, TASK_NOT_FOUND, BAD_CALL, UNKNOWN_OP)
#: Reply errors that make a call return ``None`` instead of raising.
NOT_FOUND_ERRORS: Final = frozenset({SECRET_NOT_FOUND, TASK_NOT_FOUND})

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


# -- messages ---------------------------------------------------------------------------------
# Plain dict constructors, the one place that spells each message of the protocol. They are
# dicts, not classes, because every task start pays for what the child imports and builds.


def cap_text(text: str, limit: int = MAX_TEXT, size: int | None = None) -> str:
    """``text`` cut to at most ``limit`` characters, ending with a note saying how much was cut.

    Args:
        size: the length of the original text when ``text`` is already a part of it (as
            masked by the runtime); the note counts from it.

    The note takes the last line, for example
    ``[gust: cut 38951424 of 40000000 characters; a frame carries at most 1048576]``; text
    already within the limit comes back unchanged, so cutting twice changes nothing.
    """
    total = len(text) if size is None else size
    if total <= limit and len(text) <= limit:
        return text
    keep = max(0, limit - 100)
    note = f"[gust: cut {total - keep} of {total} characters; a frame carries at most {limit}]"
    return f"{text[:keep]}\n{note}"


def start_frame(pid: int) -> dict[str, Any]:
    """The first child frame: the pid the host may kill."""
    return {"type": START, "pid": pid}


def log_frame(msg: str, level: str = "info") -> dict[str, Any]:
    """A log line of the task (``msg`` cut to :data:`MAX_TEXT` characters)."""
    if len(msg) > MAX_TEXT:
        msg = cap_text(msg)
    return {"type": LOG, "level": level, "msg": msg}


def call_get_secret(name: str) -> dict[str, Any]:
    """Ask the host for a secret by name."""
    return {"type": CALL, "op": OP_GET_SECRET, "name": name}


def call_get_task(name: str, run_id: Any) -> dict[str, Any]:
    """Ask the host for a task of a run (its id and saved result)."""
    return {"type": CALL, "op": OP_GET_TASK, "run_id": run_id, "name": name}


def reply_ok(data: Any) -> dict[str, Any]:
    """A successful answer to a call."""
    return {"type": REPLY, "ok": True, "data": data}


def reply_error(error: str) -> dict[str, Any]:
    """A failed answer to a call; ``error`` is one of :data:`REPLY_ERRORS` or another code."""
    return {"type": REPLY, "ok": False, "error": error}


def result_success(value: Any) -> dict[str, Any]:
    """The final frame of a task that succeeded."""
    return {"type": RESULT, "ok": True, "data": {"value": value}}


def result_failure(message: str, **details: Any) -> dict[str, Any]:
    """The final frame of a task that failed; ``details`` adds ``type``, ``details``, etc.

    Every string among them is cut to :data:`MAX_TEXT` characters.
    """
    error = {"message": cap_text(message)}
    for key, value in details.items():
        error[key] = cap_text(value) if isinstance(value, str) else value
    return {"type": RESULT, "ok": False, "error": error}


def error_frame(trace: str) -> dict[str, Any]:
    """The failure report Gust's adapter understands; sent just before a failed ``result``."""
    return {"type": ERROR, "ok": False, "trace": cap_text(trace)}


# -- message shapes ---------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_call(frame: dict[str, Any]) -> str | None:
    op = frame.get("op")
    if not isinstance(op, str):
        return '"op" must be a string'
    if op not in CALL_OPS:
        return f"unknown op {op!r} (known: {', '.join(CALL_OPS)})"
    if not isinstance(frame.get("name"), str):
        return '"name" must be a string'
    if op == OP_GET_TASK and not _is_int(frame.get("run_id")):
        return '"run_id" must be an integer'
    return None


def _check_result(frame: dict[str, Any]) -> str | None:
    ok = frame.get("ok")
    if ok is True:
        data = frame.get("data")
        if not isinstance(data, dict) or "value" not in data:
            return 'a successful result needs "data": {"value": ...}'
        return None
    if ok is not False:
        return '"ok" must be true or false'
    error = frame.get("error")
    if not isinstance(error, dict):
        return 'a failed result needs an "error" object'
    if not isinstance(error.get("message"), str):
        return '"error.message" must be a string'
    for key in ("type", "details", "traceback"):
        if key in error and not isinstance(error[key], str):
            return f'"error.{key}" must be a string'
    return None


def _check_reply(frame: dict[str, Any]) -> str | None:
    ok = frame.get("ok")
    if ok is True:
        return None if "data" in frame else 'a successful reply needs "data"'
    if ok is False:
        return None if isinstance(frame.get("error"), str) else '"error" must be a string'
    return '"ok" must be true or false'


def check_message(frame: dict[str, Any]) -> str | None:
    """Say whether a decoded frame is a valid message of its ``type``.

    Unknown types and unknown keys are valid (receivers ignore them); a known type must have
    the shape this module's docstring gives it.

    Returns:
        ``None`` when the frame is valid, else why not, for example
        ``log: "msg" must be a string``.
    """
    kind = frame.get("type")
    if not isinstance(kind, str):
        return '"type" must be a string'
    why: str | None = None
    if kind == START:
        if not _is_int(frame.get("pid")):
            why = '"pid" must be an integer'
    elif kind == LOG:
        if not isinstance(frame.get("msg"), str):
            why = '"msg" must be a string'
        elif not isinstance(frame.get("level"), str):
            why = '"level" must be a string'
    elif kind == CALL:
        why = _check_call(frame)
    elif kind == ERROR:
        if frame.get("ok") is not False:
            why = '"ok" must be false'
        elif not isinstance(frame.get("trace"), str):
            why = '"trace" must be a string'
    elif kind == RESULT:
        why = _check_result(frame)
    elif kind == REPLY:
        why = _check_reply(frame)
    return None if why is None else f"{kind}: {why}"


# -- the child's turn rules -------------------------------------------------------------------


class ChildState:
    """The child's side of who speaks when, with no I/O: feed it what is sent and received.

    ``start`` first; then ``log`` and ``call`` in any number; at most one ``error``; exactly
    one final ``result``, after which nothing. Calls are answered in order, one reply each;
    the caller says which call it waits for (the latest one sent), so the late reply of a call
    its caller gave up on (a timeout, an exception) is recognised and skipped, and a reply
    beyond the calls sent is refused.

    Args:
        started: begin after ``start`` (a conversation that has no ``start`` frame, such as
            ``gust run done`` or an in-memory host).
    """

    __slots__ = ("calls_sent", "failed", "finished", "replies_taken", "started", "waiting")

    def __init__(self, *, started: bool = False) -> None:
        self.started = started
        self.failed = False
        self.finished = False
        self.calls_sent = 0
        self.replies_taken = 0
        #: The number of the call whose caller waits for its reply (1-based), or 0.
        self.waiting = 0

    def send(self, kind: str) -> None:
        """Account for a frame of type ``kind`` about to be sent.

        Raises:
            LocalProtocolError: ``out_of_order``: nothing after the ``result``, nothing before
                ``start``, one ``start`` and one ``error`` at most.
        """
        if self.finished:
            raise LocalProtocolError(
                "out_of_order", f"a {kind} frame cannot follow the final result"
            )
        if kind == START:
            if self.started:
                raise LocalProtocolError("out_of_order", "start was already sent")
            self.started = True
            return
        if not self.started:
            raise LocalProtocolError("out_of_order", f"a {kind} frame cannot come before start")
        if kind == CALL:
            self.calls_sent += 1
            self.waiting = self.calls_sent
        elif kind == ERROR:
            if self.failed:
                raise LocalProtocolError("out_of_order", "an error frame was already sent")
            self.failed = True
        elif kind == RESULT:
            self.finished = True

    @property
    def replies_owed(self) -> int:
        """Replies the host still owes (to the waiting call and to calls given up on)."""
        return self.calls_sent - self.replies_taken

    def receive_reply(self) -> bool:
        """Account for one reply received.

        Returns:
            ``True`` when it answers the call now waiting, ``False`` when it is the late reply
            to an earlier call whose caller gave up (to be skipped).

        Raises:
            RemoteProtocolError: ``unexpected_reply``: the host sent more replies than calls.
        """
        number = self.replies_taken + 1
        if number > self.calls_sent:
            raise RemoteProtocolError(
                "unexpected_reply",
                f"the host sent reply #{number} but only {self.calls_sent} call(s) were made "
                "(a reply when no call was waiting, or a second reply to one call)",
            )
        self.replies_taken = number
        if number == self.waiting:
            self.waiting = 0
            return True
        return False
