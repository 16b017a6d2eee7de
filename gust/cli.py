"""The ``gust`` command line: a thin click layer over :mod:`gust.runtime` and :mod:`gust.parser`.

The machine-invoked commands keep their work in library functions a test can call directly;
this module only declares the interface, parses options and calls the command bodies it shares
with the fast path of :mod:`gust._entry` (which hands every argv it does not recognise to
:func:`main` here, so help, version and usage errors always come from click).
"""

from __future__ import annotations

import click

from gust import __version__
from gust._entry import parse_command as _parse
from gust._entry import run_done_command as _run_done
from gust._entry import task_run_command as _task_run

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gust")
def cli() -> None:
    """Python runtime for the Gust orchestrator: parse DAG files, run tasks and callbacks."""


@cli.command("parse")
@click.option("--file", "file", required=True, help="The DAG file to read (never executed).")
def parse_command(file: str) -> None:
    """Print the DAG definitions of FILE as a JSON list (errors are reported in-band)."""
    _parse(file)


@cli.group("task")
def task_group() -> None:
    """Run tasks."""


@task_group.command("run")
@click.option("--file", "file", required=True, help="The DAG file (Gust passes a temp copy).")
@click.option("--dag", "dag", required=True, help="The DAG class (the parse output's `mod`).")
@click.option("--task", "task", required=True, help="The task method to run.")
@click.option("--ctx-json", "ctx_json", default=None, help='The task context, e.g. {"run_id": 1}.')
def task_run_command(file: str, dag: str, task: str, ctx_json: str | None) -> None:
    """Run one task, speaking length-prefixed JSON frames on stdin/stdout."""
    _task_run(file, dag, task, ctx_json)


@cli.group("run")
def run_group() -> None:
    """Run-level commands."""


@run_group.command("done")
@click.option("--file", "file", required=True, help="The DAG file (Gust passes a temp copy).")
@click.option("--dag", "dag", required=True, help="The DAG class, or the original file's stem.")
@click.option("--fn-name", "--fn_name", "fn_name", required=True, help="The callback method.")
@click.option("--status", "status", required=True, help="ok, error, upstream_failed, skipped.")
@click.option("--run-id", "run_id", required=True, help="The run's id.")
def run_done_command(file: str, dag: str, fn_name: str, status: str, run_id: str) -> None:
    """Call the DAG's on_finished_callback as FN(status, {"run_id": RUN_ID})."""
    _run_done(file, dag, fn_name, status, run_id)


@cli.command("check")
@click.argument("paths", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report instead of lines.")
@click.option("--no-import", is_flag=True, help="The static parse only: import nothing.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    help="Seconds each file may take to import (default 60).",
)
def check_command(paths: tuple[str, ...], as_json: bool, no_import: bool, timeout: float) -> None:
    """Report every problem of the DAG files in PATHS (default: .) as file:line: message."""
    from gust.check import main as check

    raise SystemExit(check(paths, as_json=as_json, load=not no_import, timeout=timeout))


def main(argv: list[str] | None = None) -> None:
    """Run the click command line (the console script reaches it through :mod:`gust._entry`)."""
    cli.main(args=argv, prog_name="gust")
