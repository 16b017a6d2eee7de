"""Exceptions a DAG author or a host implementer may see from ``gust``."""

from __future__ import annotations

__all__ = [
    "CallError",
    "CallTimeoutError",
    "GustError",
    "HostGoneError",
    "NotInTaskError",
]


class GustError(Exception):
    """Base class of every error ``gust`` raises on purpose."""


class CallError(GustError):
    """The host answered a call with ``ok: false`` and an error other than "not found".

    Attributes:
        op: the call's ``op``.
        error: the host's error, as sent.
    """

    def __init__(self, op: str, error: object) -> None:
        super().__init__(f"{op} failed: host answered {error!r}")
        self.op = op
        self.error = error


class HostGoneError(GustError):
    """The host closed the channel (EOF on replies or a broken frame pipe)."""


class CallTimeoutError(GustError):
    """No reply came within ``GUST_CALL_TIMEOUT`` seconds."""


class NotInTaskError(GustError):
    """A runtime call was made where no host answers (outside ``gust task run``)."""
