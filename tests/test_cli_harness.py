"""``python -m gust.harness`` as a real subprocess: the shipped examples, bad children in a real
run, timeouts, retries, store and parse errors, and the report/record outputs."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _host import HARNESS_DAGS, REPO, STORE, DagWriter, gone, harness, harness_json

DAGS = HARNESS_DAGS
run_json = harness_json


# -- the shipped examples ----------------------------------------------------------------------


def test_hello_world_human_view(tmp_path: Path) -> None:
    proc = harness("harness/dags/hello_world.py", "--store", "harness/store.json")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "\x1b[" not in out  # not a terminal: no colour, no live line
    lines = out.splitlines()
    assert lines[0].startswith("▶ run 1 of hello_world (HelloWorld) from ")
    assert "hello      | token found: True (***)" in lines
    assert "prepare    | hello, world" in lines
    assert "(callback) | run 1 finished with status ok" in lines
    assert re.search(r"^hello      ✓ ok in \d+\.\d\ds  -> \{\"greeting\": \"hello\"", out, re.M)
    assert lines[-5].split() == ["TASK", "STATUS", "ATTEMPTS", "DURATION", "RESULT"]
    assert lines[-4].split()[:3] == ["hello", "ok", "1"]
    assert lines[-2].split()[:2] == ["(callback)", "ok"]
    assert re.fullmatch(r"run 1 of hello_world: ok in \d+\.\d\ds", lines[-1])


def test_task_alone_reads_its_upstream_from_the_store() -> None:
    code, report = run_json(
        str(DAGS / "hello_world.py"), "--store", str(STORE), "--task", "prepare"
    )
    assert code == 0
    assert list(report["tasks"]) == ["prepare"]
    assert report["tasks"]["prepare"]["value"] == {"said": "bonjour, world"}
    assert report["callback"] is None


# -- Gust's way of running a file --------------------------------------------------------------


def test_tasks_run_from_a_gust_named_temp_copy_in_the_dags_folder(
    tmp_path: Path, write_dag: DagWriter
) -> None:
    write_dag(
        "where.py",
        """\
        import os
        from gust import Dag, get_secret_by_name, task

        class Where(Dag):
            @task
            def here(self, ctx):
                secret = get_secret_by_name("ONLY_IN_ENV")
                return {"file": __file__, "cwd": os.getcwd(), "ctx": ctx,
                        "secret": secret and secret["value"]}
        """,
    )
    code, report = run_json(
        "where.py", "--run-id", "77", cwd=tmp_path, env={"GUST_SECRET_ONLY_IN_ENV": "env-value"}
    )
    assert code == 0
    value = report["tasks"]["here"]["value"]
    assert re.fullmatch(r"gust_py_dag_\d+_where\.py", os.path.basename(value["file"]))
    assert not os.path.exists(value["file"])  # removed after the run
    assert value["cwd"] == str(tmp_path)
    assert value["ctx"] == {"run_id": 77}
    assert value["secret"] == "env-value"


FAKE_GUST = """\
import os, struct, sys, time
from gust.protocol import encode_frame
args = sys.argv[1:]
task = args[args.index("--task") + 1] if "--task" in args else None
if args[:2] == ["task", "run"] and task == "garbage":
    sys.stderr.write("writing garbage now\\n"); sys.stderr.flush()
    os.write(1, b"garbage, not a frame\\n")
    time.sleep(30)
elif args[:2] == ["task", "run"] and task == "quits":
    os.write(1, encode_frame({"type": "start", "pid": os.getpid()}))
    sys.stderr.write("giving up with status 3\\n")
    sys.exit(3)
elif args[:2] == ["task", "run"] and task == "huge":
    os.write(1, encode_frame({"type": "start", "pid": os.getpid()}))
    os.write(1, struct.pack(">I", 100 * 1024 * 1024) + b"{")
    time.sleep(30)
elif args[:2] == ["task", "run"] and task == "surrogate":
    os.write(1, encode_frame({"type": "start", "pid": os.getpid()}))
    for payload in (b'{"type":"log","level":"info","msg":"half a pair: \\ud800"}',
                    b'{"type":"result","ok":true,"data":{"value":"\\udfff!"}}'):
        os.write(1, struct.pack(">I", len(payload)) + payload)
else:
    os.execv(sys.executable, [sys.executable, "-m", "gust", *args])
"""


def test_bad_children_are_reported_precisely_while_the_run_goes_on(
    tmp_path: Path, write_dag: DagWriter
) -> None:
    fake = tmp_path / "fakegust.py"
    fake.write_text(FAKE_GUST)
    write_dag(
        "mixed.py",
        """\
        from gust import Dag, task

        class Mixed(Dag):
            @task
            def garbage(self, ctx):
                return 1

            @task
            def quits(self, ctx):
                return 2

            @task
            def huge(self, ctx):
                return 3

            @task
            def surrogate(self, ctx):
                return 4

            @task(downstream="after", save=True)
            def fine(self, ctx):
                return {"n": 4}

            @task
            def after(self, ctx):
                return 5
        """,
    )
    start = time.monotonic()
    code, report = run_json(
        "mixed.py", "--gust-cmd", shlex.join([sys.executable, str(fake)]), cwd=tmp_path
    )
    assert time.monotonic() - start < 15
    assert code == 1
    tasks = report["tasks"]
    assert {n: t["status"] for n, t in tasks.items()} == {
        "garbage": "error",
        "quits": "error",
        "huge": "error",
        "surrogate": "ok",
        "fine": "ok",
        "after": "ok",
    }
    garbage = tasks["garbage"]["error"]
    assert garbage["protocol_error"]["code"] == "oversize"
    assert garbage["message"].startswith("protocol error oversize: frame header announces")
    assert garbage["message"].endswith("killed by SIGKILL")
    assert garbage["exit_code"] == -9 and tasks["garbage"]["exit_code"] == -9
    assert garbage["stderr_tail"] == "writing garbage now"
    quits = tasks["quits"]["error"]
    assert quits["message"] == (
        "exited with status 3 without a result (Gust records port_exit: died with: 3)"
    )
    assert (quits["exit_code"], quits["protocol_error"]) == (3, None)
    assert quits["stderr_tail"] == "giving up with status 3"
    huge = tasks["huge"]["error"]
    assert huge["protocol_error"] == {
        "code": "oversize",
        "message": "frame header announces 104857600 bytes, over the limit of 67108864 bytes",
    }
    assert tasks["after"]["value"] == 5
    # lone surrogates (legal as JSON escapes, not as UTF-8) come out as U+FFFD
    assert tasks["surrogate"]["value"] == "\ufffd!"
    assert tasks["surrogate"]["logs"][0]["msg"] == "half a pair: \ufffd"
    human = harness(
        "mixed.py", "--task", "surrogate", "--gust-cmd", shlex.join([sys.executable, str(fake)]),
        cwd=tmp_path,
    )  # fmt: skip
    assert human.returncode == 0, human.stderr
    assert "surrogate  | half a pair: \ufffd" in human.stdout.splitlines()


def test_a_closed_stdout_silences_the_view_but_not_the_run(
    tmp_path: Path, write_dag: DagWriter
) -> None:
    write_dag(
        "slowish.py",
        """\
        import time
        from gust import Dag, log, task

        class Slowish(Dag):
            @task
            def nap(self, ctx):
                time.sleep(0.3)
                log("still here")
                with open("ran", "w") as f:
                    f.write("yes")
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gust.harness", "slowish.py"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith("▶ run 1 of slowish".encode())
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=20) == 0
    assert err == b""
    assert (tmp_path / "ran").read_text() == "yes"


def test_timeout_kills_the_task_and_its_grandchildren(tmp_path: Path, write_dag: DagWriter) -> None:
    write_dag(
        "hang.py",
        """\
        import subprocess, time
        from gust import Dag, log, task

        class Hang(Dag):
            @task
            def stuck(self, ctx):
                kid = subprocess.Popen(["sleep", "60"])
                log(str(kid.pid))
                time.sleep(60)

            @task
            def quick(self, ctx):
                return "done"
        """,
    )
    start = time.monotonic()
    code, report = run_json("hang.py", "--timeout", "1", "--grace", "1", cwd=tmp_path)
    assert time.monotonic() - start < 10
    assert code == 1
    stuck = report["tasks"]["stuck"]
    assert stuck["status"] == "timeout"
    assert stuck["error"]["message"].startswith(
        "timed out after 1 s; its process group got SIGTERM"
    )
    # the runtime reported the SIGTERM in-band before it exited
    assert stuck["error"]["task_error"]["message"] == "Task interrupted by SIGTERM"
    grandchild = int(stuck["logs"][0]["msg"])
    assert gone(grandchild)
    assert report["tasks"]["quick"]["value"] == "done"


def test_retries_with_backoff(tmp_path: Path, write_dag: DagWriter) -> None:
    write_dag(
        "flaky.py",
        """\
        import os
        from gust import Dag, task

        class Flaky(Dag):
            @task
            def shaky(self, ctx):
                n = int(open("count").read()) if os.path.exists("count") else 0
                with open("count", "w") as f:
                    f.write(str(n + 1))
                if n < 2:
                    raise RuntimeError(f"attempt {n + 1} fails")
                return {"attempt": n + 1}
        """,
    )
    code, report = run_json("flaky.py", "--retries", "3", "--backoff", "0.1", cwd=tmp_path)
    assert code == 0
    shaky = report["tasks"]["shaky"]
    assert (shaky["status"], shaky["attempts"], shaky["value"]) == ("ok", 3, {"attempt": 3})
    assert shaky["retry_delays"] == [0.1, 0.2]  # S, then 2S
    (tmp_path / "count").unlink()
    # --retries counts retries: 1 retry is 2 attempts, and the second one fails too
    code, report = run_json("flaky.py", "--retries", "1", "--backoff", "0.05", cwd=tmp_path)
    assert code == 1
    shaky = report["tasks"]["shaky"]
    assert (shaky["status"], shaky["attempts"], shaky["retry_delays"]) == ("error", 2, [0.05])
    assert shaky["error"]["details"] == "attempt 2 fails"
    (tmp_path / "count").unlink()
    code, report = run_json("flaky.py", cwd=tmp_path)  # no retries by default
    assert (report["tasks"]["shaky"]["attempts"], report["tasks"]["shaky"]["retry_delays"]) == (
        1,
        [],
    )


# -- outputs -----------------------------------------------------------------------------------


def test_report_file_and_record_dir(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    record = tmp_path / "rec"
    proc = harness(
        "harness/dags/hello_world.py",
        "--store",
        "harness/store.json",
        "--json",
        "--report",
        str(report_path),
        "--record",
        str(record),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(report_path.read_text()) == json.loads(proc.stdout)
    names = sorted(p.name for p in record.iterdir())
    assert names == ["y_hello_world_hello.json", "y_hello_world_prepare.json"]
    case = json.loads((record / "y_hello_world_prepare.json").read_text())
    assert case["argv"][:4] == ["task", "run", "--file", "{dag_file}"]
    assert case["dag"] == str(DAGS / "hello_world.py")
    kinds = [(s["dir"], s["frame"]["type"]) for s in case["steps"]]
    assert kinds == [("c2h", "start"), ("c2h", "call"), ("h2c", "reply"), ("c2h", "log"),
                     ("c2h", "result")]  # fmt: skip


# -- refusals: exit 2, nothing runs -------------------------------------------------------------


def test_usage_store_and_parse_errors_exit_2(tmp_path: Path, write_dag: DagWriter) -> None:
    bad_store = tmp_path / "store.json"
    bad_store.write_text('{"runs": {"1": {"hello": "hi"}}}')
    proc = harness("harness/dags/hello_world.py", "--store", str(bad_store))
    assert proc.returncode == 2
    assert proc.stderr == (
        f'Error: store {bad_store} at ["runs"]["1"]["hello"]: expected the task\'s '
        "saved result as a JSON object, got a string\n"
    )
    assert proc.stdout == ""

    cyclic = write_dag(
        "cyclic.py",
        """\
        from gust import Dag, task

        class Loop(Dag):
            @task(downstream="b")
            def a(self, ctx): ...

            @task(downstream="a")
            def b(self, ctx): ...
        """,
    )
    proc = harness(str(cyclic))
    assert proc.returncode == 2
    assert re.fullmatch(rf"Error: {re.escape(str(cyclic))}:\d+: .*cycle.*\n", proc.stderr)

    broken = write_dag("broken.py", "from gust import Dag\n\ndef oops(:\n")
    proc = harness(str(broken))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"Error: {broken}:3: ")

    proc = harness("harness/dags/hello_world.py", "--task", "nope")
    assert (proc.returncode, proc.stderr) == (
        2,
        "Error: --task 'nope': DAG HelloWorld has no such task (its tasks: hello, prepare)\n",
    )
    proc = harness("harness/dags/hello_world.py", "--dag", "Nope")
    assert proc.returncode == 2 and "its DAGs: 'HelloWorld'" in proc.stderr
    proc = harness("harness/dags/hello_world.py", "--max-parallel", "0")
    assert proc.returncode == 2 and "--max-parallel" in proc.stderr
    proc = harness(str(tmp_path / "missing.py"))
    assert proc.returncode == 2 and "no such DAG file" in proc.stderr


LONG_DAG = """\
import os, signal, subprocess, time
from gust import Dag, log, task

class Long(Dag):
    @task(downstream="after")
    def stuck(self, ctx):
        if os.environ.get("IGNORE_TERM"):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        kid = subprocess.Popen(["sleep", "60"])
        try:
            log(str(kid.pid))  # inside the try: the interrupt comes once this is seen
            time.sleep(60)
        finally:
            with open("finally_ran", "w") as f:
                f.write("yes")

    @task
    def after(self, ctx):
        return "never"
"""


def start_long_run(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.Popen[str], int]:
    """Start the harness on LONG_DAG; return it once ``stuck`` logged its grandchild's pid."""
    (tmp_path / "long.py").write_text(LONG_DAG)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gust.harness", "long.py", "--report", "report.json", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(private_tmp), **env},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.fullmatch(r"stuck\s+\| (\d+)\n", line)
        if found:
            return proc, int(found.group(1))
    raise AssertionError(f"the task never logged its pid: {proc.communicate()}")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_ends_tasks_as_a_timeout_does_and_still_reports(tmp_path, sig) -> None:
    proc, grandchild = start_long_run(tmp_path, "--grace", "5")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted: stopping the running tasks" in out
    assert out.rstrip().splitlines()[-1].startswith("run 1 of long: interrupted in ")
    assert (tmp_path / "finally_ran").read_text() == "yes"  # SIGTERM let the task clean up
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "interrupted"
    stuck, after = report["tasks"]["stuck"], report["tasks"]["after"]
    assert stuck["status"] == "interrupted"
    assert stuck["error"]["message"] == "interrupted: its process group got SIGTERM"
    assert stuck["error"]["task_error"]["message"] == "Task interrupted by SIGTERM"
    assert (after["status"], after["attempts"]) == ("interrupted", 0)
    assert report["callback"] is None
    assert gone(grandchild)
    assert list((tmp_path / "tmp").iterdir()) == []  # the temp copy is gone


@pytest.mark.timeout(60)
def test_a_second_interrupt_kills_at_once(tmp_path) -> None:
    proc, grandchild = start_long_run(tmp_path, "--grace", "30", IGNORE_TERM="1")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert proc.poll() is None  # the task ignores SIGTERM; the grace is long
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert time.monotonic() - started < 10
    assert proc.returncode == 130, err
    assert "interrupted again: killing every running task now" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["tasks"]["stuck"]["status"] == "interrupted"
    assert report["tasks"]["stuck"]["error"]["message"] == (
        "interrupted: its process group got SIGTERM, then SIGKILL"
    )
    assert not (tmp_path / "finally_ran").exists()
    assert gone(grandchild)
    assert list((tmp_path / "tmp").iterdir()) == []


SLOW_PARSE = """\
import os, sys, time
if sys.argv[1:2] == ["parse"]:
    with open(os.environ["PARSE_PID_FILE"], "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)
os.execv(sys.executable, [sys.executable, "-m", "gust", *sys.argv[1:]])
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_during_gust_parse_leaves_nothing_behind(tmp_path, sig) -> None:
    slow = tmp_path / "slow_parse.py"
    slow.write_text(SLOW_PARSE)
    pid_file = tmp_path / "parse.pid"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "gust.harness", str(DAGS / "hello_world.py"),
            "--gust-cmd", shlex.join([sys.executable, str(slow)]),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PARSE_PID_FILE": str(pid_file)},
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    parser = int(pid_file.read_text())
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert err == "\nError: interrupted before the run started; nothing ran\n"
    assert gone(parser)


ARGV_LOGGER = """\
import json, os, sys
with open(os.environ["GUST_ARGV_LOG"], "a") as log:
    log.write(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd()}) + "\\n")
os.execv(sys.executable, [sys.executable, "-m", "gust", *sys.argv[1:]])
"""


def test_commands_are_the_ones_gust_runs(tmp_path: Path) -> None:
    logger = tmp_path / "logger.py"
    logger.write_text(ARGV_LOGGER)
    log = tmp_path / "argv.jsonl"
    code, report = run_json(
        "harness/dags/hello_world.py",
        "--store",
        "harness/store.json",
        "--gust-cmd",
        shlex.join([sys.executable, str(logger)]),
        env={"GUST_ARGV_LOG": str(log)},
    )
    assert code == 0
    assert report["callback"]["status"] == "ok"
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert {c["cwd"] for c in calls} == {str(DAGS)}
    original = str(DAGS / "hello_world.py")
    assert calls[0]["argv"] == ["parse", "--file", original]
    copy = calls[1]["argv"][3]
    assert re.fullmatch(r"gust_py_dag_\d+_hello_world\.py", os.path.basename(copy))
    assert [c["argv"] for c in calls[1:]] == [
        ["task", "run", "--file", copy, "--dag", "HelloWorld", "--task", "hello",
         "--ctx-json", '{"run_id":1}'],
        ["task", "run", "--file", copy, "--dag", "HelloWorld", "--task", "prepare",
         "--ctx-json", '{"run_id":1}'],
        ["run", "done", "--file", copy, "--dag", "hello_world", "--fn-name", "done_my_run",
         "--status", "ok", "--run-id", "1"],
    ]  # fmt: skip
    assert not os.path.exists(copy)


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not on PATH")
def test_uv_run_gust_as_gust_starts_it() -> None:
    code, report = run_json(
        "harness/dags/hello_world.py", "--store", "harness/store.json", "--gust-cmd", "uv run gust"
    )
    assert code == 0
    assert report["tasks"]["prepare"]["value"] == {"said": "hello, world"}
    assert report["callback"]["status"] == "ok"


def test_gust_harness_is_the_same_command_and_loads_only_when_named() -> None:
    gust = Path(sys.executable).with_name("gust")
    via_gust = subprocess.run(
        [str(gust), "harness", "harness/dags/hello_world.py", "--store", "harness/store.json",
         "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert via_gust.returncode == 0, via_gust.stderr
    assert json.loads(via_gust.stdout)["tasks"]["prepare"]["value"] == {"said": "hello, world"}
    usage = subprocess.run(
        [str(gust), "harness", "--retries", "-1", "x.py"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert usage.returncode == 2
    assert "Usage: gust harness [OPTIONS] DAG_FILE" in usage.stderr
    lazy = subprocess.run(
        [sys.executable, "-c", "import sys, gust.cli; print('gust.harness' in sys.modules)"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert lazy.stdout.strip() == "False"


MANY_PROBLEMS = """\
from gust import Dag, task

class Etl(Dag):
    def __init__(self):
        super().__init__(schedule="every tuesday at noon", on_finished_callback="don")

    @task(downstream="tranform")
    def extract(self, ctx):
        return 1

    @task(downstream=list())
    def transform(self, ctx):
        return 2

    def done(self, status, run):
        pass

class Other(Dag):
    @task
    def x(self, ctx):
        pass
"""


def test_every_parse_problem_is_shown_as_file_line_message(tmp_path: Path) -> None:
    dag = tmp_path / "etl.py"
    dag.write_text(MANY_PROBLEMS)
    proc = subprocess.run(
        [sys.executable, "-m", "gust.harness", str(dag)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().split("\n")
    assert lines[0] == (
        f"Error: gust parse found 5 problems in {dag} (Gust shows the first as its parsing error):"
    )
    assert (
        lines[1]
        == f"{dag}:5: on_finished_callback 'don' names no method of Etl; did you mean 'done'?"
    )
    assert lines[2].startswith(
        f"{dag}:5: schedule 'every tuesday at noon' is not one Gust understands"
    )
    assert lines[3] == (
        f"{dag}:7: task 'extract' names downstream 'tranform', which is not a task of Etl; "
        "did you mean 'transform'?"
    )
    assert lines[4] == (
        f"{dag}:11: note: downstream of task 'transform' cannot be read statically: list() is "
        "not a literal; left at []"
    )
    assert lines[5].startswith(f"{dag}:18: note: Other is a second DAG class in this file")
    # Fixed, the notes stay where the author looks: at the head of the run.
    dag.write_text(
        MANY_PROBLEMS.replace('"don"', '"done"').replace("every tuesday at noon", "@daily")
        .replace("tranform", "transform")
    )  # fmt: skip
    view = subprocess.run(
        [sys.executable, "-m", "gust.harness", str(dag), "--no-color"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert view.returncode == 0, view.stderr
    head = view.stdout.split("\n")
    assert head[1].startswith(f"  {dag}:11: note: downstream of task 'transform'")
    assert head[2].startswith(f"  {dag}:18: note: Other is a second DAG class in this file")
