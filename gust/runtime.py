"""``gust task run`` and ``gust run done``: run user code and report the outcome in frames.

``run_task`` follows SPEC §3 to the letter: the ``start`` frame goes out before anything else
(before ``--ctx-json`` is read or the DAG file imported, so a hanging import can be killed),
then log and call frames while the task runs, then on failure an ``error`` frame for Gust
followed by the final ``result``. Every failure, whether before the task (bad ctx, import error,
unknown DAG or task) or in it (any ``BaseException``, a signal, a result that cannot be sent),
ends as those two frames with the exact messages of SPEC §5, secrets masked. The process then
exits 0: the result frame, not the exit status, says how the task went.

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
from gust.errors import HostGoneError
from gust.invoke import (
    SetupError,
    call_task,
    exception_type_name,
    find_callable,
    find_dag,
    format_exception,
    load_module,
)
from gust.sandbox import (
    TaskInterrupted,
    capture_output,
    install_signal_handlers,
    log_level_from_env,
    take_channel,
)

TYPE_CHECKING = False  # typing is not imported at run time: every task start pays for imports
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Final

__all__ = ["EXIT_HOST_GONE", "TaskFailure", "run_callback", "run_task", "run_task_in"]

#: Exit status when the host stopped reading frames (as a shell reports death by SIGPIPE).
EXIT_HOST_GONE: Final = 141


class TaskFailure(Exception):
    """How a task run failed: the message of SPEC §5 and the exception behind it, if any."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause


def failure_frames(
    failure: TaskFailure, mask: Callable[[str], str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``error`` frame (for Gust's dashboard) and the final ``result`` frame of a failure."""
    message = failure.message
    exc = failure.cause
    if exc is None:
        error: dict[str, Any] = {}
        trace = message
    else:
        if isinstance(exc, TaskInterrupted):
            message = f"Task interrupted by {exc.signame}"
        details = str(exc) or exception_type_name(exc)
        tb = format_exception(exc)
        error = {"type": exception_type_name(exc), "details": mask(details), "traceback": mask(tb)}
        trace = f"{message}: {exception_type_name(exc)}: {details}\n\n{tb}"
    message = mask(message)
    return protocol.error_frame(mask(trace)), protocol.result_failure(message, **error)


def _parse_ctx(ctx_json: str | None) -> dict[str, Any]:
    if ctx_json is None:
        return {}
    try:
        ctx = json.loads(ctx_json)
    except ValueError as exc:
        raise TaskFailure("ctx-json is not valid JSON", exc) from None
    if not isinstance(ctx, dict):
        raise TaskFailure(
            "ctx-json must be a JSON object",
            TypeError(f"got {type(ctx).__name__}: {ctx_json[:200]}"),
        )
    return ctx


class _TaskRun:
    """One execution of one task inside an established session."""

    def __init__(self, session: Session, file: str, dag: str, task: str) -> None:
        self.session = session
        self.file = file
        self.dag = dag
        self.task = task

    def execute(self, ctx_json: str | None) -> bytes:
        """Run the task; return the encoded success frame or raise :class:`TaskFailure`."""
        session = self.session
        try:
            ctx = _parse_ctx(ctx_json)
            try:
                session.call_timeout = call_timeout_from_env()
                log_level = log_level_from_env()
            except ValueError as exc:
                raise TaskFailure(str(exc), exc) from None
            with capture_output(session, log_level):
                module = load_module(self.file)
                dag = find_dag(module, self.dag)
                fn, options = find_callable(dag, self.dag, self.task)
                try:
                    value = call_task(fn, ctx)
                except BaseException as exc:
                    raise TaskFailure("Task execution failed", exc) from exc
            return self._encode(value, options.save)
        except SetupError as exc:
            raise TaskFailure(exc.message, exc.cause) from exc
        except (TaskFailure, HostGoneError):
            raise
        except BaseException as exc:
            raise TaskFailure("Task execution failed", exc) from exc

    def _encode(self, value: Any, save: bool) -> bytes:
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


def run_task_in(session: Session, file: str, dag: str, task: str, ctx_json: str | None) -> None:
    """Run a task in an existing session and write its final frames (no ``start``, no exit).

    Raises:
        HostGoneError: the host stopped reading frames.
    """
    run = _TaskRun(session, file, dag, task)
    try:
        frames = [run.execute(ctx_json)]
    except TaskFailure as failure:
        frames = _encode_failure(failure, session)
    session.channel.write_final(frames)


def _encode_failure(failure: TaskFailure, session: Session) -> list[bytes]:
    return [protocol.encode_frame(f) for f in failure_frames(failure, session.masker.mask)]


def run_task(file: str, dag: str, task: str, ctx_json: str | None) -> int:
    """``gust task run``: own the channel, send ``start``, run the task, report; the exit status.

    Frames go to the original stdout, replies come from the original stdin; see
    :mod:`gust.sandbox` for what user code sees instead.
    """
    try:
        channel = take_channel()
    except OSError as exc:
        sys.stderr.write(f"gust task run: cannot use stdin/stdout as the protocol channel: {exc}\n")
        return 2
    session = Session(channel)
    activate(session)
    final = threading.Lock()  # whoever holds it writes the final frames: main or watchdog
    main_reports = False

    def report_after_grace(exc: TaskInterrupted) -> None:
        # The watchdog: user code ignored the signal or sits in C code; report for it, leave.
        if not final.acquire(blocking=False):
            return  # the main thread is writing the final frames and will exit
        try:
            channel.write_final(_encode_failure(TaskFailure("Task execution failed", exc), session))
        except HostGoneError:
            os._exit(EXIT_HOST_GONE)
        os._exit(0)

    # Handlers go in before `start`: once the host has our pid, a SIGTERM must be reported.
    stop_signals = install_signal_handlers(channel, report_after_grace)
    try:
        try:
            channel.write_frame(protocol.start_frame(os.getpid()))
            run = _TaskRun(session, file, dag, task)
            try:
                frames = [run.execute(ctx_json)]
            except TaskFailure as failure:
                frames = _encode_failure(failure, session)
            stop_signals()
        except TaskInterrupted as exc:
            # The signal landed outside the task body (around `start` or while the failure
            # frames were built). Handlers raise only once: no second signal interrupts this.
            stop_signals()
            frames = _encode_failure(TaskFailure("Task execution failed", exc), session)
        main_reports = final.acquire(blocking=False)
        if not main_reports:
            threading.Event().wait()  # the watchdog is reporting and will end the process
        channel.write_final(frames)
    except HostGoneError:
        if not main_reports and not final.acquire(blocking=False):
            threading.Event().wait()  # the watchdog closed the channel and is exiting
        sys.stderr.write("gust task run: the host stopped reading frames; exiting\n")
        return EXIT_HOST_GONE
    finally:
        activate(None)
    return 0


def _run_id_value(raw: str) -> int | str:
    try:
        return int(raw)
    except ValueError:
        return raw


def run_callback(file: str, dag: str, fn_name: str, status: str, run_id: str) -> int:
    """``gust run done``: call ``fn_name(status, {"run_id": ...})`` on the DAG; the exit status.

    Prints and logs of the callback go out as log frames on stdout (Gust ignores them; the
    harness shows them). No ``start`` or ``result`` frame is written. On failure the traceback
    goes to stderr and the status is 1. Calls raise at once: no host answers them here.
    """
    try:
        channel = take_channel()
    except OSError as exc:
        sys.stderr.write(f"gust run done: cannot use stdout as the frame channel: {exc}\n")
        return 2
    session = Session(channel, calls_allowed=False)
    activate(session)
    stem = os.path.splitext(os.path.basename(file))[0]
    try:
        with capture_output(session):
            module = load_module(file)
            target = find_dag(module, dag, stem_fallback=stem)
            fn, _ = find_callable(target, dag, fn_name)
            call_task(fn, status, {"run_id": _run_id_value(run_id)})
    except SetupError as exc:
        message = exc.message.replace("Task '", "Callback '")
        text = f"gust run done: {message}\n"
        if exc.cause is not None:
            text += format_exception(exc.cause)
        sys.stderr.write(session.masker.mask(text))
        return 1
    except HostGoneError:
        sys.stderr.write("gust run done: stdout was closed; exiting\n")
        return EXIT_HOST_GONE
    except BaseException as exc:  # noqa: BLE001 - the callback's failure, reported on stderr
        text = f"gust run done: callback {fn_name!r} failed\n{format_exception(exc)}"
        sys.stderr.write(session.masker.mask(text))
        return 1
    finally:
        activate(None)
    return 0
