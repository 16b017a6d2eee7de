"""gust: the Python runtime for the Gust task orchestrator.

DAG authors import everything they need from here::

    from gust import Dag, task, log, get_secret_by_name, get_task_by_name_run

Importing ``gust`` is cheap and needs only the standard library: the CLI (click), the parser,
the harness and the conformance runner are imported only by their own entry points, and the
runtime calls (with their channel, threads and JSON codec) only when a name of theirs is first
used. ``gust parse`` and a DAG author's unit test of a ``Dag`` class never load them.
"""

from gust.dag import Dag, task
from gust.errors import (
    CallError,
    CallTimeoutError,
    GustError,
    HostGoneError,
    HostProtocolError,
    LogLevelError,
    NotInTaskError,
    TaskOptionError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from gust.calls import _read_frame, get_secret_by_name, get_task_by_name_run, log, send_frame
    from gust.protocol import PROTOCOL_VERSION

__version__ = "0.2.0"

__all__ = [
    "PROTOCOL_VERSION",
    "CallError",
    "CallTimeoutError",
    "Dag",
    "GustError",
    "HostGoneError",
    "HostProtocolError",
    "LogLevelError",
    "NotInTaskError",
    "TaskOptionError",
    "__version__",
    "_read_frame",
    "get_secret_by_name",
    "get_task_by_name_run",
    "log",
    "send_frame",
    "task",
]

# Names loaded on first use (PEP 562), from the module that defines them.
_LAZY = {
    "_read_frame": "gust.calls",
    "get_secret_by_name": "gust.calls",
    "get_task_by_name_run": "gust.calls",
    "log": "gust.calls",
    "send_frame": "gust.calls",
    "PROTOCOL_VERSION": "gust.protocol",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gust' has no attribute {name!r}")
    value = getattr(__import__(module, fromlist=[name]), name)
    globals()[name] = value  # later lookups find it directly
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
