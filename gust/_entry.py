"""The ``gust`` console script: a fast path in front of click for the commands Gust runs.

Theory of operation: Gust starts ``gust task run`` for every task attempt, ``gust run done`` at
the end of every run and ``gust parse`` on every change of a DAG file, so their start-up is paid
thousands of times a day, and importing click alone costs more than a trivial task. :func:`main`
recognises the exact argv shapes the orchestrator uses (:func:`plan`: the command words, then
each known option once, as ``--opt value`` or ``--opt=value``, in any order, with a non-empty
value) and calls the command's body directly. Every other argv (help, version, a typo, an
unknown, repeated or missing option, a stray argument, ``--``, shell completion) goes unchanged
to the click command line in :mod:`gust.cli`, which stays the one definition of the interface
and of its error messages.

The command bodies live here and the click callbacks call them, so both paths run the same code
with the same arguments; :func:`invoke` ends the process the way click's standalone mode does
(exit 0 on success, ``Aborted!`` and 1 on an interrupt, a quiet 1 on a broken stdout). A
property test checks that whenever :func:`plan` accepts an argv, click parses it into the same
command and arguments. This module itself imports only ``os``, ``sys`` and ``errno``.
"""

from __future__ import annotations

import errno
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn, TextIO

__all__ = [
    "COMPLETE_VAR",
    "exit_now",
    "invoke",
    "main",
    "parse_command",
    "plan",
    "run_done_command",
    "task_run_command",
]

#: Set by a shell asking click for completions; the fast path then stands aside.
COMPLETE_VAR = "_GUST_COMPLETE"


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` without waiting for threads the task left running.

    The final frame is written and the host is waiting for our exit status. atexit handlers
    (logging's flush, temp files) still run; only the wait on non-daemon threads is skipped.
    """
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stderr, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass  # a closed stderr has nothing left to flush
    os._exit(code)


# -- the command bodies, shared by both paths -------------------------------------------------


def parse_command(file: str) -> NoReturn:
    """``gust parse``: print the DAG definitions of ``file`` as a JSON list, then exit 0.

    The exit skips the interpreter's teardown: freeing the syntax tree of a large DAG file
    object by object costs more than a tenth of the whole command.
    """
    from gust.parser import render_file

    sys.stdout.write(render_file(file))
    sys.stdout.flush()
    exit_now(0)


def task_run_command(file: str, dag: str, task: str, ctx_json: str | None) -> NoReturn:
    """``gust task run``: run one task speaking frames on stdin/stdout, then exit."""
    from gust.runtime import run_task

    exit_now(run_task(file, dag, task, ctx_json))


def run_done_command(file: str, dag: str, fn_name: str, status: str, run_id: str) -> NoReturn:
    """``gust run done``: call the DAG's finished-run callback, then exit."""
    from gust.runtime import run_callback

    exit_now(run_callback(file, dag, fn_name, status, run_id))


# -- recognising the orchestrator's argv ------------------------------------------------------


class _Shape:
    """One command the fast path serves: its words, its options and which are required."""

    __slots__ = ("body", "defaults", "options", "required", "words")

    def __init__(
        self,
        words: tuple[str, ...],
        body: Callable[..., Any],
        options: dict[str, str],
        optional: dict[str, str | None],
    ) -> None:
        self.words = words
        self.body = body
        self.options = options  # option spelling -> parameter name
        self.defaults = optional  # parameter name -> value when the option is absent
        self.required = frozenset(options.values()) - optional.keys()


_SHAPES = (
    _Shape(("parse",), parse_command, {"--file": "file"}, {}),
    _Shape(
        ("task", "run"),
        task_run_command,
        {"--file": "file", "--dag": "dag", "--task": "task", "--ctx-json": "ctx_json"},
        {"ctx_json": None},
    ),
    _Shape(
        ("run", "done"),
        run_done_command,
        {
            "--file": "file",
            "--dag": "dag",
            "--fn-name": "fn_name",
            "--fn_name": "fn_name",
            "--status": "status",
            "--run-id": "run_id",
        },
        {},
    ),
)


def plan(args: Sequence[str]) -> tuple[Callable[..., Any], dict[str, str | None]] | None:
    """Return the command body and its keyword arguments for ``args``, or ``None`` to use click.

    Only argv that click parses the same way is accepted: a value is the token after its
    option (whatever it looks like, as in click) or the text after ``=``; anything this
    function does not know, and anything click might treat differently across versions (a
    repeated option, an empty value), is declined.
    """
    for shape in _SHAPES:
        if tuple(args[: len(shape.words)]) == shape.words:
            break
    else:
        return None
    values: dict[str, str | None] = {}
    rest = args[len(shape.words) :]
    i = 0
    while i < len(rest):
        name, eq, value = rest[i].partition("=")
        dest = shape.options.get(name)
        if dest is None:
            return None  # a positional, "--", --help, a typo or an option of another command
        if not eq:
            i += 1
            if i == len(rest):
                return None  # the value is missing
            value = rest[i]
        if not value or dest in values:
            return None
        values[dest] = value
        i += 1
    if not shape.required <= values.keys():
        return None
    return shape.body, {**shape.defaults, **values}


# -- running a command as click's standalone mode does ----------------------------------------


class _QuietFlush:
    """A stream whose ``flush`` ignores a broken pipe, so the exit is not reported twice."""

    def __init__(self, wrapped: TextIO) -> None:
        self._wrapped = wrapped

    def flush(self) -> None:
        try:
            self._wrapped.flush()
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


def _say(text: str) -> None:
    stream = sys.stderr
    if stream is not None:
        stream.write(text + "\n")
        stream.flush()


def invoke(body: Callable[..., Any], kwargs: dict[str, Any]) -> NoReturn:
    """Run ``body(**kwargs)`` and exit as click's standalone mode would after the callback.

    Success exits 0. An interrupt (``KeyboardInterrupt``, ``EOFError``) prints a blank line and
    ``Aborted!`` on stderr and exits 1. A broken pipe on stdout exits 1 quietly. Any other
    exception propagates (a traceback and status 1), as it does through click.
    """
    try:
        try:
            body(**kwargs)
        except (EOFError, KeyboardInterrupt):
            _say("")  # closes the terminal's ^C echo
            _say("Aborted!")
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise
            sys.stdout = _QuietFlush(sys.stdout)  # type: ignore[assignment]
            sys.stderr = _QuietFlush(sys.stderr)  # type: ignore[assignment]
        else:
            sys.exit(0)
        sys.exit(1)
    except (EOFError, KeyboardInterrupt):
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``gust`` console script and ``python -m gust``.

    Args:
        argv: the arguments after the program name; ``None`` reads ``sys.argv``.
    """
    from gust._importpath import secure_sys_path

    secure_sys_path()  # before anything else is imported: see gust._importpath
    args = sys.argv[1:] if argv is None else argv
    chosen = None if os.environ.get(COMPLETE_VAR) else plan(args)
    if chosen is None:
        from gust.cli import main as click_main

        click_main(argv)
        return
    invoke(*chosen)
