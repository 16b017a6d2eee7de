"""``--html FILE``: a run report as one self-contained HTML page, the DAG drawn and coloured.

Strategy: :func:`render_html` is a pure function from a :class:`~gust.harness.report.RunReport`
to the text of one page. Everything is drawn here, with no framework and nothing fetched: the
DAG as inline SVG laid out by stage (:func:`layout_graph`: stages left to right, a tall stage
split into columns, columns wrapped into bands so 200 tasks stay a bounded, readable picture),
a timeline of every attempt on the run's time axis, a details section per task (logs with level
and attempt, value, error and traceback, stderr tail, warnings), the callback, and a table of
every task. A few lines of inline script make a click on a task show its details; without
script every section stays visible and the links still jump to it.

Safety: every piece of text that came from a task, a DAG file or a path goes through
:func:`html.escape`, in element text, SVG text and attribute values alike; the report JSON
embedded for machines (``<script type="application/json" id="gust-report">``) has ``<``, ``>``
and ``&`` written as JSON escapes, so no value can end the block. A Content-Security-Policy
allows exactly the page's own script and style (by hash) and nothing else: no network, no other
script, even if a bug let markup through. The report already holds masked text (the runtime masks
secrets); nothing here un-masks anything. Long texts are cut for display (the embedded JSON keeps
them whole).
"""

from __future__ import annotations

import os
from typing import IO

from gust.harness.errors import UsageError
from gust.harness.html._layout import (
    COL_GAP,
    MARGIN,
    MAX_COLS,
    MAX_ROWS,
    NODE_H,
    NODE_W,
    GraphLayout,
    layout_graph,
)
from gust.harness.html._page import Page
from gust.harness.report import RunReport

__all__ = [
    "COL_GAP",
    "MARGIN",
    "MAX_COLS",
    "MAX_ROWS",
    "NODE_H",
    "NODE_W",
    "GraphLayout",
    "HtmlReportFile",
    "layout_graph",
    "render_html",
]


def render_html(report: RunReport) -> str:
    """The run report as the text of one self-contained HTML page.

    Pure: the same report always gives the same text; nothing is read or fetched. Every task of
    ``report.graph`` is drawn (a task the run did not run is ``not run``), plus any task of
    ``report.tasks`` the graph lacks.
    """
    return Page(report).render()


class HtmlReportFile:
    """Where ``--html`` writes the page: checked before the run, written once the run is over.

    The file is opened (created if missing) at once, so a path that cannot be written fails
    before any task runs; an existing file keeps its content until the new page is complete.
    As a context manager it discards itself on the way out unless :meth:`write` was called.

    Args:
        path: the file to write.
        option: how the user named it, for messages (``--html``, or ``html`` for run_dag).

    Raises:
        UsageError: ``path`` cannot be opened for writing.
    """

    def __init__(self, path: str | os.PathLike[str], *, option: str = "--html") -> None:
        self.path = os.fspath(path)
        self._created = not os.path.lexists(self.path)
        try:
            # Kept open from the check to the write, so no context manager: see discard().
            self._file: IO[str] | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"{option} {self.path}: cannot be written: {exc}") from None

    def write(self, report: RunReport) -> None:
        """Render ``report`` and replace the file's content with the page; closes the file."""
        page = render_html(report)
        handle = self._file
        if handle is None:
            raise ValueError(f"{self.path}: this HTML report file is already closed")
        self._file = None
        with handle:
            handle.truncate(0)
            handle.write(page)

    def discard(self) -> None:
        """Close without writing (the run did not finish); a file this object created goes."""
        handle, self._file = self._file, None
        if handle is None:
            return
        handle.close()
        if self._created:
            try:
                if os.path.getsize(self.path) == 0:
                    os.unlink(self.path)
            except OSError:
                return  # removed or replaced meanwhile: nothing of ours to clean up

    def __enter__(self) -> HtmlReportFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()
