"""``python -m gust.conformance``: the conformance runner's command line, a click group.

Theory of operation: ``runtime [-- CMD...]`` plays the host of every runtime case against CMD
(default: this interpreter's ``gust``); ``host -- CMD...`` runs the host command CMD once per
host case with a scripted child in place of ``gust``; ``validate`` checks every case file
against the schemas. Cases run in parallel on a thread pool; their verdicts are printed one line
each in name order, then ``N passed, M failed``.

The group is :data:`cli` (for ``gust conformance`` too, once the ``gust`` command registers it).
Exit statuses come from the project's one table (:mod:`gust.commands`), described in
:data:`EXIT_CODES`: 0 every case passed, 1 a case failed, 2 a usage error, a malformed suite or
a missing ``conformance`` extra (click's ``Error: ...`` on stderr; nothing ran).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import click

from gust.commands import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from gust.conformance.cases import Case, CaseError, Suite, default_suite_root, load_cases
from gust.conformance.report import CaseResult, summary_line, write_reports
from gust.conformance.schema import MissingExtraError, SchemaError, SchemaSet

__all__ = ["EXIT_CODES", "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "cli", "main", "run_cases"]

#: What each exit status of the conformance runner means.
EXIT_CODES: Final = {
    EXIT_OK: "every case passed",
    EXIT_FAILED: "a case failed",
    EXIT_USAGE: "usage error, malformed suite or missing extra (nothing ran)",
}

PROG: Final = "python -m gust.conformance"

_HOST_HELP = (
    "COMMAND is the host, with placeholders filled in per argument: {gust} (the scripted child "
    "to run instead of gust; also first on PATH as `gust`), {dag_file}, {dag}, {task}, "
    "{run_id}, {ctx_json}, {store}, {timeout}. It must run the task once and exit 0 when the "
    "task succeeded, 1 when it failed."
)


class SuiteProblem(click.ClickException):
    """The suite cannot be used (malformed case, missing extra): one line, exit status 2."""

    exit_code = EXIT_USAGE


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


def _echo(line: str) -> None:
    click.echo(line.encode("utf-8", "backslashreplace").decode("utf-8"))


def _load(
    suite_dir: Path | None,
    transcripts: Path | None,
    role: str | None,
    only: tuple[str, ...],
    dags: Path | None = None,
) -> tuple[Suite, SchemaSet, list[Case]]:
    try:
        suite = Suite(suite_dir or default_suite_root(), transcripts)
        schemas = SchemaSet(suite.schema_dir)
        cases = load_cases(suite, schemas, role=role, only=list(only) or None, dags_dir=dags)
    except (CaseError, SchemaError, MissingExtraError) as exc:
        raise SuiteProblem(str(exc)) from None
    if role is not None and not cases:
        raise SuiteProblem(f"no {role} cases selected")
    return suite, schemas, cases


def _folder(**kw: Any) -> click.Path:
    return click.Path(file_okay=False, path_type=Path, **kw)


def _suite_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--transcripts",
        metavar="DIR",
        type=_folder(exists=True),
        help="Play the cases of this folder (e.g. recorded by the harness) instead.",
    )(f)
    return click.option(
        "--suite",
        "suite_dir",
        metavar="DIR",
        type=_folder(exists=True),
        help="The suite folder (default: the one shipped in the package).",
    )(f)


def _run_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option(
                "--case",
                "only",
                multiple=True,
                metavar="NAME",
                help="Run only this case (shell patterns allowed; repeatable).",
            ),
            click.option(
                "--timeout",
                metavar="SECONDS",
                type=click.FloatRange(min=0, min_open=True, max=86400),
                default=30.0,
                show_default=True,
                help="Seconds each case may take (a case may set its own).",
            ),
            click.option(
                "--jobs",
                metavar="N",
                type=click.IntRange(min=1),
                default=os.cpu_count() or 2,
                help="Cases run in parallel (default: CPU count).",
            ),
            click.option(
                "--report-dir",
                metavar="DIR",
                type=_folder(),
                help="Write a JSON report per case there.",
            ),
        ]
    ):
        f = option(f)
    return _suite_options(f)


def _finish(results: list[CaseResult], report_dir: Path | None) -> None:
    if report_dir is not None:
        write_reports(results, report_dir)
    _echo(summary_line(results))
    click.get_current_context().exit(EXIT_OK if all(r.passed for r in results) else EXIT_FAILED)


def _epilog() -> str:
    return "Exit status: " + ", ".join(f"{code} {what}" for code, what in EXIT_CODES.items()) + "."


@click.group(
    "conformance", context_settings={"help_option_names": ["-h", "--help"]}, epilog=_epilog()
)
def cli() -> None:
    """Check a gust runtime or a Gust host against the golden conformance cases."""


_TAKES_COMMAND: Final = {"ignore_unknown_options": True, "allow_interspersed_args": False}


@cli.command(
    "runtime",
    context_settings=_TAKES_COMMAND,
    short_help="Play the host against a runtime (default: this Python's gust).",
)
@_run_options
@click.option(
    "--dags",
    metavar="DIR",
    type=_folder(exists=True),
    help="Run the DAG files of this folder (same file names) instead: a port for your runtime.",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def runtime_command(
    suite_dir: Path | None,
    transcripts: Path | None,
    only: tuple[str, ...],
    timeout: float,
    jobs: int,
    report_dir: Path | None,
    dags: Path | None,
    command: tuple[str, ...],
) -> None:
    """Play the host against a runtime: COMMAND replaces `gust` (default: this Python's gust)."""
    from gust.conformance import runtime_mode

    _, schemas, cases = _load(suite_dir, transcripts, "runtime", only, dags)

    def play(case: Case) -> CaseResult:
        return runtime_mode.run_case(case, schemas, list(command) or None, timeout=timeout)

    _finish(run_cases(cases, play, jobs, echo=_echo), report_dir)


@cli.command(
    "host",
    context_settings=_TAKES_COMMAND,
    epilog=_HOST_HELP,
    short_help="Test a host, with a scripted child in place of gust.",
)
@_run_options
@click.option(
    "--store",
    metavar="FILE",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The fixtures file for {store} (default: the suite's dags/store.json).",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def host_command(
    suite_dir: Path | None,
    transcripts: Path | None,
    only: tuple[str, ...],
    timeout: float,
    jobs: int,
    report_dir: Path | None,
    store: Path | None,
    command: tuple[str, ...],
) -> None:
    """Test a host: run `COMMAND` once per case, with a scripted child in place of gust."""
    from gust.conformance import host_mode

    suite, schemas, cases = _load(suite_dir, transcripts, "host", only)

    def play(case: Case) -> CaseResult:
        return host_mode.run_case(case, suite, schemas, list(command), timeout=timeout, store=store)

    _finish(run_cases(cases, play, jobs, echo=_echo), report_dir)


@cli.command("validate", short_help="Check every case file.")
@_suite_options
def validate_command(suite_dir: Path | None, transcripts: Path | None) -> None:
    """Check every case file against the schemas and the checks a schema cannot make."""
    _, _, cases = _load(suite_dir, transcripts, None, ())
    _echo(f"{len(cases)} cases valid")


def main(argv: list[str] | None = None, prog_name: str = PROG) -> None:
    """Run the command line (exits with the status described in the module docstring)."""
    cli.main(args=argv, prog_name=prog_name)
