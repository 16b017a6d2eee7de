"""``python -m gust.harness``: the command line of the local orchestrator.

Parses options with argparse (only ``gust.cli`` may use click), sets the run up, runs it with
the human view or quietly, writes the report, and turns the outcome into an exit status:
0 when the run (and its callback) succeeded, 1 when it failed, 2 for a usage, store or parse
error (nothing ran), 130 when interrupted (every running task is killed first).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Final, TextIO

from gust import protocol
from gust.harness.dagfile import parse_dag_file
from gust.harness.errors import HarnessError, UsageError
from gust.harness.host import DEFAULT_GRACE, default_gust_cmd, split_gust_cmd
from gust.harness.html import HtmlReportFile
from gust.harness.report import RunReport
from gust.harness.run import run_plan
from gust.harness.store import load_store
from gust.harness.view import HumanView

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected zero or more seconds, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m gust.harness``."""
    parser = argparse.ArgumentParser(
        prog="python -m gust.harness",
        description="Run a Python DAG locally exactly as Gust would: gust parse, then every "
        "task through gust task run (stage by stage, in parallel), then the callback.",
        epilog="Exit status: 0 the run and its callback succeeded, 1 a task or the callback "
        "failed, 2 usage/store/parse error (nothing ran), 130 interrupted.",
    )
    parser.add_argument("dag_file", metavar="DAG_FILE", help="the DAG file to run")
    parser.add_argument("--dag", metavar="NAME", help="the DAG class (default: the file's first)")
    parser.add_argument("--store", metavar="FILE", help="JSON store of secrets and earlier runs")
    parser.add_argument("--run-id", metavar="ID", type=int, default=1, help="run id (default 1)")
    parser.add_argument(
        "--task", metavar="NAME", help="run only this task; upstream results come from the store"
    )
    parser.add_argument(
        "--max-parallel",
        metavar="N",
        type=_count,
        default=None,
        help="tasks of a stage run at once (default: CPU count)",
    )
    parser.add_argument(
        "--timeout", metavar="SECONDS", type=_seconds, help="per task attempt (default: none)"
    )
    parser.add_argument(
        "--grace",
        metavar="SECONDS",
        type=_seconds,
        default=DEFAULT_GRACE,
        help=f"from SIGTERM to SIGKILL on timeout (default {DEFAULT_GRACE:g})",
    )
    parser.add_argument(
        "--retries",
        metavar="N",
        type=_count,
        default=1,
        help="attempts per task, with exponential backoff (default 1; Gust makes 3)",
    )
    parser.add_argument(
        "--backoff",
        metavar="SECONDS",
        type=_seconds,
        default=1.0,
        help="wait before the first retry, doubled for each next one (default 1)",
    )
    parser.add_argument(
        "--gust-cmd",
        metavar="CMD",
        help="how to start the runtime (default: this Python with -m gust; "
        "'uv run gust' mimics Gust exactly)",
    )
    parser.add_argument(
        "--max-frame-size",
        metavar="BYTES",
        type=_count,
        default=protocol.DEFAULT_MAX_FRAME_SIZE,
        help="largest frame accepted from a task (default 64 MiB)",
    )
    parser.add_argument("--report", metavar="FILE", help="write the report JSON to FILE")
    parser.add_argument(
        "--html", metavar="FILE", help="write the report as one self-contained HTML page to FILE"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the report JSON instead of the human view"
    )
    parser.add_argument(
        "--record", metavar="DIR", help="write each task's exchange as a conformance transcript"
    )
    parser.add_argument("--no-color", action="store_true", help="never colour the output")
    return parser


def _open_report(path: str | None) -> TextIO | None:
    if path is None:
        return None
    try:
        return open(path, "w", encoding="utf-8")  # opened early: a bad path fails before the run
    except OSError as exc:
        raise UsageError(f"--report {path}: cannot be written: {exc}") from None


def _run(args: argparse.Namespace, view: HumanView | None) -> RunReport:
    if args.max_frame_size > protocol.MAX_FRAME_FORMAT:
        raise UsageError(f"--max-frame-size must be at most {protocol.MAX_FRAME_FORMAT}")
    if args.timeout is not None and args.timeout == 0:
        raise UsageError("--timeout must be more than 0 seconds")
    gust_cmd = split_gust_cmd(args.gust_cmd) if args.gust_cmd else default_gust_cmd()
    store = load_store(args.store)
    plan = parse_dag_file(args.dag_file, gust_cmd, dag=args.dag)
    report_file = _open_report(args.report)
    html_file: HtmlReportFile | None = None
    try:
        html_file = HtmlReportFile(args.html) if args.html is not None else None
        report = run_plan(
            plan,
            store,
            run_id=args.run_id,
            task=args.task,
            max_parallel=args.max_parallel,
            timeout=args.timeout,
            grace=args.grace,
            retries=args.retries,
            backoff=args.backoff,
            gust_cmd=gust_cmd,
            max_frame_size=args.max_frame_size,
            record_dir=args.record,
            observer=view,
            environ=os.environ,
        )
        if report_file is not None:
            report_file.write(report.to_text() + "\n")
        if html_file is not None:
            html_file.write(report)
    finally:
        if report_file is not None:
            report_file.close()
        if html_file is not None:
            html_file.discard()  # only when the page was not written: the run did not end
    return report


def _silence_stdout() -> None:
    # stdout's reader went away (``| head``): point it at /dev/null so the interpreter's final
    # flush does not fail too.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    view = None if args.json else HumanView(sys.stdout, color=False if args.no_color else None)
    try:
        report = _run(args, view)
    except HarnessError as exc:
        sys.stderr.write(f"gust.harness: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("\ngust.harness: interrupted; every running task was killed\n")
        return EXIT_INTERRUPTED
    if args.json:
        try:
            sys.stdout.write(report.to_text() + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
    elif view is not None and view.broken:
        _silence_stdout()
    return report.exit_code
