"""The scripted child: stands in for ``gust`` under a host being tested, and replays one case.

Theory of operation: the host under test starts this program where it would start ``gust``.
The case comes from the environment (``GUST_CONFORMANCE_CASE`` names the case file,
``GUST_CONFORMANCE_DAGS`` its DAG folder, ``GUST_CONFORMANCE_SCHEMAS`` the schemas) and the
verdict goes to a JSON file in ``GUST_CONFORMANCE_OUT``, because stdout is the protocol. When
the argv is the case's ``task run`` (same ``--dag`` and ``--task``), the child checks the rest
of the argv (the ``--file`` it got holds the case's DAG, the ``--ctx-json`` is the case's ctx),
then plays the steps: ``c2h`` frames and raw bytes are written to stdout (``pid`` matchers get
this process's pid), ``h2c`` frames are read from stdin, validated against the reply schema of
the call they answer and compared with the example, and an ``eof`` step waits for the host to
close stdin or end this process. It rewrites its verdict file before every wait, so a host that
kills it still leaves an honest record of how far the exchange got. Then it exits with the
case's first exit status. Any other argv (``parse``, other tasks, ``run done``) is handed to
the real ``gust`` of this interpreter, so a host can run a whole DAG around the scripted task.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from gust.conformance.cases import Case, CaseError, load_case
from gust.conformance.matchers import brief, compare_frame, materialize
from gust.conformance.schema import SchemaError, SchemaSet
from gust.protocol import FrameDecoder, ProtocolError, encode_frame

__all__ = ["ENV_CASE", "ENV_DAGS", "ENV_OUT", "ENV_SCHEMAS", "ENV_TIMEOUT", "ENV_WIRE", "main"]

ENV_CASE = "GUST_CONFORMANCE_CASE"
ENV_DAGS = "GUST_CONFORMANCE_DAGS"
ENV_SCHEMAS = "GUST_CONFORMANCE_SCHEMAS"
ENV_OUT = "GUST_CONFORMANCE_OUT"
ENV_TIMEOUT = "GUST_CONFORMANCE_TIMEOUT"
ENV_WIRE = "GUST_CONFORMANCE_WIRE"


class _Verdict:
    """The record this child leaves for the runner, rewritten atomically as it goes."""

    def __init__(self, out_dir: Path, argv: list[str], keep_wire: bool) -> None:
        self.path = out_dir / f"child-{os.getpid()}.json"
        self.started = time.monotonic()
        self.keep_wire = keep_wire
        self.data: dict[str, Any] = {
            "pid": os.getpid(),
            "started_at": time.time(),
            "argv": argv,
            "status": "running",
            "waiting": None,
            "checks": [],
            "wire": [],
        }

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.data["checks"].append({"name": name, "ok": ok, "detail": detail})
        return ok

    def wire(self, direction: str, data: bytes) -> None:
        if self.keep_wire:
            t = round(time.monotonic() - self.started, 6)
            self.data["wire"].append({"dir": direction, "t": t, "hex": data.hex()})

    def save(self, status: str | None = None, waiting: dict[str, Any] | None = None) -> None:
        if status is not None:
            self.data["status"] = status
        self.data["waiting"] = waiting
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, ensure_ascii=True), encoding="utf-8")
        os.replace(tmp, self.path)


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1 :]
    return None


def _delegate(argv: list[str], out_dir: Path | None) -> NoReturn:
    if out_dir is not None:
        record = {"pid": os.getpid(), "argv": argv}
        (out_dir / f"delegated-{os.getpid()}.json").write_text(json.dumps(record), "utf-8")
    os.execv(sys.executable, [sys.executable, "-m", "gust", *argv])


def _is_scripted(case: Case, argv: list[str]) -> bool:
    return (
        argv[:2] == ["task", "run"]
        and _option(argv, "--dag") == case.option("--dag")
        and _option(argv, "--task") == case.option("--task")
    )


def _check_argv(case: Case, argv: list[str], verdict: _Verdict) -> None:
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
        "argv --ctx-json", ok, "" if ok else f"got {raw_ctx!r}, expected {json.dumps(expected)}"
    )


class _Stdin:
    """Frames from fd 0 with a deadline."""

    def __init__(self, verdict: _Verdict) -> None:
        self.decoder = FrameDecoder()
        self.closed = False
        self.verdict = verdict

    def next(self, deadline: float) -> dict[str, Any] | None:
        """The next frame, ``None`` at EOF; raises ``TimeoutError`` or ``ProtocolError``."""
        while True:
            frame = self.decoder.next_frame()
            if frame is not None:
                return frame
            if self.closed:
                self.decoder.eof()
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([0], [], [], remaining)
            if not ready:
                continue
            try:
                chunk = os.read(0, 1 << 16)
            except OSError:
                chunk = b""
            if chunk:
                self.verdict.wire("h2c", chunk)
                self.decoder.feed(chunk)
            else:
                self.closed = True


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


def _play(case: Case, schemas: SchemaSet, verdict: _Verdict, deadline: float) -> None:
    stdin = _Stdin(verdict)
    pid = os.getpid()
    for step in case.steps:
        label = step.describe()
        if step.dir == "c2h":
            data = (
                step.raw
                if step.raw is not None
                else encode_frame(materialize(step.frame or {}, step.matchers, pid))
            )
            # Saved before the write: a host may rightly kill us as soon as it sees these bytes.
            verdict.wire("c2h", data)
            verdict.save(waiting={"step": step.index, "eof": False, "writing": True})
            try:
                _write_all(data)
            except OSError as exc:
                verdict.check(label, False, f"the host stopped reading our frames: {exc}")
                return
            verdict.check(label, True, f"wrote {len(data)} bytes")
            continue
        verdict.save(waiting={"step": step.index, "eof": step.eof})
        try:
            frame = stdin.next(deadline)
        except TimeoutError:
            verdict.check(label, False, "the host sent nothing within the case's time limit")
            return
        except ProtocolError as exc:
            verdict.check(label, False, f"the host's stream broke: {exc.code}: {exc}")
            return
        if step.eof:
            ok = frame is None
            verdict.check(label, ok, "" if ok else f"expected stdin closed, got {brief(frame)}")
            if not ok:
                return
            continue
        if frame is None:
            verdict.check(label, False, f"the host closed stdin; expected {brief(step.frame)}")
            return
        problems = schemas.check_h2c(frame, step.answers)
        if not verdict.check(f"{label} schema", not problems, "; ".join(problems[:3])):
            return
        assert step.frame is not None
        diff = compare_frame(step.frame, frame, step.matchers)
        if not verdict.check(label, diff is None, str(diff) if diff else ""):
            return


def main(argv: list[str] | None = None) -> int:
    """Run as the scripted child (see the module docstring); returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    env = os.environ
    missing = [n for n in (ENV_CASE, ENV_DAGS, ENV_SCHEMAS, ENV_OUT) if not env.get(n)]
    if missing:
        sys.stderr.write(
            f"gust conformance scripted child: {', '.join(missing)} not set; it is started by "
            f"`python -m gust.conformance host`, not by hand\n"
        )
        return 2
    out_dir = Path(env[ENV_OUT])
    try:
        schemas = SchemaSet(env[ENV_SCHEMAS])
        case = load_case(env[ENV_CASE], schemas, Path(env[ENV_DAGS]))
    except (CaseError, SchemaError) as exc:
        sys.stderr.write(f"gust conformance scripted child: {exc}\n")
        return 2
    if not _is_scripted(case, args):
        _delegate(args, out_dir)
    verdict = _Verdict(out_dir, args, keep_wire=bool(env.get(ENV_WIRE)))
    verdict.save()
    timeout = float(env.get(ENV_TIMEOUT) or 30)
    try:
        _check_argv(case, args, verdict)
        _play(case, schemas, verdict, time.monotonic() + timeout)
    except Exception as exc:  # noqa: BLE001 - any crash of ours is recorded for the runner
        verdict.check("scripted child", False, f"internal error: {type(exc).__name__}: {exc}")
        verdict.save(status="error")
        return 70
    verdict.save(status="done")
    with contextlib.suppress(OSError):  # stdout already gone: the host stopped reading
        os.close(1)
    return case.exit[0] if case.exit else 0


if __name__ == "__main__":
    status = main()
    sys.stderr.flush()
    os._exit(status)  # stdout (fd 1) may be closed already: no interpreter flush of it
