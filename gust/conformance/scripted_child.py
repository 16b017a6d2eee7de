"""The scripted child: stands in for ``gust`` under a host being tested, and replays one case.

Theory of operation: the runner makes a session folder per case (``session.json``, ``out/``)
and a launcher ``bin/gust`` that starts this module with ``--session FOLDER`` in front of the
host's argv. The child first checks that the host passed its environment on
(``GUST_CONFORMANCE_SESSION`` names the same folder) and otherwise refuses, leaving the reason
in ``out/refused-<pid>.json``. An argv that is not the case's ``task run`` (same ``--dag`` and
``--task``) is handed to the real ``gust`` of this interpreter, so a host can parse and run a
whole DAG around the scripted task.

For the case's task the process behaves like ``uv run gust``: the process the host spawned
forks the process that speaks the protocol and only waits for it (it forwards no signal), so
the pid in ``start`` is not the spawned pid and killing the spawned pid alone leaves the task
running. The protocol process checks the argv (``--file`` holds the case's DAG, ``--ctx-json``
is the case's ctx as JSON) and its working directory (the DAG's folder), then plays the steps:
``c2h`` frames and raw bytes are written to stdout (``pid`` matchers get its own pid), ``h2c``
frames are read from stdin and compared with the example (the runner checks them against the
reply schema afterwards: this process never loads ``jsonschema``, it starts per task attempt).
Whenever no call is waiting for its reply, any frame from the host is a stray (a duplicate or
unsolicited reply) and fails the case; after the last step the child keeps reading for strays
for a moment (or, when the case wants the host to kill it, until it is killed). It leaves two
records in ``out/``: ``child-<pid>.json`` (checks, the wire, where it waits; rewritten before
every wait, so a host that kills it still leaves an honest record) and ``proc-<pid>.json`` (its
pid, start time and the moment of its last bytes, which the runner uses to time the kill).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from gust._process import FrameReader, FrameTimeout
from gust.conformance.cases import Case, CaseError, load_case
from gust.conformance.matchers import brief, compare_frame, materialize
from gust.conformance.procwatch import start_time
from gust.conformance.wire import FrameSplitter
from gust.protocol import ProtocolError, encode_frame

__all__ = ["ENV_SESSION", "SESSION_FILE", "main"]

#: The one variable a host must pass on to the child: the session folder of the case.
ENV_SESSION = "GUST_CONFORMANCE_SESSION"
#: The session's settings, written by the runner in the session folder.
SESSION_FILE = "session.json"

_PREFIX = "gust conformance scripted child"


class _Verdict:
    """The record this child leaves for the runner, rewritten atomically as it goes."""

    def __init__(self, out_dir: Path, argv: list[str], spawned: int) -> None:
        self.path = out_dir / f"child-{os.getpid()}.json"
        self.data: dict[str, Any] = {
            "pid": os.getpid(),
            "spawned": spawned,
            "started_at": time.time(),
            "argv": argv,
            "status": "running",
            "waiting": None,
            "checks": [],
            "wire": [],
        }

    def check(
        self, name: str, ok: bool, detail: str = "", reply: dict[str, Any] | None = None
    ) -> bool:
        entry: dict[str, Any] = {"name": name, "ok": ok, "detail": detail}
        if reply is not None:
            entry["reply"] = reply  # the runner checks it against the reply schema
        self.data["checks"].append(entry)
        return ok

    def wire(self, direction: str, data: bytes, error: str | None = None) -> None:
        entry = {"dir": direction, "t": time.time(), "hex": data.hex()}
        if error is not None:
            entry["error"] = error
        self.data["wire"].append(entry)

    def save(self, status: str | None = None, waiting: dict[str, Any] | None = None) -> None:
        if status is not None:
            self.data["status"] = status
        self.data["waiting"] = waiting
        _write_json(self.path, self.data)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=True), encoding="utf-8")
    os.replace(tmp, path)


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1 :]
    return None


def _delegate(argv: list[str], out_dir: Path) -> NoReturn:
    _write_json(out_dir / f"delegated-{os.getpid()}.json", {"pid": os.getpid(), "argv": argv})
    os.execv(sys.executable, [sys.executable, "-m", "gust", *argv])


def _is_scripted(case: Case, argv: list[str]) -> bool:
    return (
        argv[:2] == ["task", "run"]
        and _option(argv, "--dag") == case.option("--dag")
        and _option(argv, "--task") == case.option("--task")
    )


def _check_start(case: Case, argv: list[str], verdict: _Verdict) -> None:
    file = _option(argv, "--file")
    try:
        same = file is not None and Path(file).read_bytes() == case.dag_file.read_bytes()
        detail = f"--file {file!r} does not hold the bytes of {case.dag_file.name}"
    except OSError as exc:
        same, detail = False, f"--file {file!r} cannot be read: {exc}"
    verdict.check("argv --file", same, "" if same else detail)
    raw_ctx = _option(argv, "--ctx-json")
    try:
        ctx = json.loads(raw_ctx) if raw_ctx is not None else None
    except ValueError:
        ctx = None
    expected = case.ctx()
    ok = ctx == expected
    verdict.check(
        "argv --ctx-json",
        ok,
        "" if ok else f"got {raw_ctx!r}, expected {json.dumps(expected)} (compared as JSON)",
    )
    cwd = Path.cwd().resolve()
    home = case.dag_file.parent.resolve()
    verdict.check(
        "cwd",
        cwd == home,
        "" if cwd == home else f"the child runs in {cwd}, not in the DAG's folder {home}",
    )


class _Stdin:
    """Frames from fd 0 with a deadline; every frame's bytes go to the verdict's wire."""

    def __init__(self, verdict: _Verdict) -> None:
        self.splitter = FrameSplitter()
        self.reader = FrameReader(0, on_bytes=self._seen)
        self.verdict = verdict

    def _seen(self, chunk: bytes) -> None:
        for data in self.splitter.feed(chunk):
            self.verdict.wire("h2c", data)

    def next(self, deadline: float) -> dict[str, Any] | None:
        """The next frame, ``None`` at EOF; raises ``TimeoutError`` or ``ProtocolError``."""
        was_closed = self.reader.closed
        try:
            return self.reader.next_frame(deadline)
        except FrameTimeout:
            raise TimeoutError from None
        finally:
            if self.reader.closed and not was_closed:
                rest = self.splitter.rest()
                if rest is not None:
                    self.verdict.wire("h2c", rest[0], rest[1])

    def stray(self, until: float) -> dict[str, Any] | None:
        """A frame the host sends before ``until`` (monotonic) though no call waits, or ``None``.

        Raises:
            ProtocolError: the host's bytes are no frame.
        """
        while True:
            try:
                frame = self.next(until)
            except TimeoutError:
                return None
            if frame is not None:
                return frame
            if time.monotonic() >= until:
                return None
            time.sleep(min(0.05, max(0.0, until - time.monotonic())))  # stdin closed: wait on


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


class _Player:
    """Plays the steps of one case as the protocol process."""

    def __init__(self, case: Case, verdict: _Verdict, proc: dict[str, Any], out: Path) -> None:
        self.case = case
        self.verdict = verdict
        self.proc = proc
        self.proc_path = out / f"proc-{os.getpid()}.json"
        self.stdin = _Stdin(verdict)
        self.pending = 0  # calls written whose reply has not been read yet
        self.last_label = "the start"

    def record_c2h(self, data: bytes) -> None:
        """Put our bytes on the wire record, a frame an entry (raw bytes told for what they are)."""
        splitter = FrameSplitter()
        for frame in splitter.feed(data):
            self.verdict.wire("c2h", frame)
        rest = splitter.rest()
        if rest is not None:
            self.verdict.wire("c2h", *rest)

    def no_stray(self, until: float) -> bool:
        """Fail the case if the host sends a frame before ``until`` while no call waits."""
        if self.pending:
            return True
        try:
            frame = self.stdin.stray(until)
        except ProtocolError as exc:
            return self.verdict.check(
                "stray frame", False, f"the host's stream broke: {exc.code}: {exc}"
            )
        if frame is None:
            return True
        return self.verdict.check(
            "stray frame",
            False,
            f"after {self.last_label} the host sent {brief(frame)}, which answers no call "
            "(exactly one reply per call; the host never speaks unasked)",
        )

    def play(self, deadline: float) -> bool:
        """Play every step; ``False`` at the first difference (recorded in the verdict)."""
        pid = os.getpid()
        steps = self.case.steps
        for step in steps:
            label = step.describe()
            if step.dir == "c2h":
                if not self.no_stray(time.monotonic()):
                    return False
                data = (
                    step.raw
                    if step.raw is not None
                    else encode_frame(materialize(step.frame or {}, step.matchers, pid))
                )
                # Saved before the write: a host may rightly kill us as soon as it sees these.
                self.record_c2h(data)
                if step is steps[-1] and self.case.kill is not None:
                    self.proc["fault_at"] = time.time()
                    _write_json(self.proc_path, self.proc)
                self.verdict.save(waiting={"step": step.index, "eof": False, "writing": True})
                try:
                    _write_all(data)
                except OSError as exc:
                    return self.verdict.check(
                        label, False, f"the host stopped reading our frames: {exc}"
                    )
                self.verdict.check(label, True, f"wrote {len(data)} bytes")
                if step.call is not None:
                    self.pending += 1
                self.last_label = label
                continue
            if not self.read_step(step, label, deadline):
                return False
            self.last_label = label
        return True

    def read_step(self, step: Any, label: str, deadline: float) -> bool:
        self.verdict.save(waiting={"step": step.index, "eof": step.eof})
        try:
            frame = self.stdin.next(deadline)
        except TimeoutError:
            return self.verdict.check(
                label, False, "the host sent nothing within the case's time limit"
            )
        except ProtocolError as exc:
            return self.verdict.check(label, False, f"the host's stream broke: {exc.code}: {exc}")
        if step.eof:
            ok = frame is None
            return self.verdict.check(
                label, ok, "" if ok else f"expected stdin closed, got {brief(frame)}"
            )
        if frame is None:
            return self.verdict.check(
                label, False, f"the host closed stdin; expected {brief(step.frame)}"
            )
        self.pending = max(0, self.pending - 1)
        assert step.frame is not None
        diff = compare_frame(step.frame, frame, step.matchers)
        reply = {"step": step.index, "frame": frame}
        return self.verdict.check(label, diff is None, str(diff) if diff else "", reply)

    def finish(self, deadline: float, linger: float) -> None:
        """After the last step: read for strays, and wait to be killed when the case says so."""
        if self.case.kill is None:
            self.verdict.save(waiting={"linger": True})
            self.no_stray(min(deadline, time.monotonic() + linger))
            return
        self.verdict.save(waiting={"kill": True})
        if not self.no_stray(deadline):
            return
        self.verdict.check(
            "killed", False, "the host did not kill the task process within the case's time limit"
        )


def _play_case(case: Case, argv: list[str], out_dir: Path, session: dict[str, Any]) -> int:
    """The protocol process: play the case, leave the records, return the exit status."""
    spawned = os.getppid()
    verdict = _Verdict(out_dir, argv, spawned)
    proc = {
        "pid": os.getpid(),
        "start_time": start_time(os.getpid()),
        "spawned": spawned,
        "spawned_start_time": start_time(spawned),
        "started_at": verdict.data["started_at"],
        "fault_at": None,
    }
    _write_json(out_dir / f"proc-{os.getpid()}.json", proc)
    verdict.save()
    deadline = time.monotonic() + float(session["deadline_s"])
    player = _Player(case, verdict, proc, out_dir)
    try:
        _check_start(case, argv, verdict)
        if player.play(deadline):
            player.finish(deadline, float(session["linger_s"]))
    except Exception as exc:  # noqa: BLE001 - any crash of ours is recorded for the runner
        verdict.check("scripted child", False, f"internal error: {type(exc).__name__}: {exc}")
        verdict.save(status="error")
        return 70
    verdict.save(status="done")
    with contextlib.suppress(OSError):  # stdout already gone: the host stopped reading
        os.close(1)
    return case.exit[0] if case.exit else 0


def _run_scripted(case: Case, argv: list[str], out_dir: Path, session: dict[str, Any]) -> int:
    """Fork the protocol process and wait for it, as ``uv run`` waits for Python."""
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        status = 70
        try:
            status = _play_case(case, argv, out_dir, session)
        finally:
            sys.stderr.flush()
            os._exit(status)  # stdout (fd 1) may be closed already: no interpreter flush of it
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as a shell says


def _refuse(out_dir: Path, argv: list[str], reason: str) -> int:
    record = {"pid": os.getpid(), "argv": argv, "reason": reason}
    with contextlib.suppress(OSError):  # the session folder is gone: stderr still says it
        _write_json(out_dir / f"refused-{os.getpid()}.json", record)
    sys.stderr.write(f"{_PREFIX}: refused to run: {reason}\n")
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run as the scripted child (see the module docstring); returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] != ["--session"] or len(args) < 2:
        sys.stderr.write(
            f"{_PREFIX}: started by `python -m gust.conformance host` through its {{gust}} "
            "launcher, not by hand\n"
        )
        return 2
    folder, args = Path(args[1]), args[2:]
    out_dir = folder / "out"
    given = os.environ.get(ENV_SESSION)
    if given != str(folder):
        said = "is not set" if not given else f"is {given!r}, not this session's {str(folder)!r}"
        return _refuse(
            out_dir,
            args,
            f"{ENV_SESSION} {said} in its environment: the host must pass its environment on "
            "to the child",
        )
    try:
        session = json.loads((folder / SESSION_FILE).read_text(encoding="utf-8"))
        # Validated by the runner already: no jsonschema here, this starts per task attempt.
        case = load_case(session["case"], None, Path(session["dags"]))
    except (OSError, ValueError, KeyError, CaseError) as exc:
        return _refuse(out_dir, args, f"cannot load the session's case: {exc}")
    if not _is_scripted(case, args):
        _delegate(args, out_dir)
    return _run_scripted(case, args, out_dir, session)


if __name__ == "__main__":
    sys.exit(main())
