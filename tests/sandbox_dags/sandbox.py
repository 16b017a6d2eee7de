"""Fixture DAG for tests/test_sandbox.py: one task per thing a task may do to its process."""

import dataclasses
import datetime
import decimal
import enum
import logging
import multiprocessing
import os
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import PurePosixPath

from gust import Dag, get_secret_by_name, get_task_by_name_run, log, task
from gust.calls import active_session

author_log = logging.getLogger("sandbox.author")


@dataclasses.dataclass
class Point:
    x: int
    y: float


class Colour(enum.Enum):
    RED = "red"


class Sandbox(Dag):
    # -- stdout, fd 1, child processes, stdin --
    @task
    def prints(self, ctx):
        print("hello")
        print("two", "words", 3)
        print("line one\nline two")
        print("no end", end="")
        print(" continued")
        print()
        return "printed"

    @task
    def partial_line(self, ctx):
        sys.stdout.write("first ")
        sys.stdout.write("half, no newline")
        sys.stdout.flush()  # a flush does not cut the line short
        return "partial"

    @task
    def stdout_buffer(self, ctx):
        sys.stdout.buffer.write("bytes é line\nand a rest".encode())
        sys.stdout.reconfigure(encoding="utf-8", line_buffering=True)
        return sys.stdout.fileno()

    @task
    def fd1_frame_header(self, ctx):
        # Looks like a frame header announcing 5 bytes, then 5 bytes, then a header promising
        # far more than follows: either would corrupt the stream if it reached it.
        os.write(1, struct.pack(">I", 5) + b"FAKE!")
        os.write(1, struct.pack(">I", 1 << 30))
        os.write(sys.__stdout__.fileno(), b"\nvia __stdout__ fd\n")
        print("via __stdout__ print, never flushed", file=sys.__stdout__)
        print("after the raw writes")
        return "raw"

    @task
    def child_processes(self, ctx):
        subprocess.run(["echo", "from echo"], check=True)
        os.system("echo from os.system")
        session = active_session()
        fds = [session.channel.out_fd, session.channel.in_fd]
        # Even with close_fds=False the private descriptors are not inherited (O_CLOEXEC).
        probe = subprocess.run(
            [sys.executable, "-c", f"import os\nfor fd in {fds}:\n    os.fstat(fd)\n"],
            close_fds=False,
            capture_output=True,
        )
        child_stdin = subprocess.run(["cat"], capture_output=True, check=True).stdout
        return {"probe_failed": probe.returncode != 0, "child_stdin": child_stdin.decode()}

    @task
    def reads_stdin(self, ctx):
        data = sys.stdin.read()
        try:
            input("prompt> ")
            got_input = "no EOFError"
        except EOFError:
            got_input = "EOFError"
        raw = os.read(0, 100)
        try:
            secret = get_secret_by_name("PLAIN")
        except Exception as exc:  # noqa: BLE001 - reported back as data
            secret = f"{type(exc).__name__}: {exc}"
        return {"read": data, "input": got_input, "raw": raw.decode(), "secret": secret}

    # -- threads --
    @task
    def threads_log(self, ctx):
        def work(n):
            for i in range(500):
                if n % 3 == 0:
                    print(f"t{n} print {i}")
                elif n % 3 == 1:
                    log(f"t{n} log {i}")
                else:
                    logging.warning("t%d logging %d", n, i)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return "threads done"

    @task
    def slow_call_while_logging(self, ctx):
        got = {}

        def caller():
            got["secret"] = get_secret_by_name("SLOW")

        waiting = threading.Thread(target=caller)
        waiting.start()
        time.sleep(0.05)
        loggers = [
            threading.Thread(target=lambda n=n: [log(f"l{n} {i}") for i in range(100)])
            for n in range(3)
        ]
        for t in loggers:
            t.start()
        for t in loggers:
            t.join()
        waiting.join(10)
        return got["secret"]["value"]

    @task
    def concurrent_calls(self, ctx):
        mismatches = []

        def caller(n):
            for i in range(10):
                name = f"T{n}_{i}"
                reply = get_task_by_name_run(name, ctx["run_id"])
                if reply["result"]["name"] != name:
                    mismatches.append((name, reply))

        threads = [threading.Thread(target=caller, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return mismatches

    @task
    def leftover_thread(self, ctx):
        def busy():
            while True:
                log("still here")
                time.sleep(0.01)

        threading.Thread(target=busy, name="not-a-daemon").start()
        time.sleep(0.05)
        return "returned"

    # -- logging --
    @task
    def logging_levels(self, ctx):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("AUTHOR %(levelname)s %(message)s"))
        author_log.addHandler(handler)
        author_log.setLevel(logging.DEBUG)
        logging.debug("root debug")
        logging.info("root info")
        author_log.debug("author debug")
        author_log.warning("careful %s", "now")
        author_log.error("it broke")
        try:
            raise KeyError("missing-key")
        except KeyError:
            author_log.exception("with traceback")
        logging.getLogger("sandbox.other").critical("very bad")
        return "logged"

    # -- odd results --
    @task
    def nan_result(self, ctx):
        return {
            "ok": 1.5,
            "rows": [1, float("nan")],
            "inf": float("-inf"),
            "dec": decimal.Decimal("NaN"),
        }

    @task
    def rich_result(self, ctx):
        return {
            "when": datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc),
            "day": datetime.date(2024, 5, 6),
            "at": datetime.time(7, 8),
            "amount": decimal.Decimal("12.50"),
            "tags": {"b", "a", "c"},
            "pair": (1, 2),
            "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
            "path": PurePosixPath("/tmp/x"),
            "point": Point(1, 2.5),
            "colour": Colour.RED,
            3: "int key",
        }

    @task
    def object_result(self, ctx):
        return {"rows": [1, 2, 3, object()]}

    @task(save=True)
    def save_list(self, ctx):
        return [1, 2]

    @task(save=True)
    def save_dict(self, ctx):
        return {"saved": True}

    @task
    def surrogates(self, ctx):
        log("lone \ud800 surrogate")
        print("printed \udcff too")
        logging.warning("logged \udc80")
        return {"lone": "a\ud800b", "pair": "\ud83d\ude00", "key\udfff": 1}

    # -- endings --
    @task
    def exit_0(self, ctx):
        sys.exit(0)

    @task
    def exit_3(self, ctx):
        sys.exit(3)

    @task
    def keyboard_interrupt(self, ctx):
        raise KeyboardInterrupt

    @task
    def generator_exit(self, ctx):
        raise GeneratorExit("closing")

    @task
    def sleeps(self, ctx):
        try:
            log("sleeping")  # inside the try: a signal held until this frame is whole lands here
            time.sleep(30)
        finally:
            log("finally ran")

    @task
    def swallows_signals(self, ctx):
        deadline = time.monotonic() + 20
        announced = False
        while time.monotonic() < deadline:
            try:
                if not announced:
                    announced = True
                    log("swallowing")
                time.sleep(0.05)
            except BaseException:  # noqa: BLE001 - the point of this fixture
                log("swallowed one")
        return "should not get here"

    @task
    def async_sleeps(self, ctx):
        import asyncio

        async def main():
            log("sleeping")
            await asyncio.sleep(30)

        return asyncio.run(main())

    # -- secrets --
    @task
    def leaks_secret(self, ctx):
        secret = get_secret_by_name("TOKEN")["value"]
        log(f"log says {secret}")
        print(f"print says {secret}")
        logging.warning("logging says %s", secret)
        try:
            raise RuntimeError(f"cause holds {secret}")
        except RuntimeError as cause:
            raise ValueError(f"exception holds {secret}") from cause

    @task
    def returns_secret(self, ctx):
        secret = get_secret_by_name("TOKEN")["value"]
        log(f"returning {secret}")
        return {"secret": secret}

    @task
    def json_secret(self, ctx):
        value = get_secret_by_name("DB")["value"]
        log(f"whole {value}")
        log("user admin-user password hunter2-pw port 5432 pin 123 key abc")
        return "json"

    @task
    def short_secret(self, ctx):
        value = get_secret_by_name("SHORT")["value"]
        log(f"short {value} stays readable in abc-abc")
        return value

    @task
    def unmasked_warning(self, ctx):
        secret = get_secret_by_name("TOKEN")["value"]
        return {f"k{secret}": float("nan")}

    # -- host trouble --
    @task
    def call_then_return(self, ctx):
        secret = get_secret_by_name("ANY")
        return {"secret": secret}

    @task
    def timed_out_call(self, ctx):
        t0 = time.monotonic()
        try:
            get_secret_by_name("NEVER")
        except Exception as exc:  # noqa: BLE001 - reported back as data
            first = f"{type(exc).__name__}: {exc}"
        elapsed = time.monotonic() - t0
        # The host answers NEVER late; that late reply must not be taken for this one.
        second = get_secret_by_name("AFTER")
        return {"first": first, "elapsed": elapsed, "second": second}

    @task
    def big_logs_forever(self, ctx):
        chunk = "z" * 1_000_000  # far over a pipe's buffer: each write takes many rounds
        while True:
            log(chunk)

    @task
    def logs_forever(self, ctx):
        for i in range(300):
            logging.warning("record %d", i)
            time.sleep(0.005)
        for i in range(300):
            print(f"print {i}")
            time.sleep(0.005)
        return "never seen"

    def callback_calls(self, status, run):
        print(f"callback {status}")
        get_secret_by_name("TOKEN")

    # -- multiprocessing --
    @task
    def forks(self, ctx):
        pid = os.fork()
        if pid == 0:
            try:
                print("from the forked child " + "x" * 70000)
                log("forked log")
                try:
                    get_secret_by_name("TOKEN")
                except Exception as exc:  # noqa: BLE001 - reported on stderr
                    sys.stderr.write(f"forked call: {type(exc).__name__}: {exc}\n")
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        log("parent after fork")
        return "forked"

    @task
    def pool(self, ctx):
        with multiprocessing.get_context("fork").Pool(2) as workers:
            squares = workers.map(square_and_print, range(4))
            workers.terminate()  # SIGTERM to the workers: they must die as usual
        log("pool done")
        return squares

    @task
    def big_value(self, ctx):
        return "x" * 200_000

    @task
    def big_log(self, ctx):
        log("y" * 200_000)
        return "not reached"


def square_and_print(n):
    """Runs in a multiprocessing worker forked from the task."""
    print(f"worker squares {n}")
    return n * n
