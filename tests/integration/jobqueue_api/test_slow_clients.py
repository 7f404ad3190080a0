"""Slow and anonymous clients against a real ``jobqueue api`` server, over raw sockets (issue 15 #11).

A client trickling one byte every 2 s must not hold a connection for longer than the head / body
deadlines, and a request without a key is refused from its head, before any of its body is read.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from jq_testing import worker_env

from jobqueue import Settings
from jobqueue.embedded.redis_server import free_port

pytestmark = pytest.mark.timeout(90)

HEAD_TIMEOUT = 3.0
BODY_TIMEOUT = 3.0


@pytest.fixture
def api_port(settings: Settings, tmp_path: Path) -> Iterator[int]:
    port = free_port()
    env = {
        **os.environ,
        **worker_env(settings),
        "JOBQUEUE_API_KEYS": "admin-key:admin",
        "JOBQUEUE_API_HEADER_TIMEOUT_SECONDS": str(HEAD_TIMEOUT),
        "JOBQUEUE_API_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
    }
    env.pop("JOBQUEUE_DATABASE_URL", None)
    log = tmp_path / "api.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "jobqueue", "api", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except (urllib.error.URLError, OSError):
                assert time.monotonic() < deadline, log.read_text(errors="replace")
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(15)


def _trickle(sock: socket.socket, data: bytes, for_seconds: float) -> tuple[float, bytes]:
    """Send ``data`` one byte every 2 s until the server answers or closes; (seconds taken, answer)."""
    started = time.monotonic()
    sock.settimeout(2.0)
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except OSError:  # reset by the server: it closed the connection
            return time.monotonic() - started, b""
        try:
            answer = sock.recv(65536)
            took = time.monotonic() - started
            return took, answer + _rest_of_answer(sock) if answer else answer  # b"" = closed
        except TimeoutError:
            pass
        except OSError:
            return time.monotonic() - started, b""
        if time.monotonic() - started > for_seconds:
            break
    raise AssertionError(f"the server kept a trickling connection open for {for_seconds}s")


def _rest_of_answer(sock: socket.socket) -> bytes:
    """The rest of an answer whose first bytes arrived: its head and body may come in separate segments."""
    rest = b""
    sock.settimeout(5.0)
    while chunk := sock.recv(65536):
        rest += chunk
    return rest


def test_a_trickled_request_head_is_cut_off(api_port: int) -> None:
    with socket.create_connection(("127.0.0.1", api_port)) as sock:
        head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 100 + b"\r\n\r\n"
        took, _ = _trickle(sock, head, for_seconds=20)
    assert took < HEAD_TIMEOUT + 3


def test_a_silent_connection_is_cut_off(api_port: int) -> None:
    with socket.create_connection(("127.0.0.1", api_port)) as sock:
        sock.settimeout(HEAD_TIMEOUT + 5)
        started = time.monotonic()
        assert sock.recv(1024) == b""
        assert time.monotonic() - started < HEAD_TIMEOUT + 3


def test_a_trickled_body_gets_408(api_port: int) -> None:
    body = b'{"name": "add", "args": [1, 2]}' + b" " * 100
    head = (
        b"POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer admin-key\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", api_port)) as sock:
        sock.sendall(head)
        took, answer = _trickle(sock, body, for_seconds=20)
    assert took < BODY_TIMEOUT + 3
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b'"field":"body"' in answer


def test_an_anonymous_request_is_refused_before_its_body(api_port: int) -> None:
    # The body is announced but never sent: the 401 must come from the head alone.
    head = (
        b"POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", api_port)) as sock:
        sock.sendall(head)
        sock.settimeout(2.0)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 401"), answer
    assert b"www-authenticate: Bearer" in answer.lower().replace(b"bearer", b"Bearer")
