"""A whole run of one DAG, as Gust runs it: stages in order, the tasks of a stage in parallel.

Strategy: parse the file with ``gust parse`` (:mod:`gust.harness.dagfile`), copy it to Gust's
temp name, then walk the stages. A task whose upstream task did not succeed is
``upstream_failed`` and never starts; every other task of the stage is handed to a thread pool
of ``max_parallel`` workers, each driving one :class:`~gust.harness.host.TaskProcess` with
``ctx = {"run_id": <run id>}``. A failed attempt (error or timeout) is retried ``retries``
times, the n-th retry after ``backoff * 2**(n - 1)`` seconds (Gust makes 3 attempts: 2 retries).
Calls are answered by one :class:`~gust.harness.answers.CallAnswerer` shared by the run, so a
downstream task sees the saved result of its upstream task. When every task has ended, the DAG's
``on_finished_callback`` runs through ``gust run done --dag <file stem>`` with ``ok`` or
``error``, as Gust does. With ``task=...`` only that task runs, its upstream results coming from
the store, and no callback runs (it belongs to whole runs).

An observer (:class:`RunObserver`) hears about every step as it happens, from worker threads;
the human view is one. A :class:`RunControl` stops a run from a signal handler or another
thread: the first :meth:`RunControl.interrupt` ends the running tasks as a timeout does
(SIGTERM, then SIGKILL after ``grace``: their ``finally`` blocks run), starts nothing more and
skips the callback, and the run returns its report with status ``interrupted``; a second one
kills every process group at once. Without a control, a ``KeyboardInterrupt`` kills every
running process group before the exception goes on.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

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
from gust.harness.report import CallbackReport, RunReport, TaskReport, author_location
from gust.harness.store import ENV_SECRET_PREFIX, Store, load_store

__all__ = ["RunControl", "RunObserver", "default_max_parallel", "run_dag", "run_plan"]


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

    def run_interrupted(self, hard: bool, grace: float) -> None:
        """The run was asked to stop: ``hard`` kills at once, else tasks get ``grace`` s."""

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


class RunControl:
    """Stops a run from a signal handler or another thread: first gracefully, then at once."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # reentrant: a signal handler may run inside a hold
        self._run: _Run | None = None
        #: How many times :meth:`interrupt` was called while a run was attached.
        self.requests = 0

    def attach(self, run: _Run | None) -> None:
        with self._lock:
            self._run = run

    def interrupt(self) -> bool:
        """Stop the attached run: tasks get SIGTERM (then SIGKILL after grace) the first time,
        SIGKILL at once after that.

        Returns:
            ``False`` when no run is attached (the caller should stop some other way).
        """
        with self._lock:
            run = self._run
            if run is None:
                return False
            self.requests += 1
            hard = self.requests > 1
        if hard:
            run.cancel()
        else:
            run.stop()
        run.observer.run_interrupted(hard, run.grace)
        return True


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
        # Children see no GUST_SECRET_* variable: as under Gust, secrets arrive only as replies.
        self.child_env = {
            k: v for k, v in os.environ.items() if not k.startswith(ENV_SECRET_PREFIX)
        }
        self.child_env["UV_WORKING_DIR"] = plan.folder
        self._copy: str | None = None
        self.t0 = time.monotonic()
        self._stopping = threading.Event()
        self._cancelled = threading.Event()
        self._lock = threading.RLock()  # reentrant: RunControl may call in from a signal handler
        self._active: set[TaskProcess] = set()

    def show(self, text: str) -> str:
        """``text`` as the harness may keep or show it: secrets masked, the temp copy's path
        replaced by the author's file."""
        if self._copy is not None and self._copy in text:
            text = text.replace(self._copy, self.plan.file)
        return self.answerer.mask(text)

    def stop(self) -> None:
        """Stop gracefully: nothing new starts; running tasks end as on a timeout."""
        self._stopping.set()
        with self._lock:
            active = list(self._active)
        for proc in active:
            proc.stop()

    def cancel(self) -> None:
        """Stop now: no new attempt starts, every running process group is killed."""
        self._stopping.set()
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
            self._copy = copy
            pool = ThreadPoolExecutor(self.max_parallel, thread_name_prefix="gust-harness-task")
            try:
                for stage in stages:
                    report.tasks.update(self._stage(stage, copy, report, pool))
            except BaseException:
                self.cancel()
                raise
            finally:
                pool.shutdown(wait=True)
            statuses = {t.status for t in report.tasks.values()}
            if self._stopping.is_set():
                report.status = "interrupted"
            elif statuses <= {"ok"}:
                report.status = "ok"
            else:
                report.status = "error"
            if (
                plan.on_finished_callback is not None
                and self.task is None
                and report.status != "interrupted"
            ):
                report.callback = self._callback(plan.on_finished_callback, copy, report.status)
                if report.callback.status != "ok" and report.status == "ok":
                    report.status = "callback_failed"
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
            if self._stopping.is_set():
                done[name] = self._not_started(name)
            elif failed and self.task is None:
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

    def _not_started(self, name: str) -> TaskReport:
        report = TaskReport(
            name=name,
            status="interrupted",
            error={"message": "the run was interrupted before this task started"},
        )
        self.observer.task_finished(report)
        return report

    def _process(self, argv: list[str], *, record: bool, **hooks: Any) -> TaskOutcome:
        proc = TaskProcess(
            argv,
            cwd=self.plan.folder,
            timeout=self.timeout,
            grace=self.grace,
            max_frame_size=self.max_frame_size,
            record=record,
            t0=self.t0,
            env=self.child_env,
            mask=self.show,
            **hooks,
        )
        with self._lock:
            if self._cancelled.is_set():
                proc.cancel()
            elif self._stopping.is_set():
                proc.stop()
            self._active.add(proc)
        try:
            return proc.run()
        finally:
            with self._lock:
                self._active.discard(proc)

    def _task(self, name: str, copy: str) -> TaskReport:
        plan, observer = self.plan, self.observer
        if self._stopping.is_set():
            return self._not_started(name)
        report = TaskReport(name=name, status="error")
        started = time.monotonic()
        argv = task_argv(self.gust_cmd, copy, plan.mod, name, {"run_id": self.run_id})
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
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
            where = author_location(outcome.error, plan.folder)
            if outcome.error is not None and where is not None:
                outcome.error["where"] = where
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
            prefix = f"attempt {attempt}: " if attempts > 1 else ""
            report.warnings += [prefix + w for w in outcome.warnings]
            report.status, report.value, report.error = outcome.status, outcome.value, outcome.error
            report.exit_code = outcome.exit_code
            if outcome.ok or attempt == attempts or self._stopping.is_set():
                break
            delay = self.backoff * 2 ** (attempt - 1)
            report.retry_delays.append(delay)
            observer.task_retrying(name, attempt, outcome, delay)
            if self._stopping.wait(delay):
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


#: Default tasks per CPU: a trivial task's child waits on start-up I/O part of its life, so a
#: core needs more than one child to stay busy (see the README's performance section).
TASKS_PER_CPU: Final = 4
#: Memory set aside per running child when choosing the default (a trivial one uses ~25 MiB).
MEMORY_PER_TASK: Final = 64 << 20
#: Never more than this many at once by default.
MAX_DEFAULT_PARALLEL: Final = 64


def default_max_parallel(cpus: int | None = None, available: int | None = None) -> int:
    """How many tasks of a stage run at once when ``--max-parallel`` is not given.

    :data:`TASKS_PER_CPU` per CPU, no more than fit in the available memory at
    :data:`MEMORY_PER_TASK` each, at most :data:`MAX_DEFAULT_PARALLEL`, and at least 1.

    Args:
        cpus: the CPUs this process may use (default: its affinity, else ``os.cpu_count()``).
        available: bytes of memory available (default: ``MemAvailable`` of ``/proc/meminfo``;
            unknown means no memory bound).
    """
    if cpus is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
    wanted = min(max(cpus, 1) * TASKS_PER_CPU, MAX_DEFAULT_PARALLEL)
    if available is None:
        available = _mem_available()
    if available is not None:
        wanted = min(wanted, available // MEMORY_PER_TASK)
    return max(1, wanted)


def _mem_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


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
    retries: int = 0,
    backoff: float = 1.0,
    gust_cmd: Sequence[str] | None = None,
    max_frame_size: int = protocol.DEFAULT_MAX_FRAME_SIZE,
    record_dir: str | None = None,
    observer: RunObserver | None = None,
    environ: Mapping[str, str] | None = None,
    control: RunControl | None = None,
) -> RunReport:
    """Run an already parsed DAG; see :func:`run_dag` for the arguments.

    Raises:
        UsageError: an option is out of range, or ``task`` names no task of the DAG.
    """
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise UsageError(f"retries must be a whole number, 0 or more, not {retries!r}")
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
    run = _Run(
        plan,
        store if store is not None else Store(),
        run_id=run_id,
        task=task,
        max_parallel=max_parallel or default_max_parallel(),
        timeout=timeout,
        grace=grace,
        retries=retries,
        backoff=backoff,
        gust_cmd=list(gust_cmd) if gust_cmd else default_gust_cmd(),
        max_frame_size=max_frame_size,
        recorder=recorder,
        observer=observer or RunObserver(),
        environ=environ,
    )
    if control is None:
        return run.execute()
    control.attach(run)
    try:
        return run.execute()
    finally:
        control.attach(None)


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
        options: ``run_id`` (1), ``task`` (run only that task), ``max_parallel``
            (:func:`default_max_parallel`),
            ``timeout`` (seconds per attempt, none), ``grace`` (2 s from SIGTERM to SIGKILL),
            ``retries`` (retries after a failed attempt, 0), ``backoff`` (1 s, doubled per
            retry), ``max_frame_size`` (64 MiB), ``record_dir``, ``observer``, ``environ``
            (where ``GUST_SECRET_<NAME>`` is read; default ``os.environ``), ``control`` (a
            :class:`RunControl` to stop the run).

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
