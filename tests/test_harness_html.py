"""The HTML run report (``--html``): the report keys it needs, the page's self-containment and
escaping, the layout at 200 tasks, and the page itself in headless Chromium.

The browser tests share one Chromium for the module (``tests/_chromium.py`` drives it over the
DevTools pipe) and skip, saying why, where Chromium is missing. ``GUST_UPDATE_DOCS=1`` makes the
failing example's test refresh ``docs/report-failing.png``, the README's screenshot.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from _chromium import INSTALL_HINT, Browser, Page, find_chromium
from _host import HARNESS_DAGS, REPO, STORE, DagWriter, harness
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gust.harness import RunObserver, UsageError, parse_dag_file, run_dag
from gust.harness.host import default_gust_cmd
from gust.harness.html import (
    COL_GAP,
    MARGIN,
    MAX_COLS,
    MAX_ROWS,
    NODE_H,
    NODE_W,
    layout_graph,
    render_html,
)
from gust.harness.report import CallbackReport, RunReport, TaskReport
from gust.harness.run import RunControl
from gust.protocol import scrub_surrogates

DAGS = HARNESS_DAGS
#: The widest the graph may ever be, whatever the DAG.
MAX_WIDTH = 2 * MARGIN + MAX_COLS * NODE_W + (MAX_COLS - 1) * COL_GAP


# -- reading a page back ------------------------------------------------------------------------


class Parsed(HTMLParser):
    """A page read back: its element skeleton, its text, its scripts and styles."""

    KEPT = ("href", "id", "data-ref", "data-from", "data-to", "type")

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.skeleton: list[tuple[str, ...]] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.text: list[str] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self._open: tuple[str, dict[str, str | None]] | None = None
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        kept = tuple(f"{k}={v}" if k in self.KEPT else k for k, v in sorted(attrs))
        self.skeleton.append((tag, *kept))
        self.attrs += [(tag, k, v) for k, v in attrs]
        if tag in ("script", "style"):
            self._open = (tag, dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        self.skeleton.append(("/" + tag,))
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is None:
            self.text.append(data)
        elif self._open[0] == "script":
            self.scripts.append((self._open[1], data))
        else:
            self.styles.append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)

    def embedded_report(self) -> Any:
        [(_, data)] = [s for s in self.scripts if s[0].get("id") == "gust-report"]
        assert "<" not in data and ">" not in data and "&" not in data
        return json.loads(data)


class Started(RunObserver):
    def __init__(self) -> None:
        self.started: list[str] = []

    def task_started(self, name: str, attempt: int) -> None:
        self.started.append(name)


# -- what the report JSON gained for the page ------------------------------------------------------


def test_the_report_has_attempt_spans_stderr_tails_the_graph_and_callback_times(
    tmp_path: Path,
) -> None:
    page = tmp_path / "report.html"
    report = run_dag(str(DAGS / "failing.py"), store=str(STORE), html=page)
    data = json.loads(report.to_text())
    assert data["graph"] == {
        "extract": ["publish"],
        "publish": [],
        "audit": ["summarize"],
        "summarize": [],
    }
    tasks = data["tasks"]
    for name in ("extract", "audit", "summarize"):
        [span] = tasks[name]["spans"]
        assert list(span) == ["attempt", "start_s", "end_s", "status", "exit_code"]
        assert (span["attempt"], span["status"], span["exit_code"]) == (
            1,
            tasks[name]["status"],
            0,
        )
        assert 0 <= span["start_s"] <= span["end_s"] <= data["duration_s"]
        for entry in tasks[name]["logs"]:  # one time axis: logs fall inside their attempt
            assert span["start_s"] <= entry["t"] <= span["end_s"]
        assert tasks[name]["stderr_tail"] == ""
    assert tasks["publish"]["spans"] == []
    # summarize starts after audit (its upstream) ended: the stages are visible on the axis
    assert tasks["summarize"]["spans"][0]["start_s"] >= tasks["audit"]["spans"][0]["end_s"]
    callback = data["callback"]
    last_end = max(t["spans"][0]["end_s"] for t in tasks.values() if t["spans"])
    assert last_end <= callback["start_s"] <= callback["end_s"] <= data["duration_s"]
    assert page.read_text(encoding="utf-8") == render_html(report)


def test_every_attempt_has_a_span_and_the_page_shows_each(
    tmp_path: Path, write_dag: DagWriter
) -> None:
    dag = write_dag(
        "flaky.py",
        """\
        import os
        from gust import Dag, task

        class Flaky(Dag):
            @task
            def shaky(self, ctx):
                count = len(os.listdir("marks")) + 1
                open(f"marks/{count}", "w").close()
                os.write(2, f"stderr of attempt {count}\\n".encode())
                if count < 3:
                    raise RuntimeError(f"attempt {count} fails")
                return {"attempt": count}
        """,
    )
    (tmp_path / "marks").mkdir()
    report = run_dag(str(dag), retries=2, backoff=0.05, html=tmp_path / "flaky.html")
    shaky = report.to_json()["tasks"]["shaky"]
    assert [s["status"] for s in shaky["spans"]] == ["error", "error", "ok"]
    assert [s["attempt"] for s in shaky["spans"]] == [1, 2, 3]
    first, second, third = shaky["spans"]
    # The backoff is a gap on the axis (times are rounded to the millisecond).
    assert second["start_s"] >= first["end_s"] + 0.05 - 0.002
    assert third["start_s"] >= second["end_s"] + 0.1 - 0.002
    assert shaky["stderr_tail"] == "stderr of attempt 3"  # the last attempt's
    parsed = Parsed((tmp_path / "flaky.html").read_text(encoding="utf-8"))
    bars = [v for tag, k, v in parsed.attrs if tag == "a" and k == "data-attempt"]
    assert bars == ["1", "2", "3"]
    assert "stderr of attempt 3" in parsed.all_text
    assert "3 attempts" in parsed.all_text


def test_a_single_task_run_draws_the_rest_of_the_dag_as_not_run(tmp_path: Path) -> None:
    path = tmp_path / "one.html"
    report = run_dag(str(DAGS / "hello_world.py"), store=str(STORE), task="prepare", html=path)
    assert list(report.tasks) == ["prepare"]
    assert report.graph == {"hello": ["prepare"], "prepare": []}
    parsed = Parsed(path.read_text(encoding="utf-8"))
    nodes = [v for t, k, v in parsed.attrs if t == "a" and k in ("data-task", "data-status")]
    assert nodes[:4] == ["hello", "not_run", "prepare", "ok"]
    assert "○ not run in this run: hello" in parsed.all_text
    assert (
        "every task" not in parsed.all_text and "these tasks succeeded: prepare" in parsed.all_text
    )


def test_an_interrupted_run_still_writes_its_page(tmp_path: Path, write_dag: DagWriter) -> None:
    dag = write_dag(
        "long.py",
        """\
        import time
        from gust import Dag, log, task

        class Long(Dag):
            @task(downstream="after")
            def sleepy(self, ctx):
                log("going to sleep")
                time.sleep(30)

            @task
            def after(self, ctx):
                return 1
        """,
    )
    control = RunControl()

    class StopAtStart(RunObserver):
        def task_log(self, name: str, entry: Any) -> None:
            control.interrupt()

    path = tmp_path / "long.html"
    report = run_dag(str(dag), html=path, control=control, observer=StopAtStart(), grace=0.5)
    assert report.status == "interrupted"
    parsed = Parsed(path.read_text(encoding="utf-8"))
    assert "⊘ the run was interrupted" in parsed.all_text
    assert "⊘ interrupted: sleepy, after" in parsed.all_text
    # The task's own account of the interrupt, nested by the harness, is shown as an error too.
    assert "The task's own error" in parsed.all_text
    assert "gust.sandbox.TaskInterrupted: received SIGTERM (signal 15)" in parsed.all_text
    assert parsed.embedded_report() == json.loads(report.to_text())


# -- writing the file ------------------------------------------------------------------------------


def test_cli_html_writes_one_page_that_embeds_the_report(tmp_path: Path) -> None:
    page, report_file = tmp_path / "run.html", tmp_path / "run.json"
    proc = harness(
        "harness/dags/failing.py",
        "--store",
        "harness/store.json",
        "--html",
        str(page),
        "--report",
        str(report_file),
    )
    assert proc.returncode == 1, proc.stderr
    parsed = Parsed(page.read_text(encoding="utf-8"))
    assert parsed.embedded_report() == json.loads(report_file.read_text())
    assert "--html FILE" in harness("--help").stdout


def test_a_path_that_cannot_be_written_fails_before_anything_runs(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "run.html"
    proc = harness(
        "harness/dags/failing.py", "--store", "harness/store.json", "--html", str(missing)
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"Error: --html {missing}: cannot be written: ")
    assert "started" not in proc.stdout
    seen = Started()
    with pytest.raises(UsageError, match=f"html {re.escape(str(tmp_path))}: cannot be written"):
        run_dag(str(DAGS / "failing.py"), store=str(STORE), html=tmp_path, observer=seen)
    assert seen.started == []


def test_the_readme_quotes_the_real_message() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    [quoted] = [line for line in readme.splitlines() if line.startswith("Error: --html ")]
    proc = harness("harness/dags/failing.py", "--html", "/no/such/dir/run.html")
    assert (proc.returncode, proc.stderr) == (2, quoted + "\n")
    assert "![" in readme and "(docs/report-failing.png)" in readme
    assert (REPO / "docs" / "report-failing.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_that_does_not_end_keeps_an_existing_page_and_leaves_no_new_one(
    tmp_path: Path,
) -> None:
    old = tmp_path / "old.html"
    old.write_text("the previous page")
    new = tmp_path / "new.html"
    for path in (old, new):
        with pytest.raises(UsageError, match="ghost"):
            run_dag(str(DAGS / "failing.py"), html=path, task="ghost")
    assert old.read_text() == "the previous page"
    assert not new.exists()


# -- one self-contained, safe page -----------------------------------------------------------------


def sample_report(**text: str) -> RunReport:
    """A report of every status, with ``text`` put where tasks put text."""
    t = {
        "name": "bad",
        "msg": "hello",
        "level": "info",
        "value": "v",
        "details": "it broke",
        "warning": "w",
        "stderr": "e",
        "dag": "dag",
        "file": "/dags/dag.py",
        "fn": "done",
        **text,
    }
    bad = t["name"]
    return RunReport(
        dag=t["dag"],
        mod="Dag",
        file=t["file"],
        run_id=3,
        status="error",
        duration_s=2.5,
        graph={
            "first": [bad, "slow"],
            bad: ["after"],
            "slow": [],
            "after": [],
            "stopped": [],
            "idle": [],
        },
        tasks={
            "first": TaskReport(
                name="first",
                status="ok",
                attempts=1,
                duration_s=0.5,
                value={"text": t["value"], "n": [1, 2.5, None]},
                logs=[{"t": 0.1, "level": t["level"], "msg": t["msg"], "attempt": 1}],
                exit_code=0,
                spans=[
                    {"attempt": 1, "start_s": 0.0, "end_s": 0.5, "status": "ok", "exit_code": 0}
                ],
            ),
            bad: TaskReport(
                name=bad,
                status="error",
                attempts=2,
                duration_s=1.5,
                error={
                    "message": "Task execution failed",
                    "type": "ValueError",
                    "details": t["details"],
                    "traceback": "Traceback:\n  " + t["details"],
                    "exit_code": 0,
                    "where": {"file": t["file"], "line": 7, "function": t["name"]},
                },
                logs=[{"t": 0.6, "level": "error", "msg": t["msg"], "attempt": 2}],
                exit_code=0,
                warnings=[t["warning"]],
                spans=[
                    {"attempt": 1, "start_s": 0.5, "end_s": 0.9, "status": "error", "exit_code": 0},
                    {"attempt": 2, "start_s": 1.0, "end_s": 2.0, "status": "error", "exit_code": 0},
                ],
                stderr_tail=t["stderr"],
            ),
            "slow": TaskReport(
                name="slow",
                status="timeout",
                attempts=1,
                duration_s=1.0,
                error={"message": "timed out after 1 s", "stderr_tail": t["stderr"]},
                exit_code=-9,
                spans=[
                    {
                        "attempt": 1,
                        "start_s": 0.5,
                        "end_s": 1.5,
                        "status": "timeout",
                        "exit_code": -9,
                    }
                ],
            ),
            "after": TaskReport(
                name="after",
                status="upstream_failed",
                error={"message": f"upstream task(s) did not succeed: {bad}"},
            ),
            "stopped": TaskReport(
                name="stopped",
                status="interrupted",
                error={"message": "the run was interrupted before this task started"},
            ),
        },
        callback=CallbackReport(
            fn=t["fn"],
            run_status="error",
            status="error",
            duration_s=0.2,
            exit_code=1,
            error={"message": "exited with status 1", "stderr_tail": t["stderr"]},
            logs=[{"t": 2.3, "level": "info", "msg": t["msg"]}],
            start_s=2.3,
        ),
    )


def test_the_page_needs_nothing_outside_itself() -> None:
    page = render_html(sample_report())
    parsed = Parsed(page)
    tags = {s[0] for s in parsed.skeleton}
    assert not tags & {"link", "img", "iframe", "object", "embed", "image", "use", "base", "form"}
    for tag, key, value in parsed.attrs:
        if key in ("href", "src", "xlink:href", "action", "srcset"):
            assert value is not None and value.startswith("#"), (tag, key, value)
        assert not key.startswith("on"), (tag, key)
    css = "".join(parsed.styles)
    assert "@import" not in css and "url(" not in css
    assert [s[0].get("type") for s in parsed.scripts] == ["application/json", None]
    # The policy allows exactly this script and this style (by hash) and no fetch at all.
    [policy] = [v for t, k, v in parsed.attrs if k == "content" and v and "default-src" in v]
    assert "default-src 'none'" in policy
    for body in (parsed.scripts[1][1], parsed.styles[0]):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert page == render_html(sample_report())  # pure: the same report, the same page


def test_every_status_has_a_symbol_and_a_label() -> None:
    parsed = Parsed(render_html(sample_report()))
    statuses = {v for t, k, v in parsed.attrs if t == "a" and k == "data-status"}
    assert statuses == {"ok", "error", "timeout", "upstream_failed", "interrupted", "not_run"}
    text = parsed.all_text
    for symbol, label in [
        ("✓", "ok"),
        ("✗", "error"),
        ("◷", "timeout"),
        ("↷", "upstream failed"),
        ("⊘", "interrupted"),
        ("○", "not run"),
    ]:
        assert f"{symbol} {label}" in text  # in the legend and on the badges
    assert "idle: not run" in [v for t, k, v in parsed.attrs if k == "aria-label"]
    assert "⊘ interrupted: stopped" in text
    assert "in your code: /dags/dag.py:7, in bad" in text


HOSTILE = [
    "<script>window.__pwned = 1</script>",
    "</script><script>window.__pwned = 2</script>",
    "</SCRIPT ><script>window.__pwned = 3</script>",
    '"><img src=x onerror="window.__pwned = 4">',
    "'><svg onload=window.__pwned=5>",
    "<!-- <script>",
    "&lt;b&gt; & &amp; &#x3c;",
    "]]></text><script>x</script>",
    "line\u2028separator\u2029and\x00nul\r\n",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_lands_as_text_everywhere(text: str) -> None:
    fields = ("msg", "level", "value", "details", "warning", "stderr", "dag", "file", "fn", "name")
    report = sample_report(**dict.fromkeys(fields, text))
    parsed = Parsed(render_html(report))
    plain = Parsed(render_html(sample_report(**dict.fromkeys(fields, "x"))))
    assert parsed.skeleton == plain.skeleton
    assert text in parsed.all_text
    assert parsed.embedded_report() == json.loads(report.to_text())


#: Any text, with the characters that make markup drawn often.
MARKUP = st.one_of(st.sampled_from("<>&\"'/=!-[]`;\n"), st.characters())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.text(MARKUP, min_size=1, max_size=30),
    msg=st.text(MARKUP, max_size=60),
    level=st.text(MARKUP, max_size=12),
    value=st.text(MARKUP, max_size=40),
    details=st.text(MARKUP, max_size=40),
    other=st.text(MARKUP, min_size=1, max_size=40),
)
def test_any_text_leaves_the_page_structure_alone(
    name: str, msg: str, level: str, value: str, details: str, other: str
) -> None:
    assume(name not in ("first", "slow", "after", "idle"))
    report = sample_report(
        name=name,
        msg=msg,
        level=level,
        value=value,
        details=details,
        warning=other,
        stderr=other,
        dag=other,
        file=other,
        fn=other,
    )
    page = render_html(report)
    parsed = Parsed(page)
    plain = Parsed(render_html(sample_report()))
    assert parsed.skeleton == plain.skeleton
    for text in (name, msg, details, other):
        assert scrub_surrogates(text) in parsed.all_text  # a lone surrogate shows as U+FFFD
    assert parsed.embedded_report() == json.loads(report.to_text())
    page.encode("utf-8")  # always writable as UTF-8


def test_lone_surrogates_and_huge_texts_are_tamed() -> None:
    huge = "x" * 50_000
    report = sample_report(msg="\udc80 lone", value=huge)
    report.tasks["bad"].logs *= 3000
    page = render_html(report)
    page.encode("utf-8")
    parsed = Parsed(page)
    assert "\ufffd lone" in parsed.all_text
    shown = json.dumps(report.tasks["first"].value, indent=2, ensure_ascii=False)
    assert f"… {len(shown) - 20_000:,} more characters" in parsed.all_text
    assert "2,000 log lines not shown" in parsed.all_text
    assert parsed.embedded_report()["tasks"]["first"]["value"]["text"] == huge  # kept whole
    assert len(page) < 400_000 + 2 * len(report.to_text())


# -- layout ------------------------------------------------------------------------------------


def assert_sound_layout(graph: dict[str, list[str]]) -> None:
    lay = layout_graph(graph)
    assert set(lay.boxes) == set(graph)
    boxes = sorted(lay.boxes.values())
    for i, (x, y) in enumerate(boxes):  # no two boxes overlap (sorted by x: stop early)
        for x2, y2 in boxes[i + 1 :]:
            if x2 >= x + NODE_W:
                break
            assert y2 >= y + NODE_H or y >= y2 + NODE_H, ((x, y), (x2, y2))
    for x, y in boxes:
        assert MARGIN <= x <= lay.width - MARGIN - NODE_W
        assert MARGIN <= y <= lay.height - MARGIN - NODE_H
    assert lay.width <= MAX_WIDTH
    # Height: each band holds at most MAX_COLS columns of at most MAX_ROWS boxes.
    columns = sum(-(-len(stage) // MAX_ROWS) for stage in lay.stages)
    bands = -(-columns // MAX_COLS)
    assert lay.height <= bands * (MAX_ROWS * (NODE_H + 12) + 20 + 28) + 2 * MARGIN
    # Stages read in order: a downstream task is in a later column (across bands too).
    place = {n: (y // 1, x) for n, (x, y) in lay.boxes.items()}
    stage_of = {n: i for i, stage in enumerate(lay.stages) for n in stage}
    for name, downs in graph.items():
        for down in downs:
            assert stage_of[down] > stage_of[name]
    assert len(place) == len(graph)


def random_dag(rnd: random.Random, size: int) -> dict[str, list[str]]:
    names = [f"task_{i:03d}" for i in range(size)]
    return {
        n: sorted(
            {
                names[j]
                for j in rnd.sample(
                    range(i + 1, size), min(size - i - 1, rnd.choice([0, 1, 1, 2, 3]))
                )
            }
        )
        for i, n in enumerate(names)
    }


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), size=st.integers(0, 200))
def test_layout_of_any_dag_is_bounded_and_never_overlaps(seed: int, size: int) -> None:
    assert_sound_layout(random_dag(random.Random(seed), size))


def generated_dag_file(folder: Path, shape: str, size: int = 200) -> Path:
    rnd = random.Random(13)
    lines = ["from gust import Dag, task", "", "", f"class Gen{shape.title()}(Dag):"]
    for i in range(size):
        if shape == "chain":
            downs = [i + 1] if i + 1 < size else []
        elif shape == "fan":
            downs = list(range(1, size - 1)) if i == 0 else [size - 1] if i < size - 1 else []
        else:
            downs = (
                sorted({rnd.randrange(i + 1, size) for _ in range(rnd.choice([0, 1, 2, 3]))})
                if i + 1 < size
                else []
            )
        names = [f"step_{j:03d}" for j in downs]
        lines += [
            f"    @task(downstream={names!r})",
            f"    def step_{i:03d}(self, ctx):",
            f"        return {i}",
            "",
        ]
    path = folder / f"gen_{shape}.py"
    path.write_text("\n".join(lines))
    return path


@pytest.mark.parametrize("shape", ["chain", "fan", "random"])
def test_a_generated_200_task_dag_is_laid_out_bounded(tmp_path: Path, shape: str) -> None:
    plan = parse_dag_file(str(generated_dag_file(tmp_path, shape)), default_gust_cmd())
    graph = {name: list(spec.downstream) for name, spec in plan.tasks.items()}
    assert len(graph) == 200
    assert_sound_layout(graph)
    lay = layout_graph(graph)
    assert {n for s in lay.stages for n in s} == set(plan.tasks)
    assert len(lay.stages) == len(plan.stages)


# -- in Chromium ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    binary = find_chromium()
    if binary is None:
        pytest.skip(INSTALL_HINT)
    with Browser(binary, tmp_path_factory.mktemp("chromium")) as opened:
        yield opened


def open_page(browser: Browser, path: Path) -> Page:
    page = browser.new_page()
    page.goto(path.resolve().as_uri())
    return page


def shown(page: Page) -> str:
    return page.eval("document.querySelector('#details .detail.shown').dataset.task")


def nodes(page: Page) -> dict[str, str]:
    return page.eval(
        "Object.fromEntries([...document.querySelectorAll('#graph .node')]"
        ".map(n => [n.dataset.task, n.dataset.status]))"
    )


def edges(page: Page) -> set[tuple[str, str]]:
    pairs = page.eval(
        "[...document.querySelectorAll('#graph .edge')].map(e => ["
        'document.querySelector(`.node[data-ref="${e.dataset.from}"]`).dataset.task,'
        'document.querySelector(`.node[data-ref="${e.dataset.to}"]`).dataset.task])'
    )
    return {(a, b) for a, b in pairs}


@pytest.mark.timeout(120)
def test_the_failing_example_in_chromium(browser: Browser, tmp_path: Path) -> None:
    path = tmp_path / "failing.html"
    proc = harness("harness/dags/failing.py", "--store", "harness/store.json", "--html", str(path))
    assert proc.returncode == 1, proc.stderr
    page = open_page(browser, path)
    assert page.problems() == []
    assert page.requests() == [path.resolve().as_uri()]  # nothing fetched but the page itself
    # Every task is a node with its status, told by symbol and label as well as colour.
    assert nodes(page) == {
        "extract": "error",
        "publish": "upstream_failed",
        "audit": "ok",
        "summarize": "ok",
    }
    node_text = page.eval(
        "Object.fromEntries([...document.querySelectorAll('#graph .node')]"
        ".map(n => [n.dataset.task, [...n.querySelectorAll('text')].map(t => t.textContent)]))"
    )
    assert node_text["extract"][0] == "✗ extract"
    assert re.fullmatch(r"error · \d+\.\d\ds", node_text["extract"][1])
    assert node_text["publish"] == ["↷ publish", "upstream failed · skipped"]
    assert node_text["audit"][0] == "✓ audit"
    assert re.fullmatch(r"ok · \d+\.\d\ds", node_text["audit"][1])
    assert edges(page) == {("extract", "publish"), ("audit", "summarize")}
    # Opened on the failure: which task failed and why, what was skipped, what still ran.
    story = page.eval("document.getElementById('story').innerText")
    assert "extract failed (error): ValueError: the source table is empty" in story
    assert "skipped because of it: publish" in story
    assert "still ran and succeeded: audit, summarize" in story
    assert "callback report('error') ok" in story
    assert shown(page) == "extract"
    details = page.eval("document.getElementById('details').innerText")
    assert "Task execution failed" in details
    assert "ValueError: the source table is empty" in details
    assert 'raise ValueError("the source table is empty")' in details
    assert "connecting to ***" in details  # the secret stays masked
    assert page.eval("document.querySelectorAll('#graph .edge.lit').length") == 1
    # Clicking a node (real mouse events) shows that task.
    page.click('#graph .node[data-task="audit"]')
    assert shown(page) == "audit"
    details = page.eval("document.getElementById('details').innerText")
    assert "auditing yesterday's load" in details and "warning" in details
    assert '"rows_checked": 120' in details
    page.click('#graph .node[data-task="publish"]')
    assert "upstream task(s) did not succeed: extract" in page.eval(
        "document.getElementById('details').innerText"
    )
    page.click('#timeline .bar[data-task="summarize"]')
    assert shown(page) == "summarize"
    page.click('header a[data-ref="callback"]')
    assert shown(page) == "(callback)"
    assert "run 1 ended with status error" in page.eval(
        "document.getElementById('details').innerText"
    )
    page.click('#graph .node[data-task="extract"]')
    assert shown(page) == "extract"
    assert page.problems() == []
    page.eval("window.scrollTo(0, 0)")
    page.screenshot(tmp_path / "report-failing.png")
    page.screenshot(tmp_path / "report-failing-full.png", full_page=True)
    if os.environ.get("GUST_UPDATE_DOCS") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        page.screenshot(REPO / "docs" / "report-failing.png")
    page.close()


@pytest.mark.timeout(120)
def test_a_hostile_run_shows_its_text_and_runs_none_of_it(
    browser: Browser, tmp_path: Path, write_dag: DagWriter
) -> None:
    folder = tmp_path / '<img src=x onerror="window.__pwned=9">'
    folder.mkdir()
    dag = write_dag(
        "evil_<b>x&amp;.py",
        """\
        from gust import Dag, log, send_frame, task

        class Evil(Dag):
            def __init__(self):
                super().__init__(on_finished_callback="done")

            @task(downstream="after")
            def shout(self, ctx):
                # log() takes only the five levels; any string is legal on the wire
                send_frame({"type": "log", "msg": "<script>window.__pwned = 1</script>",
                            "level": "<img src=x onerror=window.__pwned=2>"})
                print("</script><script>window.__pwned = 3</script>")
                return {"html": "<b onmouseover=window.__pwned=4>hi</b>",
                        "js": "</script><!--<script>"}

            @task
            def after(self, ctx):
                raise RuntimeError("<svg onload=window.__pwned=5>")

            def done(self, status, run):
                log("<iframe srcdoc='<script>parent.__pwned=6</script>'>")
        """,
        folder,
    )
    path = tmp_path / "evil.html"
    report = run_dag(str(dag), html=path)
    page = open_page(browser, path)
    assert page.problems() == []  # an injected handler blocked by the policy would show here
    assert page.eval("window.__pwned") is None
    assert page.eval("document.scripts.length") == 2
    planted = "img, iframe, [onerror], [onload], [onmouseover], [srcdoc]"
    assert page.eval(f"document.querySelectorAll('{planted}').length") == 0
    assert page.requests() == [path.resolve().as_uri()]
    assert page.eval(
        "JSON.parse(document.getElementById('gust-report').textContent)"
    ) == json.loads(report.to_text())
    page.click('#graph .node[data-task="shout"]')
    text = page.eval("document.body.innerText")
    for expected in (
        "<script>window.__pwned = 1</script>",
        "<img src=x onerror=window.__pwned=2>",
        "</script><script>window.__pwned = 3</script>",
        "<b onmouseover=window.__pwned=4>hi</b>",
        "<svg onload=window.__pwned=5>",
        "evil_<b>x&amp;",
        str(folder),
    ):
        assert expected in text
    page.click('header a[data-ref="callback"]')
    assert "<iframe srcdoc='<script>parent.__pwned=6</script>'>" in page.eval(
        "document.getElementById('details').innerText"
    )
    assert page.eval("window.__pwned") is None
    page.close()


def big_report(graph: dict[str, list[str]]) -> RunReport:
    """A 200-task report with every status: failures, what they skipped, a retried timeout."""
    names = list(graph)
    failed = {names[5], names[40]}
    below: set[str] = set()
    todo = [d for f in failed for d in graph[f]]
    while todo:
        n = todo.pop()
        if n not in below:
            below.add(n)
            todo += graph[n]
    tasks: dict[str, TaskReport] = {}
    lay = layout_graph(graph)
    for s, stage in enumerate(lay.stages):
        for i, name in enumerate(stage):
            start = s * 0.5 + (i % 4) * 0.01
            if name in below:
                tasks[name] = TaskReport(
                    name=name, status="upstream_failed", error={"message": "upstream"}
                )
                continue
            status = "error" if name in failed else "timeout" if name == names[77] else "ok"
            attempts = 2 if status == "timeout" else 1
            spans = [
                {
                    "attempt": a,
                    "start_s": start + a * 0.2,
                    "end_s": start + a * 0.2 + 0.15,
                    "status": status if a == attempts else "error",
                    "exit_code": 0,
                }
                for a in range(1, attempts + 1)
            ]
            tasks[name] = TaskReport(
                name=name,
                status=status,
                attempts=attempts,
                duration_s=0.15 * attempts,
                value={"n": i},
                error=None if status == "ok" else {"message": f"{name} broke"},
                spans=spans,
            )
    run_tasks = {n: tasks[n] for n in names if n != names[199]}  # the last one: not run
    return RunReport(
        dag="gen",
        mod="Gen",
        file="/dags/gen.py",
        run_id=1,
        status="error",
        duration_s=len(lay.stages) * 0.5 + 1,
        tasks=run_tasks,
        graph=graph,
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize("shape", ["random", "fan"])
def test_200_tasks_in_chromium_stay_readable(browser: Browser, tmp_path: Path, shape: str) -> None:
    plan = parse_dag_file(str(generated_dag_file(tmp_path, shape)), default_gust_cmd())
    graph = {name: list(spec.downstream) for name, spec in plan.tasks.items()}
    report = big_report(graph)
    path = tmp_path / f"big_{shape}.html"
    path.write_text(render_html(report), encoding="utf-8")
    page = open_page(browser, path)
    assert page.problems() == []
    statuses = nodes(page)
    assert len(statuses) == 200
    assert statuses == {
        n: (report.tasks[n].status if n in report.tasks else "not_run") for n in graph
    }
    assert edges(page) == {(a, b) for a, downs in graph.items() for b in downs}
    width = page.eval("document.getElementById('graph').getBoundingClientRect().width")
    assert width <= MAX_WIDTH
    rects = page.eval(
        "[...document.querySelectorAll('#graph .node rect')].map(r => {"
        " const b = r.getBoundingClientRect(); return [b.left, b.top, b.width, b.height]; })"
    )
    assert len(rects) == 200
    rects.sort()
    for i, (x, y, w, h) in enumerate(rects):
        assert (w, h) == (NODE_W, NODE_H)  # full size: readable, never shrunk to fit
        for x2, y2, _, _ in rects[i + 1 :]:
            if x2 >= x + w:
                break
            assert y2 >= y + h or y >= y2 + h
    # Text never spills out of its box (it is clipped to it).
    spill = page.eval(
        "[...document.querySelectorAll('#graph .node')].filter(n => {"
        " const box = n.querySelector('rect').getBoundingClientRect();"
        " return [...n.querySelectorAll('text')].some(t => {"
        "  const r = t.getBoundingClientRect();"
        "  return r.top < box.top || r.bottom > box.bottom || r.left < box.left; }); }).length"
    )
    assert spill == 0
    assert page.eval("document.querySelectorAll('#timeline .row').length") == 200
    assert page.eval("document.querySelectorAll('#details .detail').length") == 200
    page.click(f'#graph .node[data-task="{list(graph)[150]}"]')
    assert shown(page) == list(graph)[150]
    page.screenshot(tmp_path / f"big_{shape}.png")
    page.close()
