"""The harness against hostile tasks (issue 10): nothing outlives a timeout or the harness,
no secret reaches what the harness shows or keeps, and a flood of output stays bounded.

Every test runs ``python -m gust.harness`` as a real subprocess. Where the runtime itself must
misbehave (send its result, then refuse to die), a small scripted runtime given as
``--gust-cmd`` plays it, so the test does not depend on the real runtime's own defences.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time

import pytest
from _host import REPO, gone, harness

ONE_TASK = """\
from gust import Dag, task

class One(Dag):
    @task
    def only(self, ctx):
        return {"never": "run by the real runtime here"}
"""

# A runtime that sends its result, then will not die: it ignores SIGTERM, and leaves a daemon
# in a session of its own (escaped from its process group) and one with a cleared environment.
STUBBORN_RUNTIME = """\
import json, os, signal, struct, subprocess, sys, time

def frame(obj):
    data = json.dumps(obj).encode()
    os.write(1, struct.pack(">I", len(data)) + data)

if sys.argv[1:2] == ["parse"]:
    os.execv(sys.executable, [sys.executable, "-m", "gust", *sys.argv[1:]])
signal.signal(signal.SIGTERM, signal.SIG_IGN)
pids = os.environ["PIDS_FILE"]
escaped = subprocess.run(
    ["sh", "-c", "setsid sleep 300 >/dev/null 2>&1 < /dev/null & echo $!"],
    capture_output=True, text=True, check=True,
).stdout.strip()
cleared = subprocess.run(
    ["sh", "-c", "env -i setsid sleep 301 >/dev/null 2>&1 < /dev/null & echo $!"],
    capture_output=True, text=True, check=True,
).stdout.strip()
with open(pids, "w") as f:
    f.write(json.dumps([int(escaped), int(cleared), os.getpid()]))
frame({"type": "start", "pid": os.getpid()})
frame({"type": "result", "ok": True, "data": {"value": {"sent": "before hanging"}}})
while True:
    time.sleep(1)
"""


@pytest.mark.timeout(60)
def test_a_task_that_will_not_die_cannot_outlive_its_timeout_nor_the_harness(tmp_path):
    (tmp_path / "one.py").write_text(ONE_TASK)
    runtime = tmp_path / "stubborn.py"
    runtime.write_text(STUBBORN_RUNTIME)
    pids_file = tmp_path / "pids.json"
    started = time.monotonic()
    proc = harness(
        "one.py", "--json", "--timeout", "1", "--grace", "0.5",
        "--gust-cmd", shlex.join([sys.executable, str(runtime)]),
        cwd=tmp_path,
        env={"PIDS_FILE": str(pids_file)},
    )  # fmt: skip
    assert time.monotonic() - started < 20
    assert proc.returncode == 1, proc.stderr
    only = json.loads(proc.stdout)["tasks"]["only"]
    assert only["status"] == "timeout"
    assert only["value"] == {"sent": "before hanging"}  # the final frame had arrived
    assert only["error"]["message"] == (
        "timed out after 1 s; its process group got SIGTERM, then SIGKILL"
    )
    warnings = " ".join(only["warnings"])
    assert "sent its result but did not exit" in warnings
    escaped, cleared, runtime_pid = json.loads(pids_file.read_text())
    assert f"{escaped} sleep 300" in warnings  # found through its inherited token, and killed
    # The one with a cleared environment is found as an orphan of the harness at its end.
    assert "Warning: killed 1 process(es) the tasks left running" in proc.stderr
    assert f"{cleared} sleep 301" in proc.stderr
    assert gone([escaped, cleared, runtime_pid])


SECRET = "hunter2-Pa55word!"
LEAKY = """\
import os, sys
from gust import Dag, get_secret_by_name, task

class Leaky(Dag):
    @task
    def leak(self, ctx):
        value = get_secret_by_name("DB_PASSWORD")["value"]
        os.write(2, f"raw fd 2: {value}\\n".encode())
        print(f"python stderr: {value}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(3)
"""


@pytest.mark.timeout(60)
def test_secrets_on_stderr_are_masked_in_the_view_and_the_report(tmp_path):
    (tmp_path / "leaky.py").write_text(LEAKY)
    (tmp_path / "store.json").write_text(json.dumps({"secrets": {"DB_PASSWORD": SECRET}}))
    env = {"GUST_SECRET_OTHER": "env-secret-value-42"}
    view = harness("leaky.py", "--store", "store.json", "--no-color", cwd=tmp_path, env=env)
    assert view.returncode == 1
    assert SECRET not in view.stdout and SECRET not in view.stderr
    assert "leak       ! raw fd 2: ***" in view.stdout.splitlines()
    assert "leak       ! python stderr: ***" in view.stdout.splitlines()
    report = harness("leaky.py", "--store", "store.json", "--json", cwd=tmp_path, env=env)
    assert SECRET not in report.stdout
    leak = json.loads(report.stdout)["tasks"]["leak"]
    assert leak["error"]["stderr_tail"] == "raw fd 2: ***\npython stderr: ***"


ENV_READER = """\
import os
from gust import Dag, task

class EnvReader(Dag):
    @task
    def read(self, ctx):
        return sorted(k for k in os.environ if k.startswith("GUST_SECRET_"))
"""


@pytest.mark.timeout(60)
def test_tasks_do_not_inherit_gust_secret_variables(tmp_path):
    """Under Gust secrets arrive only as replies; a dry run hands them out the same way."""
    (tmp_path / "envreader.py").write_text(ENV_READER)
    proc = harness("envreader.py", "--json", cwd=tmp_path, env={"GUST_SECRET_X": "xxxx-1234"})
    assert json.loads(proc.stdout)["tasks"]["read"]["value"] == []


FLOOD = """\
import sys
from gust import Dag, task

class Flood(Dag):
    @task
    def flood(self, ctx):
        line = "z" * 65535
        for i in range(3500):
            print(f"{i:05d}{line}")
            sys.stderr.write(line + "\\n")
        return {"lines": 3500}
"""

MEASURE = """\
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True)
sys.stdout.buffer.write(proc.stdout)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(proc.returncode)
"""


@pytest.mark.timeout(120)
def test_a_task_printing_hundreds_of_megabytes_does_not_grow_the_harness(tmp_path):
    (tmp_path / "flood.py").write_text(FLOOD)
    (tmp_path / "measure.py").write_text(MEASURE)
    proc = subprocess.run(
        [sys.executable, "measure.py", sys.executable, "-m", "gust.harness", "flood.py", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_mib = int(proc.stderr.strip().splitlines()[-1]) / 1024
    flood = json.loads(proc.stdout)["tasks"]["flood"]
    assert flood["value"] == {"lines": 3500}
    # About 460 MB went through the harness (stdout and stderr); it kept a few MiB of it.
    assert peak_mib < 150, f"the harness (or its child) peaked at {peak_mib:.0f} MiB"
    msgs = [log["msg"] for log in flood["logs"]]
    assert msgs[0].startswith("00000")
    assert msgs[-1].startswith("03499")
    (note,) = [m for m in msgs if m.startswith("[gust harness]")]
    assert "log lines" in note and "left out" in note
    assert sum(len(m) for m in msgs) < 9 << 20


def test_the_readme_states_the_bounds(tmp_path):
    readme = (REPO / "README.md").read_text()
    assert "8 MiB" in readme and "64 KiB" in readme
