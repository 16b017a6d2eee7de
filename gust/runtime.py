"""``gust task run`` and ``gust run done``: run user code and report the outcome in frames.

``run_task`` follows the protocol (:mod:`gust.protocol`) to the letter: the ``start`` frame goes out
before anything else (before ``--ctx-json`` is read or the DAG file imported, so a hanging import
can be killed), then log and call frames while the task runs, then on failure an ``error`` frame for
Gust followed by the final ``result``. Every failure, whether before the task (bad ctx, import
error, unknown DAG or task) or in it (any ``BaseException``, a signal, a result that cannot be
sent), ends as those two frames with the exact messages the README lists, secrets masked and each
text cut to :data:`gust.protocol.MAX_TEXT`. Describing a failure cannot fail: an exception whose
``__str__`` raises still gives its type. Only the process that sent ``start`` reports: a process
forked from the task that returns into the runtime leaves quietly. The process then exits 0 (bounded
by :data:`gust.commands.EXIT_GRACE`): the result frame, not the exit status, says how the task went.

Exit statuses: 0 once the final frame is written; :data:`EXIT_HOST_GONE` when the host stopped
reading our frames (nothing more can be said to it); 2 when the protocol descriptors could not
be set up at all.
"""

from __future__ import annotations

import json
import os
import sys
import threading

from gust import protocol
from gust.calls import Session, activate, call_timeout_from_env
from gust.commands import EXIT_HOST_GONE, prepare_exit
from gust.errors import GustError, HostGoneError
from gust.invoke import (
    SetupError,
    call_task,
    describe_exception,
    find_callable,
    find_dag,
    format_exception,
    load_module,
)
from gust.sandbox import (
    TaskInterrupted,
    TaskSignals,
    capture_output,
    log_level_from_env,
    take_channel,
)

TYPE_CHECKING = False  # typing is not imported at run time: every task start pays for imports
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["EXIT_HOST_GONE", "ContextError", "TaskFailure", "run_callback", "run_task"]


class TaskFailure(GustError):
    """How a task run failed: the message the README lists and the exception behind it, if any."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause


class ContextError(GustError):
    """``--ctx-json`` cannot be used as the task's context; the message says why."""


def failure_frames(failure: TaskFailure, clean: Callable[[str], str]) -> list[dict[str, Any]]:
    """The ``error`` frame (for Gust's dashboard) and the final ``result`` frame of a failure.

    Args:
        clean: masks secrets and cuts text to size (:meth:`gust.calls.Session.clean`); every
            text goes through it, the exception's type name included.
    """
    message = failure.message
    exc = failure.cause
    if exc is None:
        error: dict[str, Any] = {}
        trace = message
    else:
        if isinstance(exc, TaskInterrupted):
            message = f"Task interrupted by {exc.signame}"
        type_name, details, tb = describe_exception(exc)
        error = {"type": clean(type_name), "details": clean(details), "traceback": clean(tb)}
        trace = f"{message}: {type_name}: {details}\n\n{tb}"
    return [protocol.error_frame(clean(trace)), protocol.result_failure(clean(message), **error)]


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def _parse_ctx(ctx_json: str | None) -> dict[str, Any]:
    if ctx_json is None:
        return {}
    try:
        ctx = json.loads(ctx_json)
    except RecursionError:
        raise TaskFailure(
            "ctx-json is not valid JSON",
            ContextError("--ctx-json is nested too deeply to be read"),
        ) from None
    except ValueError as exc:
        raise TaskFailure(
            "ctx-json is not valid JSON", ContextError(f"--ctx-json: {exc}")
        ) from None
    if not isinstance(ctx, dict):
        kind = _JSON_TYPES.get(type(ctx), "null" if ctx is None else "a number")
        raise TaskFailure(
            "ctx-json must be a JSON object",
            ContextError(f"--ctx-json holds {kind}, not an object: {ctx_json[:200]}"),
        )
    run_id = ctx.get("run_id")
    if "run_id" in ctx and (not isinstance(run_id, int) or isinstance(run_id, bool)):
        raise TaskFailure(
            "ctx-json has the wrong shape",
            ContextError(
                f'--ctx-json: "run_id" must be an integer, not {json.dumps(run_id)[:200]}'
            ),
        )
    if "params" in ctx and not isinstance(ctx["params"], dict):
        raise TaskFailure(
            "ctx-json has the wrong shape",
            ContextError('--ctx-json: "params" must be an object (the mapped task\'s parameters)'),
        )
    return ctx


class _TaskRun:
    """One execution of one task inside an established session."""

    def __init__(
        self, session: Session, signals: TaskSignals, file: str, dag: str, task: str
    ) -> None:
        self.session = session
        self.signals = signals
        self.file = file
        self.dag = dag
        self.task = task

    def execute(self, ctx_json: str | None) -> list[tuple[str, bytes]]:
        """Run the task; return its final frames, encoded (the result, or error and result)."""
        try:
            return [(protocol.RESULT, self._run(ctx_json))]
        except TaskFailure as failure:
            self.signals.disarm()
            return encode_frames(failure_frames(failure, self.session.clean))

    def _run(self, ctx_json: str | None) -> bytes:
        session = self.session
        try:
            ctx = _parse_ctx(ctx_json)
            try:
                session.call_timeout = call_timeout_from_env()
                log_level = log_level_from_env()
            except ValueError as exc:
                raise TaskFailure(str(exc), exc) from None
            try:
                with capture_output(session, log_level):
                    module = load_module(self.file)
                    dag = find_dag(module, self.dag)
                    fn, options = find_callable(dag, self.dag, self.task)
                    try:
                        value = call_task(fn, ctx)
                    except BaseException as exc:
                        raise TaskFailure("Task execution failed", exc) from exc
            finally:
                self.signals.disarm()  # the task's code is over: its handlers are off
            return self._result(value, options.save)
        except SetupError as exc:
            raise TaskFailure(exc.message, exc.cause) from exc
        except (TaskFailure, HostGoneError):
            raise
        except BaseException as exc:
            raise TaskFailure("Task execution failed", exc) from exc

    def _result(self, value: Any, save: bool) -> bytes:
        from gust.values import UnsupportedValueError, to_json_value

        try:
            data = to_json_value(value, warn=lambda m: self.session.log(m, "warning"))
        except UnsupportedValueError as exc:
            raise TaskFailure(f"Task result cannot be sent as JSON: {exc}", exc) from None
        if save and not isinstance(data, dict):
            raise TaskFailure(
                f"Task '{self.task}' has save=True, so it must return a dict (a JSON object), "
                f"but it returned {type(value).__name__}",
                TypeError(f"expected dict, got {type(value).__name__}"),
            )
        try:
            return protocol.encode_frame(protocol.result_success(data))
        except protocol.LocalProtocolError as exc:
            raise TaskFailure(f"Task result cannot be sent: {exc}", exc) from None


def encode_frames(frames: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
    """``(type, bytes)`` of each frame, as :meth:`gust.calls.Session.write_final` takes them."""
    return [(frame["type"], protocol.encode_frame(frame)) for frame in frames]


def _interrupted_frames(exc: TaskInterrupted, session: Session) -> list[tuple[str, bytes]]:
    return encode_frames(failure_frames(TaskFailure("Task execution failed", exc), session.clean))


def run_task(file: str, dag: str, task: str, ctx_json: str | None) -> int:
    """``gust task run``: own the channel, send ``start``, run the task, report; the exit status.

    Frames go to the original stdout, replies come from the original stdin; see
    :mod:`gust.sandbox` for what user code sees instead.
    """
    prepare_exit()  # before any user code: its atexit handlers must run before our exit
    try:
        channel = take_channel()
    except OSError as exc:
        sys.stderr.write(f"gust task run: cannot use stdin/stdout as the protocol channel: {exc}\n")
        return 2
    session = Session(channel, sends_start=True)
    activate(session)
    final = threading.Lock()  # whoever holds it writes the final frames: main or watchdog
    main_reports = False

    def report_after_grace(exc: TaskInterrupted) -> None:
        # The watchdog: user code ignored the signal or sits in C code; report for it, leave.
        if not final.acquire(blocking=False):
            return  # the main thread is writing the final frames and will exit
        try:
            session.write_final(_interrupted_frames(exc, session))
        except HostGoneError:
            os._exit(EXIT_HOST_GONE)
        os._exit(0)

    # Handlers go in before `start`: once the host has our pid, a SIGTERM must be reported.
    signals = TaskSignals(channel, report_after_grace)
    signals.install()
    try:
        try:
            session.send_start(os.getpid())
            frames = _TaskRun(session, signals, file, dag, task).execute(ctx_json)
            signals.finish()
        except TaskInterrupted as exc:
            # The signal landed outside the task body (around `start` or while the failure
            # frames were built). Handlers raise only once: no second signal interrupts this.
            signals.disarm()
            signals.finish()
            frames = _interrupted_frames(exc, session)
        if os.getpid() != channel.owner_pid:
            return _forked_child_leaves()
        main_reports = final.acquire(blocking=False)
        if not main_reports:
            threading.Event().wait()  # the watchdog is reporting and will end the process
        session.write_final(frames)
    except HostGoneError:
        if os.getpid() != channel.owner_pid:
            return _forked_child_leaves()
        if not main_reports and not final.acquire(blocking=False):
            threading.Event().wait()  # the watchdog closed the channel and is exiting
        sys.stderr.write("gust task run: the host stopped reading frames; exiting\n")
        return EXIT_HOST_GONE
    finally:
        activate(None)
    return 0


def _forked_child_leaves() -> int:
    # os.fork() in the task returned here in the child: only the task's process reports.
    sys.stderr.write(
        f"gust task run: process {os.getpid()}, forked from the task, returned from it; "
        "only the task's own process reports, so this one just exits\n"
    )
    return 0


def run_callback(file: str, dag: str, fn_name: str, status: str, run_id: int) -> int:
    """``gust run done``: call ``fn_name(status, {"run_id": run_id})`` on the DAG; the exit status.

    Prints and logs of the callback go out as log frames on stdout (Gust ignores them; the
    harness shows them). No ``start`` or ``result`` frame is written. On failure the traceback
    goes to stderr and the status is 1. Calls raise at once: no host answers them here.
    """
    prepare_exit()
    try:
        channel = take_channel()
    except OSError as exc:
        sys.stderr.write(f"gust run done: cannot use stdout as the frame channel: {exc}\n")
        return 2
    session = Session(channel, calls_allowed=False)  # no start frame here
    activate(session)
    stem = os.path.splitext(os.path.basename(file))[0]
    try:
        with capture_output(session):
            module = load_module(file)
            target = find_dag(module, dag, stem_fallback=stem)
            fn, _ = find_callable(target, dag, fn_name)
            call_task(fn, status, {"run_id": run_id})
    except SetupError as exc:
        message = exc.message.replace("Task '", "Callback '")
        text = f"gust run done: {message}\n"
        if exc.cause is not None:
            text += format_exception(exc.cause)
        sys.stderr.write(session.masker.mask(text))
        return 1
    except HostGoneError:
        if os.getpid() != channel.owner_pid:
            return 0
        sys.stderr.write("gust run done: stdout was closed; exiting\n")
        return EXIT_HOST_GONE
    except BaseException as exc:  # noqa: BLE001 - the callback's failure, reported on stderr
        text = f"gust run done: callback {fn_name!r} failed\n{describe_exception(exc)[2]}"
        sys.stderr.write(session.masker.mask(text))
        return 1
    finally:
        activate(None)
    return 0
