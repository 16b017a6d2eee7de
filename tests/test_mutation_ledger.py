"""The mutation run's ledger (tests/_mutation/run.py): verdicts kept in git survive a fresh
clone, never overwrite a newer run's, and the score counts what was not run apart."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from _host import REPO


def load_run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_run", REPO / "tests/_mutation/run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_meta(root: Path, module: str, codes: dict[str, int | None]) -> Path:
    path = root / f"{module}.meta"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"exit_code_by_key": codes, "hash_by_function_name": {}}))
    return path


def test_the_ledger_round_trips_and_a_restore_keeps_newer_verdicts(tmp_path: Path) -> None:
    run = load_run()
    mutants, ledger = tmp_path / "mutants", tmp_path / "ledger"
    write_meta(mutants, "gust/calls.py", {"gust.calls.x_log__mutmut_1": 1})
    write_meta(mutants, "gust/harness/run.py", {"gust.harness.run.x_a__mutmut_1": None})
    assert run.save_ledger(mutants, ledger) == 2
    fresh = tmp_path / "fresh"
    assert run.restore_ledger(fresh, ledger) == 2
    saved = json.loads((fresh / "gust/harness/run.py.meta").read_text())
    assert saved["exit_code_by_key"] == {"gust.harness.run.x_a__mutmut_1": None}
    write_meta(fresh, "gust/calls.py", {"gust.calls.x_log__mutmut_1": 0})  # a newer run's
    assert run.restore_ledger(fresh, ledger) == 0
    newer = json.loads((fresh / "gust/calls.py.meta").read_text())
    assert newer["exit_code_by_key"] == {"gust.calls.x_log__mutmut_1": 0}


def test_a_kill_a_sweep_saw_counts_where_mutmut_saw_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = load_run()
    mutants, ledger = tmp_path / "mutants", tmp_path / "ledger"
    codes = {"gust.m.x_f__mutmut_1": 0, "gust.m.x_f__mutmut_2": 0, "gust.m.x_f__mutmut_3": None}
    write_meta(mutants, "gust/m.py", codes)
    (mutants / "sweep").mkdir()
    sweep = {"gust.m.x_f__mutmut_1": "tests/test_m.py::test_fork", "gust.m.x_f__mutmut_2": None}
    (mutants / "sweep" / "gust.m.py.only.json").write_text(json.dumps(sweep))
    run.save_ledger(mutants, ledger)
    saved = json.loads((ledger / "gust/m.py.meta").read_text())["exit_code_by_key"]
    assert saved == {
        "gust.m.x_f__mutmut_1": 1,
        "gust.m.x_f__mutmut_2": 0,
        "gust.m.x_f__mutmut_3": None,
    }
    assert run.score(mutants) == 2  # the score of a live run counts it the same way
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["gust/m.py", "1", "1", "1", "3"]  # killed, other, not run, total


def test_the_score_lists_every_mutant_not_killed_and_counts_those_not_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = load_run()
    codes = {
        "m.x_f__mutmut_1": 1,
        "m.x_f__mutmut_2": 0,
        "m.x_f__mutmut_3": None,
        "m.x_f__mutmut_4": 36,
    }
    write_meta(tmp_path, "gust/m.py", codes)
    assert run.score(tmp_path) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["gust/m.py", "2", "1", "1", "4"]  # killed, other, not run, total
    assert [line.split() for line in out[3:]] == [["survived", "m.x_f__mutmut_2"]]
    write_meta(tmp_path, "gust/m.py", {"m.x_f__mutmut_1": 1})
    assert run.score(tmp_path) == 0
    assert run.score(tmp_path / "nothing") == 1
