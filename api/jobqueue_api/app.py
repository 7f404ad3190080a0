"""The FastAPI application factory."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobqueue.broker.aio import AsyncClient
from jobqueue.errors import ConfigurationError
from jobqueue.settings import Settings
from jobqueue_api.access_log import AccessLog
from jobqueue_api.errors import ERROR_RESPONSES, error_body, install_error_handlers
from jobqueue_api.guards import BodyDeadline, RequestGuard, SecurityHeaders
from jobqueue_api.metrics import QueueCollector
from jobqueue_api.pool_backends import LocalPoolBackend, NoPoolBackend, PoolBackend
from jobqueue_api.pool_kube import KubernetesPoolBackend, kube_api_client
from jobqueue_api.record_access import RecordAccess
from jobqueue_api.replica_history import ReplicaHistory
from jobqueue_api.responses import StorableJSONResponse
from jobqueue_api.routes import (
    dead_letters,
    health,
    queue_config,
    queue_stats,
    queues,
    record_analytics,
    record_history,
    schedules,
    tasks,
    worker_pools,
    workers,
)
from jobqueue_api.settings import ApiSettings
from jobqueue_api.ui import install_ui

log = logging.getLogger(__name__)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BodySizeLimit:
    """Reject bodies over the limit with 413: at once from Content-Length, else while they stream in.

    A plain ASGI middleware rather than BaseHTTPMiddleware so a chunked body (no Content-Length) is counted
    chunk by chunk and never held in memory past the limit: once over it, the app is told the client left
    and whatever it answers to that is replaced by the 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = error_body("payload_too_large", f"request body over {self.max_bytes} bytes", "body")
        await JSONResponse(body, status_code=413)(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._reject(scope, receive, send)
            return
        received = 0
        over = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not started:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:
                return  # the app's answer to the "disconnect"; the 413 below replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, guarded_send)
        if over:
            await self._reject(scope, receive, send)


def _pool_backend(api_settings: ApiSettings, client: AsyncClient) -> PoolBackend:
    if api_settings.pools_backend == "local":
        return LocalPoolBackend(client)
    if api_settings.pools_backend == "kubernetes":
        return KubernetesPoolBackend(
            kube_api_client(), api_settings.pools_namespace, api_settings.pools_default_image or None
        )
    return NoPoolBackend()


def create_app(
    settings: Settings | None = None,
    api_settings: ApiSettings | None = None,
    pool_backend: PoolBackend | None = None,
) -> FastAPI:
    """Build the API. Connections open lazily; nothing happens at import time. ``pool_backend`` replaces
    the one the settings choose (tests pass a Kubernetes backend bound to their control plane)."""
    settings = settings or Settings()
    api_settings = api_settings or ApiSettings()
    keys = api_settings.parsed_keys()
    if api_settings.open_mode and not _is_loopback(api_settings.host):
        raise ConfigurationError("open mode (no API keys) is only allowed on a loopback address")
    if not keys and not api_settings.open_mode:
        raise ConfigurationError(
            "set JOBQUEUE_API_KEYS (key:scope+scope,...) or enable open mode on localhost"
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The record pool opens here, not in create_app: building the app does no I/O.
        app.state.record.open()
        try:
            yield
        finally:
            app.state.record.close()
            await app.state.client.close()

    # No /docs or /redoc: FastAPI's pages load Swagger UI / ReDoc scripts from a CDN, which would run
    # third-party code on the UI's origin (where the API key lives) and break air-gapped installs.
    # /openapi.json is served; point any OpenAPI viewer at it (docs/api.md).
    app = FastAPI(
        title="jobqueue",
        version="0.1.0",
        description="Submit, inspect and manage jobqueue tasks, queues, dead letters and workers.",
        lifespan=lifespan,
        default_response_class=StorableJSONResponse,
        docs_url=None,
        redoc_url=None,
    )
    client = AsyncClient(settings)
    registry = CollectorRegistry()
    collector = QueueCollector(client.sync)
    registry.register(collector)
    app.state.queue_collector = collector
    app.state.client = client
    database_url = settings.database_url.get_secret_value() if settings.database_url else None
    app.state.record = RecordAccess(database_url)
    app.state.metrics_registry = registry
    app.state.pool_backend = pool_backend or _pool_backend(api_settings, client)
    app.state.replica_history = ReplicaHistory()
    app.state.api_keys = keys
    app.state.open_mode = api_settings.open_mode
    if api_settings.open_mode:
        log.warning("API in OPEN MODE: no API key required (bound to %s only)", api_settings.host)
    # Outermost last: headers on every answer; then refusals by the request head alone (Host,
    # cross-site, key), so no anonymous body is ever read; then the body's deadline and size.
    app.add_middleware(BodySizeLimit, max_bytes=api_settings.max_body_bytes)
    app.add_middleware(BodyDeadline, seconds=api_settings.body_timeout_seconds)
    app.add_middleware(
        RequestGuard,
        allowed_hosts=api_settings.parsed_allowed_hosts(),
        keys=keys,
        open_mode=api_settings.open_mode,
    )
    app.add_middleware(SecurityHeaders)
    if api_settings.access_log:
        # Outermost of all: every request is logged with the status it got, refusals included.
        app.add_middleware(AccessLog, keys=keys)
    install_error_handlers(app)
    app.include_router(health.router)
    # The record routers come first: GET /api/v1/tasks (search) and .../{id}/history sit beside the
    # Redis-backed /api/v1/tasks/{id} routes. Every API router declares the JSON error responses.
    for module in (
        record_history,
        record_analytics,
        tasks,
        queues,
        queue_stats,
        queue_config,
        dead_letters,
        workers,
        schedules,
        worker_pools,
    ):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    install_ui(app)
    return app
