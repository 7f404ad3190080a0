"""The API's JSON response: the same bytes as FastAPI's, and total on strings UTF-8 cannot encode."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse


class StorableJSONResponse(JSONResponse):
    """JSONResponse that never fails on a lone surrogate.

    Everything jobqueue stores now is escaped (jobqueue.payloads), but a task or schedule written by an
    earlier version may still hold a lone surrogate, which made its every read a 500. Such a body is
    written with ASCII escapes instead (``"\\ud800"``): valid JSON that every client parses.
    """

    def render(self, content: Any) -> bytes:
        """UTF-8 JSON, or ASCII-escaped JSON when the content holds a lone surrogate."""
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()
