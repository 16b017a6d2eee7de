"""``python -m gust.conformance``: check a runtime or a host against the golden cases.

Theory of operation: ``runtime [-- CMD...]`` plays the host of every runtime case against CMD
(default: this interpreter's ``gust``); ``host -- CMD...`` runs the host command CMD once per
host case with a scripted child in place of ``gust``; ``validate`` checks every case file
against the schemas. Cases run in parallel on a thread pool, and their verdicts are printed one
line each in name order, then ``N passed, M failed``; the exit status is 1 when any case
failed, 2 for a usage error or a malformed suite.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gust.conformance import host_mode, runtime_mode
from gust.conformance.cases import Case, CaseError, Suite, default_suite_root, load_cases
from gust.conformance.report import CaseResult, summary_line, write_reports
from gust.conformance.schema import SchemaError, SchemaSet

__all__ = ["main", "run_cases"]

_HOST_HELP = (
    "the host command, with placeholders: {gust} (the scripted child to run instead of gust; "
    "also first on PATH as `gust`), {dag_file}, {dag}, {task}, {run_id}, {ctx_json}, {store}. "
    "It must run the task once and exit 0 exactly when the task succeeded"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gust.conformance",
        description="Check a gust runtime or a Gust host against the golden conformance cases.",
    )
    sub = parser.add_subparsers(dest="mode", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--suite", type=Path, help="the conformance/ folder (default: this repo's)")
        p.add_argument(
            "--transcripts",
            type=Path,
            help="play the cases of this folder (e.g. recorded by the harness) instead",
        )
        p.add_argument(
            "--case",
            action="append",
            metavar="NAME",
            help="run only this case (shell patterns allowed; repeatable)",
        )
        p.add_argument("--timeout", type=float, default=30.0, help="seconds per case (30)")
        p.add_argument(
            "--jobs", type=int, default=os.cpu_count() or 2, help="cases run in parallel"
        )
        p.add_argument("--report-dir", type=Path, help="write a JSON report per case there")
        p.add_argument(
            "--validator",
            choices=("auto", "builtin", "jsonschema"),
            default="auto",
            help="schema validator (auto: jsonschema when installed)",
        )

    rt = sub.add_parser("runtime", help="play the host against a runtime (default: our gust)")
    common(rt)
    rt.add_argument(
        "--dags", type=Path, help="run the DAG files of this folder (same names) instead"
    )
    rt.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD... (default: gust)")

    host = sub.add_parser("host", help="test a host with a scripted child in place of gust")
    common(host)
    host.add_argument("--store", type=Path, help="fixtures file for {store} (dags/store.json)")
    host.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD... " + _HOST_HELP)

    val = sub.add_parser("validate", help="check every case file against the schemas")
    val.add_argument("--suite", type=Path, help="the conformance/ folder (default: this repo's)")
    val.add_argument("--transcripts", type=Path, help="check the cases of this folder instead")
    val.add_argument("--validator", choices=("auto", "builtin", "jsonschema"), default="auto")
    return parser


def run_cases(
    cases: list[Case],
    play: Callable[[Case], CaseResult],
    jobs: int,
    echo: Callable[[str], None] | None = None,
) -> list[CaseResult]:
    """Play ``cases`` on ``jobs`` threads; ``echo`` gets each verdict line in case order."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(play, case) for case in cases]
        results = []
        for future in futures:
            result = future.result()
            results.append(result)
            if echo is not None:
                echo(result.line())
    return results


def _command(raw: list[str]) -> list[str]:
    return raw[1:] if raw and raw[0] == "--" else raw


def _print(line: str) -> None:
    print(line.encode("utf-8", "backslashreplace").decode("utf-8"), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    suite = Suite(args.suite or default_suite_root(), args.transcripts)
    try:
        schemas = SchemaSet(suite.schema_dir, backend=args.validator)
        if args.mode == "validate":
            cases = load_cases(suite, schemas)
            print(f"{len(cases)} cases valid ({schemas.backend} validator)")
            return 0
        role = args.mode
        dags = getattr(args, "dags", None)
        cases = load_cases(suite, schemas, role=role, only=args.case, dags_dir=dags)
    except (CaseError, SchemaError) as exc:
        print(f"gust.conformance: {exc}", file=sys.stderr)
        return 2
    if not cases:
        print(f"gust.conformance: no {role} cases selected", file=sys.stderr)
        return 2
    command = _command(args.command)
    if role == "runtime":

        def play(case: Case) -> CaseResult:
            return runtime_mode.run_case(case, schemas, command or None, timeout=args.timeout)
    else:
        if not command:
            print("gust.conformance host: give the host command after --", file=sys.stderr)
            return 2
        keep_wire = args.report_dir is not None

        def play(case: Case) -> CaseResult:
            return host_mode.run_case(
                case, suite, command, timeout=args.timeout, store=args.store, keep_wire=keep_wire
            )

    results = run_cases(cases, play, args.jobs, echo=_print)
    if args.report_dir is not None:
        write_reports(results, args.report_dir)
    _print(summary_line(results))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    try:
        status = main()
    except BrokenPipeError:
        # The reader of our output left (``| head``): say nothing more; the verdict was not
        # told in full, so it cannot be a pass.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 1
    sys.exit(status)
