"""The conformance suite's data and its pure parts: schemas, cases, vectors, matchers, record.

Everything here runs without a subprocess. Schema validation is ``jsonschema``'s (the
``conformance`` extra, also in the dev group); one test shows the one-line refusal without it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gust import protocol
from gust.conformance.cases import CaseError, Suite, load_case, load_cases
from gust.conformance.matchers import (
    PathError,
    compare_frame,
    format_path,
    json_equal,
    materialize,
    parse_path,
)
from gust.conformance.record import RecordError, transcript_from_exchange, write_transcript
from gust.conformance.schema import INSTALL_HINT, SchemaError, SchemaSet

SUITE = Suite(Path(__file__).resolve().parents[1] / "conformance")
SCHEMAS = SchemaSet(SUITE.schema_dir)
CASE_FILES = SUITE.case_files()


# -- schemas -----------------------------------------------------------------------------------

MESSAGE_SCHEMAS = {
    "start",
    "log",
    "call",
    "call-get_secret_by_name",
    "call-get_task_by_name_run",
    "reply",
    "reply-get_secret_by_name",
    "reply-get_task_by_name_run",
    "result",
    "result-success",
    "result-failure",
    "error",
    "c2h",
    "h2c",
    "transcript",
}


def test_every_message_has_a_schema_declaring_draft_2020_12() -> None:
    assert set(SCHEMAS.names()) == MESSAGE_SCHEMAS
    for name in SCHEMAS.names():
        assert SCHEMAS.by_name[name]["$schema"] == "https://json-schema.org/draft/2020-12/schema"


GOOD_C2H = [
    protocol.start_frame(4242),
    protocol.log_frame("hi", "warning"),
    protocol.log_frame("any level string is legal", "trace"),
    protocol.call_get_secret("TOKEN"),
    protocol.call_get_task("up", 7),
    protocol.call_get_task("up", "run-7"),
    protocol.result_success({"a": [1, None]}),
    protocol.result_success(None),
    protocol.result_failure("Task execution failed", type="ValueError", details="x", traceback="t"),
    protocol.result_failure("Dag 'X' not found in module"),
    protocol.error_frame("trace text"),
    {"type": "progress", "pct": 5},  # unknown types are legal (receivers ignore them)
    {**protocol.log_frame("extra keys are ignored"), "extra": True},
]

BAD_C2H = [
    ({"type": "start"}, "'pid'"),
    ({"type": "start", "pid": "42"}, "$.pid"),
    ({"type": "start", "pid": 0}, "$.pid"),
    ({"type": "log", "level": "info", "msg": 5}, "$.msg"),
    ({"type": "log", "msg": "no level"}, "'level'"),
    ({"type": "call", "op": "get_everything"}, "$.op"),
    ({"type": "call", "op": "get_task_by_name_run", "name": "x"}, "'run_id'"),
    ({"type": "call", "op": "get_secret_by_name"}, "'name'"),
    ({"type": "result", "ok": True}, "'data'"),
    ({"type": "result", "ok": True, "data": {}}, "'value'"),
    ({"type": "result", "ok": False, "error": "boom"}, "$.error"),
    ({"type": "result", "ok": False, "error": {"type": "X"}}, "'message'"),
    ({"type": "result", "ok": "yes", "data": {"value": 1}}, "$.ok"),
    ({"type": "error", "ok": False, "trace": {"lines": []}}, "$.trace"),
    ({"type": "error", "ok": True, "trace": "t"}, "$.ok"),
    ({"pid": 1}, "'type'"),
    ({"type": 7}, "$.type"),
]


@pytest.mark.parametrize("frame", GOOD_C2H, ids=lambda f: str(f.get("type")))
def test_child_frames_gust_sends_are_valid(frame: dict) -> None:
    assert SCHEMAS.check_c2h(frame) == []


@pytest.mark.parametrize(("frame", "where"), BAD_C2H, ids=lambda x: json.dumps(x)[:40])
def test_broken_child_frames_are_rejected_with_the_place(frame: dict, where: str) -> None:
    problems = SCHEMAS.check_c2h(frame)
    assert problems, frame
    assert any(where in p for p in problems), problems


def test_replies_are_checked_against_the_call_they_answer() -> None:
    secret = protocol.reply_ok({"id": 1, "name": "T", "value_type": "string", "value": "v"})
    upstream = protocol.reply_ok({"id": "t-1", "result": {"rows": 3}})
    schemas = SCHEMAS
    assert schemas.check_h2c(secret, "get_secret_by_name") == []
    assert schemas.check_h2c(upstream, "get_task_by_name_run") == []
    assert schemas.check_h2c(protocol.reply_error("secret_not_found")) == []
    # Gust's shape is strict about data: the wrong shape of a broken host is caught.
    assert schemas.check_h2c(protocol.reply_ok({"secret": "v"}), "get_secret_by_name") == [
        "$.data: 'id' is a required property",
        "$.data: 'name' is a required property",
        "$.data: 'value_type' is a required property",
        "$.data: 'value' is a required property",
    ]
    assert schemas.check_h2c(upstream, "get_secret_by_name")
    assert schemas.check_h2c(protocol.reply_ok({"id": 1, "result": [1]}), "get_task_by_name_run")
    assert schemas.check_h2c({"type": "reply", "ok": True})  # no data
    assert schemas.check_h2c({"type": "reply", "ok": False, "error": 3})
    assert schemas.check_h2c({"type": "answer", "ok": True, "data": 1})


def test_a_schema_that_is_not_draft_2020_12_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.schema.json").write_text(json.dumps({"$id": "urn:x", "type": "strnig"}))
    with pytest.raises(SchemaError, match=r"x\.schema\.json: not a valid draft 2020-12 schema"):
        SchemaSet(tmp_path)


def test_schema_set_names_a_broken_file(tmp_path: Path) -> None:
    (tmp_path / "bad.schema.json").write_text("{not json")
    with pytest.raises(SchemaError, match=r"bad\.schema\.json"):
        SchemaSet(tmp_path)
    (tmp_path / "bad.schema.json").write_text('{"type": "object"}')
    with pytest.raises(SchemaError, match=r"\$id"):
        SchemaSet(tmp_path)


def test_without_the_extra_the_runner_says_how_to_install_it_in_one_line() -> None:
    # jsonschema made unimportable, as in an environment without the `conformance` extra.
    hide = (
        "import sys, runpy; sys.modules['jsonschema'] = None; "
        "sys.argv = ['python -m gust.conformance', 'validate']; "
        "runpy.run_module('gust.conformance', run_name='__main__')"
    )
    proc = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "Error: the conformance runner needs the 'conformance' extra (jsonschema): " + INSTALL_HINT
    ]
    assert "uv sync --extra conformance" in INSTALL_HINT
    assert "pip install 'gust-py[conformance]'" in INSTALL_HINT


# -- transcripts ---------------------------------------------------------------------------------

REQUIRED_CASES = {
    "y_success",
    "y_task_failure",
    "n_ctx_not_json",
    "n_ctx_not_object",
    "n_module_fails_to_load",
    "n_dag_not_found",
    "n_task_not_found",
    "n_task_not_callable",
    "y_secret_found",
    "y_secret_not_found",
    "y_upstream_found",
    "y_upstream_not_found",
    "n_host_closes_stdin_during_call",
    "y_every_log_level",
    "y_printed_output",
    "y_nan_result",
    "y_datetime_result",
    "y_huge_log_line",
    "y_non_ascii_and_surrogates",
    "y_mapped_ctx_params",
    "y_run_done_ok",
    "y_run_done_failure",
    "n_child_garbage",
    "n_child_oversize_header",
    "n_child_eof_mid_frame",
    "n_child_exit_without_result",
}


def test_at_once_is_one_number_in_every_case_that_asks_for_a_kill() -> None:
    from gust.conformance.host_mode import KILL_WITHIN

    kills = {c.name: c.kill for c in load_cases(SUITE, SCHEMAS) if c.kill is not None}
    assert set(kills) == {
        "n_child_garbage",
        "n_child_oversize_header",
        "n_child_hangs_past_timeout",
    }
    assert {k["within"] for k in kills.values()} == {KILL_WITHIN}
    assert f"**within {KILL_WITHIN:g} s**" in (SUITE.root / "README.md").read_text(encoding="utf-8")


def test_the_cases_the_issue_requires_exist() -> None:
    names = {p.stem for p in CASE_FILES}
    assert names >= REQUIRED_CASES, REQUIRED_CASES - names


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.stem)
def test_every_transcript_is_valid_against_the_transcript_schema(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert SCHEMAS.validate("transcript", data) == []
    assert SCHEMAS.validate("transcript", data) == []
    case = load_case(path, SCHEMAS, SUITE.dags_dir)
    assert case.name == path.stem
    assert case.dag_file.is_file()


def test_the_readme_lists_every_case() -> None:
    readme = (SUITE.root / "README.md").read_text(encoding="utf-8")
    missing = [p.stem for p in CASE_FILES if f"`{p.stem}`" not in readme]
    assert not missing, f"conformance/README.md does not mention {missing}"


def test_every_case_has_a_role_and_both_modes_have_cases() -> None:
    cases = load_cases(SUITE, SCHEMAS)
    runtime = {c.name for c in cases if "runtime" in c.roles}
    host = {c.name for c in cases if "host" in c.roles}
    assert runtime | host == {c.name for c in cases}
    assert {"y_success", "y_run_done_ok", "n_ctx_not_json"} <= runtime
    assert {"y_success", "n_child_garbage", "y_secret_found"} <= host
    # the log levels gust produces all appear in the golden frames
    levels = {
        s.frame["level"]
        for c in cases
        for s in c.steps
        if s.frame is not None and s.frame.get("type") == "log"
    }
    assert set(protocol.LOG_LEVELS) <= levels


def test_failure_cases_send_error_before_result() -> None:
    for case in load_cases(SUITE, SCHEMAS, role="runtime"):
        types = [s.frame.get("type") for s in case.steps if s.dir == "c2h" and s.frame]
        if case.subcommand != "task run":
            continue
        assert types[0] == "start", case.name
        assert types[-1] == "result", case.name
        final = [s.frame for s in case.steps if s.frame and s.frame.get("type") == "result"][-1]
        if final["ok"] is False:
            assert types[-2] == "error", case.name


def _write_case(tmp_path: Path, data: dict) -> Path:
    (tmp_path / "dags").mkdir(exist_ok=True)
    shutil.copy(SUITE.dags_dir / "basics.py", tmp_path / "dags" / "basics.py")
    path = tmp_path / f"{data['name']}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _base_case(**changes: object) -> dict:
    data = json.loads((SUITE.transcripts_dir / "y_secret_found.json").read_text("utf-8"))
    data["dag"] = "basics.py"
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "y_other"}, "must equal the file's stem"),
        ({"roles": []}, "not a valid transcript"),
        ({"dag": "missing.py"}, "no DAG file"),
        ({"argv": ["task", "start"]}, "must start with"),
        ({"exit": []}, "not a valid transcript"),
    ],
)
def test_a_malformed_case_names_the_file_and_the_problem(
    tmp_path: Path, change: dict, message: str
) -> None:
    data = _base_case(**change)
    path = _write_case(tmp_path, {**data, "name": "y_secret_found"})
    if "name" in change:
        path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CaseError, match=message) as info:
        load_case(path, SCHEMAS, tmp_path / "dags")
    assert str(path) in str(info.value)


def test_step_problems_name_the_step(tmp_path: Path) -> None:
    data = _base_case()
    data["steps"][0]["match"] = {"$.pid[": {"pid": True}}
    path = _write_case(tmp_path, data)
    with pytest.raises(CaseError, match=r"not a valid transcript: \$\.steps\[0\]\.match"):
        load_case(path, SCHEMAS, tmp_path / "dags")
    data = _base_case()
    data["steps"][0]["match"] = {"$.nothing": {"any": True}}
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CaseError, match=r"steps\[0\]: matcher path \$\.nothing names nothing"):
        load_case(path, SCHEMAS, tmp_path / "dags")
    data = _base_case()
    data["steps"][1], data["steps"][2] = data["steps"][2], data["steps"][1]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CaseError, match=r"steps\[1\]: a host frame that answers no call"):
        load_case(path, SCHEMAS, tmp_path / "dags")
    data = _base_case()
    data["steps"][2]["frame"]["data"] = {"secret": "v"}
    del data["steps"][2]["match"]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CaseError, match=r"not a valid reply to get_secret_by_name"):
        load_case(path, SCHEMAS, tmp_path / "dags")
    data = _base_case()
    data["steps"][3]["match"] = {"$.msg": {"regex": "^nope$"}}
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CaseError, match=r"the example breaks its own matcher"):
        load_case(path, SCHEMAS, tmp_path / "dags")
    data = _base_case()
    data["steps"].insert(1, {"dir": "c2h", "raw": "00"})
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CaseError, match=r"never expected to write raw bytes"):
        load_case(path, SCHEMAS, tmp_path / "dags")


def test_a_frame_breaking_the_message_schema_breaks_the_transcript(tmp_path: Path) -> None:
    data = _base_case()
    data["steps"][3]["frame"]["msg"] = ["not", "a", "string"]
    path = _write_case(tmp_path, data)
    with pytest.raises(CaseError, match=r"\$\.steps\[3\]"):
        load_case(path, SCHEMAS, tmp_path / "dags")


# -- vectors -------------------------------------------------------------------------------------

VECTORS = json.loads(SUITE.vectors_file.read_text(encoding="utf-8"))


def _decode_all(data: bytes, max_size: int) -> tuple[list[dict], str | None]:
    decoder = protocol.FrameDecoder(max_size)
    frames: list[dict] = []
    try:
        decoder.feed(data)
        while (frame := decoder.next_frame()) is not None:
            frames.append(frame)
        decoder.eof()
    except protocol.ProtocolError as exc:
        return frames, exc.code
    return frames, None


@pytest.mark.parametrize("vector", VECTORS["valid"] + VECTORS["invalid"], ids=lambda v: v["name"])
def test_our_codec_meets_every_vector(vector: dict) -> None:
    limit = vector.get("max_frame_size", VECTORS["default_max_frame_size"])
    frames, error = _decode_all(bytes.fromhex(vector["hex"]), limit)
    assert error == vector.get("error")
    assert json_equal(frames, vector["frames"])


def test_vectors_name_every_protocol_error_and_only_those() -> None:
    assert VECTORS["error_names"] == list(protocol.ERROR_CODES)
    assert VECTORS["default_max_frame_size"] == protocol.DEFAULT_MAX_FRAME_SIZE
    assert {v["error"] for v in VECTORS["invalid"]} == set(protocol.ERROR_CODES)
    assert len({v["name"] for v in VECTORS["valid"] + VECTORS["invalid"]}) == len(
        VECTORS["valid"]
    ) + len(VECTORS["invalid"])


def test_valid_vectors_of_single_frames_are_what_our_encoder_writes() -> None:
    # Our encoder's own bytes (compact, raw UTF-8) appear verbatim where the vector says so.
    by_name = {v["name"]: v for v in VECTORS["valid"]}
    for name in ("start_frame", "two_byte_length", "three_byte_length"):
        vector = by_name[name]
        assert protocol.encode_frame(vector["frames"][0]).hex() == vector["hex"]


# -- matchers ------------------------------------------------------------------------------------


def test_paths_parse_and_format_round_trip() -> None:
    for text, steps in [
        ("$.a", ("a",)),
        ("$.error.traceback", ("error", "traceback")),
        ("$.more[2]", ("more", 2)),
        ("$['odd key'][0].x", ("odd key", 0, "x")),
    ]:
        assert parse_path(text) == steps
        assert parse_path(format_path(steps)) == steps
    for bad in ("a.b", "$.", "$[x]", "$..a", "$.a[-1]"):
        with pytest.raises(PathError):
            parse_path(bad)


def test_compare_frame_reports_the_first_difference_with_its_path() -> None:
    expected = {"type": "result", "ok": True, "data": {"value": {"rows": [1, 2]}}}
    assert compare_frame(expected, json.loads(json.dumps(expected))) is None
    extra = {**expected, "more": 1}
    assert compare_frame(expected, extra) is None  # unknown keys are ignored
    diff = compare_frame(expected, {**expected, "data": {"value": {"rows": [1, 3]}}})
    assert str(diff) == "$.data.value.rows[1]: expected 2, got 3"
    diff = compare_frame(expected, {"type": "result", "ok": True})
    assert str(diff).startswith("$.data: missing")
    assert compare_frame({"ok": True}, {"ok": 1}) is not None  # booleans are not numbers
    assert compare_frame({"n": 1000}, {"n": 1e3}) is None
    diff = compare_frame({"a": [1]}, {"a": [1, 2]})
    assert str(diff) == "$.a: expected 1 items, got 2"


def test_each_matcher_kind() -> None:
    frame = {"type": "start", "pid": 10, "msg": "took 3 s", "id": "x"}
    m = {
        ("pid",): {"pid": True},
        ("msg",): {"regex": "^took [0-9]+ s$"},
        ("id",): {"type": ["integer", "string"]},
        ("gone",): {"any": True, "optional": True},
    }
    assert compare_frame({**frame, "gone": 1}, frame, m, pid=10) is None
    assert "real pid 10" in str(compare_frame(frame, {**frame, "pid": 11}, m, pid=10))
    assert compare_frame(frame, {**frame, "pid": 11}, m, pid=lambda p: p in (10, 11)) is None
    assert "matching" in str(compare_frame(frame, {**frame, "msg": "took long"}, m, pid=10))
    assert "expected type integer or string" in str(
        compare_frame(frame, {**frame, "id": 1.5}, m, pid=10)
    )
    required = {("msg",): {"any": True}}
    assert "missing" in str(compare_frame(frame, {"type": "start"}, required))


def test_materialize_puts_the_real_pid_in() -> None:
    example = {"type": "start", "pid": 4242}
    sent = materialize(example, {("pid",): {"pid": True}}, 999)
    assert sent == {"type": "start", "pid": 999}
    assert example["pid"] == 4242


# -- record --------------------------------------------------------------------------------------


def _events(*frames: tuple[str, dict]) -> list[dict]:
    return [{"dir": d, "frame": f} for d, f in frames]


def test_record_loosens_what_varies_and_keeps_the_rest(tmp_path: Path) -> None:
    copy = "/tmp/gust_py_dag_12_basics.py"
    events = _events(
        ("c2h", {"type": "start", "pid": 31337}),
        ("c2h", protocol.log_frame(f"loading {copy} in 31337")),
        ("c2h", protocol.call_get_secret("T")),
        ("h2c", protocol.reply_ok({"id": 9, "name": "T", "value_type": "string", "value": "v"})),
        ("c2h", protocol.error_frame(f"Failed to load module from {copy}: boom\n\nTraceback")),
        (
            "c2h",
            protocol.result_failure(
                f"Failed to load module from {copy}",
                type="RuntimeError",
                details="boom",
                traceback="Traceback ...",
            ),
        ),
    )
    events.append({"dir": "h2c", "eof": True})  # after the result: not part of the exchange
    argv = ["uv", "run", "gust", "task", "run", "--file", copy, "--dag", "Basics", "--task", "t"]
    t = transcript_from_exchange(
        "import boom", str(SUITE.dags_dir / "basics.py"), argv, events, 0, ""
    )
    assert t["name"] == "y_import_boom"
    assert t["dag"] == "basics.py"
    assert t["argv"][:4] == ["task", "run", "--file", "{dag_file}"]
    assert t["roles"] == ["runtime", "host"]
    assert t["outcome"] == "failed"
    assert t["stderr"] == {"empty": True}
    steps = t["steps"]
    assert len(steps) == 6 and all("eof" not in s for s in steps)
    assert steps[0]["match"] == {"$.pid": {"pid": True}}
    assert steps[1]["match"]["$.msg"]["regex"] == "^loading .+? in .+?$"
    assert steps[3]["match"] == {"$.data.id": {"type": ["integer", "string"]}}
    assert steps[4]["match"]["$.trace"]["regex"] == "^Failed to load module from .+?"
    assert steps[5]["match"]["$.error.message"] == {"regex": "^Failed to load module from .+?$"}
    assert steps[5]["match"]["$.error.traceback"] == {"type": "string", "optional": True}
    assert "$.error.details" not in steps[5]["match"]
    path = write_transcript(t, tmp_path)
    case = load_case(path, SCHEMAS, SUITE.dags_dir)  # a recorded case is a valid case
    assert case.name == "y_import_boom"


def test_record_keeps_the_host_ending_a_broken_child_and_names_it_n() -> None:
    events = [
        {"dir": "c2h", "frame": {"type": "start", "pid": 5}},
        {"dir": "c2h", "raw": "04000001" + "7b"},
        {"dir": "h2c", "eof": True},
    ]
    argv = ["task", "run", "--file", "x.py", "--dag", "D", "--task", "t"]
    t = transcript_from_exchange("garbage", "/abs/x.py", argv, events, -9, "")
    assert t["name"] == "n_garbage"
    assert t["roles"] == ["host"]
    assert t["steps"][-1] == {"dir": "h2c", "eof": True}
    assert t["exit"] == [-9]
    assert t["dag"] == "/abs/x.py"
    # a child that merely exits mid-frame: the host's stdin close is not a step
    events[1] = {"dir": "c2h", "raw": "00000064" + "7b"}
    t = transcript_from_exchange("cut", "/abs/x.py", argv, events, 0, "")
    assert t["steps"][-1]["dir"] == "c2h"


def test_record_of_run_done_and_its_errors() -> None:
    argv = ["python", "-m", "gust", "run", "done", "--file=/t/x.py", "--dag", "x"]
    t = transcript_from_exchange(
        "cb", "/t/x.py", argv, [], 1, "Traceback (most recent call last):\n..."
    )
    assert t["argv"][2] == "--file={dag_file}"
    assert t["roles"] == ["runtime"]
    assert t["outcome"] == "failed"
    assert t["stderr"] == {"regex": "Traceback \\(most recent call last\\)"}
    with pytest.raises(RecordError, match="no gust subcommand"):
        transcript_from_exchange("x", "/t/x.py", ["python", "foo"], [], 0, "")
    with pytest.raises(RecordError, match="event 0"):
        transcript_from_exchange("x", "/t/x.py", argv, [{"dir": "sideways"}], 0, "")
    with pytest.raises(RecordError, match="only h2c may carry eof"):
        transcript_from_exchange("x", "/t/x.py", argv, [{"dir": "c2h", "eof": True}], 0, "")
