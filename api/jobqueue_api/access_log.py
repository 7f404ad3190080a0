"""The structured access log: one line per request on the ``jobqueue_api.access`` logger.

Each line carries ``method``, ``route`` (the route template, ``/api/v1/tasks/{task_id}``: bounded
cardinality, and no task id or other value from the URL; ``path`` instead, truncated, when no route
matched), ``status``, ``duration_ms``, ``key_id`` and ``client`` (the peer address). The key id is a
fingerprint of the API key (the first 12 hex digits of its SHA-256), never the key: enough to tell keys
apart and to match a line to a key you hold (``printf %s KEY | sha256sum``), useless to present as a key.
No query string, no header, no body is logged. JSON or text is the process's ``--log-format``
(jobqueue.log_config); uvicorn's own access log stays off. Liveness and readiness probes log at DEBUG:
a kubelet asks every few seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobqueue_api.guards import PROBE_PATHS

log = logging.getLogger("jobqueue_api.access")

MAX_PATH_CHARS = 200
UNKNOWN_KEY = "unknown"


def key_fingerprint(key: str) -> str:
    """The id an API key is logged as: the first 12 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def key_ids(keys: Mapping[str, Any]) -> dict[bytes, str]:
    """{key as bytes: its fingerprint} for the configured keys, built once per app."""
    return {key.encode("utf-8", "surrogateescape"): key_fingerprint(key) for key in keys}


def request_key_id(authorization: str | None, ids: Mapping[bytes, str]) -> str:
    """The fingerprint of the configured key a request presents; '' when it presents none, 'unknown'
    when it presents another (never a fingerprint of what a stranger sent). Constant time per key, as
    guards.key_scopes."""
    if not authorization:
        return ""
    kind, _, credentials = authorization.partition(" ")
    if kind.lower() != "bearer" or not credentials.strip():
        return UNKNOWN_KEY
    presented = credentials.strip().encode("utf-8", "surrogateescape")
    found = UNKNOWN_KEY
    for key, key_id in ids.items():
        if hmac.compare_digest(presented, key):
            found = key_id
    return found


def access_fields(
    scope: Scope,
    status: int,
    duration_ms: float,
    ids: Mapping[bytes, str],
    templates: Sequence[tuple[re.Pattern[str], str]] = (),
) -> dict[str, Any]:
    """The structured fields of one request's line (pure: from the ASGI scope after the app ran)."""
    fields: dict[str, Any] = {
        "event": "http_request",
        "method": scope.get("method", ""),
        "route": route_template(scope, templates),
        "status": status,
        "duration_ms": round(duration_ms, 3),
        "key_id": request_key_id(_header(scope, b"authorization"), ids),
        "client": (scope.get("client") or ("", 0))[0],
    }
    if fields["route"] is None:
        # No route matched (a 404, or a request refused before routing): the path says what was asked.
        fields["path"] = str(scope.get("path", ""))[:MAX_PATH_CHARS]
    return fields


def route_template(scope: Scope, templates: Sequence[tuple[re.Pattern[str], str]]) -> str | None:
    """The template of the route that served the request; for one refused before routing (a 401 from
    the guard), the first of ``templates`` its path matches; None when none does."""
    template = getattr(scope.get("route"), "path", None)
    if isinstance(template, str):
        return template
    path = str(scope.get("path", ""))
    for pattern, candidate in templates:
        if pattern.match(path):
            return candidate
    return None


def path_templates(paths: Sequence[str]) -> list[tuple[re.Pattern[str], str]]:
    """(regex, template) of the API's path templates, the more literal first (``/tasks/batch`` before
    ``/tasks/{task_id}``)."""
    ordered = sorted(paths, key=lambda template: (template.count("{"), template))
    return [(compile_path(template)[0], template) for template in ordered]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class AccessLog:
    """ASGI middleware (the outermost, so refusals by the guards and the body limits are logged too)
    that logs each HTTP request once its response is sent, or as a 500 when the app raised."""

    def __init__(self, app: ASGIApp, keys: Mapping[str, Any]) -> None:
        self.app = app
        self.ids = key_ids(keys)
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    def _known_templates(self, scope: Scope) -> list[tuple[re.Pattern[str], str]]:
        """The API's path templates (from its OpenAPI document, which FastAPI builds once), read at the
        first request that was refused before routing."""
        if self._templates is None:
            app = scope.get("app")
            paths = app.openapi().get("paths", {}) if isinstance(app, FastAPI) else {}
            self._templates = path_templates(list(paths))
        return self._templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before starting a response

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            routed = isinstance(getattr(scope.get("route"), "path", None), str)
            templates = () if routed else self._known_templates(scope)
            fields = access_fields(scope, status, (time.perf_counter() - started) * 1000, self.ids, templates)
            level = logging.DEBUG if scope.get("path") in PROBE_PATHS else logging.INFO
            log.log(
                level,
                "%s %s %d %.1fms",
                fields["method"],
                fields["route"] or fields.get("path", ""),
                status,
                fields["duration_ms"],
                extra=fields,
            )
