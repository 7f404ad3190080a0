"""Free TCP ports on 127.0.0.1 for test servers."""

from __future__ import annotations

import socket


def free_ports(n: int) -> list[int]:
    """n distinct TCP ports free on 127.0.0.1, chosen before any server starts: each socket stays bound
    until all are picked. One at a time, a port handed out could come back again before the server it
    was for had bound it (CI saw a sentinel given the primary's port)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
