"""The message vocabulary: types, ops, reply errors, a constructor per message, their shapes."""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: every task start pays for imports
if TYPE_CHECKING:
    from typing import Any, Final

#: Log levels ``gust`` itself produces; any string is legal on the wire.
LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")

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
