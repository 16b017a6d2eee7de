"""Shared fixtures: the repository root, a DAG-file writer, an in-memory channel pair, a host.

The host driver itself is :mod:`_host` (module-level helpers need it too); the fixtures here
hand out what most tests would otherwise build by hand.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _host import REPO, ChannelPair, Host, task_argv

from gust import calls

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
