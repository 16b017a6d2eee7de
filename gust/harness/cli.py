"""``python -m gust.harness`` (also ``gust harness``): the command line of the local orchestrator.

A click command, like every command line of the project: it parses the options, sets the run up,
runs it with the human view or quietly, writes the report, and turns the outcome into an exit
status (:data:`EXIT_CODES`, the project's one table of :mod:`gust.commands`). Errors the user
can fix (a bad option, store or DAG file) print one ``Error: ...`` line and exit 2, as click's
usage errors do.

Signals: while the run goes on, SIGINT (Ctrl-C) and SIGTERM stop it gracefully (running tasks
get SIGTERM, then SIGKILL after ``--grace``; nothing new starts; the summary and the report are
still written, with ``interrupted`` statuses; exit 130); a second signal kills every task at
once. Before the run starts (while ``gust parse`` runs) a signal ends the harness at once, its
parse child included. Orphaned descendants of tasks are re-parented to the harness (Linux
``PR_SET_CHILD_SUBREAPER``), so nothing the harness started outlives it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any, Final, TextIO

import click

from gust import _process, protocol
from gust.commands import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from gust.harness.dagfile import parse_dag_file
from gust.harness.errors import HarnessError, UsageError
from gust.harness.host import DEFAULT_GRACE, default_gust_cmd, split_gust_cmd
from gust.harness.html import HtmlReportFile
from gust.harness.report import RunReport
from gust.harness.run import RunControl, run_plan
from gust.harness.store import load_store
from gust.harness.view import HumanView

__all__ = [
    "EXIT_CODES",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "harness_command",
    "main",
]

#: What each exit status of ``python -m gust.harness`` means.
EXIT_CODES: Final = {
    EXIT_OK: "the run and its callback succeeded",
    EXIT_FAILED: "a task or the callback failed",
    EXIT_USAGE: "usage, store or parse error (nothing ran)",
    EXIT_INTERRUPTED: "interrupted (SIGINT or SIGTERM)",
}


class Seconds(click.ParamType):
    """A number of seconds: finite, and positive (or zero when ``zero`` is allowed)."""

    name = "seconds"

    def __init__(self, *, zero: bool) -> None:
        self.zero = zero

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        try:
            seconds = float(value)
        except ValueError:
            self.fail(f"expected a number of seconds, got {value!r}", param, ctx)
        ok = (seconds >= 0 if self.zero else seconds > 0) and seconds != float("inf")
        if not ok:
            wanted = "zero or more seconds" if self.zero else "more than 0 seconds"
            self.fail(f"expected {wanted}, got {value!r}", param, ctx)
        return seconds


def _epilog() -> str:
    return "Exit status: " + ", ".join(f"{code} {what}" for code, what in EXIT_CODES.items()) + "."


@click.command(
    "harness",
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=_epilog(),
)
@click.argument("dag_file", metavar="DAG_FILE")
@click.option("--dag", metavar="NAME", help="The DAG class (default: the file's first).")
@click.option("--store", metavar="FILE", help="JSON store of secrets and earlier runs.")
@click.option("--run-id", metavar="ID", type=int, default=1, show_default=True, help="Run id.")
@click.option(
    "--task", metavar="NAME", help="Run only this task; upstream results come from the store."
)
@click.option(
    "--max-parallel",
    metavar="N",
    type=click.IntRange(min=1),
    default=None,
    help="Tasks of a stage run at once (default: 4 per CPU, within available memory).",
)
@click.option(
    "--timeout",
    type=Seconds(zero=False),
    default=None,
    help="Seconds per task attempt (default: none).",
)
@click.option(
    "--grace",
    type=Seconds(zero=True),
    default=DEFAULT_GRACE,
    show_default=True,
    help="Seconds from SIGTERM to SIGKILL on a timeout or an interrupt.",
)
@click.option(
    "--retries",
    metavar="N",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Retries of a failed task, with exponential backoff (Gust retries twice: 3 attempts).",
)
@click.option(
    "--backoff",
    type=Seconds(zero=True),
    default=1.0,
    show_default=True,
    help="Seconds before the first retry, doubled for each next one.",
)
@click.option(
    "--gust-cmd",
    metavar="CMD",
    help="How to start the runtime (default: this Python with -m gust; "
    "'uv run gust' is what Gust runs).",
)
@click.option(
    "--max-frame-size",
    metavar="BYTES",
    type=click.IntRange(min=1, max=protocol.MAX_FRAME_FORMAT),
    default=protocol.DEFAULT_MAX_FRAME_SIZE,
    help="Largest frame accepted from a task (default 64 MiB).",
)
@click.option("--report", metavar="FILE", help="Write the report JSON to FILE.")
@click.option(
    "--html", metavar="FILE", help="Write the report as one self-contained HTML page to FILE."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report JSON instead of the view.")
@click.option("--record", metavar="DIR", help="Write each task's exchange as a conformance case.")
@click.option("--no-color", is_flag=True, help="Plain output: no colour, no live line.")
@click.pass_context
def harness_command(ctx: click.Context, dag_file: str, **options: Any) -> None:
    """Run DAG_FILE locally exactly as Gust would: gust parse, then every task through gust
    task run (stage by stage, in parallel), then the callback."""
    ctx.exit(_run_command(dag_file, **options))


def _open_report(path: str | None) -> TextIO | None:
    if path is None:
        return None
    try:
        return open(path, "w", encoding="utf-8")  # opened early: a bad path fails before the run
    except OSError as exc:
        raise UsageError(f"--report {path}: cannot be written: {exc}") from None


@contextlib.contextmanager
def _signals_stop(control: RunControl) -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM stop the run (or end the harness before it)."""

    def handler(signum: int, frame: object) -> None:
        if not control.interrupt():
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _run_command(
    dag_file: str,
    *,
    dag: str | None,
    store: str | None,
    run_id: int,
    task: str | None,
    max_parallel: int | None,
    timeout: float | None,
    grace: float,
    retries: int,
    backoff: float,
    gust_cmd: str | None,
    max_frame_size: int,
    report: str | None,
    html: str | None,
    as_json: bool,
    record: str | None,
    no_color: bool,
) -> int:
    view = None
    if not as_json:
        view = HumanView(
            sys.stdout, color=False if no_color else None, live=False if no_color else None
        )
    control = RunControl()
    _process.become_subreaper()
    try:
        with _signals_stop(control):
            cmd = split_gust_cmd(gust_cmd) if gust_cmd else default_gust_cmd()
            the_store = load_store(store)
            plan = parse_dag_file(dag_file, cmd, dag=dag)
            report_file = _open_report(report)
            html_file: HtmlReportFile | None = None
            try:
                html_file = HtmlReportFile(html) if html is not None else None
                result = run_plan(
                    plan,
                    the_store,
                    run_id=run_id,
                    task=task,
                    max_parallel=max_parallel,
                    timeout=timeout,
                    grace=grace,
                    retries=retries,
                    backoff=backoff,
                    gust_cmd=cmd,
                    max_frame_size=max_frame_size,
                    record_dir=record,
                    observer=view,
                    environ=os.environ,
                    control=control,
                )
                if report_file is not None:
                    report_file.write(result.to_text() + "\n")
                if html_file is not None:
                    html_file.write(result)
            finally:
                if report_file is not None:
                    report_file.close()
                if html_file is not None:
                    html_file.discard()  # only when the page was not written: the run did not end
    except HarnessError as exc:
        click.echo(f"Error: {exc}", err=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        click.echo("\nError: interrupted before the run started; nothing ran", err=True)
        return EXIT_INTERRUPTED
    finally:
        left = _process.kill_descendants()
        if left:
            click.echo(
                f"Warning: killed {len(left)} process(es) the tasks left running: "
                + "; ".join(left[:5]),
                err=True,
            )
    _print_report(result, as_json, view)
    return result.exit_code


def _print_report(result: RunReport, as_json: bool, view: HumanView | None) -> None:
    if as_json:
        try:
            sys.stdout.write(result.to_text() + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
    elif view is not None and view.broken:
        _silence_stdout()


def _silence_stdout() -> None:
    # stdout's reader went away (``| head``): point it at /dev/null so the interpreter's final
    # flush does not fail too.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (click's usage errors included)."""
    try:
        code = harness_command.main(
            args=argv, prog_name="python -m gust.harness", standalone_mode=False
        )
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return EXIT_INTERRUPTED
    return code if isinstance(code, int) else EXIT_OK
