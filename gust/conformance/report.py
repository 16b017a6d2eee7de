"""The verdict of one case: its checks, what crossed the wire, and how it is shown.

Theory of operation: both modes fill a :class:`CaseResult` with named checks in the order they
were made. A case passes when it has checks and all of them passed; its first failing check is
"the first difference" printed on the case's line. The wire log holds one entry per frame in
each direction (or per run of bytes that are no frame), stamped with the time the frame was
complete, in seconds since the case began (:mod:`.wire` cuts byte streams into frames).
:meth:`CaseResult.to_json` is the per-case JSON report, and :func:`summary_line` ends a run
with ``N passed, M failed``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gust.conformance.wire import FrameSplitter, decode_one_frame, describe_frames

__all__ = [
    "CaseResult",
    "Check",
    "WireChunk",
    "describe_wire",
    "summary_line",
    "write_reports",
]


@dataclass(frozen=True)
class Check:
    """One thing the runner verified."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class WireChunk:
    """One frame (or run of bytes that is no frame) seen on the wire.

    ``dir`` is ``c2h``/``h2c``; ``t`` is seconds since the case began, when the bytes were
    complete; ``frame`` is what they decode to, ``error`` the protocol error code when they do
    not (``truncated`` for bytes the stream ended inside, ``oversize`` for a header over the
    limit and what followed it).
    """

    dir: str
    t: float
    data: bytes
    frame: dict[str, Any] | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dir": self.dir, "t": round(self.t, 6), "hex": self.data.hex()}
        if self.frame is not None:
            out["frame"] = self.frame
        if self.error is not None:
            out["error"] = self.error
        return out


def describe_wire(wire: list[WireChunk], limit: int = 6) -> str:
    """The last ``limit`` wire entries in one line: ``c2h start {...}, h2c reply {...}``."""
    entries = sorted(wire, key=lambda w: w.t)
    shown = [(w.dir, w.frame, len(w.data), w.error) for w in entries[-limit:]]
    more = f"{len(entries) - limit} earlier frames, then " if len(entries) > limit else ""
    return more + describe_frames(shown)


@dataclass
class CaseResult:
    """Everything known about one case after it ran."""

    case: str
    mode: str
    command: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    wire: list[WireChunk] = field(default_factory=list)
    stderr: str = ""
    exit: int | None = None
    duration: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: Said after the first difference on the case's line (host mode: a host that crashed).
    context: str = ""
    started: float = field(default_factory=time.monotonic)
    #: The wall-clock time the case began: the origin of every ``t`` (children stamp wall time).
    started_wall: float = field(default_factory=time.time)
    _splitters: dict[str, FrameSplitter] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        """Record a check; return ``ok`` so callers can stop at the first difference."""
        with self._lock:
            self.checks.append(Check(name, ok, detail))
        return ok

    def wire_entry(
        self,
        direction: str,
        data: bytes,
        at: float | None = None,
        *,
        error: str | None = None,
    ) -> None:
        """Record one frame (or bytes that are no frame) seen at wall time ``at`` (now)."""
        t = (time.time() if at is None else at) - self.started_wall
        frame = None
        if error is None:
            frame, error = decode_one_frame(data)
            if frame is None and error is None:
                error = "raw"
        with self._lock:
            self.wire.append(WireChunk(direction, t, data, frame, error))

    def wire_stream(self, direction: str, chunk: bytes, at: float | None = None) -> None:
        """Record a chunk of a byte stream: an entry for each frame it completes."""
        splitter = self._splitters.setdefault(direction, FrameSplitter())
        for data in splitter.feed(chunk):
            self.wire_entry(direction, data, at)

    def wire_stream_end(self, direction: str, at: float | None = None) -> None:
        """The stream ended: record what no whole frame holds."""
        splitter = self._splitters.get(direction)
        rest = splitter.rest() if splitter is not None else None
        if rest is not None:
            self.wire_entry(direction, rest[0], at, error=rest[1])

    @property
    def passed(self) -> bool:
        """True when at least one check ran and every check passed."""
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def first_difference(self) -> str | None:
        """``"<check>: <detail>"`` of the first failing check, or ``None``."""
        for c in self.checks:
            if not c.ok:
                return f"{c.name}: {c.detail}" if c.detail else c.name
        if not self.checks:
            return "no checks ran"
        return None

    def line(self) -> str:
        """The one-line verdict printed for the case."""
        verdict = "PASS" if self.passed else "FAIL"
        text = f"{verdict} {self.case} ({self.duration:.2f} s)"
        if not self.passed:
            text += f": {self.first_difference}{self.context}"
        return text

    def to_json(self) -> dict[str, Any]:
        """The per-case JSON report."""
        wire = sorted(self.wire, key=lambda w: w.t)
        return {
            "case": self.case,
            "mode": self.mode,
            "verdict": "pass" if self.passed else "fail",
            "first_difference": self.first_difference,
            "command": self.command,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "wire": [w.to_json() for w in wire],
            "stderr": self.stderr,
            "exit": self.exit,
            "duration_s": round(self.duration, 4),
            "notes": self.notes,
        }


def write_reports(results: list[CaseResult], folder: str | Path) -> None:
    """Write ``FOLDER/<case>.json`` for each result."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for result in results:
        text = json.dumps(result.to_json(), indent=2, ensure_ascii=True)
        (out / f"{result.case}.json").write_text(text + "\n", encoding="utf-8")


def summary_line(results: list[CaseResult]) -> str:
    """``N passed, M failed``."""
    passed = sum(1 for r in results if r.passed)
    return f"{passed} passed, {len(results) - passed} failed"
