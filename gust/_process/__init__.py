"""The host side's processes: spawn a child in a session of its own, read it, end all of it.

Theory of operation: every host in the project (the harness running tasks, callbacks and
``gust parse``; the conformance runner in both modes) starts children through :func:`spawn`. A
child gets a session and process group of its own, so it and everything it starts can be
signalled at once, and a token in its environment (:data:`TOKEN_ENV`), which its descendants
inherit, so processes that left the group (``setsid`` daemons, double forks) can still be found
under :file:`/proc` and attributed to it. With :func:`become_subreaper` (Linux) orphaned
descendants are re-parented to the host instead of init, so nothing a child starts escapes the
host's view.

Ending a child is :meth:`Child.terminate`: SIGTERM to the group, ``grace`` seconds for it to go,
then SIGKILL to the group and to every escaped descendant carrying the token, and the leader is
reaped. :meth:`Child.leftovers` finds what is still alive afterwards.

The I/O helpers are thin and share the pure codec of :mod:`gust.protocol`: :class:`FrameReader`
reads frames from a descriptor before a deadline, :class:`StdinWriter` writes replies from a
queue on a thread of its own (a child that stops reading can never block the host), and
:class:`StderrCollector` drains stderr into a bounded tail, line by line, with masking.
"""

from gust._process._child import (
    TOKEN_ENV,
    Child,
    OutputTooLargeError,
    describe_exit,
    run_to_end,
    spawn,
)
from gust._process._io import FrameReader, FrameTimeout, StderrCollector, StdinWriter
from gust._process._tree import become_subreaper, descendants, kill_descendants, reap_orphans

__all__ = [
    "TOKEN_ENV",
    "Child",
    "FrameReader",
    "FrameTimeout",
    "OutputTooLargeError",
    "StderrCollector",
    "StdinWriter",
    "become_subreaper",
    "descendants",
    "describe_exit",
    "kill_descendants",
    "reap_orphans",
    "run_to_end",
    "spawn",
]
