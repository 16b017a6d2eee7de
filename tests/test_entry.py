"""The fast path of the ``gust`` console script: it agrees with click on every argv it takes.

The property: for any argv, :func:`gust._entry.plan` either declines (the console script then
runs the click command line unchanged) or names exactly the command and the arguments that the
real click commands of :mod:`gust.cli` parse from the same argv. Argv comes from a grammar that
mixes the three commands' options in any order, ``--opt value`` and ``--opt=value``, repeats,
unknown and foreign options, missing values and options, values starting with ``-``, ``--``,
``--help``, stray positionals and the ``--fn_name`` alias. The process-level behaviour (frames,
exit status, stderr, no click import) is then compared through real subprocesses.
"""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import click
import pytest
from _host import DAGS, REPO
from hypothesis import HealthCheck, event, find, given, settings
from hypothesis import strategies as st

import gust.cli
from gust import _entry, commands
from gust.protocol import FrameDecoder

BASIC = DAGS / "basic.py"

# -- the click side: the real command objects with their callbacks recording the call ----------

_COMMANDS = {
    ("parse",): gust.cli.cli.commands["parse"],
    ("task", "run"): gust.cli.cli.commands["task"].commands["run"],  # type: ignore[attr-defined]
    ("run", "done"): gust.cli.cli.commands["run"].commands["done"],  # type: ignore[attr-defined]
}
_BODIES = {command.words: command.body for command in commands.COMMANDS}


def click_parse(argv: list[str]) -> tuple[Any, ...]:
    """What the click command line makes of ``argv``: the command called and its arguments,
    or the kind of exit it takes instead (usage error, help, version)."""
    saved = {words: cmd.callback for words, cmd in _COMMANDS.items()}
    for words, cmd in _COMMANDS.items():
        cmd.callback = lambda words=words, **kw: ("called", words, kw)
    try:
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            outcome = gust.cli.cli.main(args=list(argv), prog_name="gust", standalone_mode=False)
    except click.ClickException as exc:
        return ("usage-error", type(exc).__name__)
    except click.exceptions.Exit as exc:
        return ("exit", exc.exit_code)
    finally:
        for words, cmd in _COMMANDS.items():
            cmd.callback = saved[words]
    if isinstance(outcome, tuple) and outcome[:1] == ("called",):
        return outcome
    return ("returned", outcome)  # a group invoked without a command, for example


def fast_parse(argv: list[str]) -> tuple[Any, ...] | None:
    chosen = _entry.plan(argv)
    if chosen is None:
        return None
    body, kwargs = chosen
    words = next(w for w, b in _BODIES.items() if b is body)
    return ("called", words, kwargs)


# -- the argv grammar --------------------------------------------------------------------------

OPTIONS = ["--file", "--dag", "--task", "--ctx-json", "--fn-name", "--fn_name", "--status"]
OPTIONS += ["--run-id"]
STRANGE_OPTIONS = ["--bogus", "--fil", "--FILE", "-f", "--file-", "---file", "-h", "--help"]
STRANGE_OPTIONS += ["--version", "--ctx_json", "--run_id", "--fn-name=", "-"]
WORDS = [["parse"], ["task", "run"], ["run", "done"], ["task"], ["run"], ["task", "done"]]
WORDS += [["run", "run"], ["parse", "parse"], ["--help"], ["--version"], ["Parse"], []]

plain_values = st.sampled_from(["x.py", "/tmp/a b.py", "Basic", "first", '{"run_id": 1}', "ok"])
tricky_values = st.sampled_from(
    ["", "-", "--", "-x", "--help", "-h", "--file", "--file=y", "a=b", "=", "--version", " "]
)
any_values = st.one_of(plain_values, tricky_values, st.text(max_size=8))


@st.composite
def option_tokens(draw: st.DrawFn, names: st.SearchStrategy[str]) -> list[str]:
    name = draw(names)
    form = draw(st.sampled_from(["separate", "equals", "bare"]))
    if form == "bare":
        return [name]
    value = draw(any_values)
    return [f"{name}={value}"] if form == "equals" else [name, value]


REQUIRED = {
    ("parse",): {"--file": "file"},
    ("task", "run"): {"--file": "file", "--dag": "dag", "--task": "task"},
    ("run", "done"): {
        "--file": "file",
        "--dag": "dag",
        "--fn-name": "fn_name",
        "--status": "status",
        "--run-id": "run_id",
    },
}
#: Any value an option may take: click takes the token after an option whatever it looks like
#: (``--help``, ``-x``, ``--file`` itself), and so must the fast path.
non_empty_values = st.one_of(plain_values, tricky_values, st.text(min_size=1, max_size=10)).filter(
    bool
)
run_ids = st.integers(min_value=-(10**12), max_value=10**12)


@st.composite
def gust_argvs(draw: st.DrawFn) -> tuple[list[str], tuple[str, ...], dict[str, Any]]:
    """The argv shapes Gust itself sends (and `gust parse FILE`), in any order, either form,
    with any non-empty values: what the fast path promises to take."""
    words = draw(st.sampled_from(list(REQUIRED)))
    options = dict(REQUIRED[words])
    expected: dict[str, Any] = {}
    argv = list(words)
    if words == ("task", "run"):
        expected["ctx_json"] = None
        if draw(st.booleans()):
            options["--ctx-json"] = "ctx_json"
    if words == ("run", "done") and draw(st.booleans()):
        options["--fn_name"] = options.pop("--fn-name")
    if words == ("parse",):
        expected = {"file": None, "file_arg": None}
        if draw(st.booleans()):  # positional: a value that cannot pass for an option
            value = draw(non_empty_values.filter(lambda v: not v.startswith("-")))
            return [*argv, value], words, {**expected, "file_arg": value}
    names = draw(st.permutations(list(options)))
    for name in names:
        raw: Any = draw(run_ids) if options[name] == "run_id" else draw(non_empty_values)
        expected[options[name]] = raw
        value = str(raw)
        if draw(st.booleans()):
            argv.append(f"{name}={value}")
        else:
            argv += [name, value]
    return argv, words, expected


@st.composite
def random_argvs(draw: st.DrawFn) -> list[str]:
    argv = list(draw(st.sampled_from(WORDS)))
    for piece in draw(st.lists(pieces, max_size=8)):
        argv += piece
    return argv


pieces = st.one_of(
    option_tokens(st.sampled_from(OPTIONS)),
    option_tokens(st.sampled_from(STRANGE_OPTIONS)),
    any_values.map(lambda v: [v]),  # a stray positional (or "--")
)


@st.composite
def near_gust_argvs(draw: st.DrawFn) -> list[str]:
    """An argv Gust could send, then changed a little: a piece put in, a token dropped or
    repeated. Most of these the fast path must decline; some it still takes."""
    argv = list(draw(gust_argvs())[0])
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(1, len(argv)))
        change = draw(st.sampled_from(["insert", "drop", "repeat"]))
        if change == "insert":
            argv[at:at] = draw(pieces)
        elif change == "drop" and at < len(argv):
            del argv[at]
        elif at < len(argv):
            argv.insert(at, argv[at])
    return argv


def argvs() -> st.SearchStrategy[list[str]]:
    """Any argv of the grammar, and argv a step away from what Gust sends."""
    return st.one_of(random_argvs(), near_gust_argvs())


# -- properties --------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argvs())
def test_fast_path_declines_or_agrees_with_click(argv: list[str]) -> None:
    fast = fast_parse(argv)
    event("fast path takes it" if fast is not None else "left to click")
    if fast is not None:
        assert click_parse(argv) == fast, argv


def test_the_argv_grammar_gives_the_fast_path_argv_it_takes_and_argv_it_declines() -> None:
    # The property above checks agreement only where the fast path takes an argv: it must
    # see such argv (of each command), and argv that click runs while the fast path declines.
    for words in REQUIRED:
        find(argvs(), lambda argv, words=words: (fast_parse(argv) or ())[1:2] == (words,))
    find(
        argvs(),
        lambda argv: fast_parse(argv) is None and click_parse(argv)[0] == "called",
    )


@settings(max_examples=200, deadline=None)
@given(gust_argvs())
def test_fast_path_takes_every_argv_of_the_commands_own_options_as_click_does(
    case: tuple[list[str], tuple[str, ...], dict[str, Any]],
) -> None:
    argv, words, expected = case
    assert fast_parse(argv) == ("called", words, expected), argv
    assert click_parse(argv) == ("called", words, expected), argv


@pytest.mark.parametrize(
    "argv",
    [
        ["parse", "--file", "a.py", "--file", "b.py"],  # repeated: left to click
        ["run", "done", "--file=f", "--dag=d", "--fn-name=a", "--fn_name=b", "--status=ok"],
        ["task", "run", "--file", "f", "--dag", "d", "--task", "t", "extra"],
        ["task", "run", "--file", "f", "--dag", "d", "--task", "t", "--"],
        ["task", "run", "--file", "f", "--dag", "d", "--task", ""],
        ["task", "run", "--file", "f", "--dag", "d", "--task"],
        ["task", "run", "--file", "f", "--dag", "d"],
        ["parse", "--file", "x", "--help"],
        ["parse", "-h"],
        ["parse"],  # no file: click and the body say so
        ["parse", "a.py", "--file", "b.py"],  # both: the same
        ["parse", "a.py", "b.py"],
        ["run", "done", "--file=f", "--dag=d", "--fn-name=a", "--status=ok", "--run-id=x"],
        ["run", "done", "--file=f", "--dag=d", "--fn-name=a", "--status=ok", "--run-id=1.5"],
        ["--version"],
        [],
    ],
)
def test_declined_argv_goes_to_click_unchanged(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str] | None] = []
    monkeypatch.setattr(gust.cli, "main", seen.append)
    _entry.main(argv)
    assert seen == [argv]


def test_shell_completion_is_left_to_click(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str] | None] = []
    monkeypatch.setattr(gust.cli, "main", seen.append)
    monkeypatch.setenv(_entry.COMPLETE_VAR, "bash_complete")
    _entry.main(["parse", "--file", "x.py"])
    assert seen == [["parse", "--file", "x.py"]]


# -- exits: the fast path ends the process as click's standalone mode does --------------------


def _raiser(exc: BaseException) -> Any:
    def body(*args: Any, **kwargs: Any) -> None:
        raise exc

    return body


def _outcome(run: Any) -> tuple[Any, str, str]:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdout, sys.stderr
    try:
        with redirect_stdout(out), redirect_stderr(err):
            run()
    except SystemExit as exc:
        code: Any = exc.code
    except Exception as exc:  # noqa: BLE001 - compared between the two paths
        code = repr(exc)
    else:
        code = "returned"
    finally:
        sys.stdout, sys.stderr = saved
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "exc",
    [
        None,
        KeyboardInterrupt(),
        EOFError(),
        OSError(errno.EPIPE, "Broken pipe"),
        OSError(errno.EACCES, "Permission denied"),
        ValueError("boom"),
    ],
)
def test_exit_behaviour_matches_click(
    exc: BaseException | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = (lambda *a, **kw: 0) if exc is None else _raiser(exc)
    monkeypatch.setattr(commands.COMMANDS[0], "body", body)  # what click's `parse` calls
    via_click = _outcome(lambda: gust.cli.main(["parse", "--file", "x.py"]))
    via_fast = _outcome(lambda: _entry.invoke(body, {"file": "x.py", "file_arg": None}))
    assert via_fast == via_click
    if exc is None:
        assert via_fast[0] == 0


@pytest.mark.parametrize(
    ("exc", "code", "stderr"),
    [
        (None, 0, ""),
        (commands.UsageError("say what"), 2, "Error: say what\n"),
        (gust.HostGoneError("the host went"), 141, "gust: the host went; exiting\n"),
        (KeyboardInterrupt(), 1, "\nAborted!\n"),
        (OSError(errno.EPIPE, "Broken pipe"), 1, ""),
    ],
)
def test_run_command_is_the_one_table_of_exit_statuses(
    exc: BaseException | None, code: int, stderr: str
) -> None:
    body = (lambda: 0) if exc is None else _raiser(exc)
    assert _outcome(lambda: commands.run_command(body, {})) == (code, "", stderr)


def test_click_options_come_from_the_one_table() -> None:
    # Fails when someone adds an option to one side only.
    for command in commands.COMMANDS:
        click_command = _COMMANDS[command.words]
        params = [p for p in click_command.params if p.name != "help"]
        assert [p.name for p in params] == [p.dest for p in command.params]
        for param, click_param in zip(command.params, params, strict=True):
            assert click_param.required is param.required, param.dest
            assert list(click_param.opts) == [*param.flags] or (
                param.positional and click_param.opts == [param.dest]
            )
            kind = "int" if isinstance(click_param.type, click.types.IntParamType) else "text"
            assert kind == param.kind, param.dest
        assert click_command.callback is not None


# -- the real processes ------------------------------------------------------------------------

CLICK_ARGV = [sys.executable, "-c", "from gust.cli import main; main()"]


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, stdin=subprocess.DEVNULL, timeout=30)


def _frames(data: bytes) -> list[dict[str, Any]]:
    decoder = FrameDecoder()
    decoder.feed(data)
    frames = decoder.frames()
    decoder.eof()
    return [{k: v for k, v in f.items() if k != "pid"} for f in frames]


@pytest.mark.parametrize(
    "args",
    [
        [
            "task",
            "run",
            "--file",
            str(BASIC),
            "--dag",
            "Basic",
            "--task",
            "first",
            "--ctx-json",
            '{"run_id": 3}',
        ],
        ["task", "run", "--task=fails", f"--file={BASIC}", "--dag=Basic"],
        ["task", "run", "--file", str(BASIC), "--dag", "Nope", "--task", "first"],
    ],
)
def test_task_run_same_frames_and_status_as_click(args: list[str], tmp_path: Path) -> None:
    fast = _run([sys.executable, "-m", "gust", *args], tmp_path)
    slow = _run([*CLICK_ARGV, *args], tmp_path)
    assert fast.returncode == slow.returncode == 0, (fast.stderr, slow.stderr)
    fast_frames, slow_frames = _frames(fast.stdout), _frames(slow.stdout)
    for frames in (fast_frames, slow_frames):  # tracebacks name the entry point: drop them
        for frame in frames:
            frame.pop("trace", None)
            if isinstance(frame.get("error"), dict):
                frame["error"].pop("traceback", None)
    assert fast_frames == slow_frames
    assert fast_frames[-1]["type"] == "result"


@pytest.mark.parametrize(
    ("fn", "flag", "status"), [("finished", "--fn-name", 0), ("finished_badly", "--fn_name", 1)]
)
def test_run_done_same_exit_and_stderr_as_click(
    fn: str, flag: str, status: int, tmp_path: Path
) -> None:
    args = ["run", "done", "--file", str(BASIC), "--dag", "Basic", flag, fn]
    args += ["--status", "ok", "--run-id", "9"]  # an integer, as Gust sends it
    fast = _run([sys.executable, "-m", "gust", *args], tmp_path)
    slow = _run([*CLICK_ARGV, *args], tmp_path)
    assert fast.returncode == slow.returncode == status
    assert fast.stderr == slow.stderr
    assert _frames(fast.stdout) == _frames(slow.stdout)


def _imported(importtime_report: bytes) -> set[str]:
    lines = importtime_report.decode().splitlines()
    return {line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import time:")}


def test_fast_path_does_not_import_click(tmp_path: Path) -> None:
    runs = {
        "task run": ["task", "run", "--file", str(BASIC), "--dag", "Basic", "--task", "first"],
        "run done": [
            *("run", "done", "--file", str(BASIC), "--dag", "Basic"),
            *("--fn-name", "finished", "--status", "ok", "--run-id", "1"),
        ],
        "parse": ["parse", "--file", str(BASIC)],
    }
    for name, args in runs.items():
        out = _run([sys.executable, "-X", "importtime", "-m", "gust", *args], tmp_path)
        imported = _imported(out.stderr)
        assert "gust._entry" in imported, name
        assert not {m for m in imported if m == "click" or m.startswith("click.")}, name
    # ...while anything else reaches click, with click's own messages.
    out = _run([sys.executable, "-X", "importtime", "-m", "gust", "--version"], tmp_path)
    assert "click" in _imported(out.stderr) and b"0.2.0" in out.stdout


def test_console_script_uses_the_fast_path() -> None:
    script = Path(sys.executable).parent / ("gust.exe" if os.name == "nt" else "gust")
    if not script.exists():
        pytest.skip("no console script beside this interpreter")
    assert "from gust._entry import main" in script.read_text(errors="replace")
    args = ["task", "run", "--file", str(BASIC), "--dag", "Basic", "--task", "first"]
    out = _run([str(script), *args], REPO)
    assert out.returncode == 0, out.stderr
    assert [f["type"] for f in _frames(out.stdout)] == ["start", "log", "result"]
