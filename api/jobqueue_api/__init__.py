"""jobqueue's REST API (FastAPI): ``create_app`` builds it; ``jobqueue api`` serves it."""

from jobqueue_api.app import create_app

__all__ = ["create_app"]
