"""The harness's own exceptions: what the user got wrong, said so they can fix it.

Every error the harness raises for bad input derives from :class:`HarnessError` and carries a
message that names the thing at fault (a store key, a DAG file and line, a command-line option)
and what was expected instead. The command line prints the message and exits with status 2;
library users catch the class they care about.
"""

from __future__ import annotations

__all__ = ["DagFileError", "HarnessError", "StoreError", "UsageError"]


class HarnessError(Exception):
    """Base class: a run could not be set up."""


class StoreError(HarnessError):
    """The store file is missing, is not JSON, or does not have the documented shape."""


class DagFileError(HarnessError):
    """``gust parse`` refused the DAG file, or its output cannot be used to run it."""


class UsageError(HarnessError):
    """An option or argument is invalid (unknown DAG or task name, bad number, ...)."""
