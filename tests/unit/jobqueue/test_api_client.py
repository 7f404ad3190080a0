"""The CLI's API client without a network: configuration errors and how refusals read."""

from __future__ import annotations

import pytest

from jobqueue.cli.api_client import ApiClient, ApiRequestError
from jobqueue.errors import ConfigurationError, JobQueueError


def test_an_api_url_is_required_and_must_be_http() -> None:
    with pytest.raises(ConfigurationError, match="JOBQUEUE_API_URL"):
        ApiClient(None, "key")
    with pytest.raises(ConfigurationError, match="http"):
        ApiClient("file:///etc/passwd", "key")
    assert ApiClient("https://jobs.example.com/", None).base_url == "https://jobs.example.com"


def test_a_refusal_names_status_code_message_and_field() -> None:
    error = ApiRequestError(422, "invalid", "Input should be greater than or equal to 0", "countdown")
    assert isinstance(error, JobQueueError)  # main() turns it into exit code 2
    assert str(error) == "HTTP 422 invalid: Input should be greater than or equal to 0 (field: countdown)"
    assert str(ApiRequestError(None, "unreachable", "cannot reach it")) == "unreachable: cannot reach it"
