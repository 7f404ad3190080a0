"""Plain-urllib calls to a running `jobqueue up` / `jobqueue api`, for tests that drive a real process."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
import urllib.error
import urllib.request
from typing import IO, Any


def request(method: str, url: str, key: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """(status, decoded JSON body); status 0 while nothing answers yet."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except (urllib.error.URLError, ConnectionError):
        return 0, None


def poll(check: Any, timeout: float, what: str) -> Any:
    """Call ``check`` until it returns something truthy, and return that; AssertionError naming ``what``
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class OutputLines:
    """A child process's output read line by line on a thread, so a test can wait for a line while the
    pipe never fills up."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.process = process
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.output.append(line.rstrip())
            self.lines.put(line.rstrip())

    def join(self, timeout: float | None = None) -> None:
        """Wait until the output has been read to its end (the process closed it)."""
        self._thread.join(timeout)

    def wait_for_line(self, prefix: str, timeout: float) -> str:
        """The next line starting with ``prefix``; AssertionError with the output so far otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no {prefix!r} line; output so far:\n" + "\n".join(self.output))
