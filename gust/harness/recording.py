"""``--record DIR``: each task's exchange written as a conformance transcript.

The harness collects the exchange (frames both ways in wire order, undecodable bytes as hex,
the close of the child's stdin, exit status and stderr; see :class:`~gust.harness.host.TaskProcess`)
and hands it to :func:`gust.conformance.record.transcript_from_exchange`, which owns the
transcript format and the case's final name (it adds ``y_`` for a well-formed exchange, ``n_``
for one holding a fault, and folds the name to ``[a-z0-9_]``). One file per task attempt:
``<DIR>/y_<dag stem>_<task>.json``, with ``_attempt<N>`` added for retries.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from gust.harness.errors import UsageError
from gust.harness.host import TaskOutcome

__all__ = ["TranscriptWriter", "case_name"]


def case_name(dag: str, task: str, attempt: int = 1) -> str:
    """The case name given to the recorder for one attempt of a task."""
    return f"{dag}_{task}" + (f"_attempt{attempt}" if attempt > 1 else "")


class TranscriptWriter:
    """Writes transcripts into ``directory`` (created if needed).

    Raises:
        UsageError: the conformance recorder is not available, or the directory cannot be made.
    """

    def __init__(self, directory: str) -> None:
        try:
            from gust.conformance.record import transcript_from_exchange, write_transcript
        except ImportError as exc:
            raise UsageError(
                f"--record needs gust.conformance.record, which cannot be imported: {exc}"
            ) from None
        self._make: Callable[..., dict[str, Any]] = transcript_from_exchange
        self._write: Callable[[dict[str, Any], str], os.PathLike[str]] = write_transcript
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--record {directory}: cannot create the directory: {exc}") from None
        self.directory = directory

    def write(self, case: str, dag_file: str, argv: Sequence[str], outcome: TaskOutcome) -> str:
        """Write one transcript (``dag_file`` is the original file, not the copy); its path.

        Raises:
            gust.conformance.record.RecordError: the exchange cannot be described as a case.
        """
        transcript = self._make(
            case,
            dag_file,
            list(argv),
            list(outcome.events or []),
            outcome.exit_code,
            outcome.stderr or "",
        )
        return os.fspath(self._write(transcript, self.directory))
