"""Frame channels (gust._channel): every frame written whole under the one write lock.

The lock is tested where it matters: several threads writing frames of hundreds of KB to a
slow reader through a real pipe, which writes small frames atomically anyway, so only large
ones show whether each frame goes out whole. The in-memory behaviour of a channel (nothing
after the final frames) is in ``test_calls.py``, through the session that uses it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gust import protocol

BIG_FRAMES = """\
import threading
from gust import Dag, log, task

class Big(Dag):
    @task
    def threads(self, ctx):
        def worker(n):
            for i in range(8):
                # hundreds of KB per frame: far more than a pipe writes atomically
                log(f"t{n}-{i}:" + chr(ord("a") + n) * (300_000 + 1000 * i))
        workers = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return "done"
"""


@pytest.mark.timeout(120)
def test_large_frames_from_many_threads_reach_a_slow_reader_whole(tmp_path: Path):
    dag = tmp_path / "big.py"
    dag.write_text(BIG_FRAMES)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gust", "task", "run", "--file", str(dag), "--dag", "Big",
         "--task", "threads", "--ctx-json", '{"run_id": 1}'],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    assert proc.stdout is not None
    decoder = protocol.FrameDecoder()
    frames: list[dict[str, Any]] = []
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + 100
    while time.monotonic() < deadline:
        chunk = os.read(fd, 4096)  # a small, slow reader: writers block mid-frame
        if not chunk:
            break
        decoder.feed(chunk)
        frames += decoder.frames()
        time.sleep(0.0005)
    decoder.eof()
    proc.wait(30)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    logs = [f["msg"] for f in frames if f["type"] == "log"]
    assert len(logs) == 48
    seen = set()
    for msg in logs:
        head, body = msg.split(":", 1)
        n, i = (int(x) for x in head[1:].split("-"))
        assert body == chr(ord("a") + n) * (300_000 + 1000 * i), f"frame {head} is torn"
        seen.add((n, i))
    assert seen == {(n, i) for n in range(6) for i in range(8)}
    assert frames[-1] == {"type": "result", "ok": True, "data": {"value": "done"}}
