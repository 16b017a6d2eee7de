"""benchmarks/run.py: a smoke run on tiny sizes (no timing assertions), and its arithmetic."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from _host import REPO

SCRIPT = REPO / "benchmarks" / "run.py"

TINY = [
    *("--repeat", "2", "--log-frames", "300", "--log-repeat", "1"),
    *("--parse-sizes", "5,10", "--parse-repeat", "1"),
    *("--harness-tasks", "2", "--harness-levels", "1,2", "--harness-repeat", "1"),
    *("--harness-sleep", "0.01"),
    *("--scale-wide", "3", "--scale-sizes", "2,4", "--scale-chain", "3", "--scale-repeat", "1"),
]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gust_benchmarks_run", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def _finite_positive(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_smoke_run_on_tiny_sizes_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out_json = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *TINY, "--json", str(out_json)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for heading in (
        "1. Start-up",
        "2. log() throughput",
        "3. gust parse",
        "4. Harness",
        "5. Harness at scale",
    ):
        assert heading in proc.stdout
    data = json.loads(out_json.read_text())
    assert data["machine"]["nproc"] >= 1 and data["machine"]["python"].count(".") == 2

    startup = {row["name"]: row for row in data["startup"]["rows"]}
    assert startup["python -c pass"]["x_bare"] == 1.0
    task_run = startup["gust task run (trivial task)"]
    assert _finite_positive(task_run["median_ms"]) and _finite_positive(task_run["click_median_ms"])
    assert task_run["speedup_vs_click"] == pytest.approx(
        task_run["click_median_ms"] / task_run["median_ms"]
    )
    assert isinstance(task_run["ok"], bool) and "budget" in task_run
    assert {"gust run done (trivial callback)", "gust parse (small DAG)"} <= startup.keys()

    log_rows = data["log"]["rows"]
    assert log_rows[0]["x_floor"] == 1.0
    assert all(_finite_positive(r["frames_per_s"]) for r in log_rows)
    assert [("ok" in r) for r in log_rows] == [False, True, True]

    parse_rows = data["parse"]["rows"]
    assert [(r["shape"], r["tasks"]) for r in parse_rows] == [
        ("chain", 5),
        ("chain", 10),
        ("fan-out", 5),
        ("fan-out", 10),
    ]
    assert all(_finite_positive(r["peak_rss_mib"]) for r in parse_rows)
    assert set(data["parse"]["growth"]) == {"chain", "fan-out"}

    harness_rows = data["harness"]["rows"]
    assert [(r["tasks"], r["max_parallel"]) for r in harness_rows] == [
        ("trivial", 1),
        ("trivial", 2),
        ("sleep 0.01 s", 1),
        ("sleep 0.01 s", 2),
    ]
    assert all(r["x_serial"] > 0 for r in harness_rows)
    assert harness_rows[0]["x_serial"] == 1.0

    scale = data["scale"]["rows"]
    assert [(r["shape"], r["tasks"], r["parallel"]) for r in scale] == [
        ("stage", 3, "default"),
        ("stage", 3, str(data["scale"]["cores"])),
        ("stage", 2, "default"),
        ("stage", 4, "default"),
        ("chain", 3, "default"),
    ]
    for r in scale:
        assert _finite_positive(r["floor_s"]) and _finite_positive(r["host_rss_mib"])
        assert r["x_floor"] == pytest.approx(r["run_s"] / r["floor_s"])
    assert scale[0]["vs_previous"] == pytest.approx(scale[0]["run_s"] / scale[1]["run_s"])


def test_unknown_benchmark_name_is_refused() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--only", "startup,warp"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "warp" in proc.stderr


def test_growth_exponent_tells_linear_from_quadratic() -> None:
    bench = load_script()
    sizes = [1000, 5000, 20000]
    assert bench._growth_exponent(sizes, [n * 3e-6 for n in sizes]) == pytest.approx(1.0)
    assert bench._growth_exponent(sizes, [n * n * 1e-9 for n in sizes]) == pytest.approx(2.0)


@pytest.mark.parametrize("n", [1, 2, 7])
def test_generated_dags_have_the_asked_shape(n: int) -> None:
    bench = load_script()
    chain, fanout, stage = {}, {}, {}
    exec(compile(bench.chain_dag(n), "chain.py", "exec"), chain)
    exec(compile(bench.fanout_dag(n), "fanout.py", "exec"), fanout)
    exec(compile(bench.stage_dag(n, 0.0), "stage.py", "exec"), stage)
    from gust.dag import TASK_ATTR

    def downstream(cls: type) -> dict[str, tuple[str, ...]]:
        return {
            name: getattr(fn, TASK_ATTR).downstream
            for name, fn in vars(cls).items()
            if hasattr(fn, TASK_ATTR)
        }

    assert downstream(chain["Chain"]) == {
        f"t{i}": ((f"t{i + 1}",) if i + 1 < n else ()) for i in range(n)
    }
    fan = downstream(fanout["FanOut"])
    assert fan["t0"] == tuple(f"t{i}" for i in range(1, n)) and len(fan) == n
    assert set(downstream(stage["Stage"]).values()) == {()} and len(downstream(stage["Stage"])) == n


def test_frame_decoder_of_the_script_refuses_torn_output() -> None:
    bench = load_script()
    frame = b'{"type":"log"}'
    whole = len(frame).to_bytes(4, "big") + frame
    assert bench.decode_frames(whole * 2) == [{"type": "log"}] * 2
    with pytest.raises(bench.BenchmarkError):
        bench.decode_frames(whole[:-1])
