"""A whole run of one DAG, as Gust runs it: stages in order, the tasks of a stage in parallel.

Strategy: parse the file with ``gust parse`` (:mod:`gust.harness.dagfile`), copy it to Gust's
temp name, then walk the stages. A task whose upstream task did not succeed is
``upstream_failed`` and never starts; every other task of the stage is handed to a thread pool
of ``max_parallel`` workers, each driving one :class:`~gust.harness.host.TaskProcess` with
``ctx = {"run_id": <run id>}``. A failed attempt (error or timeout) is retried after
``backoff * 2**(attempt - 1)`` seconds until ``retries`` attempts are spent (Gust makes 3).
Calls are answered by one :class:`~gust.harness.answers.CallAnswerer` shared by the run, so a
downstream task sees the saved result of its upstream task. When every task has ended, the DAG's
``on_finished_callback`` runs through ``gust run done --dag <file stem>`` with ``ok`` or
``error``, as Gust does. With ``task=...`` only that task runs, its upstream results coming from
the store, and no callback runs (it belongs to whole runs).

An observer (:class:`RunObserver`) hears about every step as it happens, from worker threads;
the human view is one. Interrupting a run (``KeyboardInterrupt``) kills every running process
group before the exception goes on.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gust import protocol
from gust.harness.answers import CallAnswerer, RunTasks
from gust.harness.dagfile import DagPlan, parse_dag_file, temp_copy
from gust.harness.errors import UsageError
from gust.harness.host import (
    DEFAULT_GRACE,
    TaskOutcome,
    TaskProcess,
    callback_argv,
    default_gust_cmd,
    task_argv,
)
from gust.harness.html import HtmlReportFile
from gust.harness.recording import TranscriptWriter, case_name
from gust.harness.report import CallbackReport, RunReport, TaskReport
from gust.harness.store import Store, load_store

__all__ = ["RunObserver", "run_dag", "run_plan"]


class RunObserver:
    """Hooks called while a run goes on; override the ones you need (each does nothing here).

    Calls come from the run's worker threads, several at once: implementations must lock.
    """

    def run_started(self, plan: DagPlan, run_id: int, stages: Sequence[Sequence[str]]) -> None:
        """The run is about to start its first stage."""

    def task_started(self, name: str, attempt: int) -> None:
        """An attempt of ``name`` is starting."""

    def task_log(self, name: str, entry: Mapping[str, Any]) -> None:
        """``name`` sent a log frame (``entry`` has ``t``, ``level``, ``msg``, ``attempt``)."""

    def task_stderr(self, name: str, line: str) -> None:
        """``name`` (or something it started) wrote a line to stderr."""

    def task_retrying(self, name: str, attempt: int, outcome: TaskOutcome, delay: float) -> None:
        """Attempt ``attempt`` of ``name`` failed; the next one starts after ``delay`` s."""

    def task_finished(self, report: TaskReport) -> None:
        """``name`` ended (any status, ``upstream_failed`` included)."""

    def callback_started(self, fn: str, status: str) -> None:
        """``gust run done`` is starting for ``fn`` with the run's ``status``."""

    def callback_log(self, fn: str, entry: Mapping[str, Any]) -> None:
        """The callback sent a log frame."""

    def callback_stderr(self, fn: str, line: str) -> None:
        """The callback wrote a line to stderr."""

    def callback_finished(self, report: CallbackReport) -> None:
        """The callback ended."""

    def run_finished(self, report: RunReport) -> None:
        """The run is over; ``report`` is final."""


class _Run:
    """The state of one run: shared answerer, running processes, cancellation."""

    def __init__(
        self,
        plan: DagPlan,
        store: Store,
        *,
        run_id: int,
        task: str | None,
        max_parallel: int,
        timeout: float | None,
        grace: float,
        retries: int,
        backoff: float,
        gust_cmd: list[str],
        max_frame_size: int,
        recorder: TranscriptWriter | None,
        observer: RunObserver,
        environ: Mapping[str, str] | None,
    ) -> None:
        self.plan = plan
        self.run_id = run_id
        self.task = task
        self.max_parallel = max_parallel
        self.timeout = timeout
        self.grace = grace
        self.retries = retries
        self.backoff = backoff
        self.gust_cmd = gust_cmd
        self.max_frame_size = max_frame_size
        self.recorder = recorder
        self.observer = observer
        self.run_tasks = RunTasks(first_id=store.max_task_id() + 1)
        self.answerer = CallAnswerer(store, run_id, self.run_tasks, environ)
        self.t0 = time.monotonic()
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._active: set[TaskProcess] = set()

    def cancel(self) -> None:
        """Stop: no new attempt starts, every running process group is killed."""
        self._cancelled.set()
        with self._lock:
            active = list(self._active)
        for proc in active:
            proc.cancel()

    def execute(self) -> RunReport:
        plan = self.plan
        stages = [(self.task,)] if self.task is not None else list(plan.stages)
        report = RunReport(
            dag=plan.name,
            mod=plan.mod,
            file=plan.file,
            run_id=self.run_id,
            stages=[list(s) for s in stages],
            graph={name: list(spec.downstream) for name, spec in plan.tasks.items()},
        )
        self.observer.run_started(plan, self.run_id, stages)
        with temp_copy(plan.file) as copy:
            pool = ThreadPoolExecutor(self.max_parallel, thread_name_prefix="gust-harness-task")
            try:
                for stage in stages:
                    report.tasks.update(self._stage(stage, copy, report, pool))
            except BaseException:
                self.cancel()
                raise
            finally:
                pool.shutdown(wait=True)
            ok = all(t.status == "ok" for t in report.tasks.values())
            report.status = "ok" if ok else "error"
            if plan.on_finished_callback is not None and self.task is None:
                report.callback = self._callback(plan.on_finished_callback, copy, report.status)
        report.duration_s = time.monotonic() - self.t0
        self.observer.run_finished(report)
        return report

    def _stage(
        self, stage: Sequence[str], copy: str, report: RunReport, pool: ThreadPoolExecutor
    ) -> dict[str, TaskReport]:
        done: dict[str, TaskReport] = {}
        futures = {}
        for name in stage:
            failed = [
                up
                for up in self.plan.upstream(name)
                if up in report.tasks and report.tasks[up].status != "ok"
            ]
            if failed and self.task is None:
                skipped = TaskReport(
                    name=name,
                    status="upstream_failed",
                    error={"message": "upstream task(s) did not succeed: " + ", ".join(failed)},
                )
                done[name] = skipped
                self.observer.task_finished(skipped)
            else:
                futures[name] = pool.submit(self._task, name, copy)
        for name, future in futures.items():
            done[name] = future.result()
        return {name: done[name] for name in stage}

    def _process(self, argv: list[str], *, record: bool, **hooks: Any) -> TaskOutcome:
        proc = TaskProcess(
            argv,
            cwd=self.plan.folder,
            timeout=self.timeout,
            grace=self.grace,
            max_frame_size=self.max_frame_size,
            record=record,
            t0=self.t0,
            **hooks,
        )
        with self._lock:
            if self._cancelled.is_set():
                proc.cancel()
            self._active.add(proc)
        try:
            return proc.run()
        finally:
            with self._lock:
                self._active.discard(proc)

    def _task(self, name: str, copy: str) -> TaskReport:
        plan, observer = self.plan, self.observer
        report = TaskReport(name=name, status="error")
        started = time.monotonic()
        argv = task_argv(self.gust_cmd, copy, plan.mod, name, {"run_id": self.run_id})
        for attempt in range(1, self.retries + 1):
            self.run_tasks.start(name)
            observer.task_started(name, attempt)

            def on_log(entry: dict[str, Any], attempt: int = attempt) -> None:
                entry["attempt"] = attempt
                observer.task_log(name, entry)

            start_s = time.monotonic() - self.t0
            outcome = self._process(
                argv,
                record=self.recorder is not None,
                answer=self.answerer,
                on_log=on_log,
                on_stderr=lambda line: observer.task_stderr(name, line),
            )
            end_s = time.monotonic() - self.t0
            if self.recorder is not None:
                case = case_name(plan.name, name, attempt)
                try:
                    self.recorder.write(case, plan.file, argv, outcome)
                except (OSError, ValueError) as exc:  # ValueError: the recorder's RecordError
                    outcome.warnings.append(f"--record: transcript {case} not written: {exc}")
            report.attempts = attempt
            report.spans.append(
                {
                    "attempt": attempt,
                    "start_s": round(start_s, 3),
                    "end_s": round(end_s, 3),
                    "status": outcome.status,
                    "exit_code": outcome.exit_code,
                }
            )
            report.stderr_tail = outcome.stderr_tail
            report.logs += outcome.logs
            prefix = f"attempt {attempt}: " if self.retries > 1 else ""
            report.warnings += [prefix + w for w in outcome.warnings]
            report.status, report.value, report.error = outcome.status, outcome.value, outcome.error
            report.exit_code = outcome.exit_code
            if outcome.ok or attempt == self.retries or self._cancelled.is_set():
                break
            delay = self.backoff * 2 ** (attempt - 1)
            observer.task_retrying(name, attempt, outcome, delay)
            if self._cancelled.wait(delay):
                break
        report.duration_s = time.monotonic() - started
        self.run_tasks.finish(
            name, report.value, ok=report.status == "ok", save=plan.tasks[name].save
        )
        observer.task_finished(report)
        return report

    def _callback(self, fn: str, copy: str, status: str) -> CallbackReport:
        observer = self.observer
        observer.callback_started(fn, status)
        argv = callback_argv(self.gust_cmd, copy, self.plan.name, fn, status, self.run_id)
        start_s = time.monotonic() - self.t0
        outcome = self._process(
            argv,
            record=False,
            answer=None,
            expect_result=False,
            on_log=lambda entry: observer.callback_log(fn, entry),
            on_stderr=lambda line: observer.callback_stderr(fn, line),
        )
        report = CallbackReport(
            fn=fn,
            run_status=status,
            status=outcome.status,
            duration_s=outcome.duration_s,
            exit_code=outcome.exit_code,
            error=outcome.error,
            logs=outcome.logs,
            warnings=outcome.warnings,
            start_s=start_s,
        )
        observer.callback_finished(report)
        return report


def _positive(name: str, value: float | None, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if not (value >= 0 if allow_zero else value > 0) or value != value or value == float("inf"):
        what = "zero or more" if allow_zero else "a positive number"
        raise UsageError(f"{name} must be {what}, not {value!r}")


def run_plan(
    plan: DagPlan,
    store: Store | None = None,
    *,
    run_id: int = 1,
    task: str | None = None,
    max_parallel: int | None = None,
    timeout: float | None = None,
    grace: float = DEFAULT_GRACE,
    retries: int = 1,
    backoff: float = 1.0,
    gust_cmd: Sequence[str] | None = None,
    max_frame_size: int = protocol.DEFAULT_MAX_FRAME_SIZE,
    record_dir: str | None = None,
    observer: RunObserver | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunReport:
    """Run an already parsed DAG; see :func:`run_dag` for the arguments.

    Raises:
        UsageError: an option is out of range, or ``task`` names no task of the DAG.
    """
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
        raise UsageError(f"retries must be a whole number of attempts, 1 or more, not {retries!r}")
    if max_parallel is not None and (
        isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1
    ):
        raise UsageError(f"max-parallel must be a whole number, 1 or more, not {max_parallel!r}")
    _positive("timeout", timeout)
    _positive("grace", grace, allow_zero=True)
    _positive("backoff", backoff, allow_zero=True)
    if task is not None and task not in plan.tasks:
        known = ", ".join(plan.tasks) or "none"
        raise UsageError(f"--task {task!r}: DAG {plan.mod} has no such task (its tasks: {known})")
    recorder = TranscriptWriter(record_dir) if record_dir is not None else None
    return _Run(
        plan,
        store if store is not None else Store(),
        run_id=run_id,
        task=task,
        max_parallel=max_parallel or os.cpu_count() or 1,
        timeout=timeout,
        grace=grace,
        retries=retries,
        backoff=backoff,
        gust_cmd=list(gust_cmd) if gust_cmd else default_gust_cmd(),
        max_frame_size=max_frame_size,
        recorder=recorder,
        observer=observer or RunObserver(),
        environ=environ,
    ).execute()


def run_dag(
    file: str,
    *,
    dag: str | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    gust_cmd: Sequence[str] | None = None,
    html: str | os.PathLike[str] | None = None,
    **options: Any,
) -> RunReport:
    """Parse ``file`` with ``gust parse`` and run one of its DAGs as Gust would.

    Args:
        file: the DAG file; its folder is the DAGs folder (every child's working directory).
        dag: the DAG class to run (default: the file's first, as Gust takes).
        store: a :class:`~gust.harness.store.Store`, a store file path, or ``None`` (empty).
        gust_cmd: how to start the runtime (default: this interpreter with ``-m gust``).
        html: write the report as one HTML page there (:mod:`gust.harness.html`); the path is
            checked before anything runs.
        options: ``run_id`` (1), ``task`` (run only that task), ``max_parallel`` (CPU count),
            ``timeout`` (seconds per attempt, none), ``grace`` (2 s from SIGTERM to SIGKILL),
            ``retries`` (attempts per task, 1), ``backoff`` (1 s, doubled per retry),
            ``max_frame_size`` (64 MiB), ``record_dir``, ``observer``, ``environ``.

    Returns:
        The :class:`~gust.harness.report.RunReport`; ``report.exit_code`` is 0 or 1.

    Raises:
        StoreError, DagFileError, UsageError: the run could not be set up (nothing ran).
    """
    the_store = store if isinstance(store, Store) else load_store(store)
    cmd = list(gust_cmd) if gust_cmd else default_gust_cmd()
    plan = parse_dag_file(file, cmd, dag=dag)
    if html is None:
        return run_plan(plan, the_store, gust_cmd=cmd, **options)
    with HtmlReportFile(html, option="html") as page:  # checked before anything runs
        report = run_plan(plan, the_store, gust_cmd=cmd, **options)
        page.write(report)
    return report
