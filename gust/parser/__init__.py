"""``gust parse``: read the DAGs of a Python file without running it.

Theory of operation: the file is read as bytes and parsed with :mod:`ast`; nothing of the user's
code is imported or executed, so a DAG parses without its dependencies being installed. One
pass over the module's statements records which local names stand for gust's ``Dag`` and
``task`` (however they were imported) and where every module-level name is bound. Each
top-level class is then read once, in source order: its bases, its ``@task`` methods with their
options, its class-level bindings and its ``__init__``. A class whose bases lead to ``gust.Dag``
is a DAG. Its tasks and options are the merge of the classes of its method resolution order, as
attribute lookup sees them at run time: an inherited task keeps its place in ``task_list`` and a
subclass's definition replaces it. A base (or a constant, or gust's names) imported from a
module of the DAG's folder is read from that module, parsed the same way on demand, never run;
what cannot be read is said in-band with the reason.

Values are read only when they are literals, or names bound to literals at module or class
level (a method sees module names as bound once the file has run, and class attributes through
``self.NAME``); anything else is left at its default and explained in ``messages`` with its
line. The downstream graph is checked (unknown names, cycles) and layered into stages with
Kahn's algorithm, so the whole parse is linear in the size of the file.

Everything about the file's content is reported in-band: :func:`parse_file` returns entries
whose ``error`` says what is wrong and where, and :func:`render_file` dumps them as
deterministic ASCII JSON for Gust, which reads the first entry only.

Bounds: a parse runs in bounded memory and time whatever the file holds. A file over 8 MiB
(:data:`~gust.parser._limits.MAX_SOURCE_BYTES`) is refused from its size before it is read, and
one of more than 1,000,000 tokens (:data:`~gust.parser._limits.MAX_SOURCE_TOKENS`, about 40,000
tasks) before it is parsed, which keeps Python's parser under about 1 GB; :func:`render_file`
refuses a file whose name is not valid UTF-8, as JSON cannot hold its path. The values read,
the depth of inheritance, the tasks listed and the messages of an entry are bounded too
(:mod:`gust.parser._limits`), each reported in-band when reached.

The package's modules, one job each:

- :mod:`~gust.parser._source`: the file's name, bytes and syntax tree;
- :mod:`~gust.parser._scope`: where each name of a body is bound, statement by statement;
- :mod:`~gust.parser._evaluate`: the values of constants and aliases, and gust's names;
- :mod:`~gust.parser._classes`: classes, their tasks, and inheritance (C3);
- :mod:`~gust.parser._options`: ``schedule`` and ``on_finished_callback`` through ``__init__``;
- :mod:`~gust.parser._graph`: the downstream graph, its checks and its stages;
- :mod:`~gust.parser._module`: one parsed file, read statement by statement;
- :mod:`~gust.parser._imports`: the modules of the DAG's folder a file imports, and what names
  stand for across them;
- :mod:`~gust.parser._schedule`: schedules as Gust's cron parser reads them;
- :mod:`~gust.parser._spec`: the JSON entries Gust reads;
- :mod:`~gust.parser._problems`: errors and messages with their lines;
- :mod:`~gust.parser._limits`: the bounds on memory and time, and the token count.
"""

from __future__ import annotations

import gc
import os

from gust._importpath import is_trusted_folder
from gust.parser._classes import TASK_OPTION_NAMES
from gust.parser._imports import Folder
from gust.parser._limits import Budget
from gust.parser._module import Module
from gust.parser._options import OPTION_NAMES
from gust.parser._source import (
    UNREADABLE_FILE_LINE,
    SourceError,
    absolute,
    check_tokens,
    is_utf8,
    parse_source,
    read_source,
    shown,
    stem,
)
from gust.parser._spec import clean, entries, failure, render

TYPE_CHECKING = False  # typing is only for the type checker: `gust parse` starts on every edit
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "OPTION_NAMES",
    "TASK_OPTION_NAMES",
    "UNREADABLE_FILE_LINE",
    "parse_file",
    "render_file",
]


def parse_file(path: str) -> list[dict[str, Any]]:
    """Read the DAG classes of the Python file at ``path`` statically (nothing is executed).

    Args:
        path: the DAG file, absolute or relative to the working directory.

    Returns:
        One entry per ``Dag`` class, in source order, each with the keys ``name``, ``mod``,
        ``error``, ``messages``, ``task_list``, ``stages``, ``tasks``, ``file_path`` and
        ``options`` (see the README's "gust parse"); ``[]`` when the file defines no ``Dag``
        class; a single entry with ``mod: ""`` and the ``error`` when the file cannot be read
        or parsed. Never raises for anything about the file's content.
    """
    file_path = clean(absolute(path))
    name = clean(stem(path))
    try:
        source = read_source(path)
        check_tokens(source, path)
    except SourceError as exc:
        return failure(name, file_path, exc.line, exc.description)
    # Building the tree allocates one object per node; the cyclic collector would walk that
    # growing heap again and again while it is built, for nothing: nothing here makes cycles
    # that need collecting before we return.
    collecting = gc.isenabled()
    gc.disable()
    try:
        try:
            tree, warned, unlisted = parse_source(source, file_path)
        except SourceError as exc:
            return failure(name, file_path, exc.line, exc.description)
        budget = Budget()
        home = os.path.dirname(file_path)
        folder = Folder(home, budget, is_trusted_folder(home))
        module = Module(
            tree, name, file_path, budget, folder, name, "", os.path.basename(file_path)
        )
        folder.root = module
        folder.root_reading = True
        try:
            module.read(source)
            folder.root_reading = False
            return entries(module, warned, unlisted)
        except RecursionError:  # every chain is bounded; this is the net under them all
            return failure(
                name,
                file_path,
                1,
                "the file, with the modules it imports, nests too deeply for gust parse to read",
            )
    finally:
        if collecting:
            gc.enable()


def render_file(path: str) -> str:
    """``gust parse --file path``: the entries of :func:`parse_file` as one line of JSON.

    The JSON is ASCII with a fixed key order, so the same file always gives the same bytes. A
    file whose name is not valid UTF-8 is refused in-band: JSON cannot hold its path, and Gust
    runs tasks from a copy of the ``file_path`` it reads. (:func:`parse_file` reads such a file,
    with U+FFFD in ``name`` and ``file_path``, for callers that know the real path.)
    """
    if not is_utf8(path):
        file_path = absolute(path)
        return render(
            failure(
                clean(stem(path)),
                clean(file_path),
                UNREADABLE_FILE_LINE,
                f"cannot use {shown(file_path)}: its name is not valid UTF-8, so the JSON Gust "
                "reads cannot hold its path; rename the file",
            )
        )
    return render(parse_file(path))
