"""A small client of the REST API for the command line, on the standard library (urllib) so the worker
image needs no HTTP dependency.

Errors come back as :class:`ApiRequestError` carrying the API's own code, message and field.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from jobqueue.errors import ConfigurationError, JobQueueError

DEFAULT_TIMEOUT = 30.0


class ApiRequestError(JobQueueError):
    """The API refused a request (``status`` set) or could not be reached (``status`` None)."""

    def __init__(self, status: int | None, code: str, message: str, field: str | None = None) -> None:
        where = f" (field: {field})" if field else ""
        prefix = f"HTTP {status} {code}" if status is not None else code
        super().__init__(f"{prefix}: {message}{where}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def _error_from(exc: urllib.error.HTTPError) -> ApiRequestError:
    raw = exc.read()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return ApiRequestError(exc.code, "http_error", raw.decode(errors="replace")[:500] or str(exc.reason))
    field = body.get("field")
    return ApiRequestError(
        exc.code,
        str(body.get("error", "http_error")),
        str(body.get("message", exc.reason)),
        str(field) if field is not None else None,
    )


class ApiClient:
    """JSON requests to one API base URL with one bearer key."""

    def __init__(self, base_url: str | None, key: str | None, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not base_url:
            raise ConfigurationError("no API URL: pass --api URL or set JOBQUEUE_API_URL")
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            # urllib also opens file:// and ftp:// URLs; an API URL is never one of those.
            raise ConfigurationError(f"API URL must start with http:// or https://, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._key = key
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        """Send one request; the decoded JSON answer (None for 204)."""
        url = self.base_url + path
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        headers = {"Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:  # noqa: S310 - http(s) only
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _error_from(exc) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ApiRequestError(None, "unreachable", f"cannot reach {self.base_url}: {exc}") from exc
        return json.loads(raw) if raw else None

    def get(self, path: str, **query: Any) -> Any:
        """GET with query parameters (None values left out)."""
        return self.request("GET", path, query=query)

    def post(self, path: str, body: Any = None) -> Any:
        """POST a JSON body."""
        return self.request("POST", path, body=body if body is not None else {})

    def delete(self, path: str) -> Any:
        """DELETE."""
        return self.request("DELETE", path)
