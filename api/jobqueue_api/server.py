"""``serve``: build the API from the environment and run it under uvicorn (what ``jobqueue api`` runs).

The one entry point the core CLI uses (the import contracts allow ``jobqueue.cli`` the package façade
``jobqueue_api`` and nothing inside it), so the CLI never depends on how the app is assembled.
"""

from __future__ import annotations

import uvicorn

from jobqueue.settings import Settings
from jobqueue_api.app import create_app
from jobqueue_api.settings import ApiSettings


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Serve the API until interrupted; ``host``/``port`` override JOBQUEUE_API_HOST / _PORT."""
    overrides: dict[str, object] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    api_settings = ApiSettings(**overrides)  # type: ignore[arg-type]
    app = create_app(settings, api_settings)
    uvicorn.run(app, host=api_settings.host, port=api_settings.port, log_level="info", access_log=False)
