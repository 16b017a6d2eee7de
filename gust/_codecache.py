"""A private cache of compiled DAG code, for files Python must not cache beside themselves.

Gust runs every task from a copy of the DAG file in the system temp dir, a folder anyone can
write: a ``__pycache__`` there can be neither trusted nor left behind (see :mod:`gust.invoke`).
Without a cache, every task compiles the whole file again, which grows with the DAG (about 45 ms
for 2,000 tasks). So the compiled code goes to a folder only this user can write:
``$GUST_CODE_CACHE``, else ``$XDG_CACHE_HOME/gust/code``, else ``~/.cache/gust/code``.

- An entry is named by a BLAKE2 hash of the source and the Python version: any change of the
  source is a new entry, and a copy with a new name (each run's) finds the entry of the same
  content. The code is stored without its file name, which is set to the file being loaded.
- The folder is used only if it is a real directory owned by this user that nobody else may
  write (made with mode 0700 if missing); an entry only if it is a regular file owned by this
  user. Otherwise the file is compiled and nothing is cached. Entries are written to a
  temporary name and renamed, so a reader never sees half an entry; a broken entry is
  recompiled and replaced.
- ``GUST_CODE_CACHE=off`` turns the cache off.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import stat
import sys

TYPE_CHECKING = False  # typing is not imported at run time: every task start pays for imports
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType

__all__ = ["cache_dir", "load"]

_MAGIC = b"gust-code-1\n" + sys.version.encode() + b"\n"


def cache_dir() -> str | None:
    """The private cache folder, made if missing, or ``None`` when it cannot be trusted."""
    path = os.environ.get("GUST_CODE_CACHE", "").strip()
    if path.lower() in ("off", "0", "no", "false"):
        return None
    if not path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "gust", "code")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except (OSError, ValueError):
        return None
    private = not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or not private:
        return None
    return path


def _key(source: bytes) -> str:
    try:
        from _blake2 import blake2b  # cheap to import, unlike hashlib
    except ImportError:  # pragma: no cover - every CPython build has it
        from hashlib import blake2b
    digest = blake2b(_MAGIC, digest_size=20)
    digest.update(source)
    return digest.hexdigest()


def _with_filename(code: CodeType, filename: str) -> CodeType:
    consts = tuple(
        _with_filename(c, filename) if isinstance(c, type(code)) else c for c in code.co_consts
    )
    return code.replace(co_filename=filename, co_consts=consts)


def load(source: bytes, path: str, compile_source: Callable[[bytes, str], CodeType]) -> CodeType:
    """The code of ``source`` (the file at ``path``), from the cache or compiled and cached.

    Args:
        compile_source: compiles when the cache has no entry (a loader's ``source_to_code``).
    """
    folder = cache_dir()
    if folder is None:
        return compile_source(source, path)
    entry = os.path.join(folder, _key(source))
    try:
        info = os.lstat(entry)
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid():
            with open(entry, "rb") as handle:
                data = handle.read()
            if data.startswith(_MAGIC):
                return _with_filename(marshal.loads(data[len(_MAGIC) :]), path)
    except (OSError, ValueError, EOFError, TypeError):
        pass  # missing or broken: compile it again below
    code = compile_source(source, path)
    temp = f"{entry}.{os.getpid()}.tmp"
    try:
        with open(temp, "xb") as handle:
            handle.write(_MAGIC + marshal.dumps(_with_filename(code, "")))
        os.replace(temp, entry)
    except OSError:  # a full disk or a race with another writer: the code is still good
        with contextlib.suppress(OSError):
            os.unlink(temp)
    return code
