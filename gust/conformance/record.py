"""Turn one recorded host/child exchange into a conformance case that replays green.

Theory of operation: a host (``python -m gust.harness --record DIR``) keeps every event of a
task's conversation in wire order and hands them to :func:`transcript_from_exchange`. The
concrete frames become the case's steps as they are; what legitimately varies from one run to
the next is loosened with matchers, so the same runtime and host replay the case green:

- the ``start`` pid becomes a ``pid`` matcher (the child's real pid);
- the DAG file's path (Gust and the harness run a temp copy) becomes ``{dag_file}`` in argv, and
  any string holding that path, the DAG's folder, the child's pid or a memory address
  (``0x7f...``) becomes an anchored ``regex`` matcher with those parts left open;
- an ``error`` frame's ``trace`` must start with the failure's message (a ``regex``), a
  failure's ``traceback`` is an optional string (it is a Python detail);
- the ``id`` in a reply's ``data`` is matched by type (a host's database id);
- closing stdin after the conversation ended is dropped (every host does it, at its own
  moment); closing it while the child is still talking, or after a stream the host could see was
  broken, stays a step.

The case is named ``y_*`` when the exchange is well formed and ``n_*`` when it holds a fault
(bytes that are no frame, no final ``result``, the host closing stdin early). Anything else in
the task's output that changes between runs (a timestamp in a log line) is the DAG's business:
the recorded case will show it as a difference.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from gust.conformance.resources import SuiteNotOnDiskError, suite_root
from gust.protocol import FrameDecoder, ProtocolError, encode_frame

__all__ = [
    "RecordError",
    "transcript_from_exchange",
    "write_transcript",
]


_SUBCOMMANDS = (("task", "run"), ("run", "done"), ("parse",))
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
_REGEX_SPECIAL = set(".^$*+?()[]{}|\\/")


class RecordError(ValueError):
    """The exchange handed to the recorder cannot be described as a case."""


def _escape(text: str) -> str:
    # A portable escape (PCRE, RE2, Python and Go agree on it): metacharacters get a backslash,
    # control characters their usual escapes.
    out = []
    for ch in text:
        if ch in _REGEX_SPECIAL:
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        else:
            out.append(ch)
    return "".join(out)


class _Loosener:
    """Finds the parts of a string that change between runs and writes a regex around them."""

    def __init__(self, variables: list[str], pid: int | None) -> None:
        # Longest first, so a file path wins over the folder it sits in.
        alternatives = [re.escape(v) for v in sorted(set(variables), key=len, reverse=True)]
        alternatives.append(_ADDRESS.pattern)
        if pid is not None:
            alternatives.append(rf"(?<![0-9]){pid}(?![0-9])")
        self._pattern = re.compile("|".join(alternatives))

    def regex(self, text: str, *, prefix_only: bool = False) -> str | None:
        """An anchored regex matching ``text`` with its varying parts open, or ``None``."""
        pieces: list[str] = []
        pos = 0
        found = False
        for m in self._pattern.finditer(text):
            found = True
            pieces.append(_escape(text[pos : m.start()]))
            pieces.append("0x[0-9a-fA-F]+" if _ADDRESS.fullmatch(m.group()) else ".+?")
            pos = m.end()
        if not found and not prefix_only:
            return None
        pieces.append(_escape(text[pos:]))
        return "^" + "".join(pieces) + ("" if prefix_only else "$")


def _strip_command(argv: list[str]) -> list[str]:
    for i in range(len(argv)):
        for sub in _SUBCOMMANDS:
            if tuple(argv[i : i + len(sub)]) == sub:
                return list(argv[i:])
    raise RecordError(f"argv {argv!r} holds no gust subcommand ('task run', 'run done' or 'parse')")


def _replace_file(argv: list[str]) -> tuple[list[str], str | None]:
    out = list(argv)
    for i, arg in enumerate(out):
        if arg == "--file" and i + 1 < len(out):
            value = out[i + 1]
            out[i + 1] = "{dag_file}"
            return out, value
        if arg.startswith("--file="):
            out[i] = "--file={dag_file}"
            return out, arg[len("--file=") :]
    return out, None


def _path_variants(path: str | None) -> list[str]:
    if not path:
        return []
    variants = {path, os.path.abspath(path), os.path.realpath(path)}
    for p in list(variants):
        folder = os.path.dirname(p)
        if len(folder) > 1:
            variants.add(folder)
    return [v for v in variants if len(v) > 1]


def _string_matchers(
    value: Any, path: str, loosener: _Loosener, out: dict[str, dict[str, Any]]
) -> None:
    if isinstance(value, str):
        regex = loosener.regex(value)
        if regex is not None:
            out[path] = {"regex": regex}
    elif isinstance(value, dict):
        for key, sub in value.items():
            step = f".{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else None
            if step is None:
                if "'" in key:
                    continue  # not expressible in the JSONPath subset: left to equality
                step = f"['{key}']"
            _string_matchers(sub, path + step, loosener, out)
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            _string_matchers(sub, f"{path}[{i}]", loosener, out)


def _check_events(events: list[dict[str, Any]]) -> None:
    for i, event in enumerate(events):
        if not isinstance(event, dict) or event.get("dir") not in ("c2h", "h2c"):
            raise RecordError(f"event {i}: needs dir 'c2h' or 'h2c', got {event!r:.200}")
        kinds = [k for k in ("frame", "raw", "eof") if k in event]
        if len(kinds) != 1:
            raise RecordError(f"event {i}: needs exactly one of frame, raw, eof; got {kinds}")
        if "frame" in event and not isinstance(event["frame"], dict):
            raise RecordError(f"event {i}: frame must be a JSON object")
        if "raw" in event:
            try:
                bytes.fromhex(event["raw"])
            except (TypeError, ValueError):
                raise RecordError(f"event {i}: raw must be hex text") from None
        if "eof" in event and (event["dir"] != "h2c" or event["eof"] is not True):
            raise RecordError(f"event {i}: only h2c may carry eof, and it must be true")


def _stream_broken_now(c2h_bytes: bytes) -> bool:
    """Whether a host can see the child's stream is broken without waiting for its end."""
    decoder = FrameDecoder()
    decoder.feed(c2h_bytes)
    try:
        while decoder.next_frame() is not None:
            pass
    except ProtocolError:
        return True
    return False


def _name(name: str, well_formed: bool) -> str:
    clean = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "recorded"
    if re.match(r"[yn]_", clean):
        return clean
    return ("y_" if well_formed else "n_") + clean


def _dag_reference(dag_file: str) -> str:
    # A DAG of the suite itself is named relative to its dags/ folder, as the suite's cases are.
    path = Path(dag_file).resolve()
    try:
        return path.relative_to((suite_root() / "dags").resolve()).as_posix()
    except (ValueError, SuiteNotOnDiskError):
        return str(path)


def transcript_from_exchange(
    name: str,
    dag_file: str,
    argv: list[str],
    events: list[dict[str, Any]],
    exit_code: int | None,
    stderr: str,
) -> dict[str, Any]:
    """Describe one recorded exchange as a conformance case.

    Args:
        name: the case's name; ``y_``/``n_`` is added when missing, other characters are
            folded to ``[a-z0-9_]``.
        dag_file: the original DAG file (not the temp copy the child ran).
        argv: the child's command line; anything before the gust subcommand (``python -m
            gust``, ``uv run gust``) is dropped and the ``--file`` value becomes ``{dag_file}``.
        events: the exchange in wire order: ``{"dir": "c2h"|"h2c", "frame": {...}}``,
            ``{"dir": "c2h"|"h2c", "raw": "<hex>"}`` for bytes that did not decode, and
            ``{"dir": "h2c", "eof": true}`` when the host closed the child's stdin.
        exit_code: the child's exit status (negative: killed by that signal; ``None``: unknown).
        stderr: the child's stderr text.

    Returns:
        A case in the format of ``conformance/schema/transcript.schema.json``.

    Raises:
        RecordError: argv names no gust subcommand or an event is malformed.
    """
    _check_events(events)
    argv = _strip_command([str(a) for a in argv])
    argv, copy_path = _replace_file(argv)
    is_task = argv[:2] == ["task", "run"]

    c2h_frames = [e["frame"] for e in events if e["dir"] == "c2h" and "frame" in e]
    pid = next(
        (
            f["pid"]
            for f in c2h_frames
            if f.get("type") == "start" and isinstance(f.get("pid"), int)
        ),
        None,
    )
    final = c2h_frames[-1] if c2h_frames and c2h_frames[-1].get("type") == "result" else None
    failure_message = None
    if final is not None and final.get("ok") is False and isinstance(final.get("error"), dict):
        message = final["error"].get("message")
        failure_message = message if isinstance(message, str) else None

    loosener = _Loosener(_path_variants(copy_path) + _path_variants(dag_file), pid)
    last_c2h = max((i for i, e in enumerate(events) if e["dir"] == "c2h"), default=-1)

    steps: list[dict[str, Any]] = []
    c2h_bytes = bytearray()
    pending_ops: list[str] = []
    early_eof = False
    for index, event in enumerate(events):
        if "eof" in event:
            if index > last_c2h and not _stream_broken_now(bytes(c2h_bytes)):
                continue  # stdin closed after the conversation: not part of the protocol
            early_eof = early_eof or index < last_c2h
            steps.append({"dir": "h2c", "eof": True})
            continue
        if "raw" in event:
            raw = event["raw"].lower()
            if event["dir"] == "c2h":
                c2h_bytes += bytes.fromhex(raw)
            steps.append({"dir": event["dir"], "raw": raw})
            continue
        frame = event["frame"]
        match: dict[str, dict[str, Any]] = {}
        if event["dir"] == "c2h":
            c2h_bytes += encode_frame(frame)
            kind = frame.get("type")
            _string_matchers(frame, "$", loosener, match)
            if kind == "start" and isinstance(frame.get("pid"), int):
                match["$.pid"] = {"pid": True}
            elif kind == "call":
                pending_ops.append(str(frame.get("op")))
            elif kind == "error" and isinstance(frame.get("trace"), str):
                if failure_message is not None and frame["trace"].startswith(failure_message):
                    prefix = loosener.regex(failure_message, prefix_only=True)
                    match["$.trace"] = {"regex": prefix}
                else:
                    match["$.trace"] = {"type": "string"}
            elif (
                kind == "result"
                and isinstance(frame.get("error"), dict)
                and isinstance(frame["error"].get("traceback"), str)
            ):
                match["$.error.traceback"] = {"type": "string", "optional": True}
        else:
            op = pending_ops.pop(0) if pending_ops else None
            data = frame.get("data")
            if (
                op in ("get_secret_by_name", "get_task_by_name_run")
                and frame.get("ok") is True
                and isinstance(data, dict)
                and "id" in data
            ):
                match["$.data.id"] = {"type": ["integer", "string"]}
        step: dict[str, Any] = {"dir": event["dir"], "frame": frame}
        if match:
            step["match"] = dict(sorted(match.items()))
        steps.append(step)

    has_raw = any("raw" in s for s in steps)
    if is_task:
        outcome = "ok" if final is not None and final.get("ok") is True else "failed"
        well_formed = final is not None and not has_raw and not early_eof
    else:
        outcome = "ok" if exit_code == 0 else "failed"
        well_formed = not has_raw and not early_eof

    if not stderr.strip():
        stderr_rule: dict[str, Any] = {"empty": True}
    elif exit_code not in (0, None) and "Traceback (most recent call last)" in stderr:
        stderr_rule = {"regex": "Traceback \\(most recent call last\\)"}
    else:
        stderr_rule = {"any": True}

    if not is_task:
        roles = ["runtime"]
    elif any(s["dir"] == "c2h" and "raw" in s for s in steps):
        roles = ["host"]
    else:
        roles = ["runtime", "host"]

    subject = " ".join(argv[:2]) if is_task or argv[:2] == ["run", "done"] else argv[0]
    return {
        "name": _name(name, well_formed),
        "description": f"Recorded `gust {subject}` exchange of {os.path.basename(dag_file)}.",
        "roles": roles,
        "dag": _dag_reference(dag_file),
        "argv": argv,
        "steps": steps,
        "exit": None if exit_code is None else [exit_code],
        "stderr": stderr_rule,
        "outcome": outcome,
    }


def write_transcript(transcript: dict[str, Any], directory: str | os.PathLike[str]) -> Path:
    """Write ``transcript`` as ``DIRECTORY/<name>.json`` (indented, UTF-8) and return the path."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{transcript['name']}.json"
    try:
        text = json.dumps(transcript, ensure_ascii=False, indent=2) + "\n"
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in a frame: keep it as a JSON escape
        data = (json.dumps(transcript, ensure_ascii=True, indent=2) + "\n").encode("ascii")
    path.write_bytes(data)
    return path
