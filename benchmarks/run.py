"""Benchmarks of the paths Gust pays for thousands of times a day, with the budgets of issue 6.

Run ``uv run python benchmarks/run.py [--quick] [--json FILE]``. Every command is a real
subprocess of the interpreter under test (``--python``, default: this one), timed from spawn to
exit; each figure is the median of repeated runs, and the variants of one benchmark are run
round-robin so that noise from the rest of the machine falls on all of them alike.

1. Start-up: ``gust task run`` of a trivial task, ``gust run done`` of a trivial callback and
   ``gust parse`` of a small DAG, each through the console script (the fast path) and through
   the click command line (the previous behaviour), beside a bare ``python -c pass``.
2. ``log()`` throughput: a task logging N lines (200,000 by default) to a host that reads the
   pipe, without and with a registered secret, beside a process writing the same frames with
   nothing but ``json.dumps``, ``struct.pack`` and one ``os.write`` each (the floor).
3. ``gust parse`` of generated chain and fan-out DAGs of 1k, 5k and 20k tasks: wall time and the
   child's peak RSS, with the marginal cost per task and the growth exponent (1.0 is linear).
4. The harness: one stage of 16 tasks with ``--max-parallel`` 1, 2 and 4, trivial tasks and
   tasks that sleep (waiting on I/O), with the harness process's own CPU time per task.
5. The harness at scale: a stage of 300 trivial tasks at the default parallelism beside
   ``--max-parallel`` = the CPU count (the previous default), against the CPU floor (the sum of
   the children's own CPU time divided by the cores); then stages of 100, 1,000 and 2,000 tasks
   and a 2,000-task chain at the default: wall time, floor, ratio to the floor, the harness's
   own CPU per task and its peak RSS.

Children run with bytecode caching allowed (``PYTHONDONTWRITEBYTECODE`` removed from their
environment) after a warm-up run, as on an orchestrator node where ``uv run`` has run before.
``--keep-dont-write-bytecode`` passes the variable on: children then write no cache, but still
read any already on disk; only in a fresh checkout does every run recompile gust and click.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import selectors
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

#: The budgets of issue 6, checked in the table (never asserted: machines differ).
BUDGET_TASK_RUN_X_BARE = 3.0
BUDGET_PARSE_5K_CHAIN_S = 0.25
BUDGET_LOG_PLAIN_X_FLOOR = 0.6
BUDGET_LOG_MASKED_X_FLOOR = 0.5
BUDGET_HARNESS_P4_X_P1 = 0.35

SECRET_VALUE = "s3cr3t-token-4711"
LOG_LINE = "row {} of the input file processed"

CLICK_PATH = "import sys; sys.argv[0] = 'gust'; from gust.cli import main; main()"

FLOOR_WRITER = f"""\
import json, os, struct, sys
for i in range(int(sys.argv[1])):
    msg = {LOG_LINE!r}.format(i)
    payload = json.dumps({{"type": "log", "level": "info", "msg": msg}}).encode()
    os.write(1, struct.pack(">I", len(payload)) + payload)
"""

HARNESS_WRAPPER = """\
import json, resource, runpy, sys
sys.argv = ["python -m gust.harness", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("gust.harness", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
own = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stdout.flush()
sys.stderr.write("\\nGUST-BENCH-RUSAGE " + json.dumps({
    "self_cpu_s": own.ru_utime + own.ru_stime,
    "children_cpu_s": kids.ru_utime + kids.ru_stime,
    "self_maxrss_kib": own.ru_maxrss,
}) + "\\n")
sys.exit(code)
"""


# Peak RSS must be measured from a small parent: a child forked (or vforked) from this process
# starts its high-water mark at our size. The wrapper forks, execs the command, and reports the
# command's own wall time and rusage.
RUSAGE_WRAPPER = """\
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
cpu = usage.ru_utime + usage.ru_stime
sys.stderr.write(f"\\nGUST-BENCH-CHILD {wall!r} {cpu!r} {usage.ru_maxrss}\\n")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


class BenchmarkError(Exception):
    """A benchmarked command did not do what it was asked: its figures would mean nothing."""


# -- running and timing children ---------------------------------------------------------------


@dataclass
class Run:
    """One finished child: wall seconds, its CPU seconds and peak RSS, and what it printed."""

    wall_s: float
    cpu_s: float
    max_rss_kib: int
    returncode: int
    stdout: bytes
    stderr: bytes


def run_child(argv: Sequence[str], env: dict[str, str], cwd: Path) -> Run:
    """Run ``argv`` to completion; time it from spawn to exit and take its own rusage."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    chunks: dict[int, list[bytes]] = {}
    with selectors.DefaultSelector() as sel:
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            sel.register(stream.fileno(), selectors.EVENT_READ)
            chunks[stream.fileno()] = []
        open_fds = len(chunks)
        while open_fds:
            for key, _ in sel.select():
                data = os.read(key.fd, 1 << 16)
                if data:
                    chunks[key.fd].append(data)
                else:
                    sel.unregister(key.fd)
                    open_fds -= 1
    # Reaped here rather than by Popen.wait(): wait4 also gives this child's rusage.
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.stdout is not None and proc.stderr is not None
    out = b"".join(chunks[proc.stdout.fileno()])
    err = b"".join(chunks[proc.stderr.fileno()])
    proc.stdout.close()
    proc.stderr.close()
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode, out, err)


def run_measured(argv: Sequence[str], env: dict[str, str], cwd: Path, python: str) -> Run:
    """Like :func:`run_child`, with wall time, CPU and peak RSS taken by a small parent."""
    run = run_child([python, "-S", "-c", RUSAGE_WRAPPER, *argv], env, cwd)
    head, sep, tail = run.stderr.rpartition(b"\nGUST-BENCH-CHILD ")
    if not sep:
        raise BenchmarkError(f"the rusage wrapper around {argv[:3]} reported nothing")
    wall, cpu, rss = tail.split()
    return Run(float(wall), float(cpu), int(rss), run.returncode, run.stdout, head)


def decode_frames(data: bytes) -> list[dict[str, Any]]:
    """Every frame of a child's stdout, strictly (a torn frame is an error)."""
    frames, pos = [], 0
    while pos < len(data):
        if len(data) - pos < 4:
            raise BenchmarkError(f"stdout ends inside a frame header at byte {pos}")
        (size,) = struct.unpack_from(">I", data, pos)
        payload = data[pos + 4 : pos + 4 + size]
        if len(payload) != size:
            raise BenchmarkError(f"stdout ends inside a frame at byte {pos}")
        frames.append(json.loads(payload))
        pos += 4 + size
    return frames


def median(values: Sequence[float]) -> float:
    """The median: what every figure of the table reports."""
    return statistics.median(values)


def spread(values: Sequence[float]) -> float:
    """Interquartile range over the median: how noisy the runs were (0.05 = 5 %)."""
    if len(values) < 4:
        return (max(values) - min(values)) / median(values) if median(values) else 0.0
    q1, _, q3 = statistics.quantiles(values, n=4)
    return (q3 - q1) / median(values) if median(values) else 0.0


def round_robin(
    variants: dict[str, Callable[[], Run]], repeats: int, warmup: int = 1
) -> dict[str, list[Run]]:
    """Run every variant ``warmup`` times (discarded), then ``repeats`` times in turn."""
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    results: dict[str, list[Run]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            results[name].append(fn())
    return results


# -- the machine ----------------------------------------------------------------------------


def machine_info(python: str, env: dict[str, str]) -> dict[str, Any]:
    """What the figures came from: CPUs, CPU model, interpreter, click, load."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or "unknown"
    probe = subprocess.run(
        [
            python,
            "-c",
            "import platform\nfrom importlib.metadata import version\n"
            "print(platform.python_version()); print(version('click'))",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.split()
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": nproc,
        "cpu_model": model,
        "python": probe[0],
        "python_executable": python,
        "click": probe[1],
        "platform": platform.platform(),
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


# -- generated DAG files -------------------------------------------------------------------


TRIVIAL_DAG = """\
from gust import Dag, task


class Trivial(Dag):
    def __init__(self):
        super().__init__(schedule="@daily", on_finished_callback="done")

    @task(downstream="second")
    def first(self, ctx):
        return {"ok": True}

    @task
    def second(self, ctx):
        return None

    def done(self, status, run):
        pass
"""

LOG_DAG = f"""\
from gust import Dag, get_secret_by_name, log, task

LINE = {LOG_LINE!r}


class Logs(Dag):
    @task
    def plain(self, ctx):
        for i in range(ctx["n"]):
            log(LINE.format(i))

    @task
    def masked(self, ctx):
        if get_secret_by_name("TOKEN") is None:
            raise RuntimeError("the benchmark host did not answer the secret")
        for i in range(ctx["n"]):
            log(LINE.format(i))
"""


def chain_dag(n: int) -> str:
    """A DAG of ``n`` tasks, each the downstream of the one before."""
    parts = ["from gust import Dag, task\n\n\nclass Chain(Dag):\n"]
    for i in range(n):
        down = f'downstream="t{i + 1}"' if i + 1 < n else ""
        parts.append(f"    @task({down})\n    def t{i}(self, ctx):\n        return {i}\n\n")
    return "".join(parts)


def fanout_dag(n: int) -> str:
    """A DAG of ``n`` tasks: one root whose downstream lists the ``n - 1`` others."""
    names = ", ".join(f'"t{i}"' for i in range(1, n))
    parts = [
        "from gust import Dag, task\n\n\nclass FanOut(Dag):\n",
        f"    @task(downstream=[{names}])\n    def t0(self, ctx):\n        return 0\n\n",
    ]
    for i in range(1, n):
        parts.append(f"    @task\n    def t{i}(self, ctx):\n        return {i}\n\n")
    return "".join(parts)


def stage_dag(n: int, sleep_s: float) -> str:
    """A DAG of ``n`` independent tasks (one stage), each sleeping ``sleep_s`` seconds."""
    body = f"time.sleep({sleep_s!r})\n        " if sleep_s else ""
    parts = ["import time\n\nfrom gust import Dag, task\n\n\nclass Stage(Dag):\n"]
    for i in range(n):
        parts.append(f"    @task\n    def t{i:02d}(self, ctx):\n        {body}return {i}\n\n")
    return "".join(parts)


# -- the benchmarks -------------------------------------------------------------------------


@dataclass
class Context:
    """The settings of one benchmark session and the results gathered so far."""

    python: str
    gust: list[str]
    env: dict[str, str]
    work: Path
    repeat: int
    log_frames: int
    log_repeat: int
    parse_sizes: list[int]
    parse_repeat: int
    harness_tasks: int
    harness_sleep: float
    harness_repeat: int
    harness_levels: list[int]
    scale_wide: int = 300
    scale_sizes: list[int] = field(default_factory=lambda: [100, 1000, 2000])
    scale_chain: int = 2000
    scale_repeat: int = 3
    results: dict[str, Any] = field(default_factory=dict)


def _check_task_run(run: Run, what: str) -> None:
    if run.returncode != 0:
        raise BenchmarkError(f"{what} exited {run.returncode}: {run.stderr.decode()[-2000:]}")
    frames = decode_frames(run.stdout)
    if not frames or frames[-1].get("type") != "result" or frames[-1].get("ok") is not True:
        raise BenchmarkError(f"{what} did not succeed: {frames[-3:]}")


def bench_startup(ctx: Context) -> None:
    """Benchmark 1: start-up of the three machine-invoked commands, fast path and click path."""
    dag = ctx.work / "trivial_dag.py"
    dag.write_text(TRIVIAL_DAG)
    commands = {
        "gust task run (trivial task)": [
            *("task", "run", "--file", str(dag), "--dag", "Trivial", "--task", "first"),
            *("--ctx-json", '{"run_id": 1}'),
        ],
        "gust run done (trivial callback)": [
            *("run", "done", "--file", str(dag), "--dag", "trivial_dag", "--fn-name", "done"),
            *("--status", "ok", "--run-id", "1"),
        ],
        "gust parse (small DAG)": ["parse", "--file", str(dag)],
    }
    click_cmd = [ctx.python, "-c", CLICK_PATH]

    def child(argv: list[str]) -> Callable[[], Run]:
        return lambda: run_child(argv, ctx.env, ctx.work)

    variants: dict[str, Callable[[], Run]] = {"bare": child([ctx.python, "-c", "pass"])}
    for name, args in commands.items():
        variants[f"{name}|fast"] = child([*ctx.gust, *args])
        variants[f"{name}|click"] = child([*click_cmd, *args])
    runs = round_robin(variants, ctx.repeat, warmup=2)
    for name in commands:
        for path in ("fast", "click"):
            last = runs[f"{name}|{path}"][-1]
            if name.startswith("gust task run"):
                _check_task_run(last, f"{name} ({path})")
            elif last.returncode != 0:
                raise BenchmarkError(f"{name} ({path}) exited {last.returncode}")
    bare = median([r.wall_s for r in runs["bare"]])
    rows = [{"name": "python -c pass", "median_ms": bare * 1000, "x_bare": 1.0}]
    rows[0]["spread"] = spread([r.wall_s for r in runs["bare"]])
    for name in commands:
        fast = [r.wall_s for r in runs[f"{name}|fast"]]
        slow = [r.wall_s for r in runs[f"{name}|click"]]
        row = {
            "name": name,
            "median_ms": median(fast) * 1000,
            "x_bare": median(fast) / bare,
            "spread": spread(fast),
            "click_median_ms": median(slow) * 1000,
            "click_x_bare": median(slow) / bare,
            "speedup_vs_click": median(slow) / median(fast),
            "cpu_ms": median([r.cpu_s for r in runs[f"{name}|fast"]]) * 1000,
        }
        if name.startswith("gust task run"):
            row["budget"] = f"<= {BUDGET_TASK_RUN_X_BARE:g}x bare"
            row["ok"] = row["x_bare"] <= BUDGET_TASK_RUN_X_BARE
        rows.append(row)
    ctx.results["startup"] = {"repeats": ctx.repeat, "rows": rows}


def _log_host(argv: list[str], env: dict[str, str], cwd: Path, expect: int) -> dict[str, float]:
    """Run a log-writing child, read its frames as they come, answer its one call if any."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
    fd = proc.stdout.fileno()
    buf = bytearray()
    logs = 0
    first_log = last_log = 0.0
    last: dict[str, Any] | None = None
    host_cpu = time.process_time()
    unpack = struct.Struct(">I").unpack_from
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        now = time.perf_counter()
        buf += chunk
        pos, seen, size_buf = 0, 0, len(buf)
        while size_buf - pos >= 4:
            (size,) = unpack(buf, pos)
            end = pos + 4 + size
            if end > size_buf:
                break
            # A log frame, in either spacing, is only counted: the host must stay cheaper
            # than the writers it measures.
            if buf.find(b'"log"', pos + 4, pos + 20) >= 0:
                seen += 1
                pos = end
                continue
            frame = json.loads(bytes(buf[pos + 4 : end]))
            pos = end
            last = frame
            if frame.get("type") == "call":
                reply = {"type": "reply", "ok": True, "data": {"id": 1, "name": "TOKEN"}}
                reply["data"].update({"value_type": "string", "value": SECRET_VALUE})
                data = json.dumps(reply).encode()
                proc.stdin.write(struct.pack(">I", len(data)) + data)
                proc.stdin.flush()
        del buf[:pos]
        if seen:
            if not logs:
                first_log = now
            logs += seen
            last_log = now
    host_cpu = time.process_time() - host_cpu
    proc.stdin.close()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0 or logs != expect or buf:
        raise BenchmarkError(
            f"log benchmark child {argv[:3]} exited {code} after {logs} of {expect} log frames"
            f" (last frame {last}): {err.decode()[-2000:]}"
        )
    return {
        "wall_s": wall,
        "log_window_s": max(last_log - first_log, 1e-9),
        "child_cpu_s": usage.ru_utime + usage.ru_stime,
        "host_cpu_s": host_cpu,
        "last_type": (last or {}).get("type", "log"),
    }


def bench_log(ctx: Context) -> None:
    """Benchmark 2: log() frames per second against the bare json/struct/os.write floor."""
    dag = ctx.work / "log_dag.py"
    dag.write_text(LOG_DAG)
    n = ctx.log_frames
    ctx_json = json.dumps({"run_id": 1, "n": n})

    def task(name: str) -> Callable[[], dict[str, float]]:
        args = ["task", "run", "--file", str(dag), "--dag", "Logs", "--task", name]
        return lambda: _log_host([*ctx.gust, *args, "--ctx-json", ctx_json], ctx.env, ctx.work, n)

    variants = {
        "floor": lambda: _log_host([ctx.python, "-c", FLOOR_WRITER, str(n)], ctx.env, ctx.work, n),
        "plain": task("plain"),
        "masked": task("masked"),
    }
    for fn in variants.values():  # warm-up (also checks each one works)
        fn()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for _ in range(ctx.log_repeat):
        for name, fn in variants.items():
            runs[name].append(fn())
    for name in ("plain", "masked"):
        if runs[name][-1]["last_type"] != "result":
            raise BenchmarkError(f"log task {name} did not end with a result frame")

    def rate(name: str) -> float:
        return median([n / r["log_window_s"] for r in runs[name]])

    floor = rate("floor")
    labels = {
        "floor": "floor: json.dumps + struct.pack + os.write",
        "plain": "gust log(), no secret",
        "masked": "gust log(), one secret registered",
    }
    budgets = {"plain": BUDGET_LOG_PLAIN_X_FLOOR, "masked": BUDGET_LOG_MASKED_X_FLOOR}
    rows = []
    for name in variants:
        frames_s = rate(name)
        row = {
            "name": labels[name],
            "frames_per_s": frames_s,
            "x_floor": frames_s / floor,
            "us_per_frame": 1e6 / frames_s,
            "wall_s": median([r["wall_s"] for r in runs[name]]),
            "child_cpu_s": median([r["child_cpu_s"] for r in runs[name]]),
            "writer_cpu_us_per_frame": median([r["child_cpu_s"] for r in runs[name]]) / n * 1e6,
            "host_cpu_us_per_frame": median([r["host_cpu_s"] for r in runs[name]]) / n * 1e6,
            "spread": spread([n / r["log_window_s"] for r in runs[name]]),
        }
        if name in budgets:
            row["budget"] = f">= {budgets[name]:g}x floor"
            row["ok"] = row["x_floor"] >= budgets[name]
        rows.append(row)
    ctx.results["log"] = {"frames": n, "repeats": ctx.log_repeat, "rows": rows}


def _growth_exponent(sizes: Sequence[int], times: Sequence[float]) -> float:
    """Least-squares slope of log(time) over log(size): 1.0 is linear, 2.0 quadratic."""
    xs = [math.log(s) for s in sizes]
    ys = [math.log(max(t, 1e-9)) for t in times]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 1.0


def bench_parse(ctx: Context) -> None:
    """Benchmark 3: gust parse of generated chain and fan-out DAGs; time, peak RSS, growth."""
    shapes = {"chain": chain_dag, "fan-out": fanout_dag}
    files: dict[tuple[str, int], Path] = {}
    for shape, make in shapes.items():
        for n in [1, *ctx.parse_sizes]:
            path = ctx.work / f"parse_{shape.replace('-', '')}_{n}.py"
            path.write_text(make(n))
            files[(shape, n)] = path

    def parse(path: Path, n: int) -> Callable[[], Run]:
        def go() -> Run:
            argv = [*ctx.gust, "parse", "--file", str(path)]
            run = run_measured(argv, ctx.env, ctx.work, ctx.python)
            if run.returncode != 0:
                raise BenchmarkError(f"gust parse {path.name} exited {run.returncode}")
            out = json.loads(run.stdout)
            if len(out) != 1 or out[0]["error"] or len(out[0]["task_list"]) != n:
                raise BenchmarkError(f"gust parse {path.name} gave an unexpected answer")
            return run

        return go

    variants = {f"{shape}|{n}": parse(path, n) for (shape, n), path in files.items()}
    runs = round_robin(variants, ctx.parse_repeat)
    rows = []
    growth = {}
    for shape in shapes:
        base = runs[f"{shape}|1"]
        base_t = median([r.wall_s for r in base])
        base_rss = median([r.max_rss_kib for r in base])
        marginal = []
        for n in ctx.parse_sizes:
            rs = runs[f"{shape}|{n}"]
            t = median([r.wall_s for r in rs])
            rss = median([r.max_rss_kib for r in rs])
            row = {
                "shape": shape,
                "tasks": n,
                "median_s": t,
                "spread": spread([r.wall_s for r in rs]),
                "marginal_us_per_task": (t - base_t) / n * 1e6,
                "peak_rss_mib": rss / 1024,
                "marginal_kib_per_task": (rss - base_rss) / n,
            }
            if shape == "chain" and n == 5000:
                row["budget"] = f"<= {BUDGET_PARSE_5K_CHAIN_S:g} s"
                row["ok"] = t <= BUDGET_PARSE_5K_CHAIN_S
            rows.append(row)
            marginal.append(max(t - base_t, 1e-9))
        growth[shape] = {
            "startup_s": base_t,
            "startup_rss_mib": base_rss / 1024,
            "exponent": _growth_exponent(ctx.parse_sizes, marginal) if len(marginal) > 1 else None,
        }
    ctx.results["parse"] = {"repeats": ctx.parse_repeat, "rows": rows, "growth": growth}


def _harness(ctx: Context, dag: Path, parallel: int | None, tasks: int) -> dict[str, float]:
    argv = [ctx.python, "-c", HARNESS_WRAPPER, str(dag), "--json"]
    if parallel is not None:
        argv += ["--max-parallel", str(parallel)]
    run = run_child(argv, ctx.env, ctx.work)
    err = run.stderr.decode(errors="replace")
    marker = err.rfind("GUST-BENCH-RUSAGE ")
    if run.returncode != 0 or marker < 0:
        raise BenchmarkError(f"harness on {dag.name} exited {run.returncode}: {err[-2000:]}")
    usage = json.loads(err[marker:].split(" ", 1)[1])
    report = json.loads(run.stdout)
    statuses = [t["status"] for t in report["tasks"].values()]
    if report.get("status") != "ok" or statuses != ["ok"] * tasks:
        raise BenchmarkError(f"harness run of {dag.name} did not succeed: {report.get('status')}")
    return {
        "wall_s": run.wall_s,
        "run_s": float(report.get("duration_s") or run.wall_s),
        "host_cpu_s": usage["self_cpu_s"],
        "children_cpu_s": usage["children_cpu_s"],
        "host_rss_mib": usage["self_maxrss_kib"] / 1024,
    }


def bench_harness(ctx: Context) -> None:
    """Benchmark 4: a stage of N tasks at several --max-parallel, and the host's CPU per task."""
    kinds = {"trivial": 0.0}
    if ctx.harness_sleep > 0:
        kinds[f"sleep {ctx.harness_sleep:g} s"] = ctx.harness_sleep
    rows = []
    for kind, sleep_s in kinds.items():
        tag = "trivial" if not sleep_s else "sleep"
        stage = ctx.work / f"stage_{tag}_{ctx.harness_tasks}.py"
        stage.write_text(stage_dag(ctx.harness_tasks, sleep_s))
        single = ctx.work / f"stage_{tag}_1.py"
        single.write_text(stage_dag(1, sleep_s))

        def job(path: Path, parallel: int, tasks: int) -> Callable[[], dict[str, float]]:
            return lambda: _harness(ctx, path, parallel, tasks)

        variants = {f"p{p}": job(stage, p, ctx.harness_tasks) for p in ctx.harness_levels}
        variants["single"] = job(single, 1, 1)
        for fn in variants.values():
            fn()
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        for _ in range(ctx.harness_repeat):
            for name, fn in variants.items():
                runs[name].append(fn())
        single_cpu = median([r["host_cpu_s"] for r in runs["single"]])
        serial = median([r["run_s"] for r in runs[f"p{ctx.harness_levels[0]}"]])
        for p in ctx.harness_levels:
            rs = runs[f"p{p}"]
            run_s = median([r["run_s"] for r in rs])
            host_cpu = median([r["host_cpu_s"] for r in rs])
            row = {
                "tasks": kind,
                "max_parallel": p,
                "run_s": run_s,
                "wall_s": median([r["wall_s"] for r in rs]),
                "x_serial": run_s / serial,
                "host_cpu_ms_per_task": (host_cpu - single_cpu)
                / max(ctx.harness_tasks - 1, 1)
                * 1000,
                "host_cpu_ms_total": host_cpu * 1000,
            }
            if p == 4 and ctx.harness_levels[0] == 1:
                row["budget"] = f"<= {BUDGET_HARNESS_P4_X_P1:g}x --max-parallel 1"
                row["ok"] = row["x_serial"] <= BUDGET_HARNESS_P4_X_P1
            rows.append(row)
    ctx.results["harness"] = {
        "stage_tasks": ctx.harness_tasks,
        "repeats": ctx.harness_repeat,
        "rows": rows,
    }


def chain_stage_dag(n: int) -> str:
    """A chain of ``n`` trivial tasks: ``n`` stages of one task each."""
    parts = ["from gust import Dag, task\n\n\nclass Chain(Dag):\n"]
    for i in range(n):
        down = f'(downstream="t{i + 1:04d}")' if i + 1 < n else ""
        parts.append(f"    @task{down}\n    def t{i:04d}(self, ctx):\n        return {i}\n\n")
    return "".join(parts)


def _scale_row(
    label: str,
    shape: str,
    tasks: int,
    parallel: str,
    rs: list[dict[str, float]],
    base_cpu: float,
    cores: int,
) -> dict[str, Any]:
    run_s = median([r["run_s"] for r in rs])
    # A chain runs one task at a time: its floor is its children's CPU on one core.
    floor = median([r["children_cpu_s"] for r in rs]) / (1 if shape == "chain" else cores)
    return {
        "name": label,
        "shape": shape,
        "tasks": tasks,
        "parallel": parallel,
        "run_s": run_s,
        "floor_s": floor,
        "x_floor": run_s / floor if floor > 0 else float("nan"),
        "host_cpu_ms_per_task": max(median([r["host_cpu_s"] for r in rs]) - base_cpu, 0.0)
        / max(tasks - 1, 1)
        * 1000,
        "host_rss_mib": median([r["host_rss_mib"] for r in rs]),
    }


def bench_scale(ctx: Context) -> None:
    """Benchmark 5: wide stages and a long chain at the default parallelism, against the floor."""
    cores = os.cpu_count() or 1
    wide = ctx.scale_wide
    single = ctx.work / "scale_1.py"
    single.write_text(stage_dag(1, 0.0))
    stage = ctx.work / f"scale_stage_{wide}.py"
    stage.write_text(stage_dag(wide, 0.0))

    def job(path: Path, parallel: int | None, tasks: int) -> Callable[[], dict[str, float]]:
        return lambda: _harness(ctx, path, parallel, tasks)

    variants = {"default": job(stage, None, wide), "cores": job(stage, cores, wide)}
    variants["single"] = job(single, None, 1)
    for fn in variants.values():
        fn()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for _ in range(ctx.scale_repeat):
        for name, fn in variants.items():
            runs[name].append(fn())
    base_cpu = median([r["host_cpu_s"] for r in runs["single"]])
    rows = [
        _scale_row(f"stage of {wide}, default parallelism", "stage", wide, "default",
                   runs["default"], base_cpu, cores),
        _scale_row(f"stage of {wide}, --max-parallel {cores} (previous default)", "stage", wide,
                   str(cores), runs["cores"], base_cpu, cores),
    ]  # fmt: skip
    rows[0]["vs_previous"] = rows[0]["run_s"] / rows[1]["run_s"]
    rows[0]["budget"] = "<= 1.2x floor"
    rows[0]["ok"] = rows[0]["x_floor"] <= 1.2
    for shape, n in [("stage", size) for size in ctx.scale_sizes] + [("chain", ctx.scale_chain)]:
        if n < 1:
            continue
        path = ctx.work / f"scale_{shape}_{n}.py"
        path.write_text(stage_dag(n, 0.0) if shape == "stage" else chain_stage_dag(n))
        r = _harness(ctx, path, None, n)
        rows.append(_scale_row(f"{shape} of {n}, default", shape, n, "default", [r], base_cpu,
                               cores))  # fmt: skip
    ctx.results["scale"] = {"cores": cores, "repeats": ctx.scale_repeat, "rows": rows}


# -- the table ------------------------------------------------------------------------------


def _verdict(row: dict[str, Any]) -> str:
    if "ok" not in row:
        return ""
    return f"{row['budget']}: {'ok' if row['ok'] else 'MISSED'}"


def render_table(results: dict[str, Any]) -> str:
    """The human table: one section per benchmark, figures and ratios side by side."""
    m = results["machine"]
    out = [
        f"gust benchmarks: Python {m['python']}, click {m['click']}, {m['nproc']} CPUs "
        f"({m['cpu_model']}), load {', '.join(f'{x:.2f}' for x in m['loadavg_start'] or [])}",
        f"bytecode cache writes: {'on' if results['settings']['bytecode_cache'] else 'off'}; "
        "spread = interquartile range / median",
    ]
    if "startup" in results:
        s = results["startup"]
        out += [
            "",
            f"1. Start-up, median of {s['repeats']} runs (fast path = the gust console script; "
            "click path = gust.cli.main, the previous behaviour)",
            f"   {'command':34} {'fast ms':>8} {'x bare':>7} {'spread':>7} "
            f"{'click ms':>9} {'x bare':>7} {'speed-up':>9}  budget",
        ]
        for r in s["rows"]:
            if "click_median_ms" not in r:
                out.append(
                    f"   {r['name']:34} {r['median_ms']:8.1f} {r['x_bare']:7.2f} {r['spread']:7.1%}"
                )
                continue
            out.append(
                f"   {r['name']:34} {r['median_ms']:8.1f} {r['x_bare']:7.2f} {r['spread']:7.1%} "
                f"{r['click_median_ms']:9.1f} {r['click_x_bare']:7.2f} "
                f"{r['speedup_vs_click']:8.2f}x  {_verdict(r)}"
            )
    if "log" in results:
        s = results["log"]
        out += [
            "",
            f"2. log() throughput, {s['frames']} frames to a host reading the pipe, "
            f"median of {s['repeats']}",
            f"   {'writer':44} {'frames/s':>10} {'x floor':>8} {'spread':>7} "
            f"{'writer CPU us/frame':>20} {'host CPU us/frame':>18}  budget",
        ]
        for r in s["rows"]:
            out.append(
                f"   {r['name']:44} {r['frames_per_s']:10.0f} {r['x_floor']:8.2f} "
                f"{r['spread']:7.1%} {r['writer_cpu_us_per_frame']:20.2f} "
                f"{r['host_cpu_us_per_frame']:18.2f}  {_verdict(r)}"
            )
    if "parse" in results:
        s = results["parse"]
        out += [
            "",
            f"3. gust parse of generated DAGs, median of {s['repeats']} "
            "(marginal = above a 1-task file of the same shape)",
            f"   {'shape':8} {'tasks':>6} {'time s':>8} {'spread':>7} {'us/task':>8} "
            f"{'peak RSS MiB':>12} {'KiB/task':>9}  budget",
        ]
        for r in s["rows"]:
            out.append(
                f"   {r['shape']:8} {r['tasks']:6d} {r['median_s']:8.3f} {r['spread']:7.1%} "
                f"{r['marginal_us_per_task']:8.1f} {r['peak_rss_mib']:12.1f} "
                f"{r['marginal_kib_per_task']:9.2f}  {_verdict(r)}"
            )
        for shape, g in s["growth"].items():
            exponent = "n/a" if g["exponent"] is None else f"{g['exponent']:.2f}"
            out.append(
                f"   {shape}: growth exponent {exponent} (1.00 = linear); 1-task file "
                f"{g['startup_s'] * 1000:.1f} ms, {g['startup_rss_mib']:.1f} MiB"
            )
    if "harness" in results:
        s = results["harness"]
        out += [
            "",
            f"4. Harness: one stage of {s['stage_tasks']} tasks, median of {s['repeats']} "
            "(run = the report's duration_s; host CPU = the harness process itself, "
            "marginal per task)",
            f"   {'tasks':14} {'parallel':>8} {'run s':>7} {'x serial':>9} {'wall s':>7} "
            f"{'host CPU ms/task':>17}  budget",
        ]
        for r in s["rows"]:
            out.append(
                f"   {r['tasks']:14} {r['max_parallel']:8d} {r['run_s']:7.3f} "
                f"{r['x_serial']:9.2f} {r['wall_s']:7.3f} {r['host_cpu_ms_per_task']:17.2f}  "
                f"{_verdict(r)}"
            )
    if "scale" in results:
        s = results["scale"]
        out += [
            "",
            f"5. Harness at scale on {s['cores']} cores (floor = children's CPU / cores, one core "
            f"for a chain; the wide stage is the median of {s['repeats']}, side by side with the "
            "previous default)",
            f"   {'run':48} {'run s':>7} {'floor s':>8} {'x floor':>8} "
            f"{'host CPU ms/task':>17} {'peak RSS MiB':>13}  budget",
        ]
        for r in s["rows"]:
            extra = f" ({r['vs_previous']:.2f}x the previous)" if "vs_previous" in r else ""
            out.append(
                f"   {r['name']:48} {r['run_s']:7.2f} {r['floor_s']:8.2f} {r['x_floor']:8.2f} "
                f"{r['host_cpu_ms_per_task']:17.2f} {r['host_rss_mib']:13.1f}  "
                f"{_verdict(r)}{extra}"
            )
    return "\n".join(out)


# -- the command line -----------------------------------------------------------------------

BENCHMARKS = {
    "startup": bench_startup,
    "log": bench_log,
    "parse": bench_parse,
    "harness": bench_harness,
    "scale": bench_scale,
}


def _ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated whole numbers: {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected whole numbers of 1 or more: {text!r}")
    return values


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``benchmarks/run.py``."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (noisier)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure as JSON to FILE")
    parser.add_argument(
        "--only",
        metavar="NAMES",
        help=f"comma-separated subset of {','.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument("--python", metavar="PATH", default=sys.executable)
    parser.add_argument(
        "--gust",
        metavar="PATH",
        help="the gust console script (default: the one beside --python, else python -m gust)",
    )
    parser.add_argument("--repeat", type=_positive, help="start-up runs per command (41)")
    parser.add_argument("--log-frames", type=_positive, default=200_000)
    parser.add_argument("--log-repeat", type=_positive, help="log runs per writer (5)")
    parser.add_argument("--parse-sizes", type=_ints, default=[1000, 5000, 20000])
    parser.add_argument("--parse-repeat", type=_positive, help="parse runs per file (5)")
    parser.add_argument("--harness-tasks", type=_positive, default=16)
    parser.add_argument(
        "--harness-sleep",
        type=float,
        default=0.1,
        help="seconds each task of the I/O-bound stage sleeps (0: trivial stage only)",
    )
    parser.add_argument("--harness-levels", type=_ints, default=[1, 2, 4])
    parser.add_argument("--harness-repeat", type=_positive, help="harness runs per level (3)")
    parser.add_argument("--scale-wide", type=_positive, default=300, help="the wide stage (300)")
    parser.add_argument("--scale-sizes", type=_ints, default=[100, 1000, 2000])
    parser.add_argument("--scale-chain", type=int, default=2000, help="chain length (0: none)")
    parser.add_argument("--scale-repeat", type=_positive, help="wide-stage runs per variant (3)")
    parser.add_argument(
        "--keep-dont-write-bytecode",
        action="store_true",
        help="pass PYTHONDONTWRITEBYTECODE on to the children (caches on disk are still read)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks, print the table, write the JSON; the exit status."""
    args = build_parser().parse_args(argv)
    only = list(BENCHMARKS) if not args.only else [x.strip() for x in args.only.split(",")]
    unknown = [x for x in only if x not in BENCHMARKS]
    if unknown:
        sys.stderr.write(f"benchmarks/run.py: --only: unknown benchmark(s) {unknown}\n")
        return 2
    env = dict(os.environ)
    if not args.keep_dont_write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    script = Path(args.gust) if args.gust else Path(args.python).parent / "gust"
    gust = [str(script)] if script.exists() else [args.python, "-m", "gust"]
    quick = args.quick
    work = Path(tempfile.mkdtemp(prefix="gust-bench-"))
    ctx = Context(
        python=args.python,
        gust=gust,
        env=env,
        work=work,
        repeat=args.repeat or (15 if quick else 41),
        log_frames=args.log_frames,
        log_repeat=args.log_repeat or (1 if quick else 5),
        parse_sizes=sorted(set(args.parse_sizes)),
        parse_repeat=args.parse_repeat or (3 if quick else 5),
        harness_tasks=args.harness_tasks,
        harness_sleep=args.harness_sleep,
        harness_repeat=args.harness_repeat or (1 if quick else 3),
        harness_levels=sorted(set(args.harness_levels)),
        scale_wide=args.scale_wide,
        scale_sizes=sorted(set(args.scale_sizes)),
        scale_chain=args.scale_chain,
        scale_repeat=args.scale_repeat or (1 if quick else 3),
    )
    try:
        ctx.results["machine"] = machine_info(args.python, env)
        ctx.results["settings"] = {
            "bytecode_cache": not args.keep_dont_write_bytecode,
            "gust_command": gust,
            "quick": quick,
        }
        for name in only:
            sys.stderr.write(f"running {name}...\n")
            BENCHMARKS[name](ctx)
        if hasattr(os, "getloadavg"):
            ctx.results["machine"]["loadavg_end"] = list(os.getloadavg())
    except BenchmarkError as exc:
        sys.stderr.write(f"benchmarks/run.py: {exc}\n")
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(render_table(ctx.results))
    if args.json:
        Path(args.json).write_text(json.dumps(ctx.results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
