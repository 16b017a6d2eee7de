"""Host mode: run a host under test with a scripted child in place of ``gust``, judge it.

Theory of operation: for each case the runner makes a session folder (``session.json``, a
``bin/gust`` launcher for :mod:`gust.conformance.scripted_child`, ``out/`` for the child's
records), then runs the user's host command through the project's process helper
(:mod:`gust._process`: a session of its own, killed whole at the end) with the placeholders
filled in per argument (``{gust}`` the launcher, ``{dag_file}``, ``{dag}``, ``{task}``,
``{run_id}``, ``{ctx_json}``, ``{store}``, ``{timeout}``), ``bin/`` first on ``PATH`` and
``GUST_CONFORMANCE_SESSION`` naming the session. While the host runs, the runner watches the
processes that sent ``start`` (by pid and start time, :mod:`.procwatch`): when the case wants
the host to kill the task (after a framing fault, or after ``{timeout}``), a task process still
alive ``within`` seconds later is a failure, and the runner kills it so the host can go on. Then
it decides:

- the scripted child did not refuse to run (a host that drops its environment is told so);
- the host finished within the time limit (else: the wire so far, and which call waits);
- the scripted task ran at least once, and every start of it played every step with no stray
  frame from the host;
- the host killed each task process in time when the case says it must, and did not exit
  leaving one running;
- the host's exit status states the case's outcome: 0 succeeded, 1 failed (anything else is the
  host failing, shown with its stderr).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from gust import _process
from gust.conformance import procwatch
from gust.conformance.cases import Case, Suite
from gust.conformance.matchers import brief
from gust.conformance.report import CaseResult, describe_wire
from gust.conformance.schema import SchemaSet
from gust.conformance.scripted_child import ENV_SESSION, SESSION_FILE

__all__ = ["KILL_WITHIN", "LINGER", "PLACEHOLDERS", "fill_command", "run_case"]

#: The placeholders a host command may use.
PLACEHOLDERS: Final = (
    "{gust}",
    "{dag_file}",
    "{dag}",
    "{task}",
    "{run_id}",
    "{ctx_json}",
    "{store}",
    "{timeout}",
)
#: "At once", in seconds: how soon a host must kill a task after a framing fault or a timeout.
KILL_WITHIN: Final = 2.0
#: Seconds the scripted child reads for stray frames after its last step.
LINGER: Final = 0.3
#: The scripted child gives up this long after the runner would (so the runner's verdict wins).
_CHILD_SLACK: Final = 5.0
_POLL: Final = 0.02
_TAIL: Final = 4096
_STDERR_KEEP: Final = 1 << 20
_JOIN: Final = 5.0
_OUTCOME: Final = {0: "ok", 1: "failed"}


def fill_command(template: list[str], values: dict[str, str]) -> list[str]:
    """Replace each ``{name}`` of ``values`` in every word of ``template`` (never re-split)."""
    out = []
    for word in template:
        for key, value in values.items():
            word = word.replace("{" + key + "}", value)
        out.append(word)
    return out


def _launcher(folder: Path) -> Path:
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    script = bin_dir / "gust"
    python = shlex.quote(sys.executable)
    script.write_text(
        f"#!/bin/sh\nexec {python} -m gust.conformance.scripted_child "
        f'--session {shlex.quote(str(folder))} "$@"\n',
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


def _tail_line(text: str, limit: int = 300) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    tail = " | ".join(lines[-3:])
    return tail if len(tail) <= limit else "..." + tail[-limit:]


def _stderr_said(text: str) -> str:
    tail = _tail_line(text)
    return f"its stderr ends: {tail}" if tail else "it wrote nothing on stderr"


@dataclass
class _TaskProcess:
    """One process that sent ``start`` (the scripted child's protocol process)."""

    pid: int
    start_time: str | None
    spawned: int
    spawned_start_time: str | None
    started_at: float
    fault_at: float | None = None
    died_at: float | None = None
    spawned_died_at: float | None = None
    late: bool = False
    #: The process the host spawned was gone while this one still ran (killed the wrong one).
    only_spawned: bool = False

    def deadline(self, case: Case, task_timeout: float) -> float | None:
        """The wall time by which the host must have killed it, if the case says so."""
        kill = case.kill
        if kill is None:
            return None
        if kill["after"] == "timeout":
            return self.started_at + task_timeout + kill["within"]
        return None if self.fault_at is None else self.fault_at + kill["within"]


class _Watch:
    """Follows the task processes of one case through their ``proc-*.json`` records."""

    def __init__(self, out_dir: Path, case: Case, task_timeout: float) -> None:
        self.out_dir = out_dir
        self.case = case
        self.task_timeout = task_timeout
        self.procs: dict[int, _TaskProcess] = {}
        self._seen: dict[Path, int] = {}

    def poll(self) -> None:
        for path in self.out_dir.glob("proc-*.json"):
            try:
                mtime = path.stat().st_mtime_ns
                if self._seen.get(path) == mtime:
                    continue
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # replaced meanwhile: read it on the next poll
            self._seen[path] = mtime
            known = self.procs.get(data["pid"])
            if known is None:
                self.procs[data["pid"]] = _TaskProcess(
                    pid=data["pid"],
                    start_time=data["start_time"],
                    spawned=data["spawned"],
                    spawned_start_time=data["spawned_start_time"],
                    started_at=data["started_at"],
                    fault_at=data["fault_at"],
                )
            else:
                known.fault_at = data["fault_at"]
        now = time.time()
        for p in self.procs.values():
            if p.spawned_died_at is None and not procwatch.is_alive(
                p.spawned, p.spawned_start_time
            ):
                p.spawned_died_at = now
            if p.died_at is not None:
                continue
            if not procwatch.is_alive(p.pid, p.start_time):
                p.died_at = now
                continue
            p.only_spawned = p.spawned_died_at is not None
            deadline = p.deadline(self.case, self.task_timeout)
            if deadline is not None and now > deadline and not p.late:
                # Too late: the verdict is known; end it so the host can finish its run.
                p.late = True
                procwatch.kill(p.pid, p.start_time)

    def kill_leftovers(self) -> None:
        for p in self.procs.values():
            procwatch.kill(p.pid, p.start_time)
            procwatch.kill(p.spawned, p.spawned_start_time)


def run_case(
    case: Case,
    suite: Suite,
    schemas: SchemaSet,
    command: list[str],
    *,
    timeout: float = 30.0,
    store: Path | None = None,
) -> CaseResult:
    """Run the host ``command`` on ``case`` with the scripted child and return the verdict.

    Args:
        command: the host command with placeholders (see :data:`PLACEHOLDERS`).
        timeout: seconds the host may take for the case, unless the case sets its own.
        schemas: the suite's schemas, for the replies the scripted child received.
        store: the fixtures file for ``{store}`` (default: the suite's ``dags/store.json``).
    """
    limit = case.timeout or timeout
    task_timeout = case.task_timeout or limit
    ctx = case.ctx() or {}
    values = {
        "gust": "",
        "dag_file": str(case.dag_file),
        "dag": case.option("--dag") or "",
        "task": case.option("--task") or "",
        "run_id": str(ctx.get("run_id", "")),
        "ctx_json": case.option("--ctx-json") or "",
        "store": str(store or suite.store_file),
        "timeout": f"{task_timeout:g}",
    }
    with tempfile.TemporaryDirectory(prefix=f"gust-conformance-{case.name}-") as tmp:
        folder = Path(tmp)
        values["gust"] = str(_launcher(folder))
        out_dir = folder / "out"
        out_dir.mkdir()
        session = {
            "case": str(case.path),
            "dags": str(case.dag_file.parent),
            "deadline_s": limit + _CHILD_SLACK,
            "linger_s": LINGER,
        }
        (folder / SESSION_FILE).write_text(json.dumps(session), encoding="utf-8")
        argv = fill_command(command, values)
        result = CaseResult(case=case.name, mode="host", command=argv)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GUST_CONFORMANCE_")}
        env[ENV_SESSION] = str(folder)
        env["PATH"] = f"{folder / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        try:
            child = _process.spawn(argv, env=env, stdin=False)
        except OSError as exc:
            result.check("start the host", False, f"cannot run {argv[0]!r}: {exc}")
            result.duration = time.monotonic() - result.started
            return result
        out = _process.StderrCollector(child.take_fd("stdout"), tail_bytes=_TAIL)
        err = _process.StderrCollector(child.take_fd("stderr"), keep=_STDERR_KEEP)
        out.start()
        err.start()
        watch = _Watch(out_dir, case, task_timeout)
        hung_at: list[dict[str, Any]] | None = None
        try:
            deadline = time.monotonic() + limit
            while child.wait(_POLL) is None:
                watch.poll()
                if time.monotonic() >= deadline:
                    hung_at = _verdicts(out_dir)  # where the child waits, before anything ends
                    child.kill()
                    child.wait()
            watch.poll()
            out.join(_JOIN)
            err.join(_JOIN)
            result.exit = child.returncode
            result.stderr = err.kept_text()
            if err.total > _STDERR_KEEP:
                result.stderr += f"\n[... {err.total} bytes in all; the end:]\n{err.tail_text(40)}"
            stdout_tail = out.tail_text(40)
            if stdout_tail.strip():
                result.notes.append("host stdout (tail): " + stdout_tail)
            _judge(case, schemas, out_dir, result, hung_at, limit, watch)
            said = f"the host exited {result.exit}"
            if (
                hung_at is None
                and result.exit not in _OUTCOME
                and said not in (result.first_difference or said)
            ):
                # A host that crashed or refused its arguments: say so on the case's line.
                result.context = f" ({said}; {_stderr_said(result.stderr)})"
        finally:
            watch.kill_leftovers()
            child.kill()
            child.wait()
            child.kill_leftovers(settle=0.2)
            child.close()
        result.duration = time.monotonic() - result.started
    return result


def _verdicts(out_dir: Path) -> list[dict[str, Any]]:
    verdicts = []
    for path in sorted(out_dir.glob("child-*.json")):
        with contextlib.suppress(OSError, ValueError):  # being replaced: the older one is gone
            verdicts.append(json.loads(path.read_text(encoding="utf-8")))
    return sorted(verdicts, key=lambda v: v.get("started_at", 0))


def _records(out_dir: Path, kind: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted(out_dir.glob(f"{kind}-*.json")):
        with contextlib.suppress(OSError, ValueError):  # a partly written record: nothing to say
            out.append(json.loads(path.read_text(encoding="utf-8")))
    return out


def _may_end_here(case: Case, index: int) -> bool:
    """Whether a host may end the child at step ``index``: only a final ``eof`` is left.

    The last step is the host ending the conversation, so from the last bytes the child
    writes on, killing it instead of closing its stdin is a correct ending.
    """
    steps = case.steps
    if not steps or not steps[-1].eof:
        return False
    return all(s.dir == "c2h" for s in steps[index:-1])


def _waiting_text(case: Case, verdict: dict[str, Any] | None) -> str:
    """Where the scripted child waits, in words, with the call it waits on."""
    if verdict is None:
        return "the host had not started the scripted task"
    waiting = verdict.get("waiting") or {}
    pid = verdict.get("pid")
    if waiting.get("kill"):
        return f"the task process (start pid {pid}) was waiting to be killed"
    if waiting.get("linger") or verdict.get("status") == "done":
        return f"the scripted child had played every step (start pid {pid})"
    index = waiting.get("step")
    if index is None:
        return "the scripted child was checking its argv"
    step = case.steps[index]
    if step.eof:
        return f"the scripted child was waiting at {step.describe()} for the host to close stdin"
    if step.dir == "c2h":
        return f"the scripted child was writing {step.describe()}"
    calls = [s for s in case.steps[:index] if s.call is not None]
    answered = sum(1 for s in case.steps[:index] if s.dir == "h2c" and s.frame is not None)
    if answered < len(calls):
        call = calls[answered]
        return (
            f"the scripted child was waiting at {step.describe()} for the reply to "
            f"{call.describe()} {brief(call.call)}"
        )
    return f"the scripted child was waiting at {step.describe()}"


def _take_wire(verdict: dict[str, Any], result: CaseResult) -> str:
    """Add the child's wire record to the report; return its last frames in one line."""
    before = len(result.wire)
    for w in verdict.get("wire", []):
        result.wire_entry(w["dir"], bytes.fromhex(w["hex"]), w["t"], error=w.get("error"))
    return describe_wire(result.wire[before:])


def _judge(
    case: Case,
    schemas: SchemaSet,
    out_dir: Path,
    result: CaseResult,
    hung_at: list[dict[str, Any]] | None,
    limit: float,
    watch: _Watch,
) -> None:
    verdicts = _verdicts(out_dir)
    wire_text = [_take_wire(v, result) for v in verdicts]
    refused = _records(out_dir, "refused")
    delegated = [d["argv"] for d in _records(out_dir, "delegated")]
    if delegated:
        result.notes.append(f"the host also ran the real gust for: {delegated}")
    if refused:
        result.check(
            "scripted child ran",
            False,
            f"the scripted child refused to run: {refused[0]['reason']}",
        )
        return
    if hung_at is not None:
        last = hung_at[-1] if hung_at else None
        wire = f"; wire so far: {wire_text[-1]}" if verdicts else ""
        result.check(
            "host finished",
            False,
            f"the host did not finish within {limit:g} s: {_waiting_text(case, last)}{wire}",
        )
        return
    result.check("host finished", True, f"exit status {result.exit}")
    if not verdicts:
        ran = f"; it ran gust with {delegated}" if delegated else ""
        result.check(
            "scripted child ran",
            False,
            f"the host exited {result.exit} without starting the case's task "
            f"(--dag {case.option('--dag')} --task {case.option('--task')}) through the "
            f"scripted child{ran}; {_stderr_said(result.stderr)}",
        )
        return
    result.check("scripted child ran", True, f"{len(verdicts)} start(s)")
    for n, v in enumerate(verdicts, 1):
        prefix = f"start {n}: " if len(verdicts) > 1 else ""
        _judge_start(case, schemas, v, prefix, result, watch)
    _judge_outcome(case, result)


def _judge_start(
    case: Case,
    schemas: SchemaSet,
    v: dict[str, Any],
    prefix: str,
    result: CaseResult,
    watch: _Watch,
) -> None:
    failed = False
    for c in v["checks"]:
        reply = c.get("reply")
        if reply is not None:
            # The child only compared the reply with the example: its schema is checked here.
            step = case.steps[reply["step"]]
            problems = schemas.check_h2c(reply["frame"], step.answers)
            if not result.check(
                f"{prefix}{c['name']} schema", not problems, "; ".join(problems[:3])
            ):
                failed = True
        failed |= not result.check(prefix + c["name"], bool(c["ok"]), c["detail"])
    if failed or v["status"] == "error":
        return
    waiting = v.get("waiting") or {}
    finished = waiting.get("kill") or waiting.get("linger")
    step_index = waiting.get("step")
    if case.kill is not None and waiting.get("writing") and step_index == len(case.steps) - 1:
        finished = True  # killed as soon as its last bytes left: what the case asks for
    if v["status"] == "running" and not finished:
        if step_index is not None and _may_end_here(case, step_index):
            result.check(
                f"{prefix}{case.steps[-1].describe()}",
                True,
                f"the host ended the child at {case.steps[step_index].describe()}",
            )
        else:
            step = case.steps[step_index] if step_index is not None else None
            where = step.describe() if step is not None else "its argv checks"
            hint = ""
            bad = [
                s.raw_error
                for s in case.steps[: (step_index or 0) + 1]
                if s.raw_error in ("bad_utf8", "bad_json", "not_object")
            ]
            if bad:
                hint = (
                    f"; after a {bad[-1]} frame the stream is still in step: a host drops the "
                    "frame and goes on"
                )
            result.check(
                f"{prefix}exchange",
                False,
                f"the host ended (or abandoned) the child at {where}, before the exchange was "
                f"over{hint}",
            )
            return
    if case.kill is not None:
        _judge_kill(case, watch.procs.get(v["pid"]), prefix, result, watch.task_timeout)


def _judge_kill(
    case: Case, p: _TaskProcess | None, prefix: str, result: CaseResult, task_timeout: float
) -> None:
    kill = case.kill
    assert kill is not None
    name = f"{prefix}task process killed"
    if p is None:
        result.check(name, False, "the runner lost track of the task process")
        return
    who = f"start pid {p.pid} (the host spawned pid {p.spawned})"
    if kill["after"] == "timeout":
        origin, event = p.started_at, f"its start (task timeout {task_timeout:g} s)"
        allowed = task_timeout + kill["within"]
    else:
        origin, event = p.fault_at or p.started_at, "the framing fault"
        allowed = kill["within"]
    only_spawned = (
        " The host ended only the process it spawned: under `uv run` that is uv, and Python "
        "goes on running."
        if p.only_spawned
        else ""
    )
    how = "kill -9 the pid of the start frame (or the whole process group)"
    if p.late:
        result.check(
            name,
            False,
            f"{who} still ran {allowed:g} s after {event}; a host must {how} at once "
            f"(within {kill['within']:g} s).{only_spawned}",
        )
        return
    if p.died_at is None:
        result.check(
            name,
            False,
            f"the host exited {result.exit} leaving {who} running; a host must {how}."
            f"{only_spawned}",
        )
        return
    took = p.died_at - origin
    result.check(name, True, f"{who} ended {took:.2f} s after {event} (limit {allowed:g} s)")


def _judge_outcome(case: Case, result: CaseResult) -> None:
    got = _OUTCOME.get(result.exit) if result.exit is not None else None
    if got is None:
        result.check(
            "host outcome",
            False,
            f"the host exited {result.exit}, which states no outcome (0: the task succeeded, "
            f"1: it failed); {_stderr_said(result.stderr)}",
        )
        return
    ok = got == case.outcome
    result.check(
        "host outcome",
        ok,
        f"the host exited {result.exit} ({got}) for a task whose outcome is {case.outcome!r}"
        + ("" if ok else f"; {_stderr_said(result.stderr)}"),
    )
