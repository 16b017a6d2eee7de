"""The child of ``gust check``: import one DAG file as ``gust task run`` would, and compare.

Run as ``python -m gust._checkload`` by :mod:`gust.check`, never imported by it: the user's
code runs here, in a process of its own. The request comes on stdin as JSON (``file``: the temp
copy to load, named as Gust names its copies; ``dags``: what ``gust parse`` read of each DAG
class; ``timeout``); the answer is one JSON object written to the original stdout when the work
is done, ``{"problems": [{"line", "message"}, ...]}``. Everything the user's code prints goes to
stderr, and stdin reads as empty.

The module is loaded with :func:`gust.invoke.load_module`, from the working directory the parent
chose (the DAGs folder), with the import path secured as the runtime secures it. An exception
while importing is reported at the line of the DAG file where it happened (the innermost frame
in the file; for a ``SyntaxError`` in the file, its own line), naming the other file when it was
raised elsewhere. Then each DAG class the parser found is created as the runtime creates it,
and what Python sees is compared with what ``gust parse`` read, since Gust follows the parser:
each task's ``downstream`` and ``save``, tasks the parser cannot see (inherited from a class of
another module, or made at run time), the options, and the callback. An import that does not
finish in ``timeout`` seconds is dumped by :mod:`faulthandler` (the parent reads the line from
the dump) and the process exits.
"""

from __future__ import annotations

import ast
import contextlib
import faulthandler
import json
import os
import sys
import traceback
from typing import Any

from gust._importpath import secure_sys_path
from gust.dag import TASK_ATTR, Dag, TaskOptions
from gust.invoke import SetupError, exception_type_name, find_callable, find_dag, load_module

_MESSAGE_CHARS = 300


class _Report:
    """Problems of one file; ``file`` is the copy being loaded, ``original`` the user's file."""

    def __init__(self, file: str, original: str) -> None:
        self.file = file
        self.original = original
        self.problems: list[dict[str, Any]] = []

    def add(self, line: int, message: str) -> None:
        self.problems.append({"line": line, "message": message})

    def text(self, value: object) -> str:
        """``value`` as one line of text, naming the user's file instead of the copy."""
        try:
            text = str(value)
        except Exception as exc:  # noqa: BLE001 - a __str__ that raises still gets reported
            text = f"<str() failed: {exception_type_name(exc)}>"
        first = text.strip().splitlines()[0] if text.strip() else ""
        first = first.replace(self.file, self.original)
        if len(first) > _MESSAGE_CHARS:
            first = first[:_MESSAGE_CHARS] + "…"
        return first

    def exception(self, exc: BaseException, fallback_line: int, what: str) -> None:
        """Report ``exc`` at the innermost line of the DAG file it passed through."""
        line, elsewhere = fallback_line, None
        for frame, lineno in traceback.walk_tb(exc.__traceback__):
            filename = frame.f_code.co_filename
            if filename == self.file:
                line, elsewhere = lineno, None
            elif not filename.startswith("<frozen"):
                elsewhere = f"{filename}:{lineno}"
        if isinstance(exc, SyntaxError) and exc.lineno:
            if exc.filename == self.file:
                line, elsewhere = exc.lineno, None
            else:
                elsewhere = f"{exc.filename}:{exc.lineno}"
        detail = self.text(exc.msg if isinstance(exc, SyntaxError) else exc)
        message = f"{what}: {exception_type_name(exc)}" + (f": {detail}" if detail else "")
        if elsewhere is not None:
            message += f" (raised at {elsewhere})"
        temp_dir = os.path.dirname(self.file)
        if temp_dir + os.sep in detail:
            message += (
                f" (Gust runs the file from a copy in {temp_dir}: what sits beside it is not "
                "there; find files from the working directory, Gust's DAGs folder)"
            )
        self.add(line, message)


def _class_lines(path: str) -> dict[str, int]:
    """The line of each top-level class of the file (the last binding of a name wins)."""
    try:
        with open(path, "rb") as handle:
            tree = ast.parse(handle.read())
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    return {node.name: node.lineno for node in tree.body if isinstance(node, ast.ClassDef)}


def _line_of(fn: Any, file: str, fallback: int) -> int:
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is not None and code.co_filename == file:
        return int(code.co_firstlineno)
    return fallback


def _where(fn: Any) -> str:
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else "at run time"


def _check_dag(module: Any, spec: dict[str, Any], report: _Report, lines: dict[str, int]) -> None:
    mod = spec["mod"]
    class_line = lines.get(mod, 0)
    try:
        dag = find_dag(module, mod)
    except SetupError as exc:
        if exc.cause is None:
            report.add(class_line, f"{exc.message} once the file has run: Gust cannot run it")
        else:
            report.exception(exc.cause, class_line, exc.message)
        return
    parsed: dict[str, Any] = spec["tasks"]
    for name, want in parsed.items():
        try:
            fn, options = find_callable(dag, mod, name)
        except SetupError as exc:
            report.add(class_line, f"{exc.message} at run time, though gust parse lists it")
            continue
        got = {"downstream": list(options.downstream), "save": options.save}
        if got != {"downstream": want["downstream"], "save": want["save"]}:
            report.add(
                _line_of(fn, report.file, class_line),
                f"task '{name}' of {mod} has downstream={got['downstream']} save={got['save']} "
                f"when it runs, but gust parse reads downstream={want['downstream']} "
                f"save={want['save']}, and Gust follows gust parse",
            )
    cls = type(dag)
    for name in dir(cls):
        if name in parsed:
            continue
        try:
            attr = getattr(cls, name)
        except Exception:  # noqa: BLE001 - an attribute that cannot be read is no task
            continue
        if callable(attr) and isinstance(getattr(attr, TASK_ATTR, None), TaskOptions):
            report.add(
                _line_of(attr, report.file, class_line),
                f"'{name}' of {mod} is a task when it runs ({report.text(_where(attr))}), but "
                "gust parse cannot see it, so Gust never runs it",
            )
    if isinstance(dag, Dag):
        for option in ("schedule", "on_finished_callback"):
            runtime, static = dag.options.get(option), spec["options"].get(option)
            if runtime != static:
                report.add(
                    class_line,
                    f"{option} of {mod} is {runtime!r} when it runs, but gust parse reads "
                    f"{static!r}, and Gust follows gust parse",
                )
    callback = spec["options"].get("on_finished_callback")
    if isinstance(callback, str) and callback:
        try:
            find_callable(dag, mod, callback)
        except SetupError as exc:
            message = exc.message.replace("Task '", "Callback '")
            report.add(class_line, f"on_finished_callback: {message}: gust run done will fail")


def run(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Load the file of ``request`` and return its problems."""
    file, original = request["file"], request["original"]
    report = _Report(file, original)
    try:
        module = load_module(file)
    except SetupError as exc:
        cause = exc.cause if exc.cause is not None else exc
        report.exception(cause, 0, "importing the file failed")
        return report.problems
    lines = _class_lines(file)
    for spec in request["dags"]:
        try:
            _check_dag(module, spec, report, lines)
        except Exception as exc:  # noqa: BLE001 - whatever user code raised while being checked
            report.exception(exc, lines.get(spec["mod"], 0), f"checking {spec['mod']} failed")
    return report.problems


def main() -> None:
    """Read the request, do the work, write the answer, and leave at once."""
    pid = os.getpid()
    answer_fd = os.dup(1)
    os.dup2(2, 1)  # the user's prints go to stderr
    request = json.loads(sys.stdin.read())
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    faulthandler.enable(file=sys.stderr)
    faulthandler.dump_traceback_later(request["timeout"], exit=True, file=sys.stderr)
    sys.dont_write_bytecode = True  # no cache files for the temp copy
    secure_sys_path()
    problems = run(request)
    if os.getpid() != pid:
        os._exit(0)  # a process the module forked came back here: only the loader answers
    faulthandler.cancel_dump_traceback_later()
    data = json.dumps({"problems": problems}, ensure_ascii=True).encode("ascii")
    view = memoryview(data)
    while view:
        view = view[os.write(answer_fd, view) :]
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed by the user's code: nothing left
            stream.flush()
    os._exit(0)  # threads or atexit handlers the module started must not hold the check up


if __name__ == "__main__":
    main()
