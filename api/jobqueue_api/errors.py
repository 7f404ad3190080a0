"""Every error becomes a JSON body ``{"error": code, "message": ..., "field": ...}`` with a 4xx or 503."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from jobqueue.errors import (
    BrokerUnavailable,
    InvalidTransition,
    JobQueueError,
    PayloadTooLarge,
    PoolExists,
    PoolNotFound,
    PoolsUnavailable,
    RecordError,
    RecordUnavailable,
    ScheduleCorrupt,
    ScheduleNotFound,
    TaskNotFound,
    ValidationError,
)
from jobqueue_api.responses import StorableJSONResponse

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An HTTP error with a JSON body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers


class ErrorBody(BaseModel):
    """The body of every 4xx and 503 (``details`` lists each invalid field of a 422)."""

    model_config = ConfigDict(extra="allow")

    error: str
    message: str
    field: str | None = None


def _declared(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Declared on every /api route so the OpenAPI schema lists the errors clients must handle, and so schema
# conformance checks (the fuzz test) hold each error response to the ErrorBody shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _declared("Rejected by the broker"),
    401: _declared("Missing or unknown API key"),
    403: _declared("The key lacks the scope"),
    404: _declared("No such task, schedule, worker, worker pool or dead letter"),
    409: _declared("Not possible in the current state"),
    413: _declared("Request body over the size limit"),
    422: _declared("Invalid input; 'field' names it"),
    503: _declared("Redis unavailable; retry after the Retry-After seconds"),
}


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    """The JSON shape of every error."""
    body: dict[str, Any] = {"error": code, "message": message}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return body


def _to_response(exc: ApiError) -> JSONResponse:
    # Storable: a message may quote the caller's input, lone surrogates included.
    return StorableJSONResponse(
        error_body(exc.code, exc.message, exc.field), status_code=exc.status, headers=exc.headers
    )


def translate(exc: JobQueueError) -> ApiError:
    """Map a jobqueue error to its HTTP meaning."""
    if isinstance(exc, PayloadTooLarge):
        return ApiError(413, "payload_too_large", exc.message, exc.field)
    if isinstance(exc, ValidationError):
        return ApiError(422, "invalid", exc.message, exc.field)
    if isinstance(exc, TaskNotFound):
        return ApiError(404, "not_found", str(exc), "task_id")
    if isinstance(exc, ScheduleNotFound):
        return ApiError(404, "not_found", str(exc), "name")
    if isinstance(exc, PoolNotFound):
        return ApiError(404, "not_found", str(exc), "name")
    if isinstance(exc, PoolExists):
        return ApiError(409, "conflict", str(exc), "name")
    if isinstance(exc, PoolsUnavailable):
        return ApiError(409, "pools_not_configured", str(exc))
    if isinstance(exc, ScheduleCorrupt):
        return ApiError(409, "conflict", str(exc), "name")
    if isinstance(exc, InvalidTransition):
        return ApiError(409, "conflict", str(exc))
    if isinstance(exc, BrokerUnavailable):
        return ApiError(503, "unavailable", "the broker (Redis) is unavailable", headers={"Retry-After": "5"})
    if isinstance(exc, RecordUnavailable):
        return ApiError(
            503, "unavailable", "the record (PostgreSQL) is unavailable", headers={"Retry-After": "10"}
        )
    if isinstance(exc, RecordError):
        # A schema mismatch or a bug on the database side: logged here, never leaked to the client.
        log.error("record error: %s", exc)
        return ApiError(
            503, "record_error", "the record (PostgreSQL) could not answer", headers={"Retry-After": "10"}
        )
    return ApiError(400, "rejected", str(exc))


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that keep every failure a JSON 4xx (or 503), never a bare 500."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _to_response(exc)

    @app.exception_handler(JobQueueError)
    async def jobqueue_error(request: Request, exc: JobQueueError) -> JSONResponse:
        return _to_response(translate(exc))

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = [str(p) for p in first.get("loc", ())]
        # loc starts with where the value was (body, query, path, header); the rest names the field. A
        # missing body is loc ("body",) alone, and a JSON syntax error is ("body", <character offset>):
        # both are about the body as a whole, not a field called "0".
        if first.get("type") == "json_invalid":
            loc = loc[:1]
        field = ".".join(loc[1:]) or (loc[0] if loc else None)
        details = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")} for e in errors
        ]
        body = error_body("invalid", str(first.get("msg", "invalid request")), field, details=details)
        return StorableJSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's only 400 of its own: a body it could not read as JSON at all (e.g. not UTF-8).
            # Answer it like a JSON syntax error, a 422 naming the body, rather than a 400 naming nothing.
            return JSONResponse(error_body("invalid", str(exc.detail), "body"), status_code=422)
        return JSONResponse(error_body("http_error", str(exc.detail)), status_code=exc.status_code)
