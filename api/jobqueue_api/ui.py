"""The web UI: static HTML, CSS and JavaScript modules shipped as package data (no build step).

The page lives at ``/`` and its assets under ``/ui/``. The assets are a mount at ``/ui`` rather than at
``/`` so the UI can never shadow an API route, whatever order routers are added in: a catch-all mount at
``/`` would swallow every path registered after it (e.g. a colleague's new /api/v1 router).
"""

from __future__ import annotations

import os
from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

# The UI keeps the API key in sessionStorage, so script injection would leak it: allow only our own
# scripts and styles (no inline code, no third-party origins) and refuse to be framed (clickjacking).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Revalidate on every load (ETag makes that a 304) so an upgraded API never runs a stale UI.
    "Cache-Control": "no-cache",
}

# Module scripts are refused by browsers unless served with a JavaScript type; do not leave that to the
# host's mimetypes database.
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}


class UiFiles(StaticFiles):
    """StaticFiles with explicit media types and the UI's security headers."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        """Serve one asset (see StaticFiles.file_response)."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        media_type = _MEDIA_TYPES.get(os.path.splitext(str(full_path))[1])
        if media_type is not None and response.status_code == 200:
            response.headers["content-type"] = (
                f"{media_type}; charset=utf-8" if media_type.startswith("text/") else media_type
            )
        response.headers.update(SECURITY_HEADERS)
        return response


def static_dir() -> str:
    """The folder of the UI assets inside the installed package."""
    return str(files("jobqueue_api") / "static")


def install_ui(app: FastAPI) -> None:
    """Serve the UI page at ``/`` and its assets at ``/ui/``."""
    index = os.path.join(static_dir(), "index.html")

    @app.get("/", include_in_schema=False)
    async def ui_index() -> FileResponse:
        return FileResponse(index, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    app.mount("/ui", UiFiles(directory=static_dir()), name="ui")
