"""Bearer API keys with scopes."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from jobqueue_api.errors import ApiError
from jobqueue_api.settings import Scope

_bearer = HTTPBearer(auto_error=False)


def _grants(scopes: frozenset[Scope], needed: Scope) -> bool:
    return Scope.ADMIN in scopes or needed in scopes


def require(needed: Scope) -> Callable[[Request], Coroutine[Any, Any, None]]:
    """A dependency that admits a request whose bearer key has ``needed`` (or admin)."""

    async def check(request: Request) -> None:
        state = request.app.state
        if state.open_mode:
            return
        credentials: HTTPAuthorizationCredentials | None = await _bearer(request)
        if credentials is None:
            raise ApiError(
                401, "unauthorized", "missing bearer API key", headers={"WWW-Authenticate": "Bearer"}
            )
        presented = credentials.credentials.encode()
        scopes: frozenset[Scope] | None = None
        # Compare against every key in constant time, so timing reveals neither which key nor how much
        # of it matched.
        for key, key_scopes in state.api_keys.items():
            if hmac.compare_digest(presented, key.encode()):
                scopes = key_scopes
        if scopes is None:
            raise ApiError(401, "unauthorized", "unknown API key", headers={"WWW-Authenticate": "Bearer"})
        if not _grants(scopes, needed):
            raise ApiError(403, "forbidden", f"this key lacks the {needed.value!r} scope")

    return check
