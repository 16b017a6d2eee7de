"""The runtime's documented caps, pinned at their exact edges (issue 16).

Every cap is tested at the limit (accepted, unchanged) and one past it (refused or cut, saying
so), so an off-by-one in either direction fails a test. Frames from several threads are tested
large (hundreds of KB each) against a slow reader: a pipe writes small frames atomically anyway,
so only large ones show whether each frame is written whole under the lock.
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
from gust.masking import MIN_SECRET_LENGTH, SecretMasker
from gust.values import MAX_DEPTH, UnsupportedValueError, to_json_value


def nested(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def test_a_result_nested_exactly_max_depth_levels_is_sent_and_one_more_is_refused():
    assert to_json_value(nested(MAX_DEPTH)) == nested(MAX_DEPTH)
    protocol.encode_frame({"v": to_json_value(nested(MAX_DEPTH))})
    with pytest.raises(UnsupportedValueError, match=f"nested more than {MAX_DEPTH} levels"):
        to_json_value(nested(MAX_DEPTH + 1))


@pytest.mark.parametrize("payload", [1, 100, 70_000])
def test_the_decoder_takes_a_payload_exactly_at_its_limit_and_refuses_one_byte_more(payload):
    frame = protocol.encode_frame({"p": "x" * payload})
    size = len(frame) - protocol.HEADER_SIZE
    at_limit = protocol.FrameDecoder(max_frame_size=size)
    at_limit.feed(frame)
    assert at_limit.next_frame() == {"p": "x" * payload}
    below = protocol.FrameDecoder(max_frame_size=size - 1)
    below.feed(frame[: protocol.HEADER_SIZE])  # the header alone is enough to refuse it
    with pytest.raises(protocol.RemoteProtocolError) as info:
        below.next_frame()
    assert info.value.code == "oversize"
    assert f"announces {size} bytes, over the limit of {size - 1}" in str(info.value)


def test_text_exactly_max_text_long_is_sent_whole_and_one_more_character_is_cut():
    exact = "y" * protocol.MAX_TEXT
    assert protocol.log_frame(exact)["msg"] == exact
    over = protocol.log_frame(exact + "z")["msg"]
    keep = protocol.MAX_TEXT - 100
    assert over == "y" * keep + (
        f"\n[gust: cut {protocol.MAX_TEXT + 1 - keep} of {protocol.MAX_TEXT + 1} characters; "
        f"a frame carries at most {protocol.MAX_TEXT}]"
    )
    assert len(over) <= protocol.MAX_TEXT


def test_a_secret_exactly_min_length_is_masked_and_one_shorter_is_not():
    masker = SecretMasker()
    masker.register("k" * MIN_SECRET_LENGTH)
    masker.register("q" * (MIN_SECRET_LENGTH - 1))
    text = f"a {'k' * MIN_SECRET_LENGTH} b {'q' * (MIN_SECRET_LENGTH - 1)} c"
    assert masker.mask(text) == f"a *** b {'q' * (MIN_SECRET_LENGTH - 1)} c"


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
