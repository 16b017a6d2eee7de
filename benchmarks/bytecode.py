"""What compiled bytecode is worth to a task's start-up, as an operator's DAGs folder sees it.

Run ``uv run python benchmarks/bytecode.py [--repeat N] [--json FILE]``. It builds DAGs projects
in a temp dir the way an operator would (a ``pyproject.toml`` depending on ``gust-py``, here this
checkout by path, installed as a wheel), one synced with ``uv sync --compile-bytecode`` and two
with a plain ``uv sync``, and times side by side, round-robin, the median wall time from spawn
to exit of:

* ``python -c pass`` with the project's interpreter (the floor);
* ``gust task run`` of a trivial task, started as the venv's ``gust`` script:
  - with bytecode compiled at install;
  - without, the first start after install (Python compiles gust and click and writes the cache
    into the venv: the cache is removed before every such run);
  - without, and ``PYTHONDONTWRITEBYTECODE=1`` (or a venv the orchestrator's user cannot
    write): every start compiles them again;
  - without, once a first start has written the cache (what every later start costs);
* the same task through ``uv run gust``, as Gust starts it, compiled and never cached;

and, once, how long each ``uv sync`` took (compiling at install is paid once per sync).

Every task run is checked: its last frame must be a successful ``result``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

DAG = """\
from gust import Dag, task


class Trivial(Dag):
    @task
    def noop(self, ctx):
        return {"run_id": ctx["run_id"]}
"""


class BenchmarkError(Exception):
    """A command did not do what it was asked: its figures would mean nothing."""


@dataclass
class Variant:
    """One way of starting the task: its label, argv, environment and set-up before each run."""

    label: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    clear_cache: Path | None = None  # site-packages whose gust/click caches go before each run
    task: bool = True


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        raise BenchmarkError("uv is not on PATH; it builds the DAGs projects")
    return uv


def _project(root: Path, name: str, compile_bytecode: bool, env: dict[str, str]) -> float:
    """Create and sync one DAGs project; return the seconds ``uv sync`` took."""
    folder = root / name
    (folder / "dags").mkdir(parents=True)
    (folder / "dags" / "trivial.py").write_text(DAG)
    (folder / "pyproject.toml").write_text(
        "[project]\n"
        f'name = "{name}"\nversion = "0"\nrequires-python = ">=3.10"\n'
        'dependencies = ["gust-py"]\n\n'
        "[tool.uv]\npackage = false\n\n"
        f'[tool.uv.sources]\ngust-py = {{ path = "{REPO}", editable = false }}\n'
    )
    argv = [_uv(), "sync", "--python", sys.executable, "--quiet"]
    if compile_bytecode:
        argv.append("--compile-bytecode")
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise BenchmarkError(f"`uv sync` in {folder} failed:\n{proc.stderr}")
    return seconds


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    if not found:
        raise BenchmarkError(f"no site-packages in {venv}")
    return found[0]


def _clear_caches(site: Path) -> None:
    for package in ("gust", "click"):
        for cache in (site / package).rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)


def _has_cache(site: Path) -> bool:
    return any((site / "gust").rglob("*.pyc"))


def _check_task(out: bytes, label: str) -> None:
    frames, pos = [], 0
    while pos + 4 <= len(out):
        (size,) = struct.unpack_from(">I", out, pos)
        frames.append(json.loads(out[pos + 4 : pos + 4 + size]))
        pos += 4 + size
    if not frames or frames[-1].get("type") != "result" or frames[-1].get("ok") is not True:
        raise BenchmarkError(f"{label}: the task did not succeed; frames: {frames!r}")


def _time(variant: Variant) -> float:
    if variant.clear_cache is not None:
        _clear_caches(variant.clear_cache)
    started = time.perf_counter()
    proc = subprocess.run(
        variant.argv,
        cwd=variant.cwd,
        env=variant.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise BenchmarkError(f"{variant.label}: exit {proc.returncode}\n{proc.stderr.decode()}")
    if variant.task:
        _check_task(proc.stdout, variant.label)
    return wall


def measure(repeat: int, root: Path) -> dict[str, object]:
    """Build the projects under ``root`` and time every variant ``repeat`` times, round-robin."""
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}
    base_env.pop("PYTHONDONTWRITEBYTECODE", None)
    never = dict(base_env, PYTHONDONTWRITEBYTECODE="1")
    sync_compiled = _project(root, "compiled", True, base_env)
    sync_plain = _project(root, "plain", False, base_env)
    _project(root, "warm", False, base_env)
    compiled, plain, warm = root / "compiled", root / "plain", root / "warm"
    site_compiled = _site_packages(compiled / ".venv")
    site_plain = _site_packages(plain / ".venv")
    site_warm = _site_packages(warm / ".venv")
    if not _has_cache(site_compiled):
        raise BenchmarkError("uv sync --compile-bytecode left no bytecode for gust")

    def task_argv(gust: list[str], project: Path) -> list[str]:
        return [
            *gust,
            "task",
            "run",
            "--file",
            str(project / "dags" / "trivial.py"),
            "--dag",
            "Trivial",
            "--task",
            "noop",
            "--ctx-json",
            '{"run_id": 1}',
        ]

    def script(project: Path) -> list[str]:
        return [str(project / ".venv" / "bin" / "gust")]

    uv_gust = [_uv(), "run", "gust"]
    variants = [
        Variant(
            "python -c pass",
            [str(compiled / ".venv/bin/python"), "-c", "pass"],
            base_env,
            compiled,
            task=False,
        ),
        Variant(
            "gust task run, compiled at install",
            task_argv(script(compiled), compiled),
            never,
            compiled,
        ),
        Variant(
            "gust task run, not compiled: first start (writes the cache)",
            task_argv(script(plain), plain),
            base_env,
            plain,
            clear_cache=site_plain,
        ),
        Variant(
            "gust task run, not compiled, PYTHONDONTWRITEBYTECODE=1",
            task_argv(script(plain), plain),
            never,
            plain,
            clear_cache=site_plain,
        ),
        Variant(
            "gust task run, not compiled, cache written by a first start",
            task_argv(script(warm), warm),
            never,
            warm,
        ),
        Variant(
            "uv run gust task run, compiled at install",
            task_argv(uv_gust, compiled),
            never,
            compiled,
        ),
        Variant(
            "uv run gust task run, not compiled, PYTHONDONTWRITEBYTECODE=1",
            task_argv(uv_gust, plain),
            never,
            plain,
            clear_cache=site_plain,
        ),
    ]
    _clear_caches(site_warm)
    _time(Variant("the first start", task_argv(script(warm), warm), base_env, warm))
    if not _has_cache(site_warm):
        raise BenchmarkError("a first start without PYTHONDONTWRITEBYTECODE wrote no cache")
    for variant in variants:  # warm-up: the OS file cache, uv's own
        _time(variant)
    times: dict[str, list[float]] = {v.label: [] for v in variants}
    for _ in range(repeat):
        for variant in variants:
            times[variant.label].append(_time(variant))
    bare = statistics.median(times["python -c pass"])
    rows = []
    for variant in variants:
        ms = statistics.median(times[variant.label]) * 1000
        rows.append(
            {
                "name": variant.label,
                "median_ms": round(ms, 1),
                "x_bare": round(ms / (bare * 1000), 2),
            }
        )
    return {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "nproc": os.cpu_count(),
        },
        "repeat": repeat,
        "rows": rows,
        "sync_s": {
            "uv sync --compile-bytecode": round(sync_compiled, 2),
            "uv sync": round(sync_plain, 2),
        },
    }


def render(data: dict[str, object]) -> str:
    """The table printed on stdout."""
    rows = data["rows"]
    assert isinstance(rows, list)
    width = max(len(r["name"]) for r in rows)
    lines = [
        f"Task start-up and compiled bytecode, median of {data['repeat']} runs",
        f"  {'command':<{width}}  {'ms':>7}  {'x bare':>6}",
    ]
    for row in rows:
        lines.append(f"  {row['name']:<{width}}  {row['median_ms']:>7.1f}  {row['x_bare']:>6.2f}")
    sync = data["sync_s"]
    assert isinstance(sync, dict)
    lines.append("")
    lines.append("  install, once: " + ", ".join(f"{k} {v:.2f} s" for k, v in sync.items()))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the table, and write JSON with ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=21, help="runs per variant (default 21)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")
    try:
        with tempfile.TemporaryDirectory(prefix="gust-bytecode-") as root:
            data = measure(args.repeat, Path(root))
    except BenchmarkError as exc:
        print(f"bytecode benchmark: {exc}", file=sys.stderr)
        return 1
    print(render(data))
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
