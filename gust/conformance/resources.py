"""Where the suite's data lives: inside the package, so an installed wheel carries its cases.

The schemas, vectors, transcripts and DAG files are package data under ``gust/conformance/suite``
(read through :mod:`importlib.resources`); ``conformance/`` at the top of a checkout holds
symlinks to the same folders for implementers, so there is one copy. The runner hands DAG files
to child processes by path, so the package must be installed as plain files (not zipped).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["SuiteNotOnDiskError", "suite_root"]


class SuiteNotOnDiskError(RuntimeError):
    """The package is installed in a form (a zip) whose data files have no path on disk."""


def suite_root() -> Path:
    """The folder holding ``schema/``, ``vectors/``, ``transcripts/`` and ``dags/``.

    Raises:
        SuiteNotOnDiskError: the package data is not a folder on disk.
    """
    root = resources.files("gust.conformance").joinpath("suite")
    if not isinstance(root, Path) or not root.is_dir():
        raise SuiteNotOnDiskError(
            f"the conformance suite's data is not a folder on disk ({root}); install gust-py "
            "as plain files (pip install, not a zipped package) or pass --suite DIR"
        )
    return root
