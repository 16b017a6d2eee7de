"""Exceptions a DAG author or a host implementer may see from ``gust``.

Every error the package raises on purpose derives from :class:`GustError`, and every way a
runtime call (``get_secret_by_name``, ``get_task_by_name_run``) can fail derives from
:class:`CallError`, so ``except gust.CallError`` in a task catches them all::

    GustError
    ├── CallError                  a call failed; .op and .error say which and why
    │   ├── HostGoneError          the host closed the channel or stopped reading
    │   ├── CallTimeoutError       no reply within GUST_CALL_TIMEOUT seconds
    │   ├── HostProtocolError      the host broke the protocol (a reply nobody asked for)
    │   └── NotInTaskError         no host answers calls here (unit test, `gust run done`)
    ├── LogLevelError (ValueError) log() was given a level gust does not know
    ├── TaskOptionError (TypeError) @task(...) was given a bad option
    ├── ProtocolError              gust.protocol: a frame cannot be encoded or decoded
    ├── UsageError                 gust.commands: a command invoked wrongly (exit status 2)
    └── ...                        SetupError, TaskFailure, ContextError, UnsupportedValueError:
                                   a task run's own failures, reported in-band

Signals are not errors: ``gust.sandbox.TaskInterrupted`` is a ``BaseException``, as
``KeyboardInterrupt`` is, so ``except Exception`` in a task does not swallow a SIGTERM.
"""

from __future__ import annotations

__all__ = [
    "CallError",
    "CallTimeoutError",
    "GustError",
    "HostGoneError",
    "HostProtocolError",
    "LogLevelError",
    "NotInTaskError",
    "TaskOptionError",
]


class GustError(Exception):
    """Base class of every error ``gust`` raises on purpose."""


class CallError(GustError):
    """A runtime call failed: the host said no, went away, broke the protocol or is absent.

    Raised as such when the host answered ``ok: false`` with an error other than "not found".

    Args:
        message: what happened, naming the call.
        op: the call's ``op`` (``get_secret_by_name``...), when known.
        error: the host's error code as sent (``ok: false`` replies only), else ``None``.
    """

    def __init__(self, message: str, *, op: str | None = None, error: object = None) -> None:
        super().__init__(message)
        self.op = op
        self.error = error

    @classmethod
    def refused(cls, op: str, error: object) -> CallError:
        """The host answered ``op`` with ``ok: false`` and ``error``."""
        return cls(f"{op} failed: host answered {error!r}", op=op, error=error)


class HostGoneError(CallError):
    """The host closed the channel (EOF on replies) or stopped reading our frames."""


class CallTimeoutError(CallError):
    """No reply came within ``GUST_CALL_TIMEOUT`` seconds."""


class HostProtocolError(CallError):
    """The host broke the protocol, for example with a reply when no call was waiting.

    Replies carry no call id, so once one is out of place none can be trusted: every later
    call of the process raises this error too (logs still go out).
    """


class NotInTaskError(CallError):
    """A runtime call was made where no host answers (outside ``gust task run``)."""


class LogLevelError(GustError, ValueError):
    """``log()`` was given a level other than debug, info, warning, error or critical."""


class TaskOptionError(GustError, TypeError):
    """``@task(...)`` was given an option it does not take (a ``TypeError``)."""
