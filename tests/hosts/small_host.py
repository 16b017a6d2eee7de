"""A small host written from conformance/README.md alone, with switches that break it on purpose.

    python small_host.py FAULT {gust} {dag_file} {dag} {task} {ctx_json} {store} {timeout}

It runs `{gust} task run` once in the DAG's folder, answers calls from the store, kills the pid
of the `start` frame at once after a framing fault or at the timeout, and exits 0 when the task
succeeded (exit status 0 and a success result), 1 when it failed. FAULT is `none` for that
correct host, or one deliberate bug:

- wrong_shape: answers a secret with {"secret": value} instead of Gust's record
- answer_twice: writes every reply twice
- never_answers: reads calls and answers none of them
- no_reply_to_bad_calls: answers an unknown op or a call without name/run_id with nothing (Gust)
- exit0_is_success: takes exit status 0 as success, with or without a result
- kill_late: kills the start pid 3 s after a framing fault or the timeout (2 s is the limit)
- kill_spawned_only: kills the process it spawned, never the start pid
- never_kills: waits for the child to end by itself
- trusts_length: reads each announced payload whatever its length (hangs on an oversize header)
- lenient_json: decodes payloads leniently (NaN accepted, bad UTF-8 replaced)
- bad_frames_are_fatal: fails the task on a frame that is not a JSON object
- speaks_unasked: sends a reply as soon as the start frame arrives
- drop_env: starts the child with PATH alone in its environment
- usage_error: refuses its arguments
"""

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time

from gust.protocol import FrameDecoder, ProtocolError, encode_frame, reply_error, reply_ok

fault = sys.argv[1]
if fault == "usage_error" or len(sys.argv) != 9:
    print(
        "usage: small_host.py FAULT GUST DAG_FILE DAG TASK CTX_JSON STORE TIMEOUT", file=sys.stderr
    )
    sys.exit(2)
gust, dag_file, dag, task, ctx_json, store_path, timeout = sys.argv[2:9]
with open(store_path, encoding="utf-8") as f:
    store = json.load(f)
child = subprocess.Popen(
    [gust, "task", "run", "--file", dag_file, "--dag", dag, "--task", task, "--ctx-json", ctx_json],
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
    cwd=os.path.dirname(dag_file),
    env={"PATH": os.environ["PATH"]} if fault == "drop_env" else None,
)
# The task's timeout counts from its start frame, as the conformance README asks; until
# then the child has a generous allowance to start, so a loaded machine is not a fault.
START_ALLOWANCE = 30.0
deadline = time.monotonic() + float(timeout) + START_ALLOWANCE
start_pid = None
outcome = None


def kill_task():
    if fault == "never_kills":
        return
    if fault == "kill_late":
        time.sleep(3)
    if fault == "kill_spawned_only" or start_pid is None:
        child.kill()
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(start_pid, signal.SIGKILL)


def secret_record(name):
    secret = store.get("secrets", {}).get(name)
    if isinstance(secret, str):
        secret = {"value": secret, "value_type": "string"}
    return secret


def answer(call):
    op = call.get("op")
    if op == "get_secret_by_name":
        name = call.get("name")
        if not isinstance(name, str):
            return reply_error("bad_call")
        secret = secret_record(name)
        if secret is None:
            return reply_error("secret_not_found")
        if fault == "wrong_shape":
            return reply_ok({"secret": secret["value"]})
        record = {"id": secret.get("id", 1), "name": name, "value_type": "string"}
        record.update(value_type=secret.get("value_type", "string"), value=secret["value"])
        return reply_ok(record)
    if op == "get_task_by_name_run":
        if "name" not in call or "run_id" not in call:
            return reply_error("bad_call")
        result = store.get("runs", {}).get(str(call["run_id"]), {}).get(call["name"])
        if result is None:
            return reply_error("task_not_found")
        return reply_ok({"id": 2, "result": result})
    return reply_error("unknown_op")


def handle(frame):
    global deadline, outcome, start_pid
    kind = frame.get("type")
    if kind == "start":
        start_pid = frame["pid"]
        deadline = time.monotonic() + float(timeout)
        if fault == "speaks_unasked":
            child.stdin.write(encode_frame(reply_error("welcome")))
            child.stdin.flush()
    elif kind == "call":
        if fault == "never_answers":
            return
        if fault == "no_reply_to_bad_calls" and answer(frame).get("error") in (
            "unknown_op",
            "bad_call",
        ):
            return
        reply = encode_frame(answer(frame))
        child.stdin.write(reply * (2 if fault == "answer_twice" else 1))
        child.stdin.flush()
    elif kind == "result":
        outcome = frame.get("ok") is True


def read_exact(fd, n):
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def serve_naively(fd):
    # trusts_length / lenient_json: a header is believed, a payload decoded whatever it holds.
    while (header := read_exact(fd, 4)) is not None:
        payload = read_exact(fd, int.from_bytes(header, "big"))
        if payload is None:
            return "truncated"
        frame = json.loads(payload.decode("utf-8", "replace"))
        if isinstance(frame, dict):
            handle(frame)
    return None


def serve(fd):
    decoder = FrameDecoder()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            kill_task()
            return "timeout"
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            try:
                decoder.eof()
            except ProtocolError as exc:
                return exc.code
            return None
        decoder.feed(chunk)
        while True:
            try:
                frame = decoder.next_frame()
            except ProtocolError as exc:
                droppable = exc.code in ("bad_utf8", "bad_json", "not_object")
                if droppable and fault != "bad_frames_are_fatal":
                    print(f"frame dropped: {exc.code}: {exc}", file=sys.stderr)
                    continue
                kill_task()
                return exc.code
            if frame is None:
                break
            handle(frame)


fd = child.stdout.fileno()
failure = serve_naively(fd) if fault in ("trusts_length", "lenient_json") else serve(fd)
if failure:
    print(f"task failed: {failure}", file=sys.stderr)
child.stdin.close()
code = child.wait()
said = {"outcome": outcome, "exit": code, "failure": failure}
print(json.dumps({**said, "spawned_pid": child.pid, "start_pid": start_pid}))
if fault == "exit0_is_success":
    sys.exit(0 if code == 0 and outcome is not False else 1)
sys.exit(0 if outcome is True and code == 0 and failure is None else 1)
