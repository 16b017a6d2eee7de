"""gust: the Python runtime for the Gust task orchestrator.

DAG authors import everything they need from here::

    from gust import Dag, task, log, get_secret_by_name, get_task_by_name_run

Importing ``gust`` is cheap and needs only the standard library: the CLI (click), the parser,
the harness and the conformance runner are imported only by their own entry points.
"""

from gust.calls import _read_frame, get_secret_by_name, get_task_by_name_run, log, send_frame
from gust.dag import Dag, task
from gust.errors import CallError, CallTimeoutError, GustError, HostGoneError, NotInTaskError
from gust.protocol import PROTOCOL_VERSION

__version__ = "0.2.0"

__all__ = [
    "PROTOCOL_VERSION",
    "CallError",
    "CallTimeoutError",
    "Dag",
    "GustError",
    "HostGoneError",
    "NotInTaskError",
    "__version__",
    "_read_frame",
    "get_secret_by_name",
    "get_task_by_name_run",
    "log",
    "send_frame",
    "task",
]
