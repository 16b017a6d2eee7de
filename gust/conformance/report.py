"""The verdict of one case: its checks, what crossed the wire, and how it is shown.

Theory of operation: both modes fill a :class:`CaseResult` with named checks in the order they
were made. A case passes when it has checks and all of them passed; its first failing check is
"the first difference" printed on the case's line. :meth:`CaseResult.to_json` is the per-case
JSON report (checks, a wire log of the bytes both ways in hex with timestamps, the child's
stderr and exit status), and :func:`summary_line` ends a run with ``N passed, M failed``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CaseResult", "Check", "WireChunk", "summary_line", "write_reports"]


@dataclass(frozen=True)
class Check:
    """One thing the runner verified."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class WireChunk:
    """Bytes seen on the wire: ``dir`` is ``c2h``/``h2c``; ``t`` seconds since the case began."""

    dir: str
    t: float
    data: bytes


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
    started: float = field(default_factory=time.monotonic)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        """Record a check; return ``ok`` so callers can stop at the first difference."""
        self.checks.append(Check(name, ok, detail))
        return ok

    def wire_chunk(self, direction: str, data: bytes) -> None:
        """Record bytes that crossed the wire now."""
        self.wire.append(WireChunk(direction, time.monotonic() - self.started, data))

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
            text += f": {self.first_difference}"
        return text

    def to_json(self) -> dict[str, Any]:
        """The per-case JSON report."""
        return {
            "case": self.case,
            "mode": self.mode,
            "verdict": "pass" if self.passed else "fail",
            "first_difference": self.first_difference,
            "command": self.command,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "wire": [{"dir": w.dir, "t": round(w.t, 6), "hex": w.data.hex()} for w in self.wire],
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
