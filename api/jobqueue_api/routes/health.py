"""/healthz (process up), /readyz (Redis and PostgreSQL reachable), /metrics (Prometheus text format)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from jobqueue.errors import BrokerUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when Redis answers (503 with Retry-After otherwise). PostgreSQL is reported (up, down or
    not_configured) but does not decide readiness: with the record down, task submission and every
    Redis-backed route still work, so the API must stay in its Service; only history and analytics
    answer 503 then."""
    redis = "up"
    try:
        await request.app.state.client.ping(timeout=2.0)
    except BrokerUnavailable:
        redis = "down"
    postgres = await request.app.state.record.ping()
    body = {"redis": redis, "postgres": postgres}
    if redis == "down":
        return JSONResponse({"status": "unavailable", **body}, status_code=503, headers={"Retry-After": "5"})
    return JSONResponse({"status": "ok", **body})


# Declared so the schema says text, not the JSON FastAPI assumes for a route without a response model.
@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
)
async def metrics(request: Request) -> Response:
    """Prometheus exposition of live queue state and counters."""
    state = request.app.state
    body = await asyncio.to_thread(state.queue_collector.exposition, state.metrics_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
