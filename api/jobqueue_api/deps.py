"""Per-request access to the objects built once by create_app."""

from __future__ import annotations

from fastapi import Request

from jobqueue.broker.aio import AsyncClient


def get_client(request: Request) -> AsyncClient:
    """The app's shared AsyncClient."""
    client: AsyncClient = request.app.state.client
    return client
