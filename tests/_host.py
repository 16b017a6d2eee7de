"""A minimal test host: runs the real ``gust`` CLI as a subprocess and answers its calls.

Deliberately small and independent of ``gust.harness`` so runtime tests do not depend on the
harness being right.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gust.protocol import FrameDecoder, encode_frame

REPO = Path(__file__).resolve().parents[1]
DAGS = Path(__file__).resolve().parent / "dags"

Answer = Callable[[dict[str, Any]], "dict[str, Any] | None"]


@dataclass
class Exchange:
    frames: list[dict[str, Any]]
    returncode: int
    stderr: str
    pid: int
    replies: list[dict[str, Any]] = field(default_factory=list)

    def types(self) -> list[str]:
        return [f["type"] for f in self.frames]

    def logs(self) -> list[tuple[str, str]]:
        return [(f["level"], f["msg"]) for f in self.frames if f["type"] == "log"]

    @property
    def result(self) -> dict[str, Any]:
        assert self.frames and self.frames[-1]["type"] == "result", self.types()
        return self.frames[-1]


def gust_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "gust", *args]


def run_gust(
    *args: str,
    answer: Answer | None = None,
    cwd: Path | str = REPO,
    timeout: float = 20,
    env: dict[str, str] | None = None,
) -> Exchange:
    """Run ``gust ARGS``; answer each call with ``answer(frame)`` (``None``: close stdin)."""
    proc = subprocess.Popen(
        gust_argv(*args),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
    )
    err_chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)
    reader.start()
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    decoder = FrameDecoder()
    frames: list[dict[str, Any]] = []
    replies: list[dict[str, Any]] = []
    try:
        while chunk := proc.stdout.read1(1 << 16):
            decoder.feed(chunk)
            for frame in decoder.frames():
                frames.append(frame)
                if frame.get("type") != "call":
                    continue
                reply = answer(frame) if answer else None
                if reply is None:
                    proc.stdin.close()
                    continue
                replies.append(reply)
                proc.stdin.write(encode_frame(reply))
                proc.stdin.flush()
        decoder.eof()
        returncode = proc.wait()
    finally:
        killer.cancel()
        proc.kill()
        reader.join(5)
    assert returncode != -9, f"gust {args} was killed after {timeout} s: {frames}"
    stderr = b"".join(err_chunks).decode("utf-8", "replace")
    return Exchange(frames, returncode, stderr, proc.pid, replies)


def task_run(
    dag_file: Path | str, dag: str, task: str, ctx: str | None = '{"run_id": 1}', **kw: Any
) -> Exchange:
    args = ["task", "run", "--file", str(dag_file), "--dag", dag, "--task", task]
    if ctx is not None:
        args += ["--ctx-json", ctx]
    return run_gust(*args, **kw)
