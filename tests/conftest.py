"""Shared fixtures: the repository root, a DAG-file writer, an in-memory channel pair, a host.

The host driver itself is :mod:`_host` (module-level helpers need it too); the fixtures here
hand out what most tests would otherwise build by hand.
"""

from __future__ import annotations

import os
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _host import REPO, ChannelPair, Host, task_argv

from gust import calls

# -- mutation runs ----------------------------------------------------------------------------
# mutmut runs this suite from its copy of the tree, ``mutants/``. The subprocesses the tests
# start (``gust task run``, the harness) must import the mutated package too, and tell mutmut
# which functions they ran (see tests/_mutation/sitecustomize.py).
MUTATION_RUN = REPO.name == "mutants"

if MUTATION_RUN:
    _HITS = tempfile.mkdtemp(prefix="gust-mutmut-hits-")
    os.environ["MUTMUT_GUST_HITS"] = _HITS
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "tests" / "_mutation"), str(REPO), os.environ.get("PYTHONPATH")) if p
    )

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(item: pytest.Item) -> None:
        """Hand mutmut the functions this test's subprocesses ran, before mutmut's own
        teardown hook files the test under each function hit."""
        from mutmut.state import state

        for entry in os.scandir(_HITS):
            with open(entry.path, encoding="utf-8") as handle:
                state()._stats.update(handle.read().split())
            os.unlink(entry.path)

    #: A mutant that makes a test hang is killed by pytest-timeout; mutmut's own limit counts
    #: CPU time, which a test waiting on a pipe does not use. The slowest test of the mutation
    #: selection takes about 7 s alone, so a longer wait is a hang, not a slow test.
    MUTATION_TEST_TIMEOUT = 20.0

    def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
        """Cap every test's timeout, its own marker included, at MUTATION_TEST_TIMEOUT."""
        for item in items:
            marker = item.get_closest_marker("timeout")
            if marker is None or not marker.args or marker.args[0] > MUTATION_TEST_TIMEOUT:
                item.add_marker(pytest.mark.timeout(MUTATION_TEST_TIMEOUT), append=False)

# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root (``harness/``, ``conformance/``, ``pyproject.toml`` are there)."""
    return REPO


@pytest.fixture
def write_dag(tmp_path: Path) -> Callable[..., Path]:
    """``write_dag(name, source, folder=tmp_path)``: write dedented ``source`` (or bytes as they
    are) to ``folder/name`` and return the path."""

    def write(name: str, source: str | bytes, folder: Path | None = None) -> Path:
        path = (folder or tmp_path) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            path.write_bytes(source)
        else:
            path.write_text(textwrap.dedent(source), encoding="utf-8")
        return path

    return write


@pytest.fixture
def channel_pair() -> Iterator[ChannelPair]:
    """A session and the host's end, with the session active for the runtime API
    (``gust.log`` and the calls go through it) until the test ends."""
    pair = ChannelPair()
    calls.activate(pair.session)
    try:
        yield pair
    finally:
        calls.activate(None)


@pytest.fixture
def gust_task() -> Callable[..., Host]:
    """``gust_task(file, dag, task, ctx='{"run_id": 1}', **host_options)``: run one task with
    ``gust task run`` under the test :class:`~_host.Host` and return the host."""

    def run(
        file: Path | str, dag: str, task: str, ctx: str | None = '{"run_id": 1}', **kw: Any
    ) -> Host:
        return Host(task_argv(file, dag, task, ctx), **kw).run()

    return run
