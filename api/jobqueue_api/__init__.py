"""jobqueue's REST API (FastAPI): ``create_app`` builds it; ``serve`` runs it (``jobqueue api``).

This module is the package's public façade: other packages (the core CLI above all) import these names
and nothing from the modules behind them, which the import contracts in pyproject.toml enforce.
"""

from jobqueue_api.app import create_app
from jobqueue_api.server import serve

__all__ = ["create_app", "serve"]
