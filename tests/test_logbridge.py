"""The logging bridge loads ``logging`` only for tasks that import it, and then bridges as before.

Whether ``logging`` is loaded is a property of the whole interpreter, so each case runs in a
fresh one: a script driving :class:`gust._logbridge.LoggingBridge` over an in-memory channel, or
the real ``gust task run`` with DAGs that import ``logging`` at different moments.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _host import task_run

from gust._logbridge import STANDARD_LEVELS, level_by_name


def run_script(body: str) -> dict:
    """Run ``body`` in a fresh interpreter; it prints one JSON object, returned here."""
    prelude = textwrap.dedent(
        """
        import json, sys
        from gust._channel import MemoryChannel
        from gust._logbridge import LoggingBridge
        from gust.calls import Session
        channel = MemoryChannel()
        session = Session(channel)
        meta_path_before = list(sys.meta_path)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_logging_stays_unloaded_until_imported_then_is_bridged_with_its_real_loader() -> None:
    out = run_script(
        """
        bridge = LoggingBridge(session, 10)
        bridge.start()
        unloaded = "logging" not in sys.modules and not bridge.installed
        import logging.handlers  # the package comes first, through the bridge's finder
        root = logging.getLogger()
        installed = bridge.installed and any(
            type(h).__name__ == "LogFrameHandler" for h in root.handlers)
        level_during = root.level
        logging.getLogger("lib").debug("from %s", "a library")
        real_loader = type(logging.__loader__).__name__
        spec_loader = type(logging.__spec__.loader).__name__
        bridge.stop()
        handlers_after = len(root.handlers)
        logging.getLogger("lib").warning("after stop")
        print(json.dumps({
            "unloaded": unloaded, "installed": installed, "level_during": level_during,
            "level_after": root.level, "handlers_after": handlers_after,
            "loaders": [real_loader, spec_loader],
            "meta_path_restored": sys.meta_path == meta_path_before,
            "frames": channel.sent_frames(),
        }))
        """
    )
    assert out["unloaded"] and out["installed"]
    assert out["level_during"] == 10 and out["level_after"] == 30  # root's default, restored
    assert out["handlers_after"] == 0
    assert out["loaders"] == ["SourceFileLoader", "SourceFileLoader"]
    assert out["meta_path_restored"]
    assert out["frames"] == [{"type": "log", "level": "debug", "msg": "from a library"}]


def test_a_bridge_stopped_before_logging_is_imported_leaves_nothing_behind() -> None:
    out = run_script(
        """
        bridge = LoggingBridge(session, 20)
        bridge.start()
        bridge.stop()
        import logging
        logging.getLogger().error("nobody bridges this")
        print(json.dumps({
            "installed": bridge.installed, "handlers": len(logging.getLogger().handlers),
            "meta_path_restored": sys.meta_path == meta_path_before,
            "frames": channel.sent_frames(),
        }))
        """
    )
    assert out == {"installed": False, "handlers": 0, "meta_path_restored": True, "frames": []}


def test_with_logging_already_loaded_the_handler_goes_in_at_once() -> None:
    out = run_script(
        """
        import logging
        logging.getLogger().setLevel(logging.ERROR)
        bridge = LoggingBridge(session, 20)
        bridge.start()
        installed_at_start = bridge.installed
        logging.info("bridged at once")
        bridge.stop()
        print(json.dumps({
            "installed_at_start": installed_at_start,
            "level_after": logging.getLogger().level,
            "meta_path_untouched": sys.meta_path == meta_path_before,
            "frames": channel.sent_frames(),
        }))
        """
    )
    assert out["installed_at_start"] and out["meta_path_untouched"]
    assert out["level_after"] == 40
    assert out["frames"] == [{"type": "log", "level": "info", "msg": "bridged at once"}]


def test_level_names_match_logging_and_custom_names_count_once_logging_knows_them() -> None:
    import logging

    for name, number in STANDARD_LEVELS.items():
        assert logging.getLevelName(name) == number
    assert level_by_name("INFO") == 20 and level_by_name("NOPE") is None
    out = run_script(
        """
        from gust._logbridge import level_by_name
        before = [level_by_name("DEBUG"), level_by_name("TRACE"), "logging" in sys.modules]
        import logging
        logging.addLevelName(5, "TRACE")
        print(json.dumps({"before": before, "after": level_by_name("TRACE")}))
        """
    )
    assert out == {"before": [10, None, False], "after": 5}


# -- through the real CLI ----------------------------------------------------------------------

DAG = """\
from gust import Dag, task
{top}

class Logs(Dag):
    @task
    def quiet(self, ctx):
        import sys
        return "logging" in sys.modules

    @task
    def imports_inside(self, ctx):
        import logging
        logging.getLogger("inside").info("info from inside")
        logging.debug("not sent at INFO")
        return True

    @task
    def configured_at_import(self, ctx):
        import logging
        logging.getLogger("x").warning("sent despite basicConfig")
        return len(logging.getLogger().handlers)
"""


@pytest.fixture
def dag_file(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    path = tmp_path / "logs_dag.py"
    path.write_text(DAG.format(top=getattr(request, "param", "")))
    return path


def test_a_task_that_never_logs_through_logging_does_not_load_it(dag_file: Path) -> None:
    ex = task_run(dag_file, "Logs", "quiet", cwd=dag_file.parent)
    assert ex.result == {"type": "result", "ok": True, "data": {"value": False}}


def test_logging_imported_inside_the_task_is_bridged(dag_file: Path) -> None:
    ex = task_run(dag_file, "Logs", "imports_inside", cwd=dag_file.parent)
    assert ex.result["ok"] is True
    assert ex.logs() == [("info", "info from inside")]


@pytest.mark.parametrize(
    "dag_file", ["import logging\nlogging.basicConfig(level=logging.ERROR)"], indirect=True
)
def test_basic_config_at_import_finds_the_bridge_already_there(dag_file: Path) -> None:
    # basicConfig does nothing when the root logger has a handler: ours must be there first,
    # as it was when logging was imported before the DAG file.
    ex = task_run(dag_file, "Logs", "configured_at_import", cwd=dag_file.parent)
    assert ex.result["data"] == {"value": 1}
    assert ex.logs() == [("warning", "sent despite basicConfig")]


def test_gust_log_level_names_still_checked(dag_file: Path) -> None:
    env = {**_env(), "GUST_LOG_LEVEL": "chatty"}
    ex = task_run(dag_file, "Logs", "quiet", cwd=dag_file.parent, env=env)
    assert ex.result["ok"] is False
    assert "GUST_LOG_LEVEL" in json.dumps(ex.result)


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
