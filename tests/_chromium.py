"""Headless Chromium for tests, driven over the DevTools protocol with the standard library only.

Chromium started with ``--remote-debugging-pipe`` reads commands on its file descriptor 3 and
writes replies and events on descriptor 4, each message one JSON object followed by a NUL byte.
:class:`Browser` starts it with :func:`os.posix_spawn` (the two pipe ends put exactly on 3 and 4,
no ``preexec_fn``), a fresh profile and the flags that keep it off the network, and reads its
messages on a thread. :class:`Page` is one tab: navigate, evaluate, click with real mouse events,
take a screenshot, and collect what went wrong (console errors, uncaught exceptions, requests).

:func:`find_chromium` says where the browser is, or ``None``; tests skip saying why.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import itertools
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Flags every run uses: headless, no sandbox (root in containers), nothing that phones home.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)

INSTALL_HINT = (
    "headless Chromium not found: install Debian's chromium (apt-get install -y chromium; "
    ".ci/run does it where apt is available) or set GUST_CHROMIUM to a Chromium binary"
)


def find_chromium() -> str | None:
    """The Chromium to use: ``$GUST_CHROMIUM``, else the first of the usual names on PATH."""
    chosen = os.environ.get("GUST_CHROMIUM")
    if chosen:
        return shutil.which(chosen)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


class BrowserError(Exception):
    """Chromium failed to start, answered with an error, or did not answer in time."""


def _high(fd: int) -> int:
    """A close-on-exec duplicate of ``fd`` numbered 10 or more (never 0 to 4)."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)


class Browser:
    """One headless Chromium process; close it with :meth:`close` (or use ``with``)."""

    def __init__(self, binary: str, workdir: Path, *, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.log_path = workdir / "chromium.log"
        profile = workdir / "profile"
        profile.mkdir(parents=True, exist_ok=True)
        cmd_read, cmd_write = os.pipe()  # our commands -> its fd 3
        out_read, out_write = os.pipe()  # its fd 4 -> our replies and events
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        sources = [_high(fd) for fd in (cmd_read, out_write, log_fd)]
        for fd in (cmd_read, out_write, log_fd):
            os.close(fd)
        try:
            self.pid = os.posix_spawn(
                binary,
                [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                dict(os.environ),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, sources[2], 1),
                    (os.POSIX_SPAWN_DUP2, sources[2], 2),
                    (os.POSIX_SPAWN_DUP2, sources[0], 3),
                    (os.POSIX_SPAWN_DUP2, sources[1], 4),
                ],
                setsid=True,
            )
        finally:
            for fd in sources:
                os.close(fd)
        self._write_fd = cmd_write
        self._read_fd = out_read
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="chromium-devtools", daemon=True)
        self._reader.start()
        try:
            self.version = self.send("Browser.getVersion")
        except BrowserError:
            self.close()
            raise

    # -- the pipe --

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._read_fd, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._cond:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._replies[message["id"]] = message
                    else:
                        self.events.append(message)
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None
    ) -> dict[str, Any]:
        """Send one command and wait for its reply's ``result``.

        Raises:
            BrowserError: an error reply, no reply within the timeout, or Chromium went away.
        """
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        data = json.dumps(message).encode("utf-8") + b"\0"
        try:
            while data:
                data = data[os.write(self._write_fd, data) :]
        except OSError as exc:
            raise BrowserError(f"{method}: Chromium is gone ({exc}); {self.log_tail()}") from None
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while ident not in self._replies:
                left = deadline - time.monotonic()
                if self._closed:
                    raise BrowserError(f"{method}: Chromium closed the pipe; {self.log_tail()}")
                if left <= 0:
                    raise BrowserError(f"{method}: no reply within {self.timeout:g} s")
                self._cond.wait(left)
            reply = self._replies.pop(ident)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(
        self, match: Callable[[dict[str, Any]], bool], *, since: int = 0, timeout: float = 30.0
    ) -> dict[str, Any]:
        """The first event from index ``since`` on that ``match`` accepts, waiting for it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            index = since
            while True:
                while index < len(self.events):
                    event = self.events[index]
                    index += 1
                    if match(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise BrowserError(f"no matching DevTools event within {timeout:g} s")
                self._cond.wait(left)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "no log"
        return "its log ends with:\n" + "\n".join(text.rstrip().split("\n")[-lines:])

    # -- tabs and the end --

    def new_page(self, width: int = 1360, height: int = 900) -> Page:
        """A new tab of ``width`` x ``height`` CSS pixels, attached and listening."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, target, session)
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.call(f"{domain}.enable")
        page.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        return page

    def close(self) -> None:
        """Ask Chromium to quit, then make sure its whole process group is gone."""
        if not self._closed:
            self.timeout = 5.0
            with contextlib.suppress(BrowserError):  # it may close the pipe before it replies
                self.send("Browser.close")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            # WNOWAIT: the exited leader stays a zombie, so its group id cannot be reused
            # before the group is killed below.
            if os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                break
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # helpers it left behind go too
        os.waitpid(self.pid, 0)
        os.close(self._write_fd)
        self._reader.join(5)
        os.close(self._read_fd)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Page:
    """One tab of a :class:`Browser`."""

    def __init__(self, browser: Browser, target: str, session: str) -> None:
        self.browser = browser
        self.target = target
        self.session = session
        self.first_event = len(browser.events)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        return self.browser.send(method, params, session=self.session)

    def _mine(self) -> list[dict[str, Any]]:
        with self.browser._cond:
            events = self.browser.events[self.first_event :]
        return [e for e in events if e.get("sessionId") == self.session]

    def goto(self, url: str) -> None:
        """Load ``url`` and wait for its load event."""
        since = len(self.browser.events)
        self.call("Page.navigate", url=url)
        self.browser.wait_event(
            lambda e: e.get("sessionId") == self.session and e["method"] == "Page.loadEventFired",
            since=since,
        )

    def eval(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited).

        Raises:
            BrowserError: the expression threw.
        """
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """Scroll ``selector``'s element into view and click its centre with the mouse."""
        box = self.eval(
            "(() => { const el = document.querySelector(" + json.dumps(selector) + ");"
            " if (!el) return null; el.scrollIntoView({block: 'center', inline: 'center'});"
            " const r = el.getBoundingClientRect();"
            " return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()"
        )
        if box is None:
            raise BrowserError(f"nothing matches {selector!r}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box["x"],
                y=box["y"],
                button="left" if kind != "mouseMoved" else "none",
                clickCount=1 if kind != "mouseMoved" else 0,
            )

    def screenshot(self, path: Path, *, full_page: bool = False) -> bytes:
        """Save a PNG of the viewport (or the whole page) to ``path``; its bytes."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.eval(
                "({w: document.documentElement.scrollWidth,"
                " h: document.documentElement.scrollHeight})"
            )
            params["captureBeyondViewport"] = True
            params["clip"] = {"x": 0, "y": 0, "width": size["w"], "height": size["h"], "scale": 1}
        data = base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])
        path.write_bytes(data)
        return data

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries seen by this tab."""
        found = []
        for event in self._mine():
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append(f"exception: {details.get('exception', {}).get('description')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "assert",
                "warning",
            ):
                args = [a.get("value", a.get("description")) for a in params.get("args", [])]
                found.append(f"console.{params['type']}: {args}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in (
                "error",
                "warning",
            ):
                entry = params["entry"]
                found.append(f"log {entry['level']}: {entry.get('text')} {entry.get('url', '')}")
        return found

    def requests(self) -> list[str]:
        """The URL of every request this tab made."""
        return [
            e["params"]["request"]["url"]
            for e in self._mine()
            if e["method"] == "Network.requestWillBeSent"
        ]

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})
