"""Test a DAG's tasks in the test's own process, answered exactly as the harness answers them.

Outside ``gust task run`` the two runtime calls raise :class:`~gust.errors.NotInTaskError`:
nothing answers them. :func:`fake_host` puts a host in the test's process instead, for the
length of a ``with`` block::

    from gust.testing import fake_host

    def test_prepare_reads_hello():
        with fake_host(secrets={"API_TOKEN": "hunter2"}, runs={1: {"hello": {"n": 1}}}) as host:
            value = host.run(MyDag, "prepare")  # ctx = {"run_id": 1}
        assert value == {"upstream": {"n": 1}}
        assert [r.msg for r in host.logs] == ["token found: True"]

Theory of operation: the block activates a real :class:`gust.calls.Session` (the one ``gust task
run`` uses) over a channel whose other end is in memory: every frame the task writes is encoded
and decoded by :mod:`gust.protocol` as on the wire, each ``call`` is answered by the harness's own
:class:`~gust.harness.answers.CallAnswerer` from a :class:`~gust.harness.store.Store` and this
run's :class:`~gust.harness.answers.RunTasks`, and each ``log`` is recorded. So replies, errors
(``None`` for a missing secret or task), JSON-secret rules and the masking of secrets in log lines
are the runtime's and the harness's own, not copies. The session is process-wide, so threads the
task starts see the same host; it is removed when the block ends, whatever happened in it.

What a direct call cannot show is what downstream tasks will see: a task returning a
``Decimal`` or a ``date`` hands downstream its JSON form. :meth:`FakeHost.run` runs a task
method as ``gust task run`` does (ctx through JSON, ``async def`` run to completion) and returns
its value as Gust stores it, with the runtime's refusals (:class:`ResultError`) and warnings (a
``warning`` log); :func:`stored_value` does the conversion alone.

Prints and the ``logging`` module are left to the test runner (pytest's ``capsys`` and
``caplog``): under ``gust task run`` they become log lines too.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from gust import protocol
from gust._channel import Channel
from gust.calls import Session, activate, active_session
from gust.dag import TASK_ATTR, TaskOptions
from gust.errors import GustError, HostGoneError
from gust.harness.answers import CallAnswerer, RunTasks
from gust.harness.report import RunReport
from gust.harness.store import (
    Store,
    StoredTask,
    load_store,
    parse_run_id,
    store_from_data,
)
from gust.invoke import call_task, find_callable
from gust.values import UnsupportedValueError, to_json_value

__all__ = [
    "Call",
    "FakeHost",
    "LogRecord",
    "ResultError",
    "assert_run_ok",
    "build_store",
    "fake_host",
    "stored_value",
]


@dataclass(frozen=True)
class LogRecord:
    """One log line the task sent, as the host received it (secrets already masked)."""

    level: str
    msg: str


@dataclass(frozen=True)
class Call:
    """One call the task made and the reply it got.

    Attributes:
        op: ``get_secret_by_name`` or ``get_task_by_name_run`` (or whatever the frame said).
        name: the secret's or task's name, as asked.
        run_id: the run asked about (``None`` for a secret).
        reply: the reply frame, ``{"type": "reply", "ok": ..., "data" | "error": ...}``.
        warning: where Gust would behave differently (a missing task crashes its worker).
    """

    op: Any
    name: Any
    run_id: Any
    reply: dict[str, Any]
    warning: str | None = None


class ResultError(GustError):
    """A task's value cannot be stored: ``gust task run`` fails the task with this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def stored_value(
    value: Any,
    *,
    save: bool = False,
    task: str = "task",
    warn: Callable[[str], None] | None = None,
) -> Any:
    """Return ``value`` as Gust stores it and as downstream tasks and reports see it.

    The conversion of ``gust task run``: ``Decimal("1.0834")`` becomes ``"1.0834"``, a ``date``
    its ISO 8601 text, tuples and sets lists, and so on (see :mod:`gust.values`); then the value
    goes through the wire encoding (a lone surrogate becomes U+FFFD).

    Args:
        save: the task's ``save`` option: the value must then be a dict.
        task: the task's name, for the ``save`` message.
        warn: called with each warning the runtime would log (a NaN sent as ``null``); by
            default a :class:`RuntimeWarning` is issued.

    Raises:
        ResultError: the runtime would fail the task instead, with this message.
    """
    if warn is None:

        def warn(message: str) -> None:
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    try:
        data = to_json_value(value, warn=warn)
    except UnsupportedValueError as exc:
        raise ResultError(f"Task result cannot be sent as JSON: {exc}") from exc
    if save and not isinstance(data, dict):
        raise ResultError(
            f"Task '{task}' has save=True, so it must return a dict (a JSON object), "
            f"but it returned {type(value).__name__}"
        )
    try:
        frame = protocol.encode_frame(protocol.result_success(data))
    except protocol.LocalProtocolError as exc:
        raise ResultError(f"Task result cannot be sent: {exc}") from exc
    return protocol.decode_payload(frame[protocol.HEADER_SIZE :])["data"]["value"]


class _HostChannel(Channel):
    """The task's end of an in-memory channel; the host end answers as frames arrive."""

    def __init__(self, host: FakeHost) -> None:
        super().__init__()
        self._host = host
        self._replies: deque[bytes] = deque()

    def _write_all(self, data: bytes) -> None:
        # Called under the channel's write lock: one frame at a time, whole.
        size = len(data) - protocol.HEADER_SIZE
        if size > self._host.max_frame_size:
            # The harness stops reading and kills the task on such a frame (``oversize``).
            raise HostGoneError(
                f"fake_host: a frame of {size} bytes is over the host's limit of "
                f"{self._host.max_frame_size} bytes; the harness ends the task here (oversize)"
            )
        reply = self._host._receive(protocol.decode_payload(data[protocol.HEADER_SIZE :]))
        if reply is not None:
            self._replies.append(protocol.encode_frame(reply))

    def _read_some(self, timeout: float | None) -> bytes | None:
        try:
            return self._replies.popleft()
        except IndexError:
            # A reply is queued before the call that asked for it reads: nothing is coming.
            raise HostGoneError(
                "fake_host: nothing to read, no call is waiting for a reply"
            ) from None


class FakeHost:
    """The host of a :func:`fake_host` block: what the task sent, and what it will be answered.

    Attributes:
        run_id: the run the block plays (``ctx["run_id"]`` of :meth:`run`).
        max_frame_size: the largest frame accepted from the task.
        store: secrets and earlier runs (:meth:`add_secret` and :meth:`add_result` add to it).
        logs: every log line, in order.
        calls: every call, in order, with its reply.
        warnings: where Gust would behave differently than this host did (as the harness
            reports them).
        session: the runtime session the block activates (its ``masker`` holds the secrets
            the task has asked for).
    """

    def __init__(
        self,
        store: Store,
        run_id: int,
        environ: Mapping[str, str],
        max_frame_size: int = protocol.DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        self.run_id = run_id
        self.max_frame_size = max_frame_size
        self.store = store
        self.logs: list[LogRecord] = []
        self.calls: list[Call] = []
        self.warnings: list[str] = []
        self._run_tasks = RunTasks(first_id=store.max_task_id() + 1)
        self._answerer = CallAnswerer(store, run_id, self._run_tasks, environ)
        self._lock = threading.Lock()
        self.session = Session(_HostChannel(self))

    # -- what the task sent --

    def _receive(self, frame: dict[str, Any]) -> dict[str, Any] | None:
        kind = frame.get("type")
        if kind == "log":
            with self._lock:
                self.logs.append(LogRecord(str(frame.get("level")), str(frame.get("msg"))))
            return None
        if kind == "call":
            answer = self._answerer(frame)
            call = Call(
                frame.get("op"),
                frame.get("name"),
                frame.get("run_id"),
                answer.reply,
                answer.warning,
            )
            with self._lock:
                self.calls.append(call)
                if answer.warning:
                    self.warnings.append(answer.warning)
            return answer.reply
        with self._lock:
            self.warnings.append(
                f"frame of unknown type {kind!r} ignored (Gust logs it as unknown)"
            )
        return None

    # -- what it will be answered --

    def add_secret(
        self,
        name: str,
        value: Any,
        *,
        value_type: str | None = None,
        id: int | str | None = None,
    ) -> None:
        """Add (or replace) a secret, checked as a store file's secret is.

        Args:
            value_type: ``"string"`` or ``"json"``; by default ``"string"`` for a ``str`` and
                ``"json"`` for anything else.
            id: the id in the reply (default: the next number, as in a store file).
        """
        entry: dict[str, Any] = {
            "value": value,
            "value_type": value_type or ("string" if isinstance(value, str) else "json"),
            "id": len(self.store.secrets) + 1 if id is None else id,
        }
        checked = store_from_data({"secrets": {name: entry}}, f"fake_host secret {name!r}")
        self.store.secrets[name] = checked.secrets[name]

    def add_result(
        self, task: str, result: Any, *, run_id: int | None = None, save: bool = True
    ) -> Any:
        """Record that ``task`` succeeded with ``result`` in ``run_id`` (default: this run).

        ``get_task_by_name_run(task, run_id)`` then answers as Gust would: the result as Gust
        stores it when ``save`` is true, ``{}`` otherwise.

        Returns:
            The result as stored.

        Raises:
            ResultError: the runtime would refuse ``result`` (with ``save``, it must be a dict).
            ValueError: ``run_id`` is not a run id.
        """
        rid = self.run_id if run_id is None else parse_run_id(run_id)
        if rid is None:
            raise ValueError(f"add_result: {run_id!r} is not a run id (an integer)")
        data = stored_value(result, save=save, task=task)
        if rid == self.run_id:
            self._run_tasks.start(task)
            self._run_tasks.finish(task, data, ok=True, save=save)
        else:
            task_id = self.store.max_task_id() + 1
            self.store.runs.setdefault(rid, {})[task] = StoredTask(
                task_id, data if save and isinstance(data, dict) else {}
            )
        return data

    # -- running a task --

    def run(
        self, target: Any, task: str | None = None, *, ctx: Mapping[str, Any] | None = None
    ) -> Any:
        """Run a task as ``gust task run`` would, in this process; return its value as stored.

        Args:
            target: a bound task method (``MyDag().extract``), or a DAG class or instance with
                ``task`` naming the method (a class is instantiated as the runtime does).
            ctx: extra context (for example ``{"params": {...}}``); ``run_id`` defaults to this
                run's. It goes through JSON first, as ``--ctx-json`` does.

        Returns:
            The value as Gust stores it (see :func:`stored_value`). Later calls of
            ``get_task_by_name_run`` for this task see it, as a downstream task would.

        Raises:
            ResultError: the value cannot be stored; the runtime's message.
            Exception: whatever the task raised, unchanged.
        """
        fn, options, name = self._resolve(target, task)
        context = json.loads(protocol.dumps_strict({"run_id": self.run_id, **(ctx or {})}))
        self._run_tasks.start(name)
        ok, data = False, None
        try:
            value = call_task(fn, context)
            data = stored_value(
                value,
                save=options.save,
                task=name,
                warn=lambda message: self.session.log(message, "warning"),
            )
            ok = True
        finally:
            self._run_tasks.finish(name, data, ok=ok, save=options.save)
        return data

    def _resolve(
        self, target: Any, task: str | None
    ) -> tuple[Callable[..., Any], TaskOptions, str]:
        if task is None:
            if not callable(target):
                raise TypeError(
                    f"run() takes a task method, or a DAG and a task name, not {target!r}"
                )
            name = getattr(target, "__name__", None)
            if not isinstance(name, str):
                raise TypeError(f"run(): {target!r} has no name; pass the DAG and the task name")
            options = getattr(target, TASK_ATTR, None)
            return target, options if isinstance(options, TaskOptions) else TaskOptions(), name
        dag = target() if isinstance(target, type) else target
        dag_name = type(dag).__name__
        fn, options = find_callable(dag, dag_name, task)
        return fn, options, task


def build_store(
    store: Store | str | os.PathLike[str] | None,
    secrets: Mapping[str, Any] | None,
    runs: Mapping[Any, Any] | None,
) -> Store:
    """One store from a store file (or report), a :class:`~gust.harness.store.Store`, and
    ``secrets``/``runs`` in the store file's format added on top (their tasks numbered after
    the file's).

    Raises:
        StoreError: any part is out of shape (the harness's message).
    """
    if isinstance(store, Store):
        base = Store(
            secrets=dict(store.secrets),
            runs={rid: dict(tasks) for rid, tasks in store.runs.items()},
            source=store.source,
        )
    else:
        base = load_store(store)
    if not secrets and not runs:
        return base
    extra = store_from_data(
        {"secrets": dict(secrets or {}), "runs": dict(runs or {})}, "fake_host(secrets=, runs=)"
    )
    offset = base.max_task_id()
    for rid, tasks in extra.runs.items():
        kept = base.runs.setdefault(rid, {})
        for name, stored in tasks.items():
            kept[name] = StoredTask(stored.id + offset, stored.result)
    base.secrets.update(extra.secrets)
    return base


@contextlib.contextmanager
def fake_host(
    *,
    secrets: Mapping[str, Any] | None = None,
    runs: Mapping[Any, Any] | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    run_id: int = 1,
    environ: Mapping[str, str] | None = None,
    max_frame_size: int = protocol.DEFAULT_MAX_FRAME_SIZE,
) -> Iterator[FakeHost]:
    """Answer ``log``, ``get_secret_by_name`` and ``get_task_by_name_run`` in this process.

    Args:
        secrets: ``{"NAME": "value" | {"value": ..., "value_type": "string"|"json", "id": ...}}``,
            as in a harness store file.
        runs: ``{run_id: {"task": {saved result}}}``, as in a harness store file.
        store: a store file (or a harness report, see :mod:`gust.harness.store`) or a
            :class:`~gust.harness.store.Store`; ``secrets`` and ``runs`` are added to it.
        run_id: the run being played.
        environ: where ``GUST_SECRET_<NAME>`` is looked up for secrets the store lacks; by
            default nowhere, so a developer's shell cannot change a test's outcome (pass
            ``os.environ`` to do what the harness does).
        max_frame_size: the largest frame accepted from the task, as the harness's
            ``--max-frame-size`` (64 MiB): a larger one raises
            :class:`~gust.errors.HostGoneError` where the harness would end the task.

    Yields:
        The :class:`FakeHost`: what the task sent (``logs``, ``calls``) and what it will be
        answered (``add_secret``, ``add_result``).

    Raises:
        StoreError: the store, ``secrets`` or ``runs`` are out of shape (the harness's message).
    """
    rid = parse_run_id(run_id)
    if rid is None:
        raise ValueError(f"fake_host: run_id {run_id!r} is not a run id (an integer)")
    host = FakeHost(
        build_store(store, secrets, runs),
        rid,
        {} if environ is None else environ,
        max_frame_size,
    )
    previous = active_session()
    activate(host.session)
    try:
        yield host
    finally:
        activate(previous)


def _describe_failure(what: str, status: str, error: Mapping[str, Any] | None) -> list[str]:
    lines = [f"{what}: {status}"]
    if error:
        message = error.get("message", "")
        details = error.get("details")
        lines.append(f"  {message}" + (f": {error.get('type')}: {details}" if details else ""))
        for key in ("traceback", "stderr_tail"):
            text = error.get(key)
            if isinstance(text, str) and text.strip():
                lines += ["  " + line for line in text.rstrip().splitlines()[-_TAIL_LINES:]]
    return lines


_TAIL_LINES = 15


def assert_run_ok(report: RunReport) -> None:
    """Raise :class:`AssertionError` saying why, unless the run and its callback succeeded.

    The message names every task that did not succeed with its error, the end of its
    traceback or stderr, and the harness's warnings, so a failing test shows the cause.
    """
    if report.exit_code == 0:
        return
    lines = [f"run {report.run_id} of {report.dag} ({report.mod}) ended {report.status}"]
    for name, task in report.tasks.items():
        if task.status != "ok":
            lines += _describe_failure(f"task {name!r}", task.status, task.error)
        lines += [f"  warning: {w}" for w in task.warnings]
    callback = report.callback
    if callback is not None and callback.status != "ok":
        lines += _describe_failure(f"callback {callback.fn!r}", callback.status, callback.error)
    raise AssertionError("\n".join(lines))
