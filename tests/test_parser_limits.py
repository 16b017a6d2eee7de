"""``gust parse`` within bounded memory and time: every input ends in an in-band answer.

Each bound of ``gust.parser._limits`` is tested at its boundary (the bound itself accepted, one
more refused) and with an input built to break it: a 2 GB sparse file, deep nesting, a constant
that doubles ten times over, thousands of subclasses of a large base, a flood of warnings, a
file name that is not UTF-8. The CLI runs as Gust runs it, under an address-space limit where
memory is the point.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gust.parser import parse_file, render_file
from gust.parser._limits import (
    MAX_MESSAGE_CHARS,
    MAX_MESSAGES,
    MAX_MRO,
    MAX_OUTPUT,
    MAX_SOURCE_BYTES,
    MAX_SOURCE_TOKENS,
    MAX_VALUES,
    count_tokens,
)

HEADER = b"from gust import Dag, task\n\n\n"
#: Address space for a `gust parse` child: far below what reading a 2 GB file would need.
MEMORY_LIMIT = 512 * 1024 * 1024


def run_parse_raw(file: str | bytes | Path, cwd: Path, memory: int | None = None) -> bytes:
    """Run ``python -m gust parse --file FILE`` (under ``memory`` bytes of address space);
    return its stdout, once it has exited 0 with nothing on stderr."""

    def limit() -> None:
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    done = subprocess.run(
        [sys.executable, "-m", "gust", "parse", "--file", os.fsencode(file)],
        cwd=cwd,
        capture_output=True,
        timeout=60,
        check=False,
        preexec_fn=limit,  # the child is ours; the test starts no threads
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stderr == b""
    return done.stdout


def run_parse(file: str | bytes | Path, cwd: Path, memory: int | None = None) -> dict[str, Any]:
    """Run ``python -m gust parse --file FILE``; return its one entry (exit 0, ASCII JSON)."""
    entries = json.loads(run_parse_raw(file, cwd, memory).decode("ascii"))
    assert len(entries) == 1, entries
    return entries[0]


def only(entries: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(entries) == 1, entries
    return entries[0]


# ---- the size of the file --------------------------------------------------------------------


def test_a_2gb_sparse_file_is_refused_from_its_size_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "huge_dag.py"
    with open(path, "wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse: no disk used, but 2 GB to read
    entry = run_parse(path, tmp_path, memory=MEMORY_LIMIT)
    assert entry["mod"] == "" and entry["name"] == "huge_dag"
    assert entry["error"] == {
        "file": str(path),
        "line": 0,
        "description": f"cannot read {path}: it is 2,048.0 MiB, more than the 8.0 MiB "
        "(8,388,608 bytes) gust parse reads",
    }


def test_the_size_bound_is_exact(tmp_path: Path) -> None:
    # A DAG, then one string literal that fills the file to exactly the bound: few tokens.
    head = HEADER + b"class Big(Dag):\n    @task\n    def a(self, ctx): ...\n\n\nFILL = '"
    fill = MAX_SOURCE_BYTES - len(head) - len(b"'\n")
    at_bound = tmp_path / "at_bound.py"
    at_bound.write_bytes(head + b"x" * fill + b"'\n")
    assert at_bound.stat().st_size == MAX_SOURCE_BYTES
    entry = only(parse_file(str(at_bound)))
    assert (entry["mod"], entry["error"], entry["task_list"]) == ("Big", {}, ["a"])
    over = tmp_path / "over_bound.py"
    over.write_bytes(head + b"x" * (fill + 1) + b"'\n")
    entry = only(parse_file(str(over)))
    assert entry["mod"] == "" and entry["error"]["line"] == 0
    assert (
        "more than the 8.0 MiB (8,388,608 bytes) gust parse reads"
        in (entry["error"]["description"])
    )


def test_special_files_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe_dag.py"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer
    entry = run_parse(fifo, tmp_path)
    assert entry["error"]["description"] == f"cannot read {fifo}: it is not a regular file"
    entry = only(parse_file("/dev/zero"))
    assert entry["error"]["description"] == "cannot read /dev/zero: it is not a regular file"


# ---- tokens, nesting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "tokens"),
    [
        (b"", 0),
        (b"x = 1\n", 4),
        (b"  foo(bar, 'baz qux')  # note\n", 12),
        (b"\xc3\xa9t\xc3\xa9 = 1.5\r\n", 6),
        (b"a;" * 1000, 2000),
        (b"\t\f \r", 0),
    ],
)
def test_tokens_are_counted_on_the_bytes(source: bytes, tokens: int) -> None:
    assert count_tokens(source) == tokens


def test_the_token_bound_is_exact(tmp_path: Path) -> None:
    head = HEADER + b"class Dense(Dag):\n    @task\n    def a(self, ctx): ...\n"
    left = MAX_SOURCE_TOKENS - count_tokens(head)
    source = head + b"#\n" * (left // 2) + b"#" * (left % 2)  # comments: cheap to parse
    assert count_tokens(source) == MAX_SOURCE_TOKENS
    at_bound = tmp_path / "at_bound.py"
    at_bound.write_bytes(source)
    assert only(parse_file(str(at_bound)))["task_list"] == ["a"]
    over = tmp_path / "over_bound.py"
    over.write_bytes(source + b"#")
    entry = only(parse_file(str(over)))
    assert entry["mod"] == "" and entry["error"]["line"] == 0
    assert entry["error"]["description"] == (
        f"cannot read {over}: it holds 1,000,001 tokens, more than the 1,000,000 gust parse "
        "reads (about 40,000 tasks; the bound keeps a parse under about 1 GB of memory)"
    )


@pytest.mark.timeout(120)
def test_the_densest_source_under_the_bound_parses_in_bounded_memory(tmp_path: Path) -> None:
    # `a;` is where Python's parser spends the most memory per token; just under the token
    # bound the parse fits in 1.5 GB of address space (an unbounded parser took 3 GB for 4 MiB).
    path = tmp_path / "dense.py"
    path.write_bytes(b"a;" * (MAX_SOURCE_TOKENS // 2 - 1) + b"\n")
    assert run_parse_raw(path, tmp_path, memory=1536 * 1024 * 1024) == b"[]\n"


DEEP = 100_000


@pytest.mark.parametrize(
    ("source", "line", "fragment"),
    [
        (b"x = " + b"(" * DEEP + b")" * DEEP + b"\n", 1, "too many nested parentheses"),
        (b"x = " + b"[" * DEEP + b"]" * DEEP + b"\n", 1, "too many nested parentheses"),
        (b"x = " + b"{" * DEEP + b"}" * DEEP + b"\n", 1, "too many nested parentheses"),
        (
            b"".join(b" " * i + b"if x:\n" for i in range(3000)) + b" " * 3000 + b"pass\n",
            101,
            "too many levels of indentation",
        ),
        (b"x = " + b"not " * DEEP + b"1\n", 1, "too deeply nested"),
        (b"x = a" + b".a" * DEEP + b"\n", 1, "too deeply nested"),
        (b"x = f" + b"()" * DEEP + b"\n", 1, "too deeply nested"),
        (b"x = " + b"lambda: " * DEEP + b"1\n", 1, "too deeply nested"),
    ],
    ids=["parens", "brackets", "braces", "ifs", "not", "attributes", "calls", "lambdas"],
)
def test_deep_nesting_is_an_in_band_error(
    source: bytes, line: int, fragment: str, tmp_path: Path
) -> None:
    path = tmp_path / "deep.py"
    path.write_bytes(source)
    entry = run_parse(path, tmp_path, memory=MEMORY_LIMIT)
    assert entry["mod"] == "" and entry["error"]["line"] == line
    assert fragment in entry["error"]["description"]


# ---- values, inheritance, output -------------------------------------------------------------


def test_a_constant_that_multiplies_itself_is_cut_at_the_value_budget(tmp_path: Path) -> None:
    # L9 names ten L8s, each ten L7s, ...: 10**10 strings from a file of 1 KB.
    lines = [b"L0 = ['a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a']"]
    lines += [b"L%d = [%s]" % (i, b", ".join([b"L%d" % (i - 1)] * 10)) for i in range(1, 10)]
    source = HEADER + b"\n".join(lines) + b"\n\n\nclass Boom(Dag):\n"
    source += b"    @task(downstream=L9)\n    def a(self, ctx): ...\n\n"
    source += b"    @task(downstream='b')\n    def b_first(self, ctx): ...\n\n"
    source += b"    @task\n    def b(self, ctx): ...\n"
    path = tmp_path / "boom.py"
    path.write_bytes(source)
    entry = only(parse_file(str(path)))
    assert entry["tasks"]["a"]["downstream"] == []
    spent = (
        f"the values of this file need more than the {MAX_VALUES:,} gust parse reads in one file"
    )
    assert entry["messages"] == [
        "line 17: downstream of task 'a' cannot be read statically: 'L9' (line 13) cannot be "
        "read: 'L8' (line 12) cannot be read: 'L7' (line 11) cannot be read: 'L6' (line 10) "
        "cannot be read: 'L5' (line 9) cannot be read: 'L4' (line 8) cannot be read: 'L3' "
        "(line 7) cannot be read: 'L2' (line 6) cannot be read: 'L1' (line 5) cannot be read: "
        f"'L0' (line 4) cannot be read: {spent}; left at []",
        # once the budget is spent, later values are left at their defaults too, saying so
        f"line 20: downstream of task 'b_first' cannot be read statically: {spent}; left at []",
    ]
    assert entry["tasks"]["b_first"]["downstream"] == []


def test_inheritance_deeper_than_the_bound_is_an_error(tmp_path: Path) -> None:
    lines = [HEADER.decode(), "class C0(Dag):\n    @task\n    def root(self, ctx): ...\n"]
    lines += [f"class C{i}(C{i - 1}):\n    pass\n" for i in range(1, 1000)]
    path = tmp_path / "deep_classes.py"
    path.write_text("\n".join(lines))
    entries = {e["mod"]: e for e in json.loads(render_file(str(path)))}
    assert len(entries) == 1000
    last_whole = entries[f"C{MAX_MRO - 1}"]  # its order holds exactly MAX_MRO classes
    assert last_whole["error"] == {} and last_whole["task_list"] == ["root"]
    too_deep = entries[f"C{MAX_MRO}"]
    assert too_deep["error"]["line"] == line_of_class(path, f"C{MAX_MRO}")
    assert too_deep["error"]["description"] == (
        f"class C{MAX_MRO} has more than {MAX_MRO} classes in its method resolution order, "
        "more than gust parse follows; tasks and options of the deeper ones are not read"
    )
    assert too_deep["task_list"] == []  # root sits deeper than gust parse looks


def test_a_class_with_more_bases_than_the_bound_is_an_error(tmp_path: Path) -> None:
    mixins = [f"class M{i}:\n    pass\n" for i in range(MAX_MRO)]
    names = ", ".join(f"M{i}" for i in range(MAX_MRO))
    source = HEADER.decode() + "\n".join(mixins) + f"\nclass Wide({names}, Dag):\n    pass\n"
    path = tmp_path / "wide.py"
    path.write_text(source)
    entry = only(parse_file(str(path)))
    assert (
        "has more than 100 classes in its method resolution order"
        in (entry["error"]["description"])
    )


def line_of_class(path: Path, name: str) -> int:
    lines = path.read_text().splitlines()
    return next(k for k, text in enumerate(lines, 1) if text.startswith(f"class {name}("))


@pytest.mark.timeout(120)
def test_many_subclasses_of_a_large_base_are_listed_up_to_the_output_budget(
    tmp_path: Path,
) -> None:
    base_tasks = 2000
    lines = [HEADER.decode(), "class Base(Dag):"]
    lines += [f"    @task\n    def t{i}(self, ctx): ...\n" for i in range(base_tasks)]
    lines += [f"class Sub{i}(Base):\n    pass\n" for i in range(300)]
    path = tmp_path / "subclasses.py"
    path.write_text("\n".join(lines))
    rendered = render_file(str(path))
    entries = json.loads(rendered)
    assert len(entries) == 301  # one entry per Dag class, always
    listed = [e for e in entries if e["error"] == {}]
    assert len(listed) == MAX_OUTPUT // base_tasks  # the whole budget, and not one more
    assert all(e["task_list"] == entries[0]["task_list"] for e in listed)
    unlisted = entries[len(listed)]
    assert unlisted["task_list"] == [] and unlisted["tasks"] == {}
    assert unlisted["error"]["description"] == (
        f"{unlisted['mod']} is not listed: with it, the DAG classes of this file would list "
        f"more than {MAX_OUTPUT:,} tasks, links and problems, the most gust parse lists for "
        "one file"
    )
    assert len(rendered) < 15_000_000


def test_messages_are_capped_per_entry_and_in_length(tmp_path: Path) -> None:
    warned = "".join(f"W{i} = '\\d'\n" for i in range(500))  # 500 invalid-escape warnings
    long_name = "n" * 10_000
    source = (
        HEADER.decode()
        + warned
        + f"\n\nclass Noisy(Dag):\n    @task(downstream='{long_name}')\n    def a(self, ctx): ...\n"
    )
    path = tmp_path / "noisy.py"
    path.write_text(source)
    entry = only(json.loads(render_file(str(path))))
    messages = entry["messages"]
    assert len(messages) == MAX_MESSAGES + 1
    assert messages[-1] == "line 104: 400 more messages not listed"
    assert all("invalid escape sequence" in m for m in messages[:-1])
    description = entry["error"]["description"]
    assert len(description) == MAX_MESSAGE_CHARS and description.endswith("...")
    assert description.startswith("task 'a' names downstream 'nnnn")
    assert entry["tasks"]["a"]["downstream"] == [long_name]  # data is never cut


# ---- the file's name -------------------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_refused_in_band_naming_it(tmp_path: Path) -> None:
    folder = os.fsencode(tmp_path)
    path = os.path.join(folder, b"dag_\xff.py")
    with open(path, "wb") as handle:
        handle.write(HEADER + b"class Named(Dag):\n    @task\n    def a(self, ctx): ...\n")
    entry = run_parse(path, tmp_path)  # stdout decoded as ASCII, parsed as strict JSON
    assert entry["mod"] == "" and entry["name"] == "dag_\ufffd"
    assert entry["file_path"] == f"{tmp_path}/dag_\ufffd.py"
    assert entry["error"] == {
        "file": f"{tmp_path}/dag_\ufffd.py",
        "line": 0,
        "description": f"cannot use {tmp_path}/dag_\\xff.py: its name is not valid UTF-8, so "
        "the JSON Gust reads cannot hold its path; rename the file",
    }
    json.dumps(entry, ensure_ascii=False).encode("utf-8")  # strict UTF-8 throughout
    # the library call (gust check, the harness store) knows the real path: it reads the file
    parsed = only(parse_file(os.fsdecode(path)))
    assert (parsed["mod"], parsed["name"], parsed["error"]) == ("Named", "dag_\ufffd", {})
    assert parsed["file_path"] == f"{tmp_path}/dag_\ufffd.py"
