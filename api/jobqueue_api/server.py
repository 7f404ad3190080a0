"""``serve``: build the API from the environment and run it under uvicorn (what ``jobqueue api`` runs),
with a deadline on each request head (slowloris guard).

``serve`` is the one entry point the core CLI uses (the import contracts allow ``jobqueue.cli`` the
package façade ``jobqueue_api`` and nothing inside it), so the CLI never depends on how the app is
assembled.

uvicorn bounds an idle keep-alive connection (timeout_keep_alive) but not a client that trickles its
request head: every byte cancels the keep-alive timer, and a connection that sends nothing at all arms no
timer. A few hundred such clients would hold every connection slot. The h11 protocol below closes a
connection whose request head is not complete within ``header_timeout_seconds`` of the connection opening
or of the previous response; the body deadline is jobqueue_api.guards.BodyDeadline's.
"""

from __future__ import annotations

import asyncio
import logging

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from jobqueue.settings import Settings
from jobqueue_api.app import create_app
from jobqueue_api.settings import ApiSettings

log = logging.getLogger(__name__)


class HeadDeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for the request head (see the module docstring)."""

    header_timeout_seconds: float = 10.0
    _head_timer: asyncio.TimerHandle | None = None

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout_seconds, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        # Only a connection still waiting for a request head: one whose request is being answered has
        # moved past IDLE, and its body has its own deadline.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info("closing a connection whose request head took over %ss", self.header_timeout_seconds)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the head deadline as the connection opens."""
        super().connection_made(transport)
        self._arm_head_timer()

    def handle_events(self) -> None:
        """Parse what arrived; the head deadline ends once a whole request head has been parsed."""
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        """The next request on this keep-alive connection gets a fresh head deadline."""
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the timer with the connection."""
        self._cancel_head_timer()
        super().connection_lost(exc)


def uvicorn_config(app: FastAPI, api_settings: ApiSettings) -> uvicorn.Config:
    """The uvicorn configuration ``jobqueue api`` runs with (its timeouts come from ``api_settings``)."""
    protocol = type(
        "ConfiguredHeadDeadlineH11Protocol",
        (HeadDeadlineH11Protocol,),
        {"header_timeout_seconds": api_settings.header_timeout_seconds},
    )
    return uvicorn.Config(
        app,
        host=api_settings.host,
        port=api_settings.port,
        http=protocol,
        timeout_keep_alive=api_settings.keep_alive_seconds,
        # A request head larger than this is refused with 400 (h11's own default is 16 KiB too; said
        # here so it is a decision, not an accident).
        h11_max_incomplete_event_size=16 * 1024,
        log_level="info",
        # jobqueue_api.access_log writes the access log; uvicorn's own lines go through the root logger
        # that ``--log-format`` configured (no logging config of uvicorn's own: it would print text).
        access_log=False,
        log_config=None,
    )


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Serve the API until SIGINT / SIGTERM; ``host``/``port`` override JOBQUEUE_API_HOST / _PORT."""
    overrides: dict[str, object] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    api_settings = ApiSettings(**overrides)  # type: ignore[arg-type]
    app = create_app(settings, api_settings)
    uvicorn.Server(uvicorn_config(app, api_settings)).run()
