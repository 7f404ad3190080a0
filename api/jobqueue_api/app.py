"""The FastAPI application factory."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from jobqueue.aio import AsyncClient
from jobqueue.errors import ConfigurationError
from jobqueue.settings import Settings
from jobqueue_api.errors import ERROR_RESPONSES, error_body, install_error_handlers
from jobqueue_api.metrics import QueueCollector
from jobqueue_api.routes import (
    dead_letters,
    health,
    queue_config,
    queue_stats,
    queues,
    schedules,
    tasks,
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


class BodySizeLimit(BaseHTTPMiddleware):
    """Reject bodies over the limit with 413 before reading them (Content-Length), and while reading."""

    def __init__(self, app: object, max_bytes: int) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.max_bytes = max_bytes

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        too_big = JSONResponse(
            error_body("payload_too_large", f"request body over {self.max_bytes} bytes", "body"),
            status_code=413,
        )
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return too_big
        if length is None and request.method in ("POST", "PUT", "PATCH"):
            body = await request.body()
            if len(body) > self.max_bytes:
                return too_big
        return await call_next(request)


def create_app(settings: Settings | None = None, api_settings: ApiSettings | None = None) -> FastAPI:
    """Build the API. Connections open lazily; nothing happens at import time."""
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
        yield
        await app.state.client.close()

    app = FastAPI(
        title="jobqueue",
        version="0.1.0",
        description="Submit, inspect and manage jobqueue tasks, queues, dead letters and workers.",
        lifespan=lifespan,
    )
    client = AsyncClient(settings)
    registry = CollectorRegistry()
    registry.register(QueueCollector(client.sync))
    app.state.client = client
    app.state.metrics_registry = registry
    app.state.api_keys = keys
    app.state.open_mode = api_settings.open_mode
    if api_settings.open_mode:
        log.warning("API in OPEN MODE: no API key required (bound to %s only)", api_settings.host)
    app.add_middleware(BodySizeLimit, max_bytes=api_settings.max_body_bytes)
    install_error_handlers(app)
    app.include_router(health.router)
    for module in (tasks, queues, queue_stats, queue_config, dead_letters, workers, schedules):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    install_ui(app)
    return app
