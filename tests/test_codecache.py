"""The private code cache of DAG files loaded from untrusted folders (gust._codecache)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gust import _codecache

SOURCE = b"def f():\n    raise ValueError('x')\nVALUE = 41 + 1\n"


def compile_counted(calls: list[str]):
    def compile_source(source: bytes, path: str):
        calls.append(path)
        return compile(source, path, "exec")

    return compile_source


def test_the_second_load_comes_from_the_cache_with_the_new_file_name(tmp_path, monkeypatch):
    monkeypatch.setenv("GUST_CODE_CACHE", str(tmp_path / "cache"))
    calls: list[str] = []
    first = _codecache.load(SOURCE, "/tmp/gust_py_dag_1_x.py", compile_counted(calls))
    second = _codecache.load(SOURCE, "/tmp/gust_py_dag_2_x.py", compile_counted(calls))
    assert calls == ["/tmp/gust_py_dag_1_x.py"]  # compiled once
    assert second.co_filename == "/tmp/gust_py_dag_2_x.py"
    ns: dict = {}
    exec(second, ns)
    assert ns["VALUE"] == 42
    assert ns["f"].__code__.co_filename == "/tmp/gust_py_dag_2_x.py"  # nested code too
    assert first.co_filename == "/tmp/gust_py_dag_1_x.py"
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700


def test_a_changed_source_is_a_new_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("GUST_CODE_CACHE", str(tmp_path / "cache"))
    calls: list[str] = []
    _codecache.load(SOURCE, "a.py", compile_counted(calls))
    code = _codecache.load(SOURCE.replace(b"41", b"1"), "a.py", compile_counted(calls))
    ns: dict = {}
    exec(code, ns)
    assert (len(calls), ns["VALUE"]) == (2, 2)


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777])
def test_a_folder_others_can_write_is_never_used(tmp_path, monkeypatch, mode):
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(mode)
    monkeypatch.setenv("GUST_CODE_CACHE", str(folder))
    assert _codecache.cache_dir() is None
    calls: list[str] = []
    _codecache.load(SOURCE, "a.py", compile_counted(calls))
    _codecache.load(SOURCE, "a.py", compile_counted(calls))
    assert len(calls) == 2 and list(folder.iterdir()) == []


def test_a_symlinked_folder_or_entry_is_not_trusted(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    monkeypatch.setenv("GUST_CODE_CACHE", str(link))
    assert _codecache.cache_dir() is None
    monkeypatch.setenv("GUST_CODE_CACHE", str(real))
    calls: list[str] = []
    _codecache.load(SOURCE, "a.py", compile_counted(calls))
    (entry,) = real.iterdir()
    planted = tmp_path / "planted"
    planted.write_bytes(entry.read_bytes())
    entry.unlink()
    entry.symlink_to(planted)
    _codecache.load(SOURCE, "a.py", compile_counted(calls))
    assert len(calls) == 2  # the symlinked entry was not read


def test_a_broken_entry_is_recompiled_and_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("GUST_CODE_CACHE", str(tmp_path))
    os.chmod(tmp_path, 0o700)
    calls: list[str] = []
    _codecache.load(SOURCE, "a.py", compile_counted(calls))
    (entry,) = tmp_path.iterdir()
    entry.write_bytes(entry.read_bytes()[:30])
    code = _codecache.load(SOURCE, "a.py", compile_counted(calls))
    assert len(calls) == 2
    ns: dict = {}
    exec(code, ns)
    assert ns["VALUE"] == 42
    assert len(list(Path(tmp_path).iterdir())) == 1


def test_the_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("GUST_CODE_CACHE", "off")
    assert _codecache.cache_dir() is None


@pytest.mark.timeout(60)
def test_tasks_run_from_temp_copies_share_one_entry_and_name_their_own_copy(tmp_path):
    from _host import task_run

    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    cache = tmp_path / "cache"
    source = (
        "from gust import Dag, task\n\nclass D(Dag):\n    @task\n    def boom(self, ctx):\n"
        "        raise ValueError('boom')\n"
    )
    env = {**os.environ, "GUST_CODE_CACHE": str(cache), "TMPDIR": str(shared)}
    for run in (1, 2):
        copy = shared / f"gust_py_dag_{run}_d.py"
        copy.write_text(source)
        ex = task_run(copy, "D", "boom", cwd=tmp_path, env=env)
        assert f'File "{copy}", line 6, in boom' in ex.result["error"]["traceback"]
    assert len(list(cache.iterdir())) == 1
    assert not (shared / "__pycache__").exists()
