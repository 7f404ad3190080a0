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


@pytest.mark.parametrize("command", [["enqueue"], ["submit", "--api", "http://127.0.0.1:9"]])
def test_unstorable_cli_arguments_are_refused_before_anything_is_sent(
    command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobqueue.cli.main import main  # noqa: PLC0415 - the entry point, as the shell runs it

    # A shell argument that is not UTF-8 reaches Python as a lone surrogate (surrogateescape).
    monkeypatch.setenv("JOBQUEUE_REDIS_URL", "redis://127.0.0.1:9/0")  # nothing listens there
    code = main([command[0], "add", "--args", '["ok", {"path": "bad \udcff"}]', *command[1:]])
    assert code == 2
    assert "args[1].path: contains a lone surrogate (U+DCFF)" in capsys.readouterr().err
