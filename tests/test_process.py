"""The host's process helper (gust._process) with real processes: groups, tokens, deadlines."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest
from _host import gone

from gust import _process, protocol

PY = sys.executable


def read_line(fd: int, seconds: float = 10.0) -> str:
    reader = _process.FrameReader(fd)
    data = b""
    deadline = time.monotonic() + seconds
    while b"\n" not in data and time.monotonic() < deadline:
        if reader.wait_readable(0.1):
            chunk = os.read(fd, 1024)
            if not chunk:
                break
            data += chunk
    return data.decode()


def test_a_child_gets_its_own_session_and_a_token_its_descendants_inherit():
    child = _process.spawn(
        [
            PY,
            "-c",
            "import os; print(os.getsid(0), os.getpgid(0), os.environ['GUST_PROCESS_TOKEN'])",
        ],
        stdin=False,
    )
    out = read_line(child.take_fd("stdout"))
    sid, pgid, token = out.split()
    assert int(sid) == int(pgid) == child.pid
    assert token == child.token
    assert child.wait(10) == 0
    child.close()


def test_terminate_escalates_to_sigkill_for_a_child_that_ignores_sigterm():
    child = _process.spawn(
        [PY, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
         "print('ready', flush=True); time.sleep(60)"],
        stdin=False,
    )  # fmt: skip
    assert read_line(child.take_fd("stdout")).strip() == "ready"
    started = time.monotonic()
    assert child.terminate(0.3) == "SIGTERM, then SIGKILL"
    assert 0.25 < time.monotonic() - started < 5
    assert child.returncode == -signal.SIGKILL
    child.close()


def test_terminate_stops_at_sigterm_when_that_is_enough():
    child = _process.spawn([PY, "-c", "print('ready', flush=True); import time; time.sleep(60)"])
    assert read_line(child.take_fd("stdout")).strip() == "ready"
    assert child.terminate(5) == "SIGTERM"
    assert child.returncode == -signal.SIGTERM
    child.close()


ESCAPER = """\
import os, subprocess, sys, time
daemon = subprocess.Popen(["setsid", "sleep", "60"])
print(daemon.pid, flush=True)
time.sleep(60)
"""


def test_kill_reaches_a_descendant_that_left_the_group():
    child = _process.spawn([PY, "-c", ESCAPER], stdin=False)
    daemon = int(read_line(child.take_fd("stdout")))
    deadline = time.monotonic() + 5
    while os.getpgid(daemon) == child.pid and time.monotonic() < deadline:
        time.sleep(0.02)  # setsid(1) has not run yet
    assert os.getpgid(daemon) != child.pid  # it escaped the group
    child.kill()
    child.wait(5)
    assert gone(daemon)
    # Its command reads "setsid sleep 60" if it was killed before setsid(1) exec'd sleep.
    assert any(entry.startswith(f"{daemon} ") and "sleep 60" in entry for entry in child.escaped)
    child.close()


def test_leftovers_are_found_through_the_token_and_killed():
    child = _process.spawn(
        [PY, "-c", "import subprocess, time; p = subprocess.Popen(['sleep', '60']); "
         "print(p.pid, flush=True); time.sleep(60)"],
        stdin=False,
    )  # fmt: skip
    kid = int(read_line(child.take_fd("stdout")))
    found = dict(child.leftovers())
    assert found[kid] == "sleep 60"
    killed, survivors = child.kill_leftovers()
    assert survivors == []
    assert any(entry.startswith(f"{kid} sleep 60") for entry in killed)
    assert gone(kid)
    child.wait(5)
    assert child.leftovers() == []
    child.close()


def test_run_to_end_collects_output_and_the_status():
    code, out, err = _process.run_to_end(
        [PY, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"],
        timeout=20,
    )
    assert (code, out, err) == (3, b"out\n", b"err\n")


def test_run_to_end_kills_the_whole_session_on_a_timeout(tmp_path):
    pid_file = tmp_path / "kid"
    script = (
        "import subprocess, time; p = subprocess.Popen(['sleep', '60']); "
        f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)"
    )
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        _process.run_to_end([PY, "-c", script], timeout=1.0)
    assert time.monotonic() - started < 5
    assert gone(int(pid_file.read_text()))


def test_run_to_end_refuses_unbounded_output():
    with pytest.raises(_process.OutputTooLargeError):
        _process.run_to_end(
            [PY, "-c", "import os\nwhile True: os.write(1, b'x' * 65536)"],
            timeout=20,
            max_output=1 << 20,
        )


def test_frame_reader_delivers_frames_then_end_of_input_and_respects_deadlines():
    r, w = os.pipe()
    reader = _process.FrameReader(r)
    os.write(w, protocol.encode_frame({"type": "log", "msg": "a"})[:7])
    with pytest.raises(_process.FrameTimeout):
        reader.next_frame(time.monotonic() + 0.1)
    os.write(w, protocol.encode_frame({"type": "log", "msg": "a"})[7:])
    assert reader.next_frame(time.monotonic() + 5) == {"type": "log", "msg": "a"}
    os.write(w, b"\x00\x00")
    os.close(w)
    with pytest.raises(protocol.RemoteProtocolError) as info:
        reader.next_frame(time.monotonic() + 5)
    assert info.value.code == "truncated"
    os.close(r)


def test_the_stderr_collector_masks_whole_lines_before_it_cuts_them():
    r, w = os.pipe()
    lines: list[str] = []
    collector = _process.StderrCollector(
        r, lines.append, mask=lambda t: t.replace("s3cret", "***"), tail_bytes=64, max_line=10
    )
    collector.start()
    os.write(w, b"first s3cret\n" + b"y" * 25 + b"\nlast line s3cret")
    os.close(w)
    collector.join(5)
    assert lines == ["first ***", "y" * 10, "y" * 10, "y" * 5, "last line ", "***"]
    assert collector.tail_text(2).endswith("last line ***")
    assert collector.total == 13 + 26 + 16


def test_a_secret_across_the_cut_of_an_endless_line_is_never_shown_in_halves():
    secret = "correct-horse-battery-staple"
    r, w = os.pipe()
    lines: list[str] = []
    collector = _process.StderrCollector(
        r, lines.append, mask=lambda t: t.replace(secret, "***"), max_line=1000
    )
    collector.start()
    # No newline at all, and the secret arrives in two writes around the flush point.
    body = ("a" * 5090 + secret + "b" * 9000).encode()
    for i in range(0, len(body), 7):
        os.write(w, body[i : i + 7])
    os.close(w)
    collector.join(10)
    shown = "".join(lines)
    assert secret not in shown
    assert secret[:10] not in shown and secret[-10:] not in shown
    assert shown == "a" * 5090 + "***" + "b" * 9000


def test_the_tail_never_starts_inside_a_secret():
    secret = "0123456789-secret-abcdef"
    r, w = os.pipe()
    collector = _process.StderrCollector(r, mask=lambda t: t.replace(secret, "***"), tail_bytes=30)
    collector.start()
    os.write(w, f"{secret} and more\nlast\n".encode())
    os.close(w)
    collector.join(5)
    assert collector.tail_text(5) == "last"


@pytest.mark.timeout(30)
def test_reaping_orphans_never_takes_the_status_of_a_child_being_spawned(monkeypatch):
    """A host thread reaping orphans while another spawns must leave the new child's exit
    status to its Popen (stolen, ``Popen.wait`` would report 0 for a child that exited 3)."""
    from gust._process import _tree

    monkeypatch.setattr(_tree, "_subreaper", True)
    real_popen = _process._child.subprocess.Popen
    reapers = []

    def popen_then_reap(*args, **kwargs):
        proc = real_popen(*args, **kwargs)
        # The child exits at once; reap while its pid is not yet known as ours.
        deadline = time.monotonic() + 10
        while not _tree._is_zombie(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        reaper = threading.Thread(target=_process.reap_orphans)
        reaper.start()
        reaper.join(0.5)
        reapers.append(reaper)
        return proc

    monkeypatch.setattr(_process._child.subprocess, "Popen", popen_then_reap)
    child = _process.spawn([sys.executable, "-c", "raise SystemExit(3)"], stdin=False)
    try:
        assert child.wait(10) == 3
    finally:
        child.close()
        for reaper in reapers:
            reaper.join(5)
