"""Host mode: run a host under test with a scripted child in place of ``gust``, judge it.

Theory of operation: for each case the runner makes a private folder with a ``bin/gust``
launcher for :mod:`gust.conformance.scripted_child`, then runs the host command of the user
with placeholders filled in (``{gust}`` the launcher, ``{dag_file}``, ``{dag}``, ``{task}``,
``{run_id}``, ``{ctx_json}``, ``{store}``), ``bin/`` first on ``PATH`` and the case named in
the environment. The host must run the case's task once through that child and exit 0 exactly
when the task succeeded (the case's ``outcome``). The scripted child replays the case and
leaves one verdict file per start; the runner reads them and decides:

- the host finished within the time limit (a host that hangs on a broken child fails);
- the scripted task ran at least once, and every start of it played every step: each host
  frame valid and equal to the example, an ``eof`` step met by the host closing stdin or
  ending the child;
- the host's exit status says what the case's outcome is.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gust.conformance.cases import Case, Suite
from gust.conformance.report import CaseResult
from gust.conformance.scripted_child import (
    ENV_CASE,
    ENV_DAGS,
    ENV_OUT,
    ENV_SCHEMAS,
    ENV_TIMEOUT,
    ENV_WIRE,
)

__all__ = ["PLACEHOLDERS", "fill_command", "run_case"]

#: The placeholders a host command may use.
PLACEHOLDERS = ("{gust}", "{dag_file}", "{dag}", "{task}", "{run_id}", "{ctx_json}", "{store}")

_TAIL = 2000


def _launcher(folder: Path) -> Path:
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    script = bin_dir / "gust"
    script.write_text(
        f"#!/bin/sh\nexec '{sys.executable}' -m gust.conformance.scripted_child \"$@\"\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


def fill_command(template: list[str], values: dict[str, str]) -> list[str]:
    """Replace each ``{name}`` of ``values`` in every word of ``template``."""
    out = []
    for word in template:
        for key, value in values.items():
            word = word.replace("{" + key + "}", value)
        out.append(word)
    return out


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(proc.pid, signal.SIGKILL)
    proc.kill()


def _kill_leftover_child(pid: int) -> None:
    # Only a process that still runs our scripted child under that pid is ours to end.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if b"gust.conformance.scripted_child" in cmdline:
        with contextlib.suppress(ProcessLookupError):  # ended on its own meanwhile
            os.kill(pid, signal.SIGKILL)


def run_case(
    case: Case,
    suite: Suite,
    command: list[str],
    *,
    timeout: float = 30.0,
    store: Path | None = None,
    keep_wire: bool = False,
) -> CaseResult:
    """Run the host ``command`` on ``case`` with the scripted child and return the verdict.

    Args:
        command: the host command with placeholders (see :data:`PLACEHOLDERS`).
        timeout: seconds the host may take for the case, unless the case sets its own.
        store: the fixtures file for ``{store}`` (default: the suite's ``dags/store.json``).
        keep_wire: have the scripted child record the bytes both ways for the report.
    """
    limit = case.timeout or timeout
    ctx = case.ctx() or {}
    values = {
        "gust": "",
        "dag_file": str(case.dag_file),
        "dag": case.option("--dag") or "",
        "task": case.option("--task") or "",
        "run_id": str(ctx.get("run_id", "")),
        "ctx_json": case.option("--ctx-json") or "",
        "store": str(store or suite.store_file),
    }
    with tempfile.TemporaryDirectory(prefix=f"gust-conformance-{case.name}-") as tmp:
        folder = Path(tmp)
        values["gust"] = str(_launcher(folder))
        out_dir = folder / "out"
        out_dir.mkdir()
        argv = fill_command(command, values)
        result = CaseResult(case=case.name, mode="host", command=argv)
        env = dict(os.environ)
        env.update(
            {
                ENV_CASE: str(case.path),
                ENV_DAGS: str(suite.dags_dir),
                ENV_SCHEMAS: str(suite.schema_dir),
                ENV_OUT: str(out_dir),
                ENV_TIMEOUT: str(limit),
                "PATH": f"{folder / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            }
        )
        if keep_wire:
            env[ENV_WIRE] = "1"
        else:
            env.pop(ENV_WIRE, None)
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            result.check("start the host", False, f"cannot run {argv[0]!r}: {exc}")
            result.duration = time.monotonic() - result.started
            return result
        hung = False
        try:
            out, err = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            hung = True
            _kill_group(proc)
            out, err = proc.communicate()
        result.exit = proc.returncode
        result.stderr = err.decode("utf-8", "replace")
        stdout_text = out.decode("utf-8", "replace")
        if stdout_text.strip():
            result.notes.append("host stdout (tail): " + stdout_text[-_TAIL:])
        _judge(case, out_dir, result, hung, limit)
        result.duration = time.monotonic() - result.started
    return result


def _may_end_here(case: Case, index: int) -> bool:
    """Whether a host may end the child at step ``index``: only a final ``eof`` is left.

    The last step is the host ending the conversation, so from the last bytes the child
    writes on, killing it instead of closing its stdin is a correct ending.
    """
    steps = case.steps
    if not steps or not steps[-1].eof:
        return False
    return all(s.dir == "c2h" for s in steps[index:-1])


def _judge(case: Case, out_dir: Path, result: CaseResult, hung: bool, limit: float) -> None:
    verdicts = []
    for path in sorted(out_dir.glob("child-*.json")):
        try:
            verdicts.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            result.check("scripted child", False, f"unreadable verdict {path.name}: {exc}")
            return
    verdicts.sort(key=lambda v: v.get("started_at", 0))
    delegated = []
    for path in sorted(out_dir.glob("delegated-*.json")):
        try:
            delegated.append(json.loads(path.read_text(encoding="utf-8"))["argv"])
        except (OSError, ValueError, KeyError):
            continue  # a partly written record of a delegated start: nothing to judge
    for v in verdicts:
        if v.get("status") == "running":
            _kill_leftover_child(int(v["pid"]))
    if delegated:
        result.notes.append(f"the host also ran the real gust for: {delegated}")
    if not result.check(
        "host finished",
        not hung,
        f"the host did not finish within {limit:g} s (it hangs on this exchange)" if hung else "",
    ):
        return
    if not verdicts:
        ran = f"; it ran gust with {delegated}" if delegated else ""
        result.check(
            "scripted child ran",
            False,
            f"the host never started the case's task (--dag {case.option('--dag')} "
            f"--task {case.option('--task')}) through the scripted child{ran}",
        )
        return
    result.check("scripted child ran", True, f"{len(verdicts)} start(s)")
    for n, v in enumerate(verdicts, 1):
        prefix = f"start {n}: " if len(verdicts) > 1 else ""
        for c in v["checks"]:
            result.check(prefix + c["name"], bool(c["ok"]), c["detail"])
        for w in v.get("wire", []):
            result.wire_chunk(w["dir"], bytes.fromhex(w["hex"]))
        if v["status"] == "error" or any(not c["ok"] for c in v["checks"]):
            continue
        if v["status"] == "running":
            waiting = v.get("waiting") or {}
            step_index = waiting.get("step")
            if step_index is not None and _may_end_here(case, step_index):
                result.check(
                    f"{prefix}{case.steps[-1].describe()}",
                    True,
                    f"the host ended the child at {case.steps[step_index].describe()}",
                )
            else:
                where = (
                    case.steps[step_index].describe()
                    if step_index is not None
                    else "its argv checks"
                )
                result.check(
                    f"{prefix}exchange",
                    False,
                    f"the host ended (or abandoned) the child early, at {where}",
                )
    wanted_ok = case.outcome == "ok"
    got_ok = result.exit == 0
    result.check(
        "host outcome",
        wanted_ok == got_ok,
        f"the host exited {result.exit} for a task whose outcome is {case.outcome!r}"
        + ("" if wanted_ok == got_ok else " (a host exits 0 exactly when the task succeeded)"),
    )
