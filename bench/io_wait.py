"""What every I/O-bound benchmark task awaits (bench.io_bound): 50 ms of waiting, the same in every system.

``BENCH_IO_KIND`` selects it: ``sleep`` awaits ``asyncio.sleep``; ``http`` sends a real HTTP/1.1 GET to the
local delay server (:func:`serve`, at ``BENCH_HTTP_PORT``) that answers after the delay. Unset: no wait
(the no-op benchmarks). The HTTP client is a raw asyncio stream with a keep-alive connection pool, as
aiohttp's or httpx's would be: standard library only, because this module is imported in the peers' venvs
too, so every system runs the same client code. A pool per process and per event loop: arq and Taskiq
run one loop per worker process, jobqueue's async pool one loop in its own thread.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

IO_KIND_ENV = "BENCH_IO_KIND"
HTTP_PORT_ENV = "BENCH_HTTP_PORT"
DELAY_SECONDS = 0.05
_REQUEST = b"GET /wait HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"
_BODY = b"ok"
_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\n" + _BODY

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
# Idle keep-alive connections, per event loop (a connection belongs to the loop that opened it).
_idle: dict[int, list[Connection]] = {}
# BENCH_IO_KIND, read once per process: os.environ costs a few microseconds per call, which the no-op
# benchmarks (where it is unset) would otherwise pay in every task.
_kind: list[str] = []


async def io_wait() -> None:
    """Wait as ``BENCH_IO_KIND`` says (nothing when unset)."""
    if not _kind:
        _kind.append(os.environ.get(IO_KIND_ENV, ""))
    kind = _kind[0]
    if not kind:
        return
    if kind == "sleep":
        await asyncio.sleep(DELAY_SECONDS)
    elif kind == "http":
        await http_get(int(os.environ[HTTP_PORT_ENV]))
    else:
        raise ValueError(f"{IO_KIND_ENV} must be sleep or http, not {kind!r}")


async def http_get(port: int) -> bytes:
    """One GET to the delay server on 127.0.0.1:``port``; the body. Reuses an idle connection if any."""
    idle = _idle.setdefault(id(asyncio.get_running_loop()), [])
    reader, writer = idle.pop() if idle else await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_REQUEST)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"unexpected reply {head[:40]!r}")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length)
    except BaseException:
        writer.close()  # a half-read connection cannot be reused
        raise
    idle.append((reader, writer))
    return body


async def close_connections() -> None:
    """Close this event loop's idle connections (before the loop ends)."""
    for _, writer in _idle.pop(id(asyncio.get_running_loop()), []):
        writer.close()
        await writer.wait_closed()


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Keep-alive: answer each GET on this connection after the delay, until the client closes it."""
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(DELAY_SECONDS)
            writer.write(_RESPONSE)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(port: int) -> None:
    """The delay server: prints its port on the first line of stdout, then serves until killed."""
    server = await asyncio.start_server(_answer, "127.0.0.1", port, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.io_wait --port 0``: run the delay server (bench.io_bound starts it)."""
    parser = argparse.ArgumentParser(prog="python -m bench.io_wait")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
