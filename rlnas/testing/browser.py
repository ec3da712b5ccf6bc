"""Open a page in headless Chromium and look at it through the DevTools protocol (no extra package).

Chromium is started with ``--remote-debugging-pipe``: protocol messages are JSON texts ended
by a NUL byte, written to the browser's file descriptor 3 and read from its descriptor 4.
:func:`inspect_page` loads a file, records every network request the page makes, evaluates
a JavaScript expression in it and takes a full-page screenshot.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlnas.errors import RlnasError

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")


def find_chromium() -> str | None:
    """Path of a Chromium executable (``$RLNAS_CHROMIUM``, then ``chromium`` and its other names), or ``None``."""
    explicit = os.environ.get("RLNAS_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass(frozen=True)
class PageReport:
    """What :func:`inspect_page` saw."""

    requests: tuple[str, ...]
    """URL of every request the page made, the page itself first (``data:`` URLs included)."""
    value: Any
    """The result of the evaluated expression."""
    screenshot: bytes
    """Full-page PNG."""
    console_errors: tuple[str, ...]


class _Pipe:
    def __init__(self, chromium: str, profile: str):
        send_r, self._send = os.pipe()
        self._recv, recv_w = os.pipe()
        # The browser reads fd 3 and writes fd 4. Our ends move above 9 (clear of 3 and 4) and a
        # bash (dash cannot name fds above 9) puts them in place before exec: no code runs in the forked child.
        reading = fcntl.fcntl(send_r, fcntl.F_DUPFD_CLOEXEC, 10)
        writing = fcntl.fcntl(recv_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(send_r)
        os.close(recv_w)
        command = f'exec "$0" "$@" 3<&{reading} 4>&{writing} {reading}<&- {writing}>&-'
        self.process = subprocess.Popen(
            ["/bin/bash", "-c", command, chromium, *CHROMIUM_FLAGS, "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(reading, writing))
        send_r, recv_w = reading, writing
        os.close(send_r)
        os.close(recv_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._send, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RlnasError(f"chromium: {method} failed: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read(timeout)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self, timeout: float) -> dict[str, Any]:
        import select

        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._recv], [], [], left)[0]:
                raise RlnasError(f"chromium did not answer within {timeout:.0f} s")
            chunk = os.read(self._recv, 1 << 20)
            if not chunk:
                raise RlnasError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def close(self) -> None:
        try:
            os.write(self._send, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
        except OSError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._send)
        os.close(self._recv)


def inspect_page(path: str | Path, expression: str = "null", *, width: int = 1200, chromium: str | None = None,
                 timeout: float = 60.0) -> PageReport:
    """Load ``path`` in a fresh headless Chromium profile; see :class:`PageReport`."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise RlnasError("chromium is not installed (Debian: apt-get install chromium; or set RLNAS_CHROMIUM)")
    url = Path(path).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="rlnas-chromium-") as profile:
        pipe = _Pipe(chromium, profile)
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
            session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Network", "Page", "Runtime"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": 900, "deviceScaleFactor": 1,
                                                             "mobile": False}, session=session)
            pipe.events.clear()
            pipe.send("Page.navigate", {"url": url}, session=session)
            pipe.wait_for("Page.loadEventFired", timeout)
            time.sleep(0.3)  # late requests (timers, lazy images) have a moment to show up
            value = pipe.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                   "awaitPromise": True}, session=session)
            if "exceptionDetails" in value:
                raise RlnasError(f"chromium: the expression failed: {value['exceptionDetails'].get('text')}")
            height = pipe.send("Runtime.evaluate", {"expression": "document.documentElement.scrollHeight",
                                                    "returnByValue": True}, session=session)["result"]["value"]
            pipe.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": int(height),
                                                             "deviceScaleFactor": 1, "mobile": False}, session=session)
            shot = pipe.send("Page.captureScreenshot", {"format": "png"}, session=session, timeout=timeout)
            requests = tuple(e["params"]["request"]["url"] for e in pipe.events
                             if e.get("method") == "Network.requestWillBeSent")
            errors = tuple(str(e["params"].get("entry", {}).get("text", "")) for e in pipe.events
                           if e.get("method") == "Log.entryAdded")
            errors += tuple(str(e["params"].get("exceptionDetails", {}).get("text", "")) for e in pipe.events
                            if e.get("method") == "Runtime.exceptionThrown")
            return PageReport(requests, value["result"].get("value"), base64.b64decode(shot["data"]), errors)
        finally:
            pipe.close()


__all__ = ["CHROMIUM_FLAGS", "PageReport", "find_chromium", "inspect_page"]
