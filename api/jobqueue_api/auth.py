"""Bearer API keys with scopes."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request

from jobqueue_api.errors import ApiError
from jobqueue_api.guards import key_scopes
from jobqueue_api.settings import Scope


def _grants(scopes: frozenset[Scope], needed: Scope) -> bool:
    return Scope.ADMIN in scopes or needed in scopes


def require(needed: Scope) -> Callable[[Request], Coroutine[Any, Any, None]]:
    """A dependency that admits a request whose bearer key has ``needed`` (or admin)."""

    async def check(request: Request) -> None:
        state = request.app.state
        if state.open_mode:
            return
        authorization = request.headers.get("authorization")
        if not authorization:
            raise ApiError(
                401, "unauthorized", "missing bearer API key", headers={"WWW-Authenticate": "Bearer"}
            )
        scopes = key_scopes(authorization, state.api_keys)
        if scopes is None:
            raise ApiError(401, "unauthorized", "unknown API key", headers={"WWW-Authenticate": "Bearer"})
        # Kept for routes whose needed scope depends on what the request turns out to touch.
        request.state.scopes = scopes
        if not _grants(scopes, needed):
            raise ApiError(403, "forbidden", f"this key lacks the {needed.value!r} scope")

    return check


def ensure_scope(request: Request, needed: Scope) -> None:
    """Refuse (403) a request already admitted by ``require`` whose key lacks ``needed``.

    For a route whose scope depends on the target: e.g. retry needs submit, but retrying a dead letter is a
    replay, which needs admin like the dead-letter replay route.
    """
    if request.app.state.open_mode:
        return
    scopes: frozenset[Scope] = getattr(request.state, "scopes", frozenset())
    if not _grants(scopes, needed):
        raise ApiError(403, "forbidden", f"this key lacks the {needed.value!r} scope")
