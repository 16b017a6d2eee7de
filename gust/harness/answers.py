"""Answering a task's calls with Gust's reply shapes.

Gust answers two calls: ``get_secret_by_name`` from its secrets table and
``get_task_by_name_run`` from its tasks table. The harness answers them from the same places it
has: secrets from the :class:`~gust.harness.store.Store` (or ``GUST_SECRET_<NAME>``), tasks from
this run (:class:`RunTasks`: a started task's id with its saved result, or ``{}`` when it saves
nothing or has not succeeded) and then from the store's earlier runs.

Where Gust would misbehave the harness says so instead of copying the damage, and records a
warning in the task's report so the DAG author learns about it before production:

* a task Gust does not have makes Gust's worker crash; the harness answers ``task_not_found``;
* a call with an unknown ``op`` or without ``name``/``run_id`` gets no reply from Gust, so the
  task would wait for ever; the harness answers ``unknown_op`` or ``bad_call`` (a deliberate
  kindness: the runtime then raises a clear error instead of hanging).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gust import protocol
from gust.harness.store import ENV_SECRET_PREFIX, Store, parse_run_id
from gust.masking import SecretMasker

__all__ = ["Answer", "CallAnswerer", "RunTasks"]


@dataclass(frozen=True)
class Answer:
    """The reply to send, and a warning for the report when Gust would behave differently."""

    reply: dict[str, Any]
    warning: str | None = None


class RunTasks:
    """This run's tasks as Gust's tasks table would hold them; safe to use from many threads.

    Args:
        first_id: the id given to the first task that starts (later ones count up).
    """

    def __init__(self, first_id: int = 1) -> None:
        self._lock = threading.Lock()
        self._next_id = first_id
        self._records: dict[str, tuple[int, dict[str, Any]]] = {}
        #: Tasks that succeeded without ``save``: Gust keeps no result for them.
        self.unsaved: set[str] = set()

    def start(self, name: str) -> int:
        """Note that ``name`` started (a retry keeps its id); return its id."""
        with self._lock:
            return self._id_of(name)

    def finish(self, name: str, value: Any, *, ok: bool, save: bool) -> None:
        """Record how ``name`` ended; only a successful task with ``save`` keeps its value."""
        with self._lock:
            task_id = self._id_of(name)  # a task finished without starting gets its id now
            kept = value if ok and save and isinstance(value, dict) else {}
            self._records[name] = (task_id, kept)
            if ok and not save:
                self.unsaved.add(name)

    def _id_of(self, name: str) -> int:
        # The caller holds the lock.
        record = self._records.get(name)
        if record is None:
            record = (self._next_id, {})
            self._next_id += 1
            self._records[name] = record
        return record[0]

    def lookup(self, name: str) -> tuple[int, dict[str, Any]] | None:
        """The id and saved result of ``name`` if it has started in this run."""
        with self._lock:
            return self._records.get(name)


class CallAnswerer:
    """Turns a ``call`` frame into Gust's reply.

    Args:
        store: secrets and earlier runs.
        run_id: the id of the run being executed.
        run_tasks: this run's tasks.
        environ: where ``GUST_SECRET_<NAME>`` is looked up (default ``os.environ``).
    """

    def __init__(
        self,
        store: Store,
        run_id: int,
        run_tasks: RunTasks,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.run_tasks = run_tasks
        self.environ = environ
        #: Every secret this host knows, masked in whatever the harness keeps or shows.
        self.masker = SecretMasker()
        for secret in store.secrets.values():
            self._register(secret.value)
        env = os.environ if environ is None else environ
        for key, value in env.items():
            if key.startswith(ENV_SECRET_PREFIX):
                self._register(value)

    def _register(self, value: Any) -> None:
        self.masker.register(value)  # JSON data and JSON text: their leaves too

    def mask(self, text: str) -> str:
        """``text`` with every known secret value replaced by ``***``."""
        return self.masker.mask(text)

    def __call__(self, frame: Mapping[str, Any]) -> Answer:
        """Answer one ``call`` frame."""
        op = frame.get("op")
        if op == protocol.OP_GET_SECRET:
            if "name" not in frame:
                return self._bad_call(frame, 'it has no "name"')
            return self._secret(frame["name"])
        if op == protocol.OP_GET_TASK:
            missing = [key for key in ("name", "run_id") if key not in frame]
            if missing:
                return self._bad_call(
                    frame, "it has no " + " and no ".join(f'"{k}"' for k in missing)
                )
            return self._task(frame["name"], frame["run_id"])
        return Answer(
            protocol.reply_error(protocol.UNKNOWN_OP),
            f"call with unknown op {op!r}: Gust sends no reply and the task would wait for "
            "ever; the harness answered unknown_op",
        )

    def _bad_call(self, frame: Mapping[str, Any], why: str) -> Answer:
        return Answer(
            protocol.reply_error(protocol.BAD_CALL),
            f"call {frame.get('op')!r} is malformed ({why}): Gust sends no reply and the task "
            "would wait for ever; the harness answered bad_call",
        )

    def _secret(self, name: Any) -> Answer:
        secret = self.store.secret(name, self.environ) if isinstance(name, str) else None
        if secret is None:
            return Answer(protocol.reply_error(protocol.SECRET_NOT_FOUND))
        self._register(secret.value)
        return Answer(protocol.reply_ok(secret.reply_data()))

    def _task(self, name: Any, raw_run_id: Any) -> Answer:
        run_id = parse_run_id(raw_run_id)
        if isinstance(name, str) and run_id is not None:
            if run_id == self.run_id:
                record = self.run_tasks.lookup(name)
                if record is not None:
                    warning = None
                    if name in self.run_tasks.unsaved:
                        warning = (
                            f"get_task_by_name_run({name!r}, {raw_run_id!r}): task {name!r} has "
                            "save=False, so Gust keeps no result and answers {} (as the "
                            f"harness did); set @task(save=True) on {name!r} to pass its value"
                        )
                    reply = protocol.reply_ok({"id": record[0], "result": record[1]})
                    return Answer(reply, warning)
            stored = self.store.task(run_id, name)
            if stored is not None:
                return Answer(protocol.reply_ok({"id": stored.id, "result": stored.result}))
        return Answer(
            protocol.reply_error(protocol.TASK_NOT_FOUND),
            f"get_task_by_name_run({name!r}, {raw_run_id!r}) found no task: under Gust this "
            "crashes the worker and the task sees its stdin close; the harness answered "
            "task_not_found",
        )
