"""Conformance DAG: the plain life of a task (see conformance/README.md for each task's contract).

Every task here is deterministic: the same argv gives the same frames, so the golden transcripts
under conformance/transcripts/ can state them exactly. A runtime written in another language
implements the same task names with the behaviour described in each docstring.
"""

import datetime
import os
import subprocess
import sys
import threading

from gust import Dag, log, task


class Basics(Dag):
    def __init__(self):
        super().__init__(on_finished_callback="finished")

    @task(save=True)
    def succeed(self, ctx):
        """Return {"greeting": "hello", "run_id": ctx.run_id}."""
        return {"greeting": "hello", "run_id": ctx["run_id"]}

    @task
    def fail(self, ctx):
        """Log "about to fail" (info), then fail with ValueError("the thing broke")."""
        log("about to fail")
        raise ValueError("the thing broke")

    @task
    def every_level(self, ctx):
        """Log one line at each level, then return the number of lines (5)."""
        for level in ("debug", "info", "warning", "error", "critical"):
            log(f"a {level} line", level=level)
        return 5

    @task
    def prints(self, ctx):
        """Print two lines and an unfinished third; each becomes an info log; return null."""
        print("printed line")
        print("second", "printed", "line")
        sys.stdout.write("no newline at the end")

    @task
    def nan_result(self, ctx):
        """Return non-finite floats: each becomes null, with a warning log naming where."""
        return {"fine": 1.5, "nan": float("nan"), "more": [float("inf"), 2, float("-inf")]}

    @task
    def datetime_result(self, ctx):
        """Return a datetime, a date and a time: each becomes an ISO 8601 string."""
        return {
            "at": datetime.datetime(2024, 2, 29, 13, 45, 30, 250000, tzinfo=datetime.timezone.utc),
            "day": datetime.date(2024, 2, 29),
            "clock": datetime.time(7, 5, 9),
        }

    @task
    def huge_log(self, ctx):
        """Log one line of exactly 1 MiB (65536 times "0123456789abcdef"); return its length."""
        line = "0123456789abcdef" * 65536
        log(line)
        return len(line)

    @task
    def unicode_text(self, ctx):
        """Log and return non-ASCII text; lone surrogates leave as U+FFFD, never as bad UTF-8."""
        log("héllo wörld ✓ 日本語 🚀")
        log("lone \ud800 surrogate")
        return {"text": "ünïcødé 🚀", "lone": "x\udfffy", "pair": "\ud83d\ude80"}

    @task
    def echo_ctx(self, ctx):
        """Return the ctx exactly as received (for mapped tasks it carries "params")."""
        return {"ctx": ctx}

    @task
    def writes_to_fd1(self, ctx):
        """Write bytes shaped like a frame to fd 1, and run a child process that prints.

        Neither may reach the frame stream: both belong on stderr. Return "clean".
        """
        os.write(1, b"\x00\x00\x00\x13not a frame at all\n")
        subprocess.run([sys.executable, "-c", "print('from a child process')"], check=True)
        return "clean"

    @task
    def threads_log(self, ctx):
        """Log the same 4 KiB line 16 times from each of 4 threads at once; return 64.

        Every frame must arrive whole: threads never interleave the bytes of their frames.
        """
        line = "threads write whole frames " * 152
        barrier = threading.Barrier(4)

        def work():
            barrier.wait()
            for _ in range(16):
                log(line)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return 64

    not_callable = 42

    def finished(self, status, run):
        """Callback: write "callback ran: <status> <run>" to stderr."""
        print(f"callback ran: {status} {run}", file=sys.stderr)

    def finished_badly(self, status, run):
        """Callback: fail with RuntimeError("callback failed for <status>")."""
        raise RuntimeError(f"callback failed for {status}")
