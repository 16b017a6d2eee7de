"""Loaded by every Python subprocess a test starts during a mutation run (tests/conftest.py
puts this folder on ``PYTHONPATH`` then, and only then).

While mutmut maps functions to the tests that run them (``MUTANT_UNDER_TEST=stats``), a hit in
a subprocess would be lost with it: most of gust runs in the ``gust task run`` child a test
starts. Each hit is appended at once to a file in ``MUTMUT_GUST_HITS`` (a task may leave with
``os._exit``, so nothing waits for exit), and the test's teardown hands them to mutmut.
"""

from __future__ import annotations

import os

_HITS = os.environ.get("MUTMUT_GUST_HITS")

if os.environ.get("MUTANT_UNDER_TEST") == "stats":
    from mutmut.mutation import trampoline

    _seen: set[str] = set()

    def _record(name: str, caller: str | None = None) -> None:
        if name in _seen or not _HITS:  # a test that cleared the environment: hits are lost
            return
        _seen.add(name)
        fd = os.open(
            os.path.join(_HITS, f"{os.getpid()}.hits"), os.O_WRONLY | os.O_APPEND | os.O_CREAT
        )
        try:
            os.write(fd, f"{name}\n".encode())
        finally:
            os.close(fd)

    trampoline.record_trampoline_hit = _record
