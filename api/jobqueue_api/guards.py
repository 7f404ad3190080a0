"""ASGI guards that run before any route: Host and cross-site checks, the API key, the body deadline.

They are plain ASGI middlewares (not dependencies) because a dependency runs only after FastAPI has read
the whole body: an unauthenticated or cross-site request must be refused from its head alone, before the
server spends memory or a connection's time on its body.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobqueue_api.errors import error_body
from jobqueue_api.settings import Scope as KeyScope

# Methods that change state. GET/HEAD/OPTIONS never do here, so a cross-site GET is harmless (the
# same-origin policy keeps its answer from the other site).
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Probes answer whatever the Host: the kubelet sends the pod's IP, and they reveal nothing worth a rebind.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})


def key_scopes(
    authorization: str | None, keys: Mapping[str, frozenset[KeyScope]]
) -> frozenset[KeyScope] | None:
    """The scopes of the bearer key in an Authorization header value, None when missing or unknown.

    Every key is compared in constant time, so timing reveals neither which key nor how much matched.
    """
    if not authorization:
        return None
    kind, _, credentials = authorization.partition(" ")
    if kind.lower() != "bearer" or not credentials.strip():
        return None
    presented = credentials.strip().encode("utf-8", "surrogateescape")
    found: frozenset[KeyScope] | None = None
    for key, scopes in keys.items():
        if hmac.compare_digest(presented, key.encode()):
            found = scopes
    return found


def host_name(host_header: str) -> str:
    """The host part of a Host header value, lower case, without the port ("[::1]:80" -> "[::1]")."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def host_allowed(host_header: str | None, allowed: frozenset[str]) -> bool:
    """Whether a Host header names this API (``allowed`` holds names, name:port pairs or "*")."""
    if "*" in allowed:
        return True
    if not host_header:
        return False
    return host_header.strip().lower() in allowed or host_name(host_header) in allowed


def cross_site(method: str, headers: Headers) -> str | None:
    """Why a state-changing request comes from another site, or None.

    Browsers mark every request with Sec-Fetch-Site and cross-origin POSTs with Origin; an HTML form or a
    fetch() without CORS from another page can still *send* a body-less POST (pause, retry, ...), so the
    answer being unreadable is no protection. A request with neither header is not from a browser page.
    """
    if method not in UNSAFE_METHODS:
        return None
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.lower() not in ("same-origin", "none"):
        return f"Sec-Fetch-Site is {fetch_site!r}"
    origin = headers.get("origin")
    if origin is None:
        return None
    parts = urlsplit(origin) if origin != "null" else None
    if parts is None or not parts.netloc or parts.netloc.lower() != headers.get("host", "").strip().lower():
        return f"Origin {origin!r} is not this API's origin"
    return None


def _refusal(status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


class RequestGuard:
    """Refuse requests by their head: unknown Host (421), cross-site writes (403), no key on /api (401).

    The key check here only proves the key exists, so no body of an anonymous client is ever read; the
    scope each route needs is checked by its ``require`` dependency as before.
    """

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: frozenset[str],
        keys: Mapping[str, frozenset[KeyScope]],
        open_mode: bool,
    ) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.keys = keys
        self.open_mode = open_mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["path"] not in PROBE_PATHS and not host_allowed(headers.get("host"), self.allowed_hosts):
            body = error_body("misdirected", "this API does not answer to that Host header", "host")
            await _refusal(421, body)(scope, receive, send)
            return
        reason = cross_site(scope["method"], headers)
        if reason is not None:
            body = error_body("cross_site", f"cross-site request refused: {reason}", "origin")
            await _refusal(403, body)(scope, receive, send)
            return
        authorization = headers.get("authorization")
        if (
            not self.open_mode
            and scope["path"].startswith("/api/")
            and key_scopes(authorization, self.keys) is None
        ):
            # The same messages as jobqueue_api.auth.require: the UI shows them by the key box.
            message = "unknown API key" if authorization else "missing bearer API key"
            body = error_body("unauthorized", message)
            await _refusal(401, body, {"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyDeadline:
    """Answer 408 when a request body has not fully arrived within ``seconds`` of the request head.

    uvicorn bounds the head (see jobqueue_api.server) but not the body: a client sending one byte every
    few seconds would otherwise hold a connection and a task for as long as it likes.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.seconds
        body_done = False
        expired = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done, expired
            if expired:
                return {"type": "http.disconnect"}
            if body_done:
                return await receive()  # e.g. a streaming response waiting for the client to leave
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                expired = True
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if expired and not started:
                return  # the app's answer to the "disconnect"; the 408 below replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, timed_receive, guarded_send)
        if expired and not started:
            body = error_body("request_timeout", f"request body not received within {self.seconds}s", "body")
            await _refusal(408, body, {"Connection": "close"})(scope, receive, send)


# For every response that sets none of its own (the UI pages set a policy for their assets): the API
# answers JSON and text only, so nothing it returns may run scripts, load resources or be framed.
API_SECURITY_HEADERS = (
    (b"content-security-policy", b"default-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
)


class SecurityHeaders:
    """Add ``API_SECURITY_HEADERS`` to every HTTP response that lacks them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in API_SECURITY_HEADERS if n not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
