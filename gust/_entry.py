"""The ``gust`` console script: a fast path in front of click for the commands Gust runs.

Theory of operation: Gust starts ``gust task run`` for every task attempt, ``gust run done`` at
the end of every run and ``gust parse`` on every change of a DAG file, so their start-up is paid
thousands of times a day, and importing click alone costs more than a trivial task. :func:`main`
recognises the exact argv shapes the orchestrator uses (:func:`plan`: the command words, then
each parameter of :data:`gust.commands.COMMANDS` once, an option as ``--opt value`` or
``--opt=value``, in any order, with a non-empty value of the right kind; a positional where the
command has one) and runs the command's body directly. Every other argv (help, version, a typo,
an unknown, repeated or missing option, a stray argument, ``--``, shell completion) goes
unchanged to the click command line in :mod:`gust.cli`, which builds its options from the same
table and owns help and usage errors.

Both paths end in :func:`gust.commands.run_command`, so they run the same code with the same
arguments and exit the same way. A property test checks that whenever :func:`plan` accepts an
argv, click parses it into the same command and arguments. This module imports only ``os`` and
``sys`` (and :mod:`gust.commands`, which imports no more).
"""

from __future__ import annotations

import os
import sys

from gust.commands import COMMANDS, run_command

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

__all__ = ["COMPLETE_VAR", "invoke", "main", "plan"]

#: Set by a shell asking click for completions; the fast path then stands aside.
COMPLETE_VAR = "_GUST_COMPLETE"


def plan(args: Sequence[str]) -> tuple[Callable[..., Any], dict[str, Any]] | None:
    """Return the command body and its keyword arguments for ``args``, or ``None`` to use click.

    Only argv that click parses the same way is accepted: an option's value is the token after
    it (whatever it looks like, as in click) or the text after ``=``; an ``int`` parameter must
    pass ``int()``, as click's own check does; anything this function does not know, and
    anything click might treat differently across versions (a repeated option, an empty value,
    a token starting with ``-`` where a positional would go), is declined.
    """
    for command in COMMANDS:
        if tuple(args[: len(command.words)]) == command.words:
            break
    else:
        return None
    flags = {flag: param for param in command.params for flag in param.flags}
    positionals = [param for param in command.params if param.positional]
    values: dict[str, Any] = {}
    rest = args[len(command.words) :]
    i = 0
    while i < len(rest):
        token = rest[i]
        name, eq, value = token.partition("=")
        param = flags.get(name)
        if param is None:
            if token.startswith("-") or not token or not positionals:
                return None  # "--", --help, a typo, an option of another command, a stray value
            param = positionals.pop(0)
            value = token
        elif not eq:
            i += 1
            if i == len(rest):
                return None  # the value is missing
            value = rest[i]
        if not value or param.dest in values:
            return None
        if param.kind == "int":
            try:
                value = int(value)
            except ValueError:
                return None  # click says why
        values[param.dest] = value
        i += 1
    for param in command.params:
        if param.dest not in values:
            if param.required:
                return None
            values[param.dest] = None
    if command.words == ("parse",) and (values["file"] is None) == (values["file_arg"] is None):
        return None  # neither or both: click and the body say what is wrong
    return command.body, values


def invoke(body: Callable[..., Any], kwargs: dict[str, Any]) -> NoReturn:
    """Run a planned command and end the process (see :func:`gust.commands.run_command`)."""
    run_command(body, kwargs)


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
