"""Plain-urllib calls to a running `jobqueue up` / `jobqueue api`, for tests that drive a real process."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any


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
