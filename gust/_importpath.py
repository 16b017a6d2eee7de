"""Which folders user code may import from: the DAG's real home, never a folder others can write.

Threat: Gust runs every task from a copy of the DAG file in the system temp dir, and Python
puts the folder of the script (or, under ``python -m``, the working directory) first on
``sys.path``, ahead of the standard library. A ``traceback.py`` or ``decimal.py`` planted in a
folder every user can write would then run as the orchestrator's user.

Rules, applied by :func:`secure_sys_path` before any command runs and by
:func:`add_dag_folders` when a DAG file is loaded:

- A folder is *trusted* when it is a directory that is not world-writable and not a temp dir
  (``$TMPDIR``, ``$TEMP``, ``$TMP``, ``/tmp``, ``/var/tmp``, ``/usr/tmp``). An untrusted folder is
  never importable: the implicit first entry (``''`` or the working directory) is dropped, and
  so is every other ``sys.path`` entry that is untrusted.
- The DAG's folders are the working directory (Gust's DAGs folder) and the DAG file's own
  folder, each only when trusted. They go right after the standard library's entries and
  before ``site-packages``: a helper module beside a DAG imports as before (and still wins over
  an installed package of the same name), but can never shadow the standard library.
"""

from __future__ import annotations

import os
import stat
import sys

TYPE_CHECKING = False  # typing is not imported at run time: every task start pays for imports
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["add_dag_folders", "is_trusted_folder", "secure_sys_path", "temp_dirs"]

_secured = False


def temp_dirs() -> set[str]:
    """The real paths of every folder ``tempfile`` might use as the system temp dir."""
    candidates = [os.environ.get(name) for name in ("TMPDIR", "TEMP", "TMP")]
    candidates += ["/tmp", "/var/tmp", "/usr/tmp"]
    return {os.path.realpath(c) for c in candidates if c}


def is_trusted_folder(path: str, temps: Iterable[str] | None = None) -> bool:
    """Whether code may be imported from ``path`` (see the module docstring)."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_mode & stat.S_IWOTH:
        return False
    return os.path.realpath(path) not in (temp_dirs() if temps is None else temps)


def secure_sys_path() -> list[str]:
    """Drop the implicit first entry and every untrusted folder from ``sys.path``.

    Entries that are not folders (zip files, missing paths) are kept unless they sit in an
    untrusted folder themselves.

    Returns:
        The entries removed.
    """
    global _secured
    temps = temp_dirs()
    kept, dropped = [], []
    # The interpreter's implicit first entry ('' for -c, the working directory for -m, the
    # script's folder otherwise) is gone with -P / PYTHONSAFEPATH, and after a first call.
    implicit = not (_secured or getattr(sys.flags, "safe_path", False))
    _secured = True
    for i, entry in enumerate(sys.path):
        if not isinstance(entry, str):
            kept.append(entry)
            continue
        if i == 0 and implicit:
            dropped.append(entry)  # the DAG's home comes back through add_dag_folders
            continue
        path = os.path.abspath(entry or os.curdir)
        folder = path if os.path.isdir(path) else os.path.dirname(path)
        if os.path.exists(folder) and not is_trusted_folder(folder, temps):
            dropped.append(entry)
            continue
        kept.append(entry)
    sys.path[:] = kept
    return dropped


def _stdlib_end() -> int:
    """The index just after the standard library's last entry in ``sys.path``."""
    stdlib = os.path.dirname(os.__file__)
    names = {
        stdlib,
        os.path.join(stdlib, "lib-dynload"),
        os.path.join(
            os.path.dirname(stdlib), f"python{sys.version_info[0]}{sys.version_info[1]}.zip"
        ),
    }
    end = 0
    for i, entry in enumerate(sys.path):
        if isinstance(entry, str) and entry and os.path.normpath(entry) in names:
            end = i + 1
    return end


def add_dag_folders(dag_file: str) -> list[str]:
    """Make the DAG's trusted folders importable, after the standard library.

    Args:
        dag_file: the DAG file being loaded (its folder counts only when trusted: never the
            temp dir Gust copies DAG files into).

    Returns:
        The folders that are importable for the DAG, in lookup order.
    """
    temps = temp_dirs()
    wanted = []
    for folder in (os.getcwd(), os.path.dirname(os.path.abspath(dag_file))):
        real = os.path.realpath(folder)
        if real not in wanted and is_trusted_folder(real, temps):
            wanted.append(real)
    present = {os.path.realpath(e) for e in sys.path if isinstance(e, str) and e}
    at = _stdlib_end()
    for folder in wanted:
        if folder not in present:
            sys.path.insert(at, folder)
            at += 1
    return wanted
