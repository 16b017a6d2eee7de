"""The pytest plugin of ``gust-py``: fixtures for testing DAGs, on wherever it is installed.

Registered through the ``pytest11`` entry point, so a DAG project that depends on ``gust-py``
gets, with no configuration:

* ``gust_host``: a fresh :func:`gust.testing.fake_host` per test; ``log``,
  ``get_secret_by_name`` and ``get_task_by_name_run`` work in the test's process. Its arguments
  come from a ``@pytest.mark.gust_host(secrets=..., runs=..., store=..., run_id=...)`` marker.
* ``gust_run``: a function that runs a whole DAG file through the harness (``gust parse``, every
  task through ``gust task run``, the callback) and returns its
  :class:`~gust.harness.report.RunReport`.

The plugin costs nothing in a session that does not use it: this module imports only pytest;
the harness, the runtime and click are imported by a fixture when a test asks for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from gust.harness.report import RunReport
    from gust.harness.store import Store
    from gust.testing import FakeHost

__all__ = ["gust_host", "gust_run"]

#: Seconds each task attempt of ``gust_run`` may take unless the test says otherwise.
DEFAULT_RUN_TIMEOUT = 60.0


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``gust_host`` marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        "gust_host(secrets=None, runs=None, store=None, run_id=1, environ=None): arguments of "
        "gust.testing.fake_host for the gust_host fixture",
    )


@pytest.fixture
def gust_host(request: pytest.FixtureRequest) -> Iterator[FakeHost]:
    """A :func:`gust.testing.fake_host` for this test, configured by a ``gust_host`` marker."""
    from gust.testing import fake_host

    marker = request.node.get_closest_marker("gust_host")
    if marker is not None and marker.args:
        raise pytest.UsageError("@pytest.mark.gust_host takes keyword arguments only")
    with fake_host(**(marker.kwargs if marker is not None else {})) as host:
        yield host


@pytest.fixture
def gust_run(request: pytest.FixtureRequest) -> Callable[..., RunReport]:
    """Run a whole DAG file as Gust would and return the report.

    Call it as ``gust_run(dag_file, *, dag=None, store=None, secrets=None, runs=None,
    run_id=1, task=None, max_parallel=None, timeout=60.0, environ=None, **options)``:

    * ``dag_file``: absolute, or relative to pytest's rootdir;
    * ``store``: a store file (or a previous run's report), a
      :class:`~gust.harness.store.Store`, or ``None``; ``secrets`` and ``runs`` (store format)
      are added to it;
    * ``run_id``, ``task`` (only that task, upstream results from the store), ``max_parallel``
      (CPU count), ``timeout`` (seconds per task attempt; ``None`` for none);
    * ``environ``: where ``GUST_SECRET_<NAME>`` is looked up (default: nowhere);
    * ``options``: the rest of :func:`gust.harness.run_dag` (``retries``, ``grace``,
      ``gust_cmd``, ...).

    The children are this interpreter's ``python -m gust``, so the DAG runs in the test's
    environment. Raises what :func:`gust.harness.run_dag` raises when nothing could run.
    """
    root = Path(request.config.rootpath)

    def run(
        dag_file: str | os.PathLike[str],
        *,
        store: Store | str | os.PathLike[str] | None = None,
        secrets: Mapping[str, Any] | None = None,
        runs: Mapping[Any, Any] | None = None,
        timeout: float | None = DEFAULT_RUN_TIMEOUT,
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> RunReport:
        from gust.harness import run_dag
        from gust.testing import build_store

        path = Path(dag_file)
        if not path.is_absolute():
            path = root / path
        return run_dag(
            str(path),
            store=build_store(store, secrets, runs),
            timeout=timeout,
            environ={} if environ is None else environ,
            **options,
        )

    return run
