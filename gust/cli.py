"""The ``gust`` command line: a thin click layer over :mod:`gust.runtime` and :mod:`gust.parser`.

The machine-invoked commands keep their work in library functions a test can call directly;
this module only parses options, calls them and turns their result into an exit status.
"""

from __future__ import annotations

import os
import sys

import click

from gust import __version__

__all__ = ["cli", "main"]


def _exit_now(code: int) -> None:
    # Leave without waiting for threads the task left running: the final frame is written and
    # the host is waiting for our exit status. atexit handlers (logging's flush, temp files)
    # still run; only the wait on non-daemon threads is skipped.
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stderr, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass  # a closed stderr has nothing left to flush
    os._exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gust")
def cli() -> None:
    """Python runtime for the Gust orchestrator: parse DAG files, run tasks and callbacks."""


@cli.command("parse")
@click.option("--file", "file", required=True, help="The DAG file to read (never executed).")
def parse_command(file: str) -> None:
    """Print the DAG definitions of FILE as a JSON list (errors are reported in-band)."""
    from gust.parser import render_file

    sys.stdout.write(render_file(file))
    sys.stdout.flush()


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
    from gust.runtime import run_task

    _exit_now(run_task(file, dag, task, ctx_json))


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
    from gust.runtime import run_callback

    _exit_now(run_callback(file, dag, fn_name, status, run_id))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``gust`` console script and ``python -m gust``."""
    cli.main(args=argv, prog_name="gust")
