"""``gust check [PATH ...]``: every problem of a folder of DAG files, before Gust sees them.

The "no import errors" test of a DAG project as one command, for CI and pre-commit. A PATH is a
file, or a folder whose ``.py`` files are taken the way Gust takes the files of its DAGs folder
(the folder's own files, not its subfolders). For each file:

1. the static parse of ``gust parse`` (:func:`gust.parser.parse_file`): a file that defines no
   ``Dag`` class is not a DAG file and is skipped; every error and message of the parse is a
   problem (a message says where Gust will see something other than what Python runs), and so
   is a second DAG class in one file (Gust runs only the first);
2. unless ``load=False``, the file is copied to the temp dir under Gust's name for run copies
   and imported in a child process (:mod:`gust._checkload`), with the DAGs folder as working
   directory, as ``gust task run`` imports it: an exception at import (a missing module, a
   failing statement, ``sys.exit``) is reported at the line of the DAG file where it happened;
   then each DAG class is created and compared with what the parse read. The user's code never
   runs in the checker's own process.

Each problem is one line, ``file:line: message`` (line 0 when no line applies), and the result
says 0 when there are none, 1 otherwise. Children run in parallel (one per CPU), each in a
session of its own, killed with whatever it started when it is done or after ``timeout``
seconds; :func:`main`, the command line, also makes its process the reaper of orphans, so that
daemons a module starts at import (``setsid``, double forks) are found and killed too.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

__all__ = [
    "DEFAULT_TIMEOUT",
    "CheckResult",
    "DagFile",
    "Problem",
    "check_paths",
    "find_dag_files",
    "main",
]

#: Seconds a file may take to import (and its DAG classes to be created).
DEFAULT_TIMEOUT: Final = 60.0
# Seconds past the child's own faulthandler deadline before the parent kills it.
_KILL_AFTER: Final = 5.0
# What is kept of a child's stderr (its end holds a faulthandler dump), and of its answer.
_STDERR_TAIL: Final = 64 * 1024
_MAX_ANSWER: Final = 16 * 1024 * 1024
_MESSAGE_LINE = re.compile(r"line (\d+): (?:also an error: )?(.*)", re.S)


@dataclass(frozen=True)
class Problem:
    """One problem: where it is, what it is, and which step found it (``parse``/``import``)."""

    file: str
    line: int
    message: str
    source: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        """The problem's entry in ``--json`` output."""
        return {
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "source": self.source,
        }


@dataclass
class CheckResult:
    """What a check found: the DAG files checked, the other files skipped, every problem."""

    checked: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when there is no problem, else 1."""
        return 1 if self.problems else 0

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` output."""
        return {
            "ok": not self.problems,
            "checked": self.checked,
            "skipped": self.skipped,
            "problems": [p.to_json() for p in self.problems],
        }


@dataclass(frozen=True)
class DagFile:
    """A file to check: ``shown`` as the user will read it, its absolute ``path``, and the DAGs
    ``folder`` it belongs to (the working directory of its import)."""

    shown: str
    path: str
    folder: str


def find_dag_files(paths: Sequence[str]) -> tuple[list[DagFile], list[Problem]]:
    """The files to check under ``paths``, and a problem for each path that is neither a file
    nor a folder."""
    targets: list[DagFile] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for given in paths:
        absolute = os.path.abspath(given)
        if os.path.isdir(absolute):
            try:
                names = sorted(n for n in os.listdir(absolute) if n.endswith(".py"))
            except OSError as exc:
                problems.append(
                    Problem(given, 0, f"cannot list the folder: {exc.strerror}", "path")
                )
                continue
            found = [
                (os.path.normpath(os.path.join(given, n)), os.path.join(absolute, n))
                for n in names
                if os.path.isfile(os.path.join(absolute, n))
            ]
            folder = absolute
        elif os.path.exists(absolute):
            found, folder = [(given, absolute)], os.path.dirname(absolute)
        else:
            problems.append(Problem(given, 0, "no such file or folder", "path"))
            continue
        for shown, path in found:
            if path not in seen:
                seen.add(path)
                targets.append(DagFile(shown, path, folder))
    return targets, problems


def _class_line(source: str, name: str) -> int:
    match = re.search(rf"^class\s+{re.escape(name)}\b", source, re.M)
    return source.count("\n", 0, match.start()) + 1 if match else 0


def _parse_problems(target: DagFile, entries: list[dict[str, Any]]) -> list[Problem]:
    found: list[Problem] = []

    def add(line: int, message: str) -> None:
        problem = Problem(target.shown, line, message, "parse")
        if problem not in found:
            found.append(problem)

    for entry in entries:
        error = entry.get("error") or {}
        if error:
            add(int(error.get("line", 0)), str(error.get("description")))
        for text in entry.get("messages", []):
            match = _MESSAGE_LINE.fullmatch(text)
            if match:
                add(int(match.group(1)), match.group(2))
            else:
                add(0, text)
    if len(entries) > 1:
        try:
            with open(target.path, encoding="utf-8", errors="replace") as handle:
                source = handle.read()
        except OSError:
            source = ""
        first = entries[0]["mod"]
        for entry in entries[1:]:
            add(
                _class_line(source, entry["mod"]),
                f"{entry['mod']} is a second DAG class in this file: Gust runs only the first "
                f"({first}); move {entry['mod']} to a file of its own",
            )
    return found


def _child_argv() -> list[str]:
    safe = ["-P"] if sys.version_info >= (3, 11) else []
    return [sys.executable, *safe, "-m", "gust._checkload"]


def _dump_line(stderr: str, copy: str) -> int:
    """The line of the DAG file in a faulthandler dump (most recent call first), or 0."""
    match = re.search(rf'File "{re.escape(copy)}", line (\d+)', stderr)
    return int(match.group(1)) if match else 0


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else ""


def _import_problems(
    target: DagFile, entries: list[dict[str, Any]], timeout: float
) -> list[Problem]:
    from gust.harness.dagfile import temp_copy  # the copy Gust runs tasks from
    from gust.harness.errors import DagFileError

    request = {
        "original": target.path,
        "timeout": timeout,
        "dags": [
            {"mod": e["mod"], "tasks": e.get("tasks", {}), "options": e.get("options", {})}
            for e in entries
        ],
    }
    try:
        with temp_copy(target.path) as copy:
            request["file"] = copy
            code, out, err = _run_child(json.dumps(request), target.folder, timeout)
    except DagFileError as exc:
        return [Problem(target.shown, 0, str(exc), "import")]
    err = err.replace(copy, target.path)
    try:
        answer = json.loads(out) if out.strip() else None
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        return [
            Problem(target.shown, int(p["line"]), str(p["message"]), "import")
            for p in answer.get("problems", [])
        ]
    line = _dump_line(err, target.path)
    if code is None or "Timeout (" in err:
        why = f"importing the file did not finish within {timeout:g} s"
    elif "Fatal Python error" in err:
        fatal = re.search(r"Fatal Python error: ([^\n]*)", err)
        why = f"the process crashed while importing the file ({fatal.group(1) if fatal else ''})"
    else:
        last = _last_line(err)
        why = f"the process exited with status {code} while importing the file" + (
            f" (its last words: {last})" if last else ", saying nothing (os._exit?)"
        )
    return [Problem(target.shown, line, why, "import")]


def _run_child(request: str, folder: str, timeout: float) -> tuple[int | None, str, str]:
    """Run the loader child; its exit status (``None`` when killed at the deadline), its
    answer and the tail of its stderr.

    The child is spawned as every host of the project spawns one (:mod:`gust._process`: a
    session of its own and a token its descendants inherit), so once it has exited, whatever
    the module started is killed, escaped ``setsid`` daemons included when this process is
    their reaper (the command line makes itself one). The answer goes to a temp file, and
    stderr is drained into a bounded tail: a process left holding them cannot keep the check
    waiting, and a module printing without end cannot fill memory.
    """
    from gust._process import TOKEN_ENV, Child, StderrCollector

    token = secrets.token_hex(8)
    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as stdout:
        stdin.write(request.encode("utf-8"))
        stdin.seek(0)
        proc = subprocess.Popen(
            _child_argv(),
            cwd=folder,
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env={**os.environ, TOKEN_ENV: token},
            start_new_session=True,
        )
        child = Child(proc, token)
        collector = StderrCollector(child.take_fd("stderr"), tail_bytes=_STDERR_TAIL)
        collector.start()
        try:
            code = child.wait(timeout + _KILL_AFTER)
        finally:
            child.kill()  # at the deadline: the child too; else what it left behind
            child.wait()
            child.kill_leftovers(settle=0.5)
            child.close()
        collector.join(_KILL_AFTER)
        stdout.seek(0)
        answer = stdout.read(_MAX_ANSWER).decode("utf-8", "replace")
    return code, answer, bytes(collector.tail).decode("utf-8", "replace")


def _check_file(target: DagFile, load: bool, timeout: float) -> tuple[bool, list[Problem]]:
    """Whether ``target`` is a DAG file, and its problems."""
    from gust.parser import parse_file

    entries = parse_file(target.path)
    if not entries:
        return False, []
    problems = _parse_problems(target, entries)
    if load and all(e.get("mod") for e in entries):  # a file that does not parse is not run
        problems += _import_problems(target, entries, timeout)
    problems.sort(key=lambda p: p.line)
    return True, problems


def check_paths(
    paths: Sequence[str] = (".",),
    *,
    load: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    jobs: int | None = None,
) -> CheckResult:
    """Check the DAG files under ``paths`` (see the module docstring).

    Args:
        load: import each file in a child too (``False``: the static parse only).
        timeout: seconds each file may take to import.
        jobs: children at once (default: the CPU count).
    """
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    targets, problems = find_dag_files(list(paths) or ["."])
    result = CheckResult(problems=problems)
    workers = max(1, min(jobs or os.cpu_count() or 1, len(targets) or 1))
    with ThreadPoolExecutor(workers, thread_name_prefix="gust-check") as pool:
        outcomes = list(pool.map(lambda t: _check_file(t, load, timeout), targets))
    for target, (is_dag, found) in zip(targets, outcomes, strict=True):
        (result.checked if is_dag else result.skipped).append(target.shown)
        result.problems += found
    return result


def _write_line(out: TextIO, text: str) -> None:
    # A file name that is not valid UTF-8 reaches us with surrogates; a strict stream cannot
    # print them, so they are shown escaped rather than lost with the rest of the report.
    try:
        out.write(text + "\n")
    except UnicodeEncodeError:
        out.write(text.encode("utf-8", "backslashreplace").decode("utf-8") + "\n")


def main(
    paths: Sequence[str],
    *,
    as_json: bool = False,
    load: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``gust check``: print the problems (or the JSON report) and return the exit status."""
    from gust._process import become_subreaper, reap_orphans

    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    become_subreaper()  # daemons a DAG module starts at import come back to us, to be killed
    result = check_paths(paths, load=load, timeout=timeout)
    reap_orphans()
    if as_json:
        out.write(json.dumps(result.to_json(), indent=2) + "\n")
    else:
        for problem in result.problems:
            _write_line(out, str(problem))
        files = len(result.checked)
        noun = "DAG file" if files == 1 else "DAG files"
        if result.problems:
            bad = len({p.file for p in result.problems})
            count = len(result.problems)
            err.write(
                f"gust check: {count} problem{'s' if count != 1 else ''} in {bad} of "
                f"{files} {noun}\n"
            )
        else:
            err.write(f"gust check: {files} {noun}, no problems\n")
    out.flush()
    return result.exit_code
