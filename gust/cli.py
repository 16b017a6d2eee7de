"""The ``gust`` command line: a thin click layer over the commands of :mod:`gust.commands`.

The commands' words, options and bodies are defined once, in :data:`gust.commands.COMMANDS`;
this module only turns that table into click commands, adds help and version, and calls the
same :func:`gust.commands.run_command` as the fast path of :mod:`gust._entry` (which hands every
argv it does not recognise to :func:`main` here, so help, version and usage errors always come
from click).
"""

from __future__ import annotations

from typing import Any

import click

from gust import __version__
from gust.commands import COMMANDS, Command, Param, run_command

__all__ = ["cli", "main"]


#: Commands of their own modules, imported only when named (``module:attribute``).
LAZY_COMMANDS = {
    "harness": ("gust.harness.cli:harness_command", "Run a DAG locally as Gust would (a dry run)."),
    "conformance": (
        "gust.conformance.cli:cli",
        "Check a runtime or a host against the conformance cases.",
    ),
}


class _Group(click.Group):
    """A group whose bigger commands (the harness) are imported only when they are used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        lazy = LAZY_COMMANDS.get(cmd_name)
        if lazy is None:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = lazy[0].partition(":")
        command = getattr(__import__(module, fromlist=[attribute]), attribute)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in LAZY_COMMANDS:
                rows.append((name, LAZY_COMMANDS[name][1]))
            else:
                command = super().get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(formatter.width)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gust")
def cli() -> None:
    """Python runtime for the Gust orchestrator: parse DAG files, run tasks and callbacks.

    Gust runs parse, task run and run done itself. To try a DAG on your machine the way Gust
    would run it, use the harness: gust harness DAG_FILE [--task TASK] (the same command as
    python -m gust.harness; see its --help).
    """


def _click_param(param: Param) -> click.Parameter:
    kind = click.INT if param.kind == "int" else click.STRING
    if param.positional:
        metavar = param.metavar if param.required else f"[{param.metavar}]"
        return click.Argument([param.dest], required=param.required, type=kind, metavar=metavar)
    return click.Option(
        [*param.flags, param.dest], required=param.required, type=kind, help=param.help
    )


def _click_command(command: Command) -> click.Command:
    def callback(**kwargs: Any) -> None:
        run_command(command.body, kwargs)

    positional = [p for p in command.params if p.positional]
    epilog = " ".join(f"{p.metavar}: {p.help}" for p in positional) or None
    return click.Command(
        command.words[-1],
        callback=callback,
        params=[_click_param(p) for p in command.params],
        help=command.help,
        epilog=epilog,
    )


def _build(group: click.Group) -> None:
    subgroups: dict[str, click.Group] = {}
    helps = {"task": "Run tasks.", "run": "Run-level commands."}
    for command in COMMANDS:
        parent = group
        for word in command.words[:-1]:
            if word not in subgroups:
                subgroups[word] = click.Group(word, help=helps.get(word))
                group.add_command(subgroups[word])
            parent = subgroups[word]
        parent.add_command(_click_command(command))


_build(cli)


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
