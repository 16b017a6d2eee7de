"""The commands Gust runs, defined once: their words, options, bodies and exit statuses.

:data:`COMMANDS` is the one definition of ``gust parse``, ``gust task run`` and ``gust run
done``: the words that name each, its parameters (flags, which are required, their type and
help) and the body that runs it. The fast path of the console script (:mod:`gust._entry`) reads
argv against it without importing click, and the click command line (:mod:`gust.cli`) builds its
options from it, so the two cannot drift (a test checks the click objects against the table).
Both paths end in :func:`run_command`, the one place that maps what a body returned or raised to
an exit status and ends the process.

Exit statuses (:data:`EXIT_OK`...): 0 once the work is done (for ``task run``: the final frame is
written, whatever the task did); 1 when a callback failed or on an interrupt; 2 for a usage
error (including ``task run`` on a terminal, and stdin/stdout that cannot be used); 141 when the
host stopped reading our frames. Ending is bounded: after ``task run`` or ``run done`` has
reported, the process runs its ``atexit`` handlers and waits for the threads the task left, but
never more than :data:`EXIT_GRACE` seconds; then it exits with its status regardless
(``os._exit``), skipping the interpreter's teardown. ``parse`` runs no user code and skips the
teardown at once (freeing a big syntax tree object by object is a tenth of its time).
"""

from __future__ import annotations

import errno
import os
import sys

from gust.errors import GustError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Final, NoReturn

__all__ = [
    "COMMANDS",
    "EXIT_FAILED",
    "EXIT_GRACE",
    "EXIT_HOST_GONE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Command",
    "Param",
    "UsageError",
    "exit_process",
    "parse_command",
    "prepare_exit",
    "run_command",
    "run_done_command",
    "task_run_command",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
#: A command line that was interrupted (SIGINT, SIGTERM), as a shell reports SIGINT.
EXIT_INTERRUPTED: Final = 130
#: The host stopped reading frames (as a shell reports death by SIGPIPE).
EXIT_HOST_GONE: Final = 141
#: Seconds the process may take, after reporting, for atexit handlers and leftover threads.
EXIT_GRACE: Final = 1.0


class UsageError(GustError):
    """The command cannot run as invoked; the message says why and what to do (exit 2)."""


# -- the bodies --------------------------------------------------------------------------------


def parse_command(file: str | None = None, file_arg: str | None = None) -> int:
    """``gust parse FILE`` (or ``--file FILE``): print the DAG file's definitions as JSON."""
    if (file is None) == (file_arg is None):
        raise UsageError(
            "give the DAG file once: `gust parse FILE` or `gust parse --file FILE`"
            + ("" if file is None else f", not both ({file_arg!r} and --file {file!r})")
        )
    from gust.parser import render_file

    sys.stdout.write(render_file(file if file is not None else file_arg))  # type: ignore[arg-type]
    sys.stdout.flush()
    global _skip_teardown
    _skip_teardown = True
    return EXIT_OK


def task_run_command(file: str, dag: str, task: str, ctx_json: str | None) -> int:
    """``gust task run``: run one task speaking frames on stdin/stdout."""
    if _stdout_is_terminal():
        raise UsageError(
            "gust task run speaks length-prefixed JSON frames to an orchestrator on stdout, "
            "which is a terminal here.\n"
            f"To run the task yourself: python -m gust.harness {file} --task {task}"
        )
    from gust.runtime import run_task

    return run_task(file, dag, task, ctx_json)


def run_done_command(file: str, dag: str, fn_name: str, status: str, run_id: int) -> int:
    """``gust run done``: call the DAG's finished-run callback."""
    from gust.runtime import run_callback

    return run_callback(file, dag, fn_name, status, run_id)


def _stdout_is_terminal() -> bool:
    try:
        return os.isatty(1)
    except OSError:
        return False


# -- the one definition of the interface -------------------------------------------------------


class Param:
    """One parameter of a command.

    Args:
        dest: the body's keyword argument.
        flags: the option spellings (``("--fn-name", "--fn_name")``); empty for a positional.
        required: whether the command needs it.
        kind: ``"text"`` or ``"int"`` (checked with ``int()`` on both paths).
        help: one line for ``--help``.
        metavar: how ``--help`` names a positional (default: ``dest`` in capitals).
    """

    __slots__ = ("dest", "flags", "help", "kind", "metavar", "required")

    def __init__(
        self,
        dest: str,
        flags: tuple[str, ...] = (),
        *,
        required: bool = True,
        kind: str = "text",
        help: str = "",
        metavar: str | None = None,
    ) -> None:
        self.metavar = metavar or dest.upper()
        self.dest = dest
        self.flags = flags
        self.required = required
        self.kind = kind
        self.help = help

    @property
    def positional(self) -> bool:
        """Whether this is a positional argument (no flags)."""
        return not self.flags


class Command:
    """A command: its words (``("task", "run")``), its parameters, its body and help."""

    __slots__ = ("body", "help", "params", "words")

    def __init__(
        self,
        words: tuple[str, ...],
        body: Callable[..., int],
        params: tuple[Param, ...],
        help: str,
    ) -> None:
        self.words = words
        self.body = body
        self.params = params
        self.help = help


COMMANDS: Final = (
    Command(
        ("parse",),
        parse_command,
        (
            Param(
                "file_arg",
                required=False,
                metavar="FILE",
                help="The DAG file to read (never executed).",
            ),
            Param("file", ("--file",), required=False, help="The same, as an option."),
        ),
        "Print the DAG definitions of FILE as a JSON list (errors are reported in-band).",
    ),
    Command(
        ("task", "run"),
        task_run_command,
        (
            Param("file", ("--file",), help="The DAG file (Gust passes a temp copy)."),
            Param("dag", ("--dag",), help="The DAG class (the parse output's `mod`)."),
            Param("task", ("--task",), help="The task method to run."),
            Param(
                "ctx_json",
                ("--ctx-json",),
                required=False,
                help='The task context, e.g. {"run_id": 1}.',
            ),
        ),
        "Run one task, speaking length-prefixed JSON frames on stdin/stdout (for an "
        "orchestrator: to run a task yourself, use python -m gust.harness DAG --task T).",
    ),
    Command(
        ("run", "done"),
        run_done_command,
        (
            Param("file", ("--file",), help="The DAG file (Gust passes a temp copy)."),
            Param("dag", ("--dag",), help="The DAG class, or the original file's stem."),
            Param("fn_name", ("--fn-name", "--fn_name"), help="The callback method."),
            Param("status", ("--status",), help="ok, error, upstream_failed, skipped."),
            Param("run_id", ("--run-id",), kind="int", help="The run's id (an integer)."),
        ),
        'Call the DAG\'s on_finished_callback as FN(status, {"run_id": RUN_ID}).',
    ),
)


# -- running a command and ending the process ----------------------------------------------------

_skip_teardown = False
_exit_code: int | None = None
_prepared = False


def _say(text: str) -> None:
    stream = sys.stderr
    if stream is not None:
        stream.write(text + "\n")
        stream.flush()


class _QuietFlush:
    """A stream whose ``flush`` ignores a broken pipe, so the exit is not reported twice."""

    def __init__(self, wrapped: Any) -> None:
        self._wrapped = wrapped

    def flush(self) -> None:
        try:
            self._wrapped.flush()
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


def run_command(body: Callable[..., int], kwargs: dict[str, Any]) -> NoReturn:
    """Run ``body(**kwargs)`` and end the process with the status it maps to.

    The one table of exits: the body's return value; :class:`UsageError` prints
    ``Error: <message>`` and gives 2; ``HostGoneError`` gives 141; an interrupt
    (``KeyboardInterrupt``, ``EOFError``) prints ``Aborted!`` and gives 1, as click does; a
    broken pipe on stdout gives 1 quietly. Any other exception propagates (a traceback and 1).
    """
    from gust.errors import HostGoneError

    try:
        try:
            code = body(**kwargs)
        except UsageError as exc:
            _say(f"Error: {exc}")
            code = EXIT_USAGE
        except HostGoneError as exc:
            _say(f"gust: {exc}; exiting")
            code = EXIT_HOST_GONE
        except (EOFError, KeyboardInterrupt):
            _say("")  # closes the terminal's ^C echo
            _say("Aborted!")
            code = EXIT_FAILED
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise
            sys.stdout = _QuietFlush(sys.stdout)
            sys.stderr = _QuietFlush(sys.stderr)
            code = EXIT_FAILED
    except (EOFError, KeyboardInterrupt):
        code = EXIT_FAILED
    exit_process(code)


def prepare_exit() -> None:
    """Get ready for a bounded exit; call before any user code runs.

    Registers the last ``atexit`` handler of the process (handlers run last-registered first,
    so every handler the task registers runs before it): it ends the process as soon as the
    others are done, without the interpreter's teardown.
    """
    global _prepared
    if _prepared:
        return
    import atexit

    atexit.register(_after_atexit)
    _prepared = True


def exit_process(code: int) -> NoReturn:
    """End the process with ``code`` (see the module docstring for the bound)."""
    global _exit_code
    if _skip_teardown:
        _flush_std_streams()
        os._exit(code)
    if _prepared:
        import threading

        _exit_code = code
        threading.Thread(target=_exit_after_grace, name="gust-exit", daemon=True).start()
    sys.exit(code)


def _exit_after_grace() -> None:
    import time

    time.sleep(EXIT_GRACE)
    _flush_std_streams()
    os._exit(_exit_code if _exit_code is not None else EXIT_OK)


def _after_atexit() -> None:
    if _exit_code is None:
        return  # the process is ending some other way: let it
    _flush_std_streams()
    os._exit(_exit_code)


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stream has nothing left to flush
