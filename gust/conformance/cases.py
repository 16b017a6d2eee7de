"""Load the suite's case files and check them beyond what the schema can say.

Theory of operation: a :class:`Suite` is the ``conformance/`` folder (``schema/``,
``transcripts/``, ``dags/``, ``vectors/``). :func:`load_case` reads one transcript, validates
it against ``transcript.schema.json`` (which in turn checks every example frame against the
message schemas), and then checks what a schema cannot: the name matches the file, every
matcher path exists in its example frame, each ``h2c`` frame answers an earlier unanswered
``call`` and fits that call's reply schema, a runtime is never asked to send broken bytes, the
DAG file exists, a case for hosts is a ``task run``, and only a host-only case asks the host to
kill. Raw bytes that are exactly one frame decoding to a call count as a call (a host answers a
call that breaks the call schema too). Every problem names the file and the step. The result is
an immutable :class:`Case` the two modes play.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gust.conformance.matchers import Path as JsonPath
from gust.conformance.matchers import PathError, compare_frame, get_path, parse_path
from gust.conformance.resources import SuiteNotOnDiskError, suite_root
from gust.conformance.schema import SchemaSet
from gust.conformance.wire import decode_one_frame

__all__ = [
    "DAG_FILE",
    "Case",
    "CaseError",
    "Step",
    "Suite",
    "default_suite_root",
    "load_case",
]

#: The placeholder in a case's argv for the DAG file's absolute path.
DAG_FILE = "{dag_file}"


class CaseError(ValueError):
    """A case file is malformed; the message names the file and the place."""


def default_suite_root() -> Path:
    """The suite shipped inside the package (``conformance/`` of a checkout links to it).

    Raises:
        CaseError: the package data has no folder on disk (a zipped install).
    """
    try:
        return suite_root()
    except SuiteNotOnDiskError as exc:
        raise CaseError(str(exc)) from None


@dataclass(frozen=True)
class Suite:
    """The suite's data folders."""

    root: Path
    #: Another folder of cases to play with this suite's schemas and DAGs (recorded ones).
    transcripts: Path | None = None

    @property
    def schema_dir(self) -> Path:
        return self.root / "schema"

    @property
    def transcripts_dir(self) -> Path:
        return self.transcripts or self.root / "transcripts"

    @property
    def dags_dir(self) -> Path:
        return self.root / "dags"

    @property
    def vectors_file(self) -> Path:
        return self.root / "vectors" / "framing.json"

    @property
    def store_file(self) -> Path:
        return self.dags_dir / "store.json"

    def case_files(self) -> list[Path]:
        """Every ``*.json`` transcript, sorted by name."""
        return sorted(self.transcripts_dir.glob("*.json"))


@dataclass(frozen=True)
class Step:
    """One step of an exchange: a frame, raw bytes or the end of the host's output."""

    index: int
    dir: str  # "c2h" or "h2c"
    frame: dict[str, Any] | None = None
    raw: bytes | None = None
    eof: bool = False
    matchers: dict[JsonPath, dict[str, Any]] = field(default_factory=dict)
    #: For an h2c frame: the op of the call it answers.
    answers: str | None = None
    note: str | None = None
    #: For raw bytes that are exactly one frame: the object it decodes to, if it decodes.
    raw_frame: dict[str, Any] | None = None
    #: For raw bytes that are exactly one frame that does not decode: the protocol error code.
    raw_error: str | None = None

    @property
    def call(self) -> dict[str, Any] | None:
        """The call this c2h step makes (a frame, or raw bytes decoding to one), or ``None``."""
        if self.dir != "c2h":
            return None
        frame = self.frame if self.frame is not None else self.raw_frame
        return frame if frame is not None and frame.get("type") == "call" else None

    def describe(self) -> str:
        """``step 3 (c2h log)``, ``step 1 (c2h raw call get_weather)`` and the like."""
        if self.frame is not None:
            kind = _kind(self.frame)
        elif self.raw_frame is not None:
            kind = "raw " + _kind(self.raw_frame)
        elif self.raw is not None:
            kind = f"{len(self.raw)} raw bytes" + (f": {self.raw_error}" if self.raw_error else "")
        else:
            kind = "eof"
        return f"step {self.index} ({self.dir} {kind})"


def _kind(frame: dict[str, Any]) -> str:
    kind = str(frame.get("type"))
    return f"{kind} {frame.get('op')}" if kind == "call" else kind


@dataclass(frozen=True)
class Case:
    """One conformance case, checked and ready to play."""

    name: str
    path: Path
    description: str
    roles: tuple[str, ...]
    dag_file: Path
    argv: tuple[str, ...]
    steps: tuple[Step, ...]
    exit: tuple[int, ...] | None
    stderr: dict[str, Any]
    outcome: str
    timeout: float | None
    data: dict[str, Any]
    #: Host mode: the ``{timeout}`` the host is told to give the task, if the case sets one.
    task_timeout: float | None = None
    #: Host mode: ``{"after": "last_step" | "timeout", "within": seconds}``: the host must kill.
    kill: dict[str, Any] | None = None

    def argv_for(self, dag_file: str | Path | None = None) -> list[str]:
        """The child's arguments with ``{dag_file}`` filled in."""
        target = str(dag_file if dag_file is not None else self.dag_file)
        return [a.replace(DAG_FILE, target) for a in self.argv]

    @property
    def subcommand(self) -> str:
        """``task run``, ``run done`` or ``parse``."""
        return " ".join(self.argv[:2]) if self.argv[0] != "parse" else "parse"

    def option(self, name: str) -> str | None:
        """The value of ``--name`` in argv (also ``--name=value``), or ``None``."""
        for i, arg in enumerate(self.argv):
            if arg == name and i + 1 < len(self.argv):
                return self.argv[i + 1]
            if arg.startswith(name + "="):
                return arg[len(name) + 1 :]
        return None

    def ctx(self) -> dict[str, Any] | None:
        """The parsed ``--ctx-json``, or ``None`` when absent or not an object."""
        raw = self.option("--ctx-json")
        try:
            ctx = json.loads(raw) if raw is not None else None
        except ValueError:
            return None
        return ctx if isinstance(ctx, dict) else None

    def command_line(self) -> str:
        """The argv as one shell-quoted line, for reports."""
        return shlex.join(self.argv_for())


def _fail(path: Path, where: str, problem: str) -> CaseError:
    return CaseError(f"{path}: {where}: {problem}")


def _build_step(path: Path, i: int, raw_step: dict[str, Any]) -> Step:
    where = f"steps[{i}]"
    matchers: dict[JsonPath, dict[str, Any]] = {}
    frame = raw_step.get("frame")
    for key, matcher in raw_step.get("match", {}).items():
        try:
            parsed = parse_path(key)
        except PathError as exc:
            raise _fail(path, where, str(exc)) from None
        if not parsed:
            raise _fail(path, where, "a matcher cannot replace the whole frame ($)")
        found, _ = get_path(frame, parsed)
        if not found:
            raise _fail(path, where, f"matcher path {key} names nothing in the example frame")
        matchers[parsed] = matcher
    if frame is not None:
        # The example must be a frame its own matchers accept (a pid matcher takes any pid).
        diff = compare_frame(frame, frame, matchers)
        if diff is not None:
            raise _fail(path, f"{where}.frame", f"the example breaks its own matcher: {diff}")
    raw = bytes.fromhex(raw_step["raw"]) if "raw" in raw_step else None
    raw_frame, raw_error = decode_one_frame(raw) if raw is not None else (None, None)
    return Step(
        index=i,
        dir=raw_step["dir"],
        frame=frame,
        raw=raw,
        eof=bool(raw_step.get("eof")),
        matchers=matchers,
        note=raw_step.get("note"),
        raw_frame=raw_frame,
        raw_error=raw_error,
    )


def _pair_replies(path: Path, steps: list[Step], schemas: SchemaSet | None) -> list[Step]:
    pending: list[str] = []
    out = []
    for step in steps:
        call = step.call
        if call is not None:
            # A call is answered even when it breaks the call schema (raw bytes that decode).
            pending.append(str(call.get("op")))
        if step.dir == "h2c" and step.frame is not None:
            if not pending:
                raise _fail(
                    path,
                    f"steps[{step.index}]",
                    "a host frame that answers no call (the host never speaks unasked)",
                )
            op = pending.pop(0)
            problems = schemas.check_h2c(step.frame, op) if schemas is not None else []
            if problems:
                raise _fail(
                    path, f"steps[{step.index}].frame", f"not a valid reply to {op}: {problems[0]}"
                )
            step = dataclasses.replace(step, answers=op)
        out.append(step)
    return out


def load_case(path: str | Path, schemas: SchemaSet | None, dags_dir: Path) -> Case:
    """Read, validate and check one case file.

    Args:
        schemas: the suite's schemas (``transcript`` and the message schemas); ``None`` for a
            file the runner has validated already (the scripted child never loads
            ``jsonschema``: it starts once per task attempt of a host).
        dags_dir: where relative ``dag`` names are found.

    Raises:
        CaseError: the file is not JSON, breaks the schema, or fails a check named in the
            module docstring.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CaseError(f"{path}: cannot read the case: {exc}") from None
    problems = schemas.validate("transcript", data) if schemas is not None else []
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CaseError(f"{path}: not a valid transcript: {problems[0]}{more}")
    if data["name"] != path.stem:
        raise _fail(path, "name", f"{data['name']!r} must equal the file's stem {path.stem!r}")
    dag_file = Path(data["dag"])
    if not dag_file.is_absolute():
        dag_file = dags_dir / dag_file
    if not dag_file.is_file():
        raise _fail(path, "dag", f"no DAG file at {dag_file}")
    argv = tuple(data["argv"])
    if argv[:2] not in (("task", "run"), ("run", "done")) and argv[:1] != ("parse",):
        raise _fail(path, "argv", "must start with 'task run', 'run done' or 'parse'")
    roles = tuple(data["roles"])
    steps = [_build_step(path, i, s) for i, s in enumerate(data["steps"])]
    steps = _pair_replies(path, steps, schemas)
    if "runtime" in roles and any(s.dir == "c2h" and s.raw is not None for s in steps):
        raise _fail(
            path, "roles", "a runtime is never expected to write raw bytes: use roles ['host']"
        )
    if "host" in roles and argv[:2] != ("task", "run"):
        raise _fail(path, "roles", "the host role only scripts 'task run' children")
    exit_codes = tuple(data["exit"]) if data["exit"] is not None else None
    kill = data.get("kill")
    if kill is not None:
        if roles != ("host",):
            raise _fail(path, "kill", "only a host can be asked to kill: use roles ['host']")
        if kill["after"] == "timeout" and "task_timeout" not in data:
            raise _fail(path, "kill", "after: timeout needs the case's task_timeout")
        if any(s.dir == "h2c" for s in steps[-1:]):
            raise _fail(path, "kill", "the last step must be the child's: the host kills after it")
    return Case(
        name=data["name"],
        path=path,
        description=data["description"],
        roles=roles,
        dag_file=dag_file.resolve(),
        argv=argv,
        steps=tuple(steps),
        exit=exit_codes,
        stderr=data["stderr"],
        outcome=data["outcome"],
        timeout=data.get("timeout"),
        data=data,
        task_timeout=data.get("task_timeout"),
        kill=kill,
    )


def load_cases(
    suite: Suite,
    schemas: SchemaSet,
    role: str | None = None,
    only: list[str] | None = None,
    dags_dir: Path | None = None,
) -> list[Case]:
    """Load every case of the suite, optionally only those for ``role`` or named in ``only``.

    Args:
        only: case names or shell-style patterns (``y_secret_*``).
        dags_dir: look DAG files up here instead of the suite's ``dags/``.

    Raises:
        CaseError: a case is malformed, or a name in ``only`` matched nothing.
    """
    import fnmatch

    cases = [load_case(p, schemas, dags_dir or suite.dags_dir) for p in suite.case_files()]
    if only:
        picked = []
        for pattern in only:
            hits = [c for c in cases if fnmatch.fnmatchcase(c.name, pattern)]
            if not hits:
                raise CaseError(f"no case matches {pattern!r} in {suite.transcripts_dir}")
            picked += [c for c in hits if c.name not in {p.name for p in picked}]
        cases = sorted(picked, key=lambda c: c.name)
    if role is not None:
        cases = [c for c in cases if role in c.roles]
    return cases
