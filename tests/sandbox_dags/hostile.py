"""Fixture DAG for tests/test_hostile.py: tasks attacking the channel, the exit, the masking."""

import atexit
import json
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
import warnings

from gust import Dag, get_secret_by_name, log, task
from gust.calls import active_session

BIG = 300_000  # several times a pipe's buffer: every write of such a frame blocks part-way


class Alarm(Exception):
    pass


def _secret() -> str:
    return get_secret_by_name("NASTY")["value"]


class Hostile(Dag):
    # -- signals --
    @task
    def alarm_raises_while_logging(self, ctx):
        inside = [False]  # raise only while in log(): the point is a frame being written

        def on_alarm(signum, frame):
            if inside[0]:
                inside[0] = False
                raise Alarm("tick")

        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
        attempts = alarms = 0
        deadline = time.monotonic() + 3
        try:
            while time.monotonic() < deadline and attempts < 300:
                line = f"{attempts:06d}" + "a" * BIG
                attempts += 1
                try:
                    inside[0] = True
                    log(line)
                    inside[0] = False
                except Alarm:
                    alarms += 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
        # On a loaded machine every attempt may have been interrupted: one more, undisturbed,
        # so there is always a whole frame to check.
        log(f"{attempts:06d}" + "a" * BIG)
        return {"attempts": attempts + 1, "alarms": alarms}

    @task
    def usr1_handler_logs(self, ctx):
        seen = []

        def on_usr1(signum, frame):
            seen.append(signum)
            log("from the handler")

        signal.signal(signal.SIGUSR1, on_usr1)
        assert signal.getsignal(signal.SIGUSR1) is on_usr1  # the task sees its own function
        stop = threading.Event()

        def pester():
            while not stop.is_set():
                os.kill(os.getpid(), signal.SIGUSR1)
                time.sleep(0.001)

        pesterer = threading.Thread(target=pester)
        pesterer.start()
        try:
            for i in range(200):
                log(f"{i:06d}" + "b" * BIG)
        finally:
            stop.set()
            pesterer.join()
        return {"handled": len(seen)}

    @task
    def handler_left_armed(self, ctx):
        # The alarm keeps firing after the task returns: it must not disturb the final frames.
        # It raises only once the task is returning (on a loaded machine the first tick could
        # otherwise come before the return, failing the task itself).
        returning = [False]

        def on_alarm(signum, frame):
            if returning[0]:
                raise Alarm("after the end")

        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
        returning[0] = True
        return "armed"

    # -- forks --
    @task
    def fork_returns_into_task(self, ctx):
        os.fork()  # both processes go on from here and return from the task
        log(f"after fork in {os.getpid()}")
        return {"pid": os.getpid()}

    @task
    def fork_child_reuses_descriptors(self, ctx):
        channel = active_session().channel
        fds = [channel.out_fd, channel.in_fd]
        path = os.path.join(tempfile.gettempdir(), f"gust-hostile-{os.getpid()}.bin")
        pid = os.fork()
        if pid == 0:
            # The user's own file lands on the numbers the protocol used in the parent.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            for target in fds:
                os.dup2(fd, target)
            log("child logs")  # to stderr as text, never into the file
            return {"child": True}  # returns into the runtime, no os._exit
        os.waitpid(pid, 0)
        return {"file": path}

    # -- endings --
    @task
    def atexit_sleeps(self, ctx):
        marker = os.path.join(tempfile.gettempdir(), f"gust-atexit-{os.getpid()}")

        def sleep_long():
            time.sleep(600)

        def leave_a_mark():
            with open(marker, "w") as fh:
                fh.write("ran")

        atexit.register(sleep_long)  # runs second (last registered, first run: see below)
        atexit.register(leave_a_mark)  # runs first: quick handlers still run
        return {"marker": marker}

    @task
    def thread_sleeps_forever(self, ctx):
        threading.Thread(target=time.sleep, args=(600,), name="sleeper").start()
        return "left a thread"

    @task
    def mp_child_sleeps(self, ctx):
        child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(600,))
        child.start()  # not a daemon: multiprocessing's atexit handler would join it
        return {"child": child.pid}

    # -- secrets --
    @task
    def secret_everywhere(self, ctx):
        secret = _secret()
        print(secret)  # a multi-line secret: the host gets it line by line
        log(f"log {secret}")
        log(f"repr {secret!r}")
        log(f"ascii {secret!a}")
        log(f"json {json.dumps(secret)}")
        log(f"json raw {json.dumps(secret, ensure_ascii=False)}")
        holder = {"k": [secret]}
        log(f"dict {holder!r}")
        log(f"keyerror {KeyError(secret)}")
        print(f"stderr {secret}", file=sys.stderr)
        sys.stderr.write("split " + secret[:5])
        sys.stderr.write(secret[5:] + " across writes\n")
        warnings.warn(f"warning {secret}", stacklevel=1)

        def leak():
            raise RuntimeError(f"thread {secret}")

        worker = threading.Thread(target=leak)
        worker.start()
        worker.join()
        named = type(f"Err_{secret}", (Exception,), {})  # a class named after the secret
        raise named(f"message {secret}")

    @task
    def secret_in_key_error(self, ctx):
        raise KeyError(_secret())

    @task
    def json_text_secret(self, ctx):
        value = json.loads(get_secret_by_name("DBTEXT")["value"])
        log(f"user {value['user']} password {value['password']} port {value['port']}")
        print(f"stderr password {value['password']}", file=sys.stderr)
        return "logged"

    # -- failures --
    @task
    def str_raises(self, ctx):
        class Unprintable(Exception):
            def __str__(self):
                raise RuntimeError("no str for you")

            def __repr__(self):
                raise RuntimeError("no repr either")

        raise Unprintable()

    @task
    def repr_raises_in_key(self, ctx):
        class BadKey:
            def __repr__(self):
                raise ValueError("bad repr")

        raise KeyError(BadKey())

    @task
    def huge_message(self, ctx):
        raise ValueError("m" * 40_000_000)

    @task
    def huge_log(self, ctx):
        log("L" * 40_000_000)
        return "logged"

    # -- calls --
    @task
    def two_calls(self, ctx):
        first = get_secret_by_name("A")
        try:
            second = get_secret_by_name("B")
        except Exception as exc:  # noqa: BLE001 - reported back as data
            second = f"{type(exc).__name__}: {exc}"
        try:
            third = get_secret_by_name("C")
        except Exception as exc:  # noqa: BLE001 - reported back as data
            third = f"{type(exc).__name__}: {exc}"
        return {"first": first, "second": second, "third": third}

    @task
    def log_levels(self, ctx):
        log("upper", "WARNING")
        try:
            log("nope", "verbose")
        except ValueError as exc:
            return f"{type(exc).__name__}: {exc}"
        return "accepted"

    @task
    def says_hi(self, ctx):
        log("hi")
        return ctx
